"""`genedx rank` and `genedx score` on the toy KB: output schema, bad records, --resume, metrics."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from genedx.cli import app
from genedx.errors import GenedxError
from genedx.home import Home, connect
from genedx.kb.build import build_kb
from genedx.rank.batch import read_existing, score_cases
from genedx.rank.ranker import Ranker, RankerPredictor
from tests.conftest import TOY_HPO

CASES = [
    {"id": "c1", "present": ["HP:0000518"], "gene": "CRYAB"},
    {"id": "c2", "present": ["HP:0001631", "HP:0001629"], "absent": ["HP:0001250"], "gene": "TBX5"},
    {"id": "c3", "present": ["HP:0002373", "HP:7777777"], "gene": "SCN1A"},      # unknown id: dropped, scored
    {"id": "c4", "present": ["HP:9999998"], "gene": "SCN1A"},                    # nothing usable: skipped
    {"id": "c5", "present": ["HP:0009999"], "gene": "SCN1A"},                    # obsolete: mapped
]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Home:
    h = Home(tmp_path_factory.mktemp("toy_score")).ensure()
    con = connect(h)
    build_kb(con, TOY_HPO)
    con.close()
    return h


@pytest.fixture
def runner(home, monkeypatch) -> CliRunner:
    monkeypatch.setenv("GENEDX_HOME", str(home.root))
    return CliRunner()


def write_cases(path, rows, extra_lines=()):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "".join(x + "\n" for x in extra_lines))
    return path


def test_rank_json_schema(runner):
    r = runner.invoke(app, ["rank", "HP:0001631", "HP:0001629", "--absent", "HP:0001250", "--top", "2", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["hpo_release"] == "2099-01-01" and d["options"] == {"profiles": "none"}
    assert [g["symbol"] for g in d["genes"]][0] == "TBX5" and len(d["genes"]) == 2
    g = d["genes"][0]
    assert set(g) == {"symbol", "score", "disease", "disease_name", "evidence"}
    assert {m["patient_term"] for m in g["evidence"]["matched"]} == {"HP:0001631", "HP:0001629"}


def test_rank_table_and_explain(runner):
    r = runner.invoke(app, ["rank", "HP:0001631,HP:0001629", "--top", "3", "--explain"])
    assert r.exit_code == 0, r.output
    assert "TBX5" in r.stdout and "OMIM:100002" in r.stdout and "Atrial septal defect" in r.stdout
    assert "log10 LR" in r.stdout


def test_rank_unknown_term_is_a_one_line_error(runner):
    r = runner.invoke(app, ["rank", "HP:0001250", "HP:1234567"])
    assert r.exit_code != 0
    assert isinstance(r.exception, GenedxError) and "HP:1234567" in str(r.exception)


def test_score_lines_problems_and_metrics(runner, tmp_path):
    inp = write_cases(tmp_path / "cases.jsonl", CASES, extra_lines=["{not json"])
    out = tmp_path / "out.jsonl"
    r = runner.invoke(app, ["score", str(inp), "--out", str(out), "--top", "3", "--profiles", "none"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in lines] == ["c1", "c2", "c3", "c5"]
    for x in lines:
        assert set(x) >= {"id", "genes", "predictor", "hpo_release"}
        assert all(set(g) == {"symbol", "score", "disease"} for g in x["genes"]) and len(x["genes"]) == 3
    assert lines[0]["genes"][0] == {"symbol": "CRYAB", "score": pytest.approx(0.477121, abs=1e-5),
                                    "disease": "OMIM:100003"}
    assert lines[3]["genes"][0]["symbol"] == "SCN1A"          # obsolete HP:0009999 scored as Seizure
    assert "HP:7777777" in r.stderr and "c4" in r.stderr and "malformed JSON" in r.stderr
    assert "scored 4 case(s)" in r.stdout and "2 skipped" in r.stdout
    assert "top@1" in r.stdout


def test_score_json_summary(runner, tmp_path):
    inp = write_cases(tmp_path / "cases.jsonl", CASES[:2])
    r = runner.invoke(app, ["score", str(inp), "--out", str(tmp_path / "o.jsonl"), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["scored"] == 2 and d["skipped"] == 0
    assert d["metrics"]["n"] == 2 and d["metrics"]["metrics"]["top1"]["value"] == 1.0


def test_score_resume(runner, tmp_path):
    inp_a = write_cases(tmp_path / "a.jsonl", CASES[:2])
    inp_all = write_cases(tmp_path / "all.jsonl", CASES)
    out = tmp_path / "out.jsonl"
    assert runner.invoke(app, ["score", str(inp_a), "--out", str(out)]).exit_code == 0
    first = out.read_text()
    # a killed run leaves a torn last line: --resume cuts it off and goes on
    out.write_text(first + '{"id": "c3", "gen')
    r = runner.invoke(app, ["score", str(inp_all), "--out", str(out), "--resume"])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert text.startswith(first)
    ids = [json.loads(x)["id"] for x in text.splitlines()]
    assert ids == ["c1", "c2", "c3", "c5"]
    assert "2 already there" in r.stdout
    # without --resume the file is rewritten
    r = runner.invoke(app, ["score", str(inp_a), "--out", str(out)])
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["c1", "c2"]


def test_resume_refuses_a_foreign_file(runner, tmp_path):
    out = tmp_path / "notes.jsonl"
    out.write_text("hello\n{}\n")
    inp = write_cases(tmp_path / "a.jsonl", CASES[:1])
    r = runner.invoke(app, ["score", str(inp), "--out", str(out), "--resume"])
    assert r.exit_code != 0 and "not a genedx score line" in str(r.exception)
    assert out.read_text() == "hello\n{}\n"      # untouched


def test_score_cases_library(home, tmp_path):
    from genedx.cases.model import BadRecord, Case
    from genedx.cases.terms import TermMapper

    con = connect(home, read_only=True)
    try:
        pred = RankerPredictor(Ranker.load(con))
        mapper = TermMapper.from_db(con)
    finally:
        con.close()
    items = [Case(id="a", present=["HP:0000518"], gene="CRYAB"), BadRecord("f", "b", "broken"),
             Case(id="a", present=["HP:0000518"]), Case(id="e", present=[]),
             Case(id="i", present=["HP:0000006"]),             # inheritance only: the ranker refuses it
             Case(id="z", present=["HP:0001631"], gene="TBX5")]
    seen = []
    rep = score_cases(items, pred, tmp_path / "o.jsonl", top=2, mapper=mapper, progress=seen.append, batch_size=8)
    assert (rep.scored, rep.skipped) == (2, 4)
    assert seen == [1, 2, 3, 4, 5, 6]
    assert any("duplicate" in str(p) for p in rep.problems)
    assert any(p.record == "i" and "no present phenotypic-abnormality term" in p.problem for p in rep.problems)
    # the batch holding the bad case was retried case by case: the good ones are all there, in order
    assert rep.rankings == [("a", "CRYAB", ["CRYAB", "SCN1A"], "user"), ("z", "TBX5", ["TBX5", "CRYAB"], "user")]
    assert list(read_existing(tmp_path / "o.jsonl")) == ["a", "z"]


def test_rank_with_profiles_but_no_stored_cases(runner):
    r = runner.invoke(app, ["rank", "HP:0000518", "--profiles", "train", "--json", "--top", "1"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["options"] == {"profiles": "train", "profile_cases": 0, "profile_genes": 0}
    assert d["genes"][0]["symbol"] == "CRYAB"
    r = runner.invoke(app, ["rank", "HP:0000518", "--profiles", "bogus"])
    assert r.exit_code != 0 and "profiles" in str(r.exception)


def test_score_with_evidence(runner, tmp_path):
    inp = write_cases(tmp_path / "cases.jsonl", CASES[:1])
    out = tmp_path / "o.jsonl"
    r = runner.invoke(app, ["score", str(inp), "--out", str(out), "--top", "1", "--evidence"])
    assert r.exit_code == 0, r.output
    g = json.loads(out.read_text())["genes"][0]
    assert g["symbol"] == "CRYAB"
    assert g["evidence"]["matched"][0]["patient_term"] == "HP:0000518"
    assert g["evidence"]["disease"] == "OMIM:100003"
