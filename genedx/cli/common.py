"""Shared CLI state and helpers: the chosen home, the console, progress bars."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from genedx.home import Home, connect, resolve_home

console = Console()
err_console = Console(stderr=True)


@dataclass
class State:
    home: Path | None = None


STATE = State()


def get_home(override: Path | None = None) -> Home:
    """The home chosen by a command's own --home, else the global --home, else GENEDX_HOME/default."""
    return resolve_home(override or STATE.home)


@contextmanager
def db(override: Path | None = None, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(get_home(override), read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def progress(transient: bool = False) -> Progress:
    """A rich progress bar for anything long (writes to stderr so --json output stays clean)."""
    return Progress(SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), console=err_console, transient=transient)
