"""`genedx data import|simulate|split|export|stats|quickstart` end to end on small inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genedx.cli import app
from genedx.errors import GenedxError
from genedx.home import connect

PP = Path(__file__).parent / "fixtures" / "phenopackets"
runner = CliRunner()


def run(home, *args):
    result = runner.invoke(app, ["--home", str(home.root), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_import_json_report(toy_home):
    out = run(toy_home, "data", "import", str(PP), "--json")
    report = json.loads(out)
    assert report["imported"] == 5 and report["updated"] == 0 and report["written"]
    assert report["skipped"]["no gene"] == 1 and report["unknown_terms"] == {"HP:7777777": 1}
    again = json.loads(run(toy_home, "data", "import", str(PP), "--json"))
    assert (again["imported"], again["updated"]) == (0, 5)


def test_import_table_and_warnings(toy_home):
    result = runner.invoke(app, ["--home", str(toy_home.root), "data", "import", str(PP / "mixed.jsonl"),
                                 str(PP / "unknown_gene.json")], catch_exceptions=False)
    assert result.exit_code == 0
    assert "imported (new)" in result.stdout and "skipped: unknown gene" in result.stdout
    assert "NOTAGENE99" in result.stderr and "mixed.jsonl:2" in result.stderr


def test_import_strict_writes_nothing(toy_home):
    with pytest.raises(GenedxError, match="nothing written"):
        runner.invoke(app, ["--home", str(toy_home.root), "data", "import", "--strict", str(PP)],
                      catch_exceptions=False)
    con = connect(toy_home)
    assert con.execute('SELECT count(*) FROM "case"').fetchone()[0] == 0
    con.close()


def test_simulate_split_export_stats(toy_home, tmp_path):
    run(toy_home, "data", "import", str(PP / "mixed.jsonl"), str(PP / "PMID_111_variant_form.json"))
    sim = json.loads(run(toy_home, "data", "simulate", "--cases-per-gene", "3", "--seed", "1", "--json"))
    assert sim["imported"] == 9
    sim = json.loads(run(toy_home, "data", "simulate", "--cases-per-gene", "2", "--json"))
    assert sim["removed"] == 9 and sim["imported"] == 6
    out = run(toy_home, "data", "split", "--by", "publication", "--seed", "0", "--validation", "0.5")
    assert "train" in out
    dest = tmp_path / "train.jsonl"
    out = run(toy_home, "data", "export", "--split", "train", "--out", str(dest))
    n = int(out.split()[1])
    recs = [json.loads(line) for line in dest.read_text().splitlines()]
    assert len(recs) == n >= 6 and all(r["prompt"][0]["role"] == "user" and r["correct_answer"] for r in recs)
    stats = json.loads(run(toy_home, "data", "stats", "--json"))
    assert stats["hpo_release"] == "2099-01-01" and stats["cases"] == 10
    assert stats["by_source"] == {"phenopacket": 3, "simulated": 6, "user": 1}  # the RFT line says phenopacket
    assert sum(stats["by_split"].values()) == 10 and stats["split_by"] == "publication"
    assert stats["present_per_case"]["min"] >= 1
    table = run(toy_home, "data", "stats")
    assert "HPO release: 2099-01-01" in table and "simulated" in table
    split = json.loads(run(toy_home, "data", "split", "--by", "publication", "--seed", "0", "--validation", "0.5",
                           "--json"))
    assert split["by"] == "publication" and sum(split["cases"].values()) == 10
    exported = json.loads(run(toy_home, "data", "export", "--split", "train", "--out", str(dest), "--json"))
    assert exported["records"] == n and exported["out"] == str(dest)


def test_stats_on_empty_home(tmp_home):
    s = json.loads(run(tmp_home, "data", "stats", "--json"))
    assert s["cases"] == 0 and s["hpo_release"] is None


def test_errors_are_one_line_exit_1(toy_home, tmp_path):
    env = {**os.environ, "GENEDX_HOME": str(toy_home.root)}
    r = subprocess.run([sys.executable, "-m", "genedx", "data", "split", "--by", "family"], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 1 and r.stderr.strip().startswith("error:") and len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run([sys.executable, "-m", "genedx", "data", "simulate", "--gene", "NOTAGENE"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 1 and "NOTAGENE" in r.stderr


@pytest.mark.slow
def test_quickstart_on_fresh_home(tmp_home):
    out = json.loads(run(tmp_home, "data", "quickstart", "--json"))
    assert out["quickstart"]["built_kb"] and out["quickstart"]["imported"]["imported"] == 40
    assert out["stats"]["cases"] == 40 and set(out["stats"]["by_split"]) == {"train", "validation"}
    again = json.loads(run(tmp_home, "data", "quickstart", "--json"))
    assert not again["quickstart"]["built_kb"] and again["quickstart"]["imported"] is None
    assert again["stats"]["by_split"] == out["stats"]["by_split"]
