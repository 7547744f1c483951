"""Store a graded run in DuckDB: one ``run`` row, its ``grade`` rows, its ``metric`` rows (and
optionally the parsed ``prediction`` rows), all in one transaction."""

from __future__ import annotations

import json
from typing import Any, Sequence

import duckdb

from genedx.grade.metrics import GradedCase, Metrics
from genedx.home import transaction as db_transaction


def save_grades(con: duckdb.DuckDBPyConnection, run_id: str, graded: Sequence[GradedCase],
                metrics: Metrics | None = None, *, kind: str = "grade", name: str | None = None,
                predictor: str | None = None, config: dict[str, Any] | None = None,
                hpo_release: str | None = None, split: str = "eval", step: int = 0,
                predictions: bool = True, transaction: bool = True) -> None:
    """Write a graded run atomically (all or nothing).

    The run row is created when missing (an existing run, e.g. a training run, is kept). The run's
    grades (and, with ``predictions``, its prediction rows for these cases) are replaced, so saving
    twice does not duplicate. Metrics go to ``(run_id, step, split, name)``; per-source values are
    named ``name[source]``. Pass ``transaction=False`` when the caller already holds a transaction
    (DuckDB has no nested transactions).
    """
    if not transaction:
        _write(con, run_id, graded, metrics, kind, name, predictor, config, hpo_release, split, step, predictions)
        return
    with db_transaction(con):
        _write(con, run_id, graded, metrics, kind, name, predictor, config, hpo_release, split, step, predictions)


def _write(con: duckdb.DuckDBPyConnection, run_id: str, graded: Sequence[GradedCase], metrics: Metrics | None,
           kind: str, name: str | None, predictor: str | None, config: dict[str, Any] | None,
           hpo_release: str | None, split: str, step: int, predictions: bool) -> None:
    if not con.execute("SELECT 1 FROM run WHERE id = ?", [run_id]).fetchone():
        con.execute("INSERT INTO run (id, kind, name, predictor, config, hpo_release, status, finished_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'done', current_timestamp)",
                    [run_id, kind, name or run_id, predictor, json.dumps(config or {}, default=str), hpo_release])
    ids = [c.case_id for c in graded]
    con.execute("DELETE FROM grade WHERE run_id = ?", [run_id])
    con.executemany("INSERT INTO grade VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [[run_id, c.case_id, c.correct_answer, float(c.grade), c.rank, bool(c.well_formed), c.source]
                     for c in graded])
    if predictions:
        con.execute("DELETE FROM prediction WHERE run_id = ? AND list_contains(?, case_id)", [run_id, ids])
        rows = []
        for c in graded:
            if not c.genes:  # keep the raw text even when nothing parsed
                rows.append([run_id, c.case_id, None, None, None, c.output])
            for r, sym in enumerate(c.genes, 1):
                score = c.scores[r - 1] if c.scores and r <= len(c.scores) else None
                rows.append([run_id, c.case_id, r, sym, score, c.output if r == 1 else None])
        if rows:
            con.executemany("INSERT INTO prediction VALUES (?, ?, ?, ?, ?, ?)", rows)
    if metrics is not None:
        values = {k: v for k, v in metrics.values.items()}
        for src, m in metrics.by_source.items():
            values.update({f"{k}[{src}]": v for k, v in m.values.items()})
        con.execute("DELETE FROM metric WHERE run_id = ? AND step = ? AND split = ?", [run_id, step, split])
        con.executemany("INSERT INTO metric VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [[run_id, step, split, k, _num(e.value), _num(e.lo), _num(e.hi)] for k, e in values.items()])


def _num(x: float) -> float | None:
    return None if x != x else float(x)  # NaN (no cases / no bootstrap) -> NULL
