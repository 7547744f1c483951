"""Shared helpers of the model/SFT/eval tests: a toy knowledge base with simulated cases and a split."""

from __future__ import annotations

from pathlib import Path

from genedx.home import Home, connect


def make_toy_cases_home(root: Path, cases_per_gene: int = 6) -> Home:
    """A home with the toy KB (3 genes), simulated cases for each gene, split by case (train/validation)."""
    from genedx.cases.simulate import SimulationConfig, simulate
    from genedx.cases.split import make_split
    from genedx.cases.store import import_cases
    from genedx.kb.build import build_kb
    from tests.conftest import TOY_HPO

    home = Home(root).ensure()
    con = connect(home)
    build_kb(con, TOY_HPO)
    import_cases(con, simulate(con, SimulationConfig(cases_per_gene=cases_per_gene, min_present=2, max_present=4,
                                                     noise_terms=0, seed=3)))
    make_split(con, by="case", seed=0, validation=0.34, simulated_to_train=False)
    con.close()
    return home


def make_tiny_model(home: Home, out: Path) -> Path:
    from genedx.model.build import init_model
    con = connect(home)
    try:
        init_model(out, "tiny", con=con, seed=0)
    finally:
        con.close()
    return out
