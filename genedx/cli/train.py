"""CLI: `genedx train sft|rft|reranker` (training stages) and `genedx runs list|show|plot` (training/eval runs).

Thin wrappers: each command loads a recipe or queries the database and calls a library function
(``genedx.train.sft.run_sft``, ``genedx.train.rft.run_rft``, ``genedx.train.runs``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from genedx.cli.common import console, db, get_home

train_app = typer.Typer(help="Train models: SFT warm start, reinforcement fine-tuning (GRPO), the re-ranker.", no_args_is_help=True)
runs_app = typer.Typer(help="Training and evaluation runs stored in the database: list, show, plot curves.",
                       no_args_is_help=True)


# --- RFT (reinforcement fine-tuning) -------------------------------------------------------------
@train_app.command("rft")
def train_rft(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Recipe YAML (see training/configs/rft-*.yaml)."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a recipe knob: key=value (repeatable)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint in the output dir."),
) -> None:
    """Reinforcement fine-tuning with TRL GRPO, rewarded by the ranked-gene grader."""
    from genedx.train.recipes import load_recipe
    from genedx.train.rft import RFTRecipe, run_rft

    recipe = load_recipe(RFTRecipe, config, set_ or [])
    result = run_rft(recipe, get_home(), resume=resume,
                     log=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))
    console.print(f"run [bold]{result.run_id}[/bold] done in {result.train_seconds:.0f} s; "
                  f"final model: {result.model_dir}")


# --- SFT (supervised warm start) -----------------------------------------------------------------
@train_app.command("sft")
def train_sft(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Recipe YAML (see training/configs/sft-*.yaml)."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a recipe knob: key=value (repeatable)."),
) -> None:
    """Supervised warm start with TRL SFTTrainer: ranker-explained reasoning + the answer format."""
    from genedx.train.recipes import load_recipe
    from genedx.train.sft import SFTRecipe, run_sft

    recipe = load_recipe(SFTRecipe, config, set_ or [])
    result = run_sft(recipe, get_home(), log=lambda m: console.print(m, highlight=False))
    console.print(f"run [bold]{result.run_id}[/bold]: {result.steps} steps in {result.train_seconds:.0f} s; "
                  f"model: {result.model_dir}")


# --- re-ranker (LightGBM LambdaRank over the ranker's candidates) ---------------------------------
@train_app.command("reranker")
def train_reranker(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Recipe YAML (training/configs/reranker.yaml)."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a recipe knob: key=value (repeatable)."),
) -> None:
    """Train the learned re-ranker on the stored real train cases (profiles out of fold by publication)."""
    from genedx.cli.common import err_console, progress
    from genedx.train.recipes import load_recipe
    from genedx.train.reranker import RerankerRecipe, run_reranker

    recipe = load_recipe(RerankerRecipe, config, set_ or [])
    with progress() as bar:
        task = bar.add_task("out-of-fold features", total=None)
        result = run_reranker(recipe, get_home(),
                              log=lambda m: bar.console.print(m, markup=False, highlight=False, soft_wrap=True),
                              progress=lambda n, total: bar.update(task, completed=n, total=total))
    for p in result.skipped:
        err_console.print(f"[yellow]problem:[/yellow] {p}", highlight=False, soft_wrap=True)
    console.print(f"run [bold]{result.run_id}[/bold] done in {result.train_seconds:.0f} s "
                  f"({result.best_iteration} rounds); model: {result.model_dir}")


# --- runs ----------------------------------------------------------------------------------------
@runs_app.command("list")
def runs_list(
    kind: Optional[str] = typer.Option(None, "--kind", help="Only runs of this kind (rft, sft, eval, score)."),
    limit: int = typer.Option(50, "--limit", help="Most recent N runs."),
    json_out: bool = typer.Option(False, "--json", help="Print the runs as a JSON list."),
) -> None:
    """The runs in the database, newest first, with their last validation top@1."""
    from genedx.train.runs import list_runs, runs_table

    with db(read_only=True) as con:
        found = list_runs(con, kind=kind, limit=limit)
    if json_out:
        console.print_json(json.dumps([_run_dict(r) for r in found], default=str))
        return
    console.print(runs_table(found))


@runs_app.command("show")
def runs_show(run_id: str = typer.Argument(..., help="Run id (or a unique prefix)."),
              json_out: bool = typer.Option(False, "--json", help="Print the run, its recipe and every metric "
                                            "as JSON.")) -> None:
    """One run: its recipe and its metrics per step."""
    from genedx.train.runs import get_run, run_metrics, run_metrics_table

    with db(read_only=True) as con:
        run = get_run(con, run_id)
        if json_out:
            metrics = {key: [{"step": step, "value": v, "lo": lo, "hi": hi} for step, (v, lo, hi) in series.items()]
                       for key, series in run_metrics(con, run.id).items()}
            console.print_json(json.dumps({**_run_dict(run), "metrics": metrics}, default=str))
            return
        console.print(run.summary())
        console.print(run_metrics_table(con, run.id))
        from genedx.train.runs import run_other_metrics_table
        other = run_other_metrics_table(con, run.id)
        if other is not None:
            console.print(other)


@runs_app.command("plot")
def runs_plot(
    run_ids: List[str] = typer.Argument(..., help="One or several run ids (unique prefixes or names)."),
    out: Path = typer.Option(..., "--out", "-o", help="PNG file to write."),
    metric: List[str] = typer.Option(["top1", "top5"], "--metric", "-m", help="Validation metric(s) to plot."),
) -> None:
    """A PNG of the validation curves of one or several runs."""
    from genedx.train.runs import plot_runs

    with db(read_only=True) as con:
        path = plot_runs(con, run_ids, out, metrics=metric)
    console.print(f"wrote {path}")


def _run_dict(run) -> dict:
    """A run as JSON: its row, its recipe (config) and its last validation metrics."""
    from dataclasses import asdict
    return asdict(run)


def register(app: typer.Typer) -> None:
    """Add `train` and `runs` to the root app."""
    app.add_typer(train_app, name="train")
    app.add_typer(runs_app, name="runs")
