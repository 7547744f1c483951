"""The `genedx` command line. Every command is a thin wrapper over a library function.

Each area registers its commands from its own module (data, grade, rank, model, train, app), so
the command tree mirrors the package layout.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from genedx.cli import app_cmd, data, extract_cmd, grade, model, rank, shards, train
from genedx.cli.common import STATE, err_console
from genedx.errors import GenedxError

app = typer.Typer(help="genedx: rank the genes most likely to cause a rare-disease case report.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)


@app.callback()
def _root(home: Optional[Path] = typer.Option(
        None, "--home", envvar="GENEDX_HOME",
        help="Data directory holding the database, models and runs (default ~/.genedx).")) -> None:
    STATE.home = home


for module in (data, grade, rank, shards, model, train, app_cmd, extract_cmd):
    module.register(app)


def main() -> None:
    """Console-script entry point. Exit codes: 0 ok; 1 a user error (bad input, missing file or
    model, unbuilt knowledge base), printed as one line on stderr; 2 a usage error (unknown option,
    missing argument: click's own code and message)."""
    argv = sys.argv[1:]
    if "rank" in argv:
        argv = rank.expand_absent_args(argv)
    try:
        app(args=argv, prog_name="genedx")
    except GenedxError as e:
        err_console.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        sys.exit(1)
