"""`genedx eval`: predictions + grades + metrics stored as a run, for the ranker and for models."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from genedx.cli import app
from genedx.errors import GenedxError
from genedx.home import connect
from genedx.model.evaluate import collect_cases, evaluate
from tests.model_fixtures import make_tiny_model, make_toy_cases_home

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return make_toy_cases_home(tmp_path_factory.mktemp("evalcases"))


def _run(home, *args):
    return CliRunner().invoke(app, ["--home", str(home.root), "eval", *args])


def test_eval_ranker_on_stored_split_is_stored_as_run(home):
    r = _run(home, "--predictor", "ranker", "--cases", "split:validation", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    con = connect(home)
    try:
        n_val = con.execute("SELECT count(*) FROM case_split WHERE split = 'validation'").fetchone()[0]
        assert out["n"] == n_val and out["metrics"]["n"] == n_val
        kind, predictor, cfg = con.execute("SELECT kind, predictor, config FROM run WHERE id = ?", [out["run_id"]]).fetchone()
        assert kind == "eval" and predictor == "ranker" and json.loads(cfg)["n_cases"] == n_val
        grades = con.execute("SELECT count(*), sum(CASE WHEN rank = 1 THEN 1 ELSE 0 END) FROM grade WHERE run_id = ?",
                             [out["run_id"]]).fetchone()
        assert grades[0] == n_val
        top1 = con.execute("SELECT value FROM metric WHERE run_id = ? AND name = 'top1'", [out["run_id"]]).fetchone()[0]
        assert top1 == pytest.approx(grades[1] / n_val) == pytest.approx(out["metrics"]["metrics"]["top1"]["value"])
        assert con.execute("SELECT count(*) FROM prediction WHERE run_id = ?", [out["run_id"]]).fetchone()[0] > 0
    finally:
        con.close()


def test_eval_files_reports_bad_records_and_keeps_going(home, tmp_path):
    f = tmp_path / "cases.jsonl"
    f.write_text(json.dumps({"id": "ok1", "present": ["HP:0001250"], "gene": "SCN1A"}) + "\n"
                 + "{not json\n"
                 + json.dumps({"id": "nogene", "present": ["HP:0001250"], "gene": "NOTAGENE1"}) + "\n"
                 + json.dumps({"id": "ok2", "present": ["HP:0001631"], "gene": "TBX5"}) + "\n")
    r = _run(home, "--predictor", "ranker", "--cases", str(f), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n"] == 2
    assert "nogene" in r.stderr and ":2" in r.stderr     # both bad records named


def test_eval_model_retrieval_mode(home, tmp_path):
    tiny = make_tiny_model(home, tmp_path / "tiny")
    r = _run(home, "--predictor", f"model:{tiny}", "--mode", "retrieval", "--cases", "validation", "--limit", "3",
             "--max-new-tokens", "4", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["n"] == 3 and out["mode"] == "retrieval"
    con = connect(home)
    try:
        model_dir, cfg = con.execute("SELECT model_dir, config FROM run WHERE id = ?", [out["run_id"]]).fetchone()
        assert model_dir == str(tiny) and json.loads(cfg)["mode"] == "retrieval"
        # the raw text of every case is kept, even when nothing parsed
        n = con.execute("SELECT count(DISTINCT case_id) FROM prediction WHERE run_id = ?", [out["run_id"]]).fetchone()[0]
        assert n == 3
    finally:
        con.close()


def test_eval_errors(home, tmp_path):
    r = _run(home, "--predictor", f"model:{tmp_path / 'nope'}", "--cases", "split:validation")
    assert r.exit_code != 0 and isinstance(r.exception, GenedxError) and "does not exist" in str(r.exception)
    con = connect(home)
    try:
        with pytest.raises(GenedxError, match="no stored cases"):
            collect_cases(con, ["split:nosuch"])
        empty = tmp_path / "empty.jsonl"
        empty.write_text("")
        with pytest.raises(GenedxError, match="no usable cases"):
            collect_cases(con, [str(empty)])
        val = collect_cases(con, ["validation"])
        picked = collect_cases(con, ["validation"], sample=3, seed=1)
        assert len(picked) == 3 and picked == collect_cases(con, ["validation"], sample=3, seed=1)
        assert [c.id for c in picked] == [c.id for c in val if c in picked]    # original order kept
        with pytest.raises(GenedxError, match="unknown predictor"):
            evaluate(con, home, "oracle", ["split:validation"])
        assert con.execute("SELECT count(*) FROM run WHERE predictor = 'oracle'").fetchone()[0] == 0
    finally:
        con.close()
