"""Metrics on hand-made data, bootstrap intervals, per-source breakdown, storing a graded run."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genedx.cases.model import Case
from genedx.home import connect
from genedx.grade import grader_from_config
from genedx.grade.metrics import (METRIC_NAMES, GradedCase, compute_metrics, grade_genes, grade_output,
                                  grade_predictions, metrics_from_rankings, metrics_table)
from genedx.grade.store import save_grades
from genedx.predict import GeneScore, Prediction


def gc(rank, grade=None, wf=True, source="simulated", i=0):
    g = grade if grade is not None else (0.7 ** (rank - 1) if rank else 0.0)
    return GradedCase(f"c{i}", "SCN1A", [], g, rank, wf, source)


def test_metrics_hand_made():
    graded = [gc(1, i=0), gc(2, i=1), gc(6, i=2), gc(None, wf=False, i=3)]
    m = compute_metrics(graded, n_boot=200)
    assert m.n == 4
    assert m["top1"].value == 0.25
    assert m["top5"].value == 0.5
    assert m["top10"].value == 0.75
    assert m["topmax"].value == 0.75
    assert m["well_formed"].value == 0.75
    assert m["mrr"].value == pytest.approx((1 + 1 / 2 + 1 / 6) / 4)
    assert m["mean_grade"].value == pytest.approx((1 + 0.7 + 0.7 ** 5) / 4)


def test_bootstrap_intervals_ordered_seeded_and_sensible():
    rng = np.random.default_rng(1)
    graded = [gc(int(r) if r <= 20 else None, i=i) for i, r in enumerate(rng.integers(1, 30, size=300))]
    m = compute_metrics(graded, n_boot=500, seed=3)
    for name in METRIC_NAMES:
        e = m[name]
        assert e.lo <= e.value <= e.hi, name
        assert 0.0 <= e.lo and e.hi <= 1.0
    assert 0 < m["top5"].hi - m["top5"].lo < 0.2            # ~ +-1.96*sqrt(p(1-p)/n)
    again = compute_metrics(graded, n_boot=500, seed=3)
    assert again["top5"].lo == m["top5"].lo and again["top5"].hi == m["top5"].hi
    other = compute_metrics(graded, n_boot=500, seed=4)
    assert (other["top5"].lo, other["top5"].hi) != (m["top5"].lo, m["top5"].hi) or other["mrr"].lo != m["mrr"].lo


def test_constant_metric_has_degenerate_interval():
    m = compute_metrics([gc(1, i=i) for i in range(10)], n_boot=100)
    assert (m["top1"].value, m["top1"].lo, m["top1"].hi) == (1.0, 1.0, 1.0)


def test_by_source_breakdown():
    graded = [gc(1, source="phenopacket", i=0), gc(None, source="phenopacket", i=1), gc(1, source="simulated", i=2)]
    m = compute_metrics(graded, n_boot=50)
    assert set(m.by_source) == {"phenopacket", "simulated"}
    assert m.by_source["phenopacket"]["top1"].value == 0.5
    assert m.by_source["simulated"].n == 1
    d = m.to_dict()
    assert d["by_source"]["phenopacket"]["metrics"]["top1"]["value"] == 0.5
    assert compute_metrics(graded[:2], n_boot=10).by_source == {}   # one source: no breakdown


def test_empty_and_no_bootstrap():
    m = compute_metrics([], n_boot=10)
    assert m.n == 0 and math.isnan(m["top1"].value)
    assert m.to_dict()["metrics"]["top1"]["value"] is None
    m = compute_metrics([gc(1)], n_boot=0)
    assert m["top1"].value == 1.0 and math.isnan(m["top1"].lo)


def test_metrics_from_rankings_entry_point():
    rows = [("a", "SCN1A", ["SCN1A", "TBX5"], "simulated"),
            ("b", "TBX5", ["SCN1A", "tbx5"], "simulated"),
            ("c", "T", ["TBXT"], "phenopacket"),
            ("d", "CRYAB", [], "phenopacket")]
    m = metrics_from_rankings(rows, n_boot=50)
    assert m["top1"].value == 0.5 and m["top5"].value == 0.75
    assert m["mean_grade"].value == pytest.approx((1 + 0.7 + 1 + 0) / 4)
    assert metrics_from_rankings(rows, max_genes=1, n_boot=10)["topmax"].value == 0.5
    recip = metrics_from_rankings(rows, grader={"type": "ranked_gene", "curve": "reciprocal"}, n_boot=10)
    assert recip["mean_grade"].value == pytest.approx((1 + 0.5 + 1) / 4)


def test_grade_output_and_genes():
    g = grade_output("c1", "SCN1A", "<think>x</think><answer>TBX5, SCN1A</answer>", source="user")
    assert (g.rank, g.grade, g.well_formed, g.genes) == (2, pytest.approx(0.7), True, ["TBX5", "SCN1A"])
    g = grade_output("c1", "SCN1A", "TBX5, SCN1A", grader=grader_from_config({"type": "format"}))
    assert (g.rank, g.grade, g.well_formed) == (2, 0.0, False)
    g = grade_genes("c2", "scn1a", ["TBX5", "SCN1A"])
    assert (g.rank, g.correct_answer, g.output) == (2, "SCN1A", None)


def test_grade_predictions_objects():
    cases = [Case("a", gene="SCN1A", source="simulated"), Case("b", gene="TBX5"), Case("c", gene="CRYAB"),
             Case("d")]
    preds = [Prediction("a", [GeneScore("SCN1A", 3.0), GeneScore("TBX5", 1.0)], "ranker"),
             Prediction("b", [], "model", output="<answer>CRYAB, TBX5</answer>"),
             Prediction("zzz", [GeneScore("SCN1A", 1.0)], "ranker"),
             {"id": "d", "genes": ["SCN1A"]}]
    graded, missing = grade_predictions(preds, cases)
    assert [(g.case_id, g.rank) for g in graded] == [("a", 1), ("b", 2)]
    assert missing == ["c"]
    assert graded[0].scores == [3.0, 1.0] and graded[1].scores is None


def test_metrics_table_renders():
    from rich.console import Console
    m = compute_metrics([gc(1, source="x", i=0), gc(None, source="y", i=1)], n_boot=20)
    console = Console(record=True, width=200)
    console.print(metrics_table(m))
    text = console.export_text()
    assert "top@1" in text and "x (n=1)" in text and "50.0 [" in text


def test_save_grades_roundtrip_and_idempotent(tmp_home):
    graded = [grade_output("a", "SCN1A", "<answer>SCN1A</answer>", source="simulated"),
              grade_output("b", "TBX5", "nothing here", source="phenopacket")]
    m = compute_metrics(graded, n_boot=20)
    con = connect(tmp_home)
    save_grades(con, "r1", graded, m, config={"grader": "ranked_gene"}, hpo_release="2025-01-01")
    save_grades(con, "r1", graded, m)
    assert con.execute("SELECT count(*) FROM grade WHERE run_id='r1'").fetchone()[0] == 2
    assert con.execute("SELECT kind, status, hpo_release FROM run").fetchall() == [("grade", "done", "2025-01-01")]
    assert con.execute("SELECT value FROM metric WHERE name='top1' AND run_id='r1'").fetchall() == [(0.5,)]
    assert con.execute("SELECT count(*) FROM metric WHERE name='top1[simulated]'").fetchone()[0] == 1
    preds = con.execute("SELECT case_id, rank, symbol, output IS NOT NULL FROM prediction ORDER BY case_id").fetchall()
    assert preds == [("a", 1, "SCN1A", True), ("b", None, None, True)]
    con.close()


def test_save_grades_is_atomic(tmp_home):
    con = connect(tmp_home)
    bad = [GradedCase("a", "SCN1A", [], 1.0, 1, True), GradedCase("b", "TBX5", [], "not a number", None, False)]
    with pytest.raises(ValueError):
        save_grades(con, "r2", bad)
    assert con.execute("SELECT count(*) FROM run").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM grade").fetchone()[0] == 0
    con.close()


def test_save_grades_inside_callers_transaction(tmp_home):
    con = connect(tmp_home)
    con.execute("BEGIN TRANSACTION")
    save_grades(con, "r3", [GradedCase("a", "SCN1A", ["SCN1A"], 1.0, 1, True)], transaction=False)
    con.execute("ROLLBACK")
    assert con.execute("SELECT count(*) FROM grade").fetchone()[0] == 0
    con.close()
