"""The Snakemake workflow (workflows/score): split -> score each shard -> merge -> grade, run locally
with `snakemake --cores 2` on a few hundred toy cases; the merged file must be byte-identical to a
single `genedx score` run and the grades must match grading that run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from genedx.home import Home, connect
from genedx.kb.build import build_kb
from tests.conftest import TOY_HPO
from tests.test_score_workers import make_cases

SNAKEFILE = Path(__file__).resolve().parents[1] / "workflows" / "score" / "Snakefile"
GENEDX = f"{sys.executable} -m genedx"


@pytest.mark.slow
def test_snakemake_workflow_matches_one_score_run(tmp_path):
    pytest.importorskip("snakemake")
    home = Home(tmp_path / "home").ensure()
    con = connect(home)
    build_kb(con, TOY_HPO)
    con.close()
    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(json.dumps(r) + "\n" for r in make_cases(300, seed=1)) + "{not json\n")
    out_dir = tmp_path / "results"
    config = {"cases": [str(cases)], "shards": 3, "out_dir": str(out_dir), "predictor": "ranker",
              "profiles": "none", "top": 5, "batch_size": 8, "workers": 1, "grade": True,
              "home": str(home.root), "genedx": GENEDX}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    r = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--cores", "2",
                        "--configfile", str(tmp_path / "config.yaml"), "--directory", str(tmp_path / "wd"), "--quiet"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    parts = sorted((out_dir / "scored").glob("shard-*-of-3.jsonl"))
    assert len(parts) == 3 and all(p.read_text() for p in parts)

    single = tmp_path / "single.jsonl"
    base = [sys.executable, "-m", "genedx", "--home", str(home.root)]
    s = subprocess.run(base + ["score", str(cases), "--out", str(single), "--profiles", "none", "--top", "5", "--json"],
                       capture_output=True, text=True, check=True)
    assert (out_dir / "predictions.jsonl").read_bytes() == single.read_bytes()
    assert len(single.read_text().splitlines()) == json.loads(s.stdout)["scored"] > 250

    g = subprocess.run(base + ["grade", "--cases", str(cases), "--predictions", str(single), "--json"],
                       capture_output=True, text=True, check=True)
    assert json.loads((out_dir / "grades.json").read_text()) == json.loads(g.stdout)
    split_log = json.loads((out_dir / "logs" / "split.json").read_text())
    assert len(split_log["problems"]) == 1 and "malformed JSON" in split_log["problems"][0]
