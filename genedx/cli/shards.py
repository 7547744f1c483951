"""CLI: `genedx shards split` and `genedx shards merge`, the fan-out / fan-in around `genedx score`.

Thin wrappers over :mod:`genedx.rank.shards`; the Snakemake workflow (workflows/score) calls them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

import typer

from genedx.cli.common import console, err_console, progress

shards_app = typer.Typer(help="Split a case input into deterministic shards; merge sharded score files.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add `shards` to the root app."""
    app.add_typer(shards_app, name="shards")


@shards_app.command("split")
def split_cmd(inputs: List[Path] = typer.Argument(..., help="Cases: phenopacket files/folders/zips, .jsonl(.gz)."),
              shards: int = typer.Option(..., "--shards", "-n", min=1, help="How many shards."),
              out_dir: Path = typer.Option(..., "--out-dir", "-o", help="Folder for shard-K-of-N.jsonl."),
              json_out: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Write N shard files (the same split as `genedx score --shard K/N`); bad records are reported."""
    from genedx.cases.readers import read_cases
    from genedx.rank.shards import split_cases

    def counted(items):
        for n, item in enumerate(items, 1):
            bar.update(task, completed=n)
            yield item

    with progress(transient=True) as bar:
        task = bar.add_task(f"splitting into {shards} shards", total=None)
        report = split_cases(counted(read_cases(inputs, require_gene=False)), shards, out_dir)
    if json_out:
        console.print_json(json.dumps(report.to_dict()))
        return
    for p in report.problems:
        err_console.print(f"[yellow]problem:[/yellow] {p}", highlight=False, soft_wrap=True)
    console.print(f"split {sum(report.cases)} case(s) into {shards} shard(s) in {out_dir}: "
                  f"{', '.join(map(str, report.cases))} per shard", highlight=False, soft_wrap=True)


@shards_app.command("merge")
def merge_cmd(parts: List[Path] = typer.Argument(..., help="Score files of the shards (genedx score outputs)."),
              cases: List[Path] = typer.Option(..., "--cases", help="The original input (its order is restored). Repeatable."),
              out: Path = typer.Option(..., "--out", "-o", help="The merged score file (replaced atomically).")) -> None:
    """Merge sharded score files into one, in the original input's order."""
    from genedx.cases.readers import read_cases
    from genedx.rank.shards import merge_scores

    n = merge_scores(parts, out, read_cases(cases, require_gene=False))
    console.print(f"merged {len(parts)} part(s), {n} line(s), into {out}", highlight=False, soft_wrap=True)
