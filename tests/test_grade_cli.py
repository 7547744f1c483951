"""`genedx grade` on small files: table and JSON output, reported problems, storing, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from genedx.cli import app
from genedx.errors import GenedxError
from genedx.home import connect

CASES = [
    {"id": "c1", "present": ["HP:0001250"], "gene": "SCN1A", "source": "simulated"},
    {"id": "c2", "present": ["HP:0001250"], "gene": "TBX5", "source": "phenopacket"},
    # an exported RFT record: the gene is its correct_answer
    {"id": "c3", "prompt": [{"role": "user", "content": "..."}], "present": ["HP:0001250"], "correct_answer": "CRYAB"},
    {"id": "c4", "present": ["HP:0001250"], "gene": "CRYAB", "source": "simulated"},
    {"id": "c5", "present": ["HP:0001250"]},   # no gene: reported once, its prediction is not "unknown"
]
PREDS = [
    {"id": "c1", "output": "<think>fever</think><answer>SCN1A, TBX5</answer>"},
    {"id": "c2", "genes": [{"symbol": "CRYAB", "score": 2.0}, {"symbol": "TBX5", "score": 1.0}]},
    {"id": "c3", "output": "1. SCN1A\n2. cryab"},
    {"id": "c9", "genes": ["SCN1A"]},
    {"id": "c1", "genes": ["TBX5"]},
    {"oops": 1},
    {"id": "c4", "genes": [1, 2]},
    {"id": "c5", "genes": ["SCN1A"]},
]


def write_jsonl(path, rows, extra_lines=()):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "".join(line + "\n" for line in extra_lines))
    return path


@pytest.fixture
def files(tmp_path):
    cases = write_jsonl(tmp_path / "cases.jsonl", CASES, ["{not json"])
    preds = write_jsonl(tmp_path / "pred.jsonl", PREDS, ["[1, 2"])
    return cases, preds


def run(*args):
    return CliRunner().invoke(app, ["grade", *map(str, args)], catch_exceptions=True)


def test_grade_json(files):
    cases, preds = files
    r = run("--cases", cases, "--predictions", preds, "--json", "--n-boot", "50")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["n"] == 3
    assert out["metrics"]["top1"]["value"] == pytest.approx(1 / 3)
    assert out["metrics"]["topmax"]["value"] == 1.0
    assert out["metrics"]["mean_grade"]["value"] == pytest.approx((1 + 0.7 + 0.7) / 3)
    assert out["metrics"]["well_formed"]["value"] == pytest.approx(2 / 3)
    assert out["missing"] == ["c4"]          # its only prediction line was bad
    assert out["unknown"] == ["c9"]
    problems = "\n".join(out["bad_lines"])
    assert "cases.jsonl:6" in problems and "malformed JSON" in problems
    assert "c5" in problems
    assert "pred.jsonl:5: c1: duplicate prediction id" in problems
    assert 'pred.jsonl:6: no "id"' in problems
    assert "pred.jsonl:7: c4" in problems and "pred.jsonl:9: malformed JSON" in problems
    assert out["run_id"] is None
    assert set(out["by_source"]) == {"phenopacket", "simulated", "user"}


def test_grade_table_and_problem_lines(files):
    cases, preds = files
    r = run("--cases", cases, "--predictions", preds, "--n-boot", "20")
    assert r.exit_code == 0, r.output
    assert "top@1" in r.stdout and "all (n=3)" in r.stdout
    assert "no prediction for case: c4" in r.stderr
    assert "prediction for unknown case: c9" in r.stderr


def test_grade_with_grader_config_and_max_genes(files, tmp_path):
    cases, preds = files
    cfg = tmp_path / "grader.json"
    cfg.write_text(json.dumps({"type": "string_check", "operation": "eq"}))
    out = json.loads(run("--cases", cases, "--predictions", preds, "--grader", cfg, "--json", "--n-boot", "10").stdout)
    assert out["metrics"]["mean_grade"]["value"] == pytest.approx(1 / 3)
    assert out["grader"]["type"] == "string_check"
    out = json.loads(run("--cases", cases, "--predictions", preds, "--max-genes", "1", "--json", "--n-boot", "10").stdout)
    assert out["metrics"]["topmax"]["value"] == pytest.approx(1 / 3)


def test_grade_store(files, tmp_home):
    cases, preds = files
    r = CliRunner().invoke(app, ["--home", str(tmp_home.root), "grade", "--cases", str(cases), "--predictions",
                                 str(preds), "--store", "--json", "--n-boot", "10"])
    assert r.exit_code == 0, r.output
    run_id = json.loads(r.stdout)["run_id"]
    con = connect(tmp_home)
    assert con.execute("SELECT count(*) FROM grade WHERE run_id = ?", [run_id]).fetchone()[0] == 3
    assert con.execute("SELECT kind FROM run WHERE id = ?", [run_id]).fetchone()[0] == "grade"
    assert con.execute("SELECT value FROM metric WHERE run_id = ? AND name = 'topmax'", [run_id]).fetchone()[0] == 1.0
    rows = con.execute("SELECT case_id, rank, symbol, score FROM prediction WHERE run_id = ? ORDER BY case_id, rank",
                       [run_id]).fetchall()
    assert ("c2", 1, "CRYAB", 2.0) in rows and ("c1", 2, "TBX5", None) in rows
    con.close()


@pytest.mark.parametrize("which,message", [
    ("preds", "predictions file"),
    ("cases", "no usable cases"),
    ("grader", "unknown type 'nope'"),
    ("max_genes", "--max-genes must be >= 1"),
])
def test_grade_errors(files, tmp_path, which, message):
    cases, preds = files
    args = ["--cases", cases, "--predictions", preds]
    if which == "preds":
        args[3] = tmp_path / "missing.jsonl"
    elif which == "cases":
        args[1] = write_jsonl(tmp_path / "empty.jsonl", [], ["garbage"])
    elif which == "grader":
        args += ["--grader", '{"type": "nope"}']
    else:
        args += ["--max-genes", "0"]
    r = run(*args)
    assert isinstance(r.exception, GenedxError) and message in str(r.exception)


def test_grade_error_is_one_line_exit_1(tmp_path):
    r = subprocess.run([sys.executable, "-m", "genedx", "grade", "--cases", str(tmp_path / "none.jsonl"),
                        "--predictions", str(tmp_path / "none.jsonl")], capture_output=True, text=True)
    assert r.returncode == 1   # user error (2 is for usage errors)
    assert r.stderr.strip().startswith("error:") and len(r.stderr.strip().splitlines()) == 1
