"""Splits: stored, seeded, and provably non-overlapping (no case or group in two splits)."""

from __future__ import annotations

import pytest

from genedx.cases.model import Case
from genedx.cases.simulate import SimulationConfig, simulate
from genedx.cases.split import assign, make_split
from genedx.cases.store import import_cases, load_cases
from genedx.errors import GenedxError
from genedx.home import connect

GENES = ["SCN1A", "TBX5", "CRYAB", "FBN1", "COL1A1", "MECP2", "CFTR", "DMD", "PAH", "GJB2", "SOX9"]
TERMS = ["HP:0001250", "HP:0001631", "HP:0000518", "HP:0001263", "HP:0001629"]


@pytest.fixture
def con(toy_home):
    """40 publications with 1-4 sibling cases each, 6 cases without a publication, and simulated cases."""
    c = connect(toy_home)
    cases = []
    for p in range(40):
        for s in range(1 + p % 4):
            cases.append(Case(f"PMID_{p}_{s}", present=[TERMS[(p + s) % 5]], gene=GENES[p % len(GENES)], source="phenopacket",
                              publication=f"PMID:{p}"))
    cases += [Case(f"nopub_{i}", present=[TERMS[i % 5]], gene=GENES[i % len(GENES)], source="user") for i in range(6)]
    cases += simulate(c, SimulationConfig(cases_per_gene=4))
    import_cases(c, cases)
    yield c
    c.close()


def _splits(con):
    return {c.id: c for c in load_cases(con)}


@pytest.mark.parametrize("by", ["publication", "case", "gene"])
def test_groups_never_straddle_splits(con, by):
    counts = make_split(con, by=by, seed=2, validation=0.3, test=0.2)  # seed 2: toy genes in all three splits
    cases = _splits(con)
    assert sum(counts.values()) == len(cases) == con.execute("SELECT count(*) FROM case_split").fetchone()[0]
    assert con.execute("SELECT count(DISTINCT case_id) FROM case_split").fetchone()[0] == len(cases)
    key = {"publication": lambda c: c.publication or c.id, "case": lambda c: c.id, "gene": lambda c: c.gene}[by]
    seen: dict[str, set] = {}
    for c in cases.values():
        if c.source == "simulated" and by != "gene" or c.split == "unused":
            continue  # simulated cases go to train by design (checked below); unused is no split
        seen.setdefault(key(c), set()).add(c.split)
    assert all(len(s) == 1 for s in seen.values()), "a group is in two splits"
    real_splits = {c.split for c in cases.values() if c.source != "simulated"}
    assert {"train", "validation"} <= real_splits
    sim = {c.split for c in cases.values() if c.source == "simulated"}
    if by == "gene":  # simulated cases of held-out genes are set aside, never in validation/test
        real_split_of_gene = {c.gene: c.split for c in cases.values() if c.source != "simulated"}
        for c in cases.values():
            if c.source == "simulated":
                assert c.split == ("train" if real_split_of_gene[c.gene] == "train" else "unused")
    else:
        assert sim == {"train"}


def test_by_gene_keeps_genes_disjoint_with_simulated_cases(con):
    make_split(con, by="gene", seed=1, validation=0.34)
    by_split: dict[str, set] = {}
    for c in load_cases(con):
        if c.split != "unused":
            by_split.setdefault(c.split, set()).add(c.gene)
    genes = list(by_split.values())
    assert all(not (a & b) for i, a in enumerate(genes) for b in genes[i + 1:])


def test_publication_split_differs_from_case_split_and_is_reproducible(con):
    make_split(con, by="publication", seed=5, validation=0.3)
    first = {c.id: c.split for c in load_cases(con)}
    make_split(con, by="publication", seed=5, validation=0.3)
    assert {c.id: c.split for c in load_cases(con)} == first
    make_split(con, by="publication", seed=6, validation=0.3)
    assert {c.id: c.split for c in load_cases(con)} != first
    row = con.execute("SELECT DISTINCT split_by, seed FROM case_split").fetchall()
    assert row == [("publication", 6)]


def test_simulated_cases_can_be_split_too(con):
    make_split(con, by="case", seed=0, validation=0.5, simulated_to_train=False)
    assert {c.split for c in load_cases(con, source="simulated")} == {"train", "validation"}


def test_assign_fractions():
    got = [assign(f"g{i}", 0, 0.2, 0.1) for i in range(5000)]
    assert abs(got.count("validation") / 5000 - 0.2) < 0.03 and abs(got.count("test") / 5000 - 0.1) < 0.03


def test_bad_arguments(con, tmp_home):
    with pytest.raises(GenedxError, match="--by"):
        make_split(con, by="family")
    with pytest.raises(GenedxError, match="fractions"):
        make_split(con, validation=0.7, test=0.5)
    empty = connect(tmp_home)
    with pytest.raises(GenedxError, match="no cases"):
        make_split(empty)
    empty.close()
