"""The RFT export: readable case report, instructions in the one answer format, valid JSONL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genedx.answer_format import ANSWER_OPEN, format_instructions
from genedx.cases.export import age_in_words, case_report, export_split, instructions, rft_record
from genedx.cases.model import Case
from genedx.cases.readers import read_cases
from genedx.cases.split import make_split
from genedx.cases.store import import_cases
from genedx.errors import GenedxError
from genedx.home import connect

PP = Path(__file__).parent / "fixtures" / "phenopackets"
LABELS = {"HP:0001250": "Seizure", "HP:0001631": "Atrial septal defect"}


def test_case_report_prose():
    r = case_report(Case("x", present=["HP:0001250"], absent=["HP:0001631"], sex="male", age="P1Y2M"), LABELS)
    assert r.splitlines()[0] == "Basic information: male, age 1 year 2 months."
    assert "Symptoms present:\n- Seizure (HP:0001250)" in r
    assert "Symptoms absent:\n- Atrial septal defect (HP:0001631)" in r
    r = case_report(Case("y", present=["HP:0001250"]), LABELS, with_ids=False)
    assert "sex not reported" in r and "age not reported" in r
    assert "- Seizure\n" in r and "HP:0001250" not in r and "Symptoms absent:\n- none reported" in r


@pytest.mark.parametrize("iso,words", [("P3Y", "3 years"), ("P1Y", "1 year"), ("P4M", "4 months"),
                                       ("P10D", "10 days"), ("P2W", "2 weeks"), ("P0D", "newborn"), (None, None),
                                       ("weird", "weird")])
def test_age_in_words(iso, words):
    assert age_in_words(iso) == words


def test_rft_record_keys_and_prompt():
    c = Case("x", present=["HP:0001250"], gene="SCN1A", sex="female", age="P3Y", source="phenopacket",
             split="train", disease="OMIM:100001")
    rec = rft_record(c, LABELS)
    assert set(rec) == {"id", "prompt", "case_report", "instructions", "correct_answer", "present", "absent", "sex",
                        "age", "source", "split", "disease"}
    assert rec["correct_answer"] == "SCN1A" and rec["present"] == ["HP:0001250"]
    assert rec["prompt"] == [{"role": "user", "content": rec["case_report"] + "\n\n" + rec["instructions"]}]
    assert format_instructions() in rec["instructions"] and ANSWER_OPEN in instructions()
    with_ctx = rft_record(c, LABELS, extra_context="Candidate genes: SCN1A, TBX5")
    assert with_ctx["prompt"][0]["content"] == (rec["case_report"] + "\n\nCandidate genes: SCN1A, TBX5\n\n"
                                                 + rec["instructions"])
    assert "SCN1A" not in rec["prompt"][0]["content"].split(ANSWER_OPEN)[0].replace("SCN1A, SCN2A", "")


def test_export_split_roundtrip(toy_home, tmp_path):
    con = connect(toy_home)
    import_cases(con, read_cases([PP / "mixed.jsonl", PP / "PMID_111_variant_form.json"]))
    counts = make_split(con, by="case", seed=0, validation=0.5)
    out = tmp_path / "out" / "train.jsonl"
    n = export_split(con, "train", out)
    assert n == counts["train"] and not out.with_name("train.jsonl.part").exists()
    lines = out.read_text().splitlines()
    recs = [json.loads(line) for line in lines]
    assert len(recs) == n and all(r["split"] == "train" for r in recs)
    all_out = tmp_path / "all.jsonl"
    assert export_split(con, None, all_out) == 4
    by_id = {r["id"]: r for r in map(json.loads, all_out.read_text().splitlines())}
    assert by_id["PMID_111_P1"]["correct_answer"] == "SCN1A"
    assert "- Febrile seizure (HP:0002373)" in by_id["PMID_111_P1"]["case_report"]
    assert "- Atrial septal defect (HP:0001631)" in by_id["PMID_111_P1"]["case_report"].split("Symptoms absent:")[1]
    # the export reads back as the same cases
    back = {c.id: c for c in read_cases([all_out])}
    assert back["PMID_111_P1"].present == by_id["PMID_111_P1"]["present"] and back["PMID_111_P1"].gene == "SCN1A"
    with pytest.raises(GenedxError, match="stored splits: train, validation"):
        export_split(con, "tain", tmp_path / "typo.jsonl")
    assert not (tmp_path / "typo.jsonl").exists()
    con.close()


def test_docstring_examples():
    import doctest

    import genedx.cases.export as export

    assert doctest.testmod(export).failed == 0
