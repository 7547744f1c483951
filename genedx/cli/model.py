"""CLI: `genedx model init` (a from-scratch domain model) and `genedx eval` (predictions + grades +
metrics stored as a run). Thin wrappers over :mod:`genedx.model` and :mod:`genedx.model.evaluate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from genedx.cli.common import console, db, err_console, get_home, progress

model_app = typer.Typer(help="Build and inspect local language models.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add `model` and `eval` to the root app."""
    app.add_typer(model_app, name="model")
    app.command("eval")(eval_cmd)


@model_app.command("init")
def init(out: Optional[Path] = typer.Option(None, "--out", "-o", help="Model directory to create (default: <home>/models/<size>-init)."),
         size: str = typer.Option("tiny", "--size", help="tiny (tests, seconds) | small (CPU demo) | base (GPU)."),
         seed: int = typer.Option(0, "--seed", help="Seed for the initial weights and the corpus sample."),
         overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out directory."),
         json_out: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """A Llama-architecture model from scratch with a tokenizer trained on the knowledge base and cases."""
    from transformers.utils import logging as hf_logging

    from genedx.model.build import init_model

    hf_logging.disable_progress_bar()
    out = out or get_home().models_dir / f"{size}-init"
    with db(read_only=True) as con, err_console.status(f"building a {size} model"):
        report = init_model(out, size, con=con, seed=seed, overwrite=overwrite)
    if json_out:
        console.print_json(json.dumps(report.__dict__))
        return
    t = Table(title=f"model initialised: {report.out_dir}", show_header=False)
    t.add_row("size", report.size)
    t.add_row("parameters", f"{report.parameters:,}")
    t.add_row("vocabulary", f"{report.vocab_size:,} ({report.whole_word_tokens:,} whole gene/label/markup tokens)")
    t.add_row("seconds", f"{report.seconds:.1f}")
    console.print(t)


def eval_cmd(
    predictor: str = typer.Option("ranker", "--predictor", "-p", help="ranker | model:DIR (see `genedx score`)."),
    cases: List[str] = typer.Option(..., "--cases", "-c", help="Cases with true genes (files/folders/JSONL), or a stored split: split:NAME (or just NAME)."),
    mode: str = typer.Option("closed", "--mode", help="Prompt mode for model predictors: closed | retrieval."),
    top: int = typer.Option(20, "--top", help="Genes kept per case."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Evaluate only the first N cases."),
    sample: Optional[int] = typer.Option(None, "--sample", help="Evaluate a seeded random sample of N cases."),
    seed: int = typer.Option(0, "--seed", help="Seed of --sample and of the bootstrap intervals."),
    profiles: str = typer.Option("none", "--profiles", help="Ranker gene profiles: none | train | all."),
    batch_size: int = typer.Option(16, "--batch-size", help="Model predictor generation batch size."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", help="Model generation budget (default 160)."),
    name: Optional[str] = typer.Option(None, "--name", help="A name for the stored run."),
    json_out: bool = typer.Option(False, "--json", help="Print metrics as JSON."),
) -> None:
    """Predict, grade and compute metrics for a case set; store it all as an `eval` run."""
    from genedx.model.evaluate import evaluate

    with db() as con, progress() as bar:
        task = bar.add_task("evaluating", total=None)
        result = evaluate(con, get_home(), predictor, [str(c) for c in cases], mode=mode, top=top, limit=limit,
                          profiles=profiles, batch_size=batch_size, name=name, max_new_tokens=max_new_tokens,
                          sample=sample, seed=seed,
                          on_bad=lambda b: err_console.print(f"[yellow]skipped[/yellow] {b}", highlight=False),
                          progress=lambda n, total: bar.update(task, completed=n, total=total))
    if json_out:
        console.print_json(json.dumps({"run_id": result.run_id, "n": result.n, "predictor": predictor,
                                       "mode": mode if predictor.startswith("model:") else None,
                                       "seconds": round(result.seconds, 2), "metrics": result.metrics.to_dict()}))
        return
    from genedx.grade.metrics import metrics_table
    console.print(metrics_table(result.metrics))
    console.print(f"run [bold]{result.run_id}[/bold]: {result.n} cases, predictor {predictor}"
                  f"{' (' + mode + ')' if predictor.startswith('model:') else ''}, {result.seconds:.1f} s")
