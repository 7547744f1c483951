"""Where genedx keeps its state: one data directory holding the DuckDB file, models and run artefacts.

Resolution order: explicit ``--home`` > ``GENEDX_HOME`` environment variable > ``~/.genedx``.
Separate homes never share a database, so test runs and users stay apart.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb

from genedx.errors import GenedxError

# Small data shipped with the project (HGNC copy, sample phenopackets), beside the package.
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SCHEMA_SQL = Path(__file__).resolve().parent / "schema.sql"
DEFAULT_HOME = Path.home() / ".genedx"
ENV_VAR = "GENEDX_HOME"


@dataclass(frozen=True)
class Home:
    """Paths of one genedx data directory."""

    root: Path

    @property
    def db_path(self) -> Path:
        return self.root / "genedx.duckdb"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def ensure(self) -> "Home":
        for p in (self.root, self.models_dir, self.runs_dir):
            p.mkdir(parents=True, exist_ok=True)
        return self


def resolve_home(home: str | Path | None = None) -> Home:
    """The data directory: ``home`` if given, else ``$GENEDX_HOME``, else ``~/.genedx``."""
    if home is None:
        home = os.environ.get(ENV_VAR) or DEFAULT_HOME
    return Home(Path(home).expanduser().resolve())


def connect(home: str | Path | Home | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the home's DuckDB file, creating the schema on first use."""
    h = home if isinstance(home, Home) else resolve_home(home)
    if read_only and not h.db_path.exists():
        raise GenedxError(f"no database at {h.db_path}: run `genedx data build` first")
    if not read_only:
        h.ensure()
    try:
        con = duckdb.connect(str(h.db_path), read_only=read_only)
    except duckdb.IOException as e:
        # DuckDB allows one writing process per file: say which file and what to do, in one line.
        if "lock" in str(e).lower():
            raise GenedxError(f"database {h.db_path} is in use by another genedx process (one writer at a "
                              f"time): wait for it to finish, or use another --home") from None
        raise GenedxError(f"cannot open database {h.db_path}: {str(e).splitlines()[0]}") from None
    if not read_only:
        apply_schema(con)
    return con


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: commit when the block ends, roll back on any error (DuckDB cannot nest these)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def apply_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every table genedx uses (idempotent)."""
    con.execute(SCHEMA_SQL.read_text())


def meta_get(con: duckdb.DuckDBPyConnection, key: str, default: str | None = None) -> str | None:
    row = con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return row[0] if row else default


def stored_hpo_release(home: "Home") -> str | None:
    """The HPO release of a home's knowledge base (None when no database exists yet), read through a
    short read-only connection."""
    if not home.db_path.exists():
        return None
    con = connect(home, read_only=True)
    try:
        return meta_get(con, "hpo_release")
    finally:
        con.close()


def meta_set(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])


def require_kb(con: duckdb.DuckDBPyConnection) -> str:
    """The HPO release of the built knowledge base; a clear error when it is not built yet."""
    release = meta_get(con, "hpo_release")
    if release is None:
        raise GenedxError("the knowledge base is not built: run `genedx data build` first")
    return release
