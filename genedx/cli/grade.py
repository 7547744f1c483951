"""`genedx grade`: grade a predictions JSONL against cases; print metrics; optionally store the run."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import List, Optional

import typer

from genedx.answer_format import MAX_GENES
from genedx.cli.common import console, db, err_console

_SHOWN = 20  # problem lines printed per kind; --json carries them all


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("grade")(grade)


def grade(cases: List[Path] = typer.Option(..., "--cases", help="Case file(s)/folder(s): phenopackets, "
                                           "JSONL(.gz), zip, or an exported RFT JSONL. Repeatable."),
          predictions: Path = typer.Option(..., "--predictions", help='JSONL lines {"id", "output"} or {"id", "genes"}.'),
          grader: Optional[str] = typer.Option(None, "--grader", help="Grader config: JSON/YAML file, JSON text or "
                                               "registered name (default: ranked_gene, 0.7 ** (rank-1))."),
          json_out: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
          store: bool = typer.Option(False, "--store/--no-store", help="Store grades and metrics in the database."),
          max_genes: int = typer.Option(MAX_GENES, "--max-genes", help="Cut each answer at this many genes."),
          run_name: Optional[str] = typer.Option(None, "--run-name", help="Name of the stored run."),
          n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples for the 95% intervals."),
          seed: int = typer.Option(0, "--seed", help="Bootstrap seed.")) -> None:
    """Grade predictions (top@1, top@5, top@10, top@max, mean grade, well-formed, MRR with 95% CIs)."""
    from genedx.grade.files import grade_files
    from genedx.grade.metrics import metrics_table
    from genedx.grade.store import save_grades
    from genedx.home import meta_get

    report = grade_files(cases, predictions, grader, max_genes=max_genes, n_boot=n_boot, seed=seed)
    _problems("bad record", report.bad_lines)
    _problems("no prediction for case", report.missing)
    _problems("prediction for unknown case", report.unknown)
    run_id = None
    if store:
        run_id = f"grade-{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"
        with db() as con:
            save_grades(con, run_id, report.graded, report.metrics, kind="grade", name=run_name or predictions.name,
                        config={"grader": report.grader.config, "cases": [str(c) for c in cases],
                                "predictions": str(predictions), "max_genes": max_genes},
                        hpo_release=meta_get(con, "hpo_release"))
    if json_out:
        console.print_json(json.dumps({**report.to_dict(), "run_id": run_id}))
        return
    console.print(metrics_table(report.metrics))
    if run_id:
        err_console.print(f"stored run {run_id}")


def _problems(kind: str, items: list[str]) -> None:
    for item in items[:_SHOWN]:
        err_console.print(f"[yellow]{kind}:[/yellow] {item}", highlight=False, soft_wrap=True)
    if len(items) > _SHOWN:
        err_console.print(f"[yellow]{kind}:[/yellow] ... and {len(items) - _SHOWN} more (see --json)", highlight=False)
