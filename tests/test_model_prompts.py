"""`genedx.model.prompts`: closed / retrieval prompts, SFT targets from the ranker's explanation, export --mode."""

from __future__ import annotations

import json

import pytest

from genedx.answer_format import ANSWER_OPEN, THINK_CLOSE, THINK_OPEN
from genedx.cases.model import Case
from genedx.cases.store import load_cases
from genedx.errors import GenedxError
from genedx.grade.parse import parse_answer
from genedx.home import connect
from genedx.model.prompts import CANDIDATES_HEADER, PromptBuilder, build_prompt, candidate_block
from genedx.predict import Evidence, GeneScore, TermMatch
from tests.model_fixtures import make_toy_cases_home


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return make_toy_cases_home(tmp_path_factory.mktemp("toycases"))


@pytest.fixture
def con(home):
    c = connect(home)
    yield c
    c.close()


SEIZURE_CASE = Case("c1", present=["HP:0001250", "HP:0001263"], absent=["HP:0001631"], sex="female", age="P2Y",
                    gene="SCN1A")


def test_closed_prompt_is_report_and_instructions(con):
    pb = PromptBuilder.from_db(con, "closed")
    assert pb.ranker is None
    rec = pb.record(SEIZURE_CASE)
    text = rec["prompt"][0]["content"]
    assert rec["prompt"][0]["role"] == "user" and rec["mode"] == "closed" and rec["correct_answer"] == "SCN1A"
    assert "Seizure" in text and "female" in text and ANSWER_OPEN in text
    assert CANDIDATES_HEADER not in text and "HP:0001250" not in text   # ids off by default
    assert build_prompt(SEIZURE_CASE, pb.labels, with_ids=True).count("HP:0001250") == 1


def test_retrieval_prompt_lists_ranker_candidates(con):
    pb = PromptBuilder.from_db(con, "retrieval", top_k=2)
    text = pb.messages(SEIZURE_CASE)[0]["content"]
    block = text[text.index(CANDIDATES_HEADER):]
    lines = block.splitlines()[1:3]
    assert lines[0].startswith("1. SCN1A (Toy epilepsy syndrome): ")   # the ranker's best gene for seizures
    assert lines[1].startswith("2. ")
    # the candidate block sits between the case report and the instructions
    assert text.index("Symptoms absent") < text.index(CANDIDATES_HEADER) < text.index("You are a clinical geneticist")


def test_candidate_block_shows_matched_and_excluded_terms():
    ev = Evidence("OMIM:1", "Dravet syndrome",
                  matched=[TermMatch("HP:1", "HP:2", 0.5, "Seizure", "Febrile seizure"),
                           TermMatch("HP:3", "HP:3", 2.0, "Ataxia", "Ataxia")],
                  excluded=[TermMatch("HP:9", "HP:9", -1.0, "Fever", "Fever")])
    block = candidate_block([GeneScore("SCN1A", 3.0, "OMIM:1", "Dravet syndrome", ev), GeneScore("TBX5", 1.0)], {})
    assert block.splitlines()[1] == "1. SCN1A (Dravet syndrome): Ataxia, Febrile seizure; absent but expected: Fever"
    assert block.splitlines()[2] == "2. TBX5"


def test_bad_modes_are_errors(con):
    with pytest.raises(GenedxError, match="unknown prompt mode"):
        PromptBuilder.from_db(con, "open-book")
    with pytest.raises(GenedxError, match="needs the phenotype ranker"):
        PromptBuilder({}, "retrieval")


def test_target_reasons_from_true_gene_then_answers(con):
    pb = PromptBuilder.from_db(con, "closed", need_ranker=True)
    target = pb.target(SEIZURE_CASE, answer_genes=3)
    assert target.startswith(THINK_OPEN) and THINK_CLOSE in target
    parsed = parse_answer(target)
    assert parsed.well_formed and parsed.genes[0] == "SCN1A" and len(parsed.genes) == 3
    reasoning = target[: target.index(THINK_CLOSE)]
    assert "Seizure" in reasoning and "SCN1A (Toy epilepsy syndrome)" in reasoning


def test_target_puts_a_low_ranked_true_gene_first(con):
    """The true gene leads the answer even when the ranker puts it last; its explanation is still used."""
    pb = PromptBuilder.from_db(con, "closed", need_ranker=True, top_k=1)
    case = Case("c2", present=["HP:0001250"], gene="CRYAB")   # seizure: SCN1A ranks above CRYAB
    assert pb.ranked(case)[0].symbol != "CRYAB"
    target = pb.target(case, answer_genes=3)
    assert parse_answer(target).genes[0] == "CRYAB"
    assert "fit CRYAB (Toy cataract syndrome)" in target


def test_target_needs_gene_and_ranker(con):
    with pytest.raises(GenedxError, match="no causal gene"):
        PromptBuilder.from_db(con, "closed", need_ranker=True).target(Case("x", present=["HP:0001250"]))
    with pytest.raises(GenedxError, match="need the phenotype ranker"):
        PromptBuilder.from_db(con, "closed").target(SEIZURE_CASE)


def test_unknown_term_names_the_case(con):
    pb = PromptBuilder.from_db(con, "retrieval")
    with pytest.raises(GenedxError, match="case bad"):
        pb.messages(Case("bad", present=["HP:7777777"], gene="SCN1A"))


def test_data_export_mode_retrieval(home, tmp_path):
    from typer.testing import CliRunner

    from genedx.cli import app
    out = tmp_path / "val.jsonl"
    r = CliRunner().invoke(app, ["--home", str(home.root), "data", "export", "--split", "validation", "--out", str(out),
                                 "--mode", "retrieval", "--top-k", "2"])
    assert r.exit_code == 0, r.output
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    con = connect(home)
    assert len(recs) == len(load_cases(con, split="validation"))
    con.close()
    for rec in recs:
        content = rec["prompt"][0]["content"]
        assert CANDIDATES_HEADER in content and "\n2. " in content and "\n3. " not in content
    r = CliRunner().invoke(app, ["--home", str(home.root), "data", "export", "--split", "validation", "--out",
                                 str(tmp_path / "x.jsonl"), "--mode", "bogus"])
    assert r.exit_code != 0


def test_term_caps_shorten_the_report_but_keep_the_case(con):
    case = Case("long", present=["HP:0001250", "HP:0001263", "HP:0000518"], absent=["HP:0001631", "HP:0001629"],
                gene="SCN1A")
    full = PromptBuilder.from_db(con, "retrieval", top_k=2).record(case)
    capped_pb = PromptBuilder.from_db(con, "retrieval", top_k=2, max_present=1, max_absent=1)
    capped = capped_pb.record(case)
    text = capped["prompt"][0]["content"]
    report = text[:text.index(CANDIDATES_HEADER)]
    labels = capped_pb.labels
    assert labels["HP:0001250"] in report and labels["HP:0001263"] not in report   # first present term only
    assert labels["HP:0001631"] in report and labels["HP:0001629"] not in report     # first absent term only
    # the record still carries the whole case, and the ranker's candidates used every term
    assert capped["present"] == case.present and capped["absent"] == case.absent
    block = lambda t: t[t.index(CANDIDATES_HEADER):t.index("You are a clinical geneticist")]
    assert block(text) == block(full["prompt"][0]["content"])
    assert capped_pb.options() == {"top_k": 2, "with_ids": False, "terms_per_gene": 3, "max_present": 1,
                                   "max_absent": 1, "layout": "full"}


@pytest.mark.parametrize("knob", ["top_k", "terms_per_gene", "max_present", "max_absent"])
def test_prompt_knobs_below_one_are_errors(con, knob):
    with pytest.raises(GenedxError, match=f"{knob} must be at least 1"):
        PromptBuilder.from_db(con, "retrieval", **{knob: 0})


def test_model_prompt_options_reads_the_model_dir(tmp_path):
    from genedx.model.prompts import model_prompt_options
    assert model_prompt_options(None) == {} and model_prompt_options(tmp_path) == {}
    (tmp_path / "genedx_model.json").write_text("not json")
    assert model_prompt_options(tmp_path) == {}
    (tmp_path / "genedx_model.json").write_text(json.dumps({"prompt": {"top_k": 5, "max_absent": 4, "junk": 1}}))
    assert model_prompt_options(tmp_path) == {"top_k": 5, "max_absent": 4}


def test_model_prompt_options_expands_the_home_dir(tmp_path, monkeypatch):
    """`--predictor model:~/...` reaches ModelPredictor unexpanded; load_model expands it, so must this."""
    from genedx.model.prompts import model_prompt_options
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "genedx_model.json").write_text(json.dumps({"prompt": {"top_k": 4}}))
    assert model_prompt_options("~/m") == {"top_k": 4}


def test_compact_layout_is_short_and_leaves_out_the_absent_term_habit(con):
    """The pretrained base's layout: a three-line report, short candidate lines without the "absent but
    expected" term, one line of instructions, and a one-sentence reasoning without absent terms."""
    from genedx.model.prompts import COMPACT_INSTRUCTIONS, DEFAULT_PROMPT_LAYOUT
    full = PromptBuilder.from_db(con, "retrieval", top_k=2)
    pb = PromptBuilder.from_db(con, "retrieval", **(DEFAULT_PROMPT_LAYOUT | {"top_k": 2}))
    text = pb.messages(SEIZURE_CASE)[0]["content"]
    lines = text.splitlines()
    assert lines[0] == "Patient: female, age 2 years."
    assert lines[1].startswith("Present: Seizure; ") and lines[2].startswith("Absent: ")
    assert "1. SCN1A (Toy epilepsy syndrome)" in text and "absent but expected" not in text
    assert text.endswith(COMPACT_INSTRUCTIONS) and "\n3. " not in text
    assert len(text) < 0.7 * len(full.messages(SEIZURE_CASE)[0]["content"])
    target = pb.target(SEIZURE_CASE, answer_genes=2)
    parsed = parse_answer(target)
    assert parsed.well_formed and parsed.genes[0] == "SCN1A"
    reasoning = target[: target.index(THINK_CLOSE)]
    assert reasoning.startswith(THINK_OPEN) and "fit SCN1A." in reasoning and "absent" not in reasoning
    assert pb.options()["layout"] == "compact"
    with pytest.raises(GenedxError, match="prompt layout must be one of full, compact"):
        PromptBuilder.from_db(con, "closed", layout="tiny")


def test_adapter_only_dir_is_prompted_with_its_base_models_layout(tmp_path):
    """A LoRA run's adapter/ has no genedx_model.json: prompting it with the default (full) layout instead of
    the compact one it was trained on cost 7 points top@1 in a measurement (bench/RESULTS.md)."""
    from genedx.model.prompts import model_prompt_options
    base = tmp_path / "sft"
    base.mkdir()
    (base / "genedx_model.json").write_text(json.dumps({"prompt": {"layout": "compact", "top_k": 6}}))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base)}))
    assert model_prompt_options(adapter) == {"layout": "compact", "top_k": 6}
    (adapter / "adapter_config.json").write_text("{broken")
    assert model_prompt_options(adapter) == {}
