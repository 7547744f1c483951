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
def init(out: Optional[Path] = typer.Option(None, "--out", "-o", help="Model directory to create (default: <home>/models/<size or base>-init)."),
         from_: Optional[str] = typer.Option(None, "--from", help="A pretrained base: a named offline base "
                                             "(smollm2-135m-instruct), a local Hugging Face model dir or a .gguf file. "
                                             "Without it: a from-scratch model of --size."),
         size: str = typer.Option("tiny", "--size", help="From scratch: tiny (tests, seconds) | small (CPU demo) | base (GPU)."),
         dtype: str = typer.Option("bfloat16", "--dtype", help="--from: precision of the saved weights (bfloat16 | float32)."),
         seed: int = typer.Option(0, "--seed", help="Seed for the initial weights and the corpus sample."),
         overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out directory."),
         json_out: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """A model dir to train: a pretrained base converted offline (--from, recommended), or a from-scratch
    Llama model with a tokenizer trained on the knowledge base and cases (--size, for tests)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if from_:
        from genedx.model.bases import convert_base
        out = out or get_home().models_dir / f"{Path(from_).stem}-init"
        release = _hpo_release_or_none()
        with err_console.status(f"converting {from_}"):
            conv = convert_base(from_, out, dtype=dtype, overwrite=overwrite, hpo_release=release)
        if json_out:
            console.print_json(json.dumps(conv.__dict__))
            return
        t = Table(title=f"model initialised: {conv.out_dir}", show_header=False)
        t.add_row("base", conv.base or conv.source)
        t.add_row("source file", conv.source)
        t.add_row("parameters", f"{conv.parameters:,}")
        t.add_row("vocabulary", f"{conv.vocab_size:,}")
        t.add_row("weights", conv.dtype)
        t.add_row("seconds", f"{conv.seconds:.1f}")
        console.print(t)
        return
    from genedx.model.build import init_model

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


@model_app.command("bases")
def bases(json_out: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """The named pretrained bases `model init --from` converts offline, and how to install each."""
    import importlib.metadata as md

    from genedx.model.bases import BASES, describe
    rows = []
    for spec in BASES.values():
        try:
            installed = md.version(spec.package)
        except md.PackageNotFoundError:
            installed = None
        rows.append(describe(spec) | {"installed": installed})
    if json_out:
        console.print_json(json.dumps(rows))
        return
    t = Table(title="offline pretrained bases")
    for c in ("name", "model", "licence", "package", "installed", "install"):
        t.add_column(c)
    for r in rows:
        t.add_row(r["name"], r["title"], r["licence"], f"{r['package']}=={r['version']}", r["installed"] or "no",
                  r["install"])
    console.print(t)


@model_app.command("show")
def show(model_dir: Path = typer.Argument(..., help="A model directory (or a LoRA adapter dir)."),
         json_out: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Inspect a model dir without loading it: architecture, parameters, precision, vocabulary,
    adapter, and how genedx made it (base, recipe, prompt layout, HPO release)."""
    from genedx.model.inspect import describe_model_dir

    d = describe_model_dir(model_dir)
    if json_out:
        console.print_json(json.dumps(d, default=str))
        return
    t = Table(title=f"model {d['path']}", show_header=False)
    for key in ("architectures", "model_type", "parameters", "dtype", "hidden_size", "num_hidden_layers",
                "vocab_size", "weights_bytes"):
        v = d.get(key)
        if v is not None:
            t.add_row(key.replace("_", " "), f"{v:,}" if isinstance(v, int) else
                      ", ".join(v) if isinstance(v, list) else str(v))
    if d["adapter"]:
        t.add_row("adapter", f"{d['adapter']['path']} ({d['adapter']['peft_type']}, r={d['adapter']['r']})")
    for key, v in d["genedx"].items():
        if isinstance(v, (str, int, float)) and not isinstance(v, bool):
            t.add_row(f"genedx: {key}", str(v))
    console.print(t)


def _hpo_release_or_none() -> Optional[str]:
    """The home's HPO release when a knowledge base is built (a converted base records it), else None."""
    from genedx.errors import GenedxError
    from genedx.home import stored_hpo_release
    try:
        return stored_hpo_release(get_home())
    except GenedxError:   # the database is locked by a writer: the release is informative only
        return None


def eval_cmd(
    predictor: str = typer.Option("ranker", "--predictor", "-p", help="ranker | reranker[:DIR] | model:DIR (see `genedx score`)."),
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
    drop_absent: bool = typer.Option(False, "--drop-absent", help="Remove every absent term from the cases first "
                                     "(what is left without phenopacket-store's absent-term curation habit)."),
    candidates: str = typer.Option("ranker", "--candidates", help="model:DIR retrieval candidates: ranker | "
                                   "reranker[:DIR] (the learned re-ranker's order)."),
    json_out: bool = typer.Option(False, "--json", help="Print metrics as JSON."),
) -> None:
    """Predict, grade and compute metrics for a case set; store it all as an `eval` run."""
    from genedx.model.evaluate import evaluate

    with db() as con, progress() as bar:
        task = bar.add_task("evaluating", total=None)
        result = evaluate(con, get_home(), predictor, [str(c) for c in cases], mode=mode, top=top, limit=limit,
                          profiles=profiles, batch_size=batch_size, name=name, max_new_tokens=max_new_tokens,
                          sample=sample, seed=seed, drop_absent=drop_absent, candidates=candidates,
                          on_bad=lambda b: err_console.print(f"[yellow]skipped[/yellow] {b}", highlight=False),
                          progress=lambda n, total: bar.update(task, completed=n, total=total))
    if json_out:
        console.print_json(json.dumps({"run_id": result.run_id, "n": result.n, "predictor": predictor,
                                       "cases_per_second": round(result.n / result.seconds, 3) if result.seconds else None,
                                       "mode": mode if predictor.startswith("model:") else None,
                                       "seconds": round(result.seconds, 2), "metrics": result.metrics.to_dict()}))
        return
    from genedx.grade.metrics import metrics_table
    console.print(metrics_table(result.metrics))
    console.print(f"run [bold]{result.run_id}[/bold]: {result.n} cases, predictor {predictor}"
                  f"{' (' + mode + ')' if predictor.startswith('model:') else ''}, {result.seconds:.1f} s "
                  f"({result.n / max(result.seconds, 1e-9):.2f} cases/s)")
