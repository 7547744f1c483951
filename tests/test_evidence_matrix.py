"""The evidence matrix (app/evidence_matrix.py) on the toy KB, whose annotations are small enough to
know every cell by hand (see tests/test_rank.py's docstring): SCN1A is annotated with Febrile seizure,
CRYAB with Cataract and only the parent Seizure, TBX5 with ASD (90%) and VSD."""

from __future__ import annotations

import math

import pytest

from app.evidence_matrix import (AGAINST, ANCESTOR, MATCHED, NEUTRAL, NOT_SCORED, UNEXPLAINED, evidence_matrix,
                                 matrix_png, ranker_is_at_or_below)
from genedx.home import Home, connect
from genedx.kb.build import build_kb
from genedx.predict import Evidence, GeneScore, TermMatch
from genedx.rank.ranker import Ranker, RankerConfig
from tests.conftest import TOY_HPO

CFG = RankerConfig(no_match_lr=0.1, excluded_weight=1.0, ancestor_decay=1.0, case_prior=0.0)
FEBRILE, SEIZURE, CATARACT, ASD, VSD = "HP:0002373", "HP:0001250", "HP:0000518", "HP:0001631", "HP:0001629"
PRESENT, ABSENT = [FEBRILE, SEIZURE, CATARACT], [ASD, VSD]


@pytest.fixture(scope="module")
def ranker(tmp_path_factory) -> Ranker:
    home = Home(tmp_path_factory.mktemp("toy_matrix")).ensure()
    con = connect(home)
    try:
        build_kb(con, TOY_HPO)
        return Ranker.load(con, config=CFG)
    finally:
        con.close()


@pytest.fixture(scope="module")
def matrix(ranker):
    genes = ranker.rank(PRESENT, ABSENT, top=10, explain=True)
    return evidence_matrix(PRESENT, ABSENT, genes, is_at_or_below=ranker_is_at_or_below(ranker.kb),
                           no_match_contribution=math.log10(CFG.no_match_lr), label=ranker.labels.get), genes


def cell(m, term: str, gene: str) -> tuple[float, str]:
    i, j = m.terms.index(term), m.genes.index(gene)
    return m.values[i][j], m.kinds[i][j]


def test_rows_present_then_absent_columns_in_rank_order(matrix):
    m, genes = matrix
    assert m.terms == PRESENT + ABSENT
    assert m.status == ["present"] * 3 + ["absent"] * 2
    assert m.genes == [g.symbol for g in genes] and set(m.genes) == {"SCN1A", "CRYAB", "TBX5"}
    assert m.labels[0] == "Febrile seizure"


def test_cell_kinds_by_hand(matrix):
    m, _ = matrix
    assert cell(m, FEBRILE, "SCN1A")[1] == MATCHED        # annotated with Febrile seizure itself
    assert cell(m, FEBRILE, "CRYAB")[1] == ANCESTOR       # only through its parent Seizure
    assert cell(m, CATARACT, "CRYAB")[1] == MATCHED
    assert cell(m, CATARACT, "SCN1A") == (pytest.approx(-1.0), UNEXPLAINED)  # log10(no_match_lr 0.1)
    # TBX5's GDD annotation (10%) explains Febrile seizure only at their common ancestor, the nervous system
    assert cell(m, FEBRILE, "TBX5")[1] == ANCESTOR
    assert cell(m, CATARACT, "TBX5")[1] == UNEXPLAINED
    assert cell(m, ASD, "TBX5")[1] == AGAINST and cell(m, ASD, "TBX5")[0] < 0
    assert cell(m, ASD, "SCN1A") == (0.0, NEUTRAL)        # SCN1A's disease never shows ASD: no penalty
    for g in m.genes:                                      # Seizure is implied by Febrile seizure
        v, k = cell(m, SEIZURE, g)
        assert k == NOT_SCORED and math.isnan(v)


def test_cell_values_are_the_rankers_contributions(matrix, ranker):
    m, genes = matrix
    for j, g in enumerate(genes):
        by_term = {x.patient_term: x.contribution for x in g.evidence.matched + g.evidence.excluded}
        for i, t in enumerate(m.terms):
            if t in by_term:
                assert m.values[i][j] == by_term[t]
        col = [m.values[i][j] for i in range(len(m.terms)) if not math.isnan(m.values[i][j])]
        # the cells are what the score is summed from; a "neutral" absent term adds a small positive amount
        if NEUTRAL not in [m.kinds[i][j] for i in range(len(m.terms))]:
            assert sum(col) == pytest.approx(g.score, abs=1e-3)
        else:
            assert sum(col) <= g.score + 1e-3


def test_top_limits_columns_and_model_answers_have_no_matrix():
    ev = Evidence("OMIM:1", "x", matched=[TermMatch(FEBRILE, FEBRILE, 0.5)])
    genes = [GeneScore(f"G{i}", 1.0 - i / 100, evidence=ev) for i in range(15)]
    m = evidence_matrix([FEBRILE], [], genes, is_at_or_below=lambda a, b: a == b, no_match_contribution=-0.5)
    assert len(m.genes) == 10 and m.values[0] == [0.5] * 10
    assert evidence_matrix([FEBRILE], [], [GeneScore("G", 1.0)], is_at_or_below=lambda a, b: a == b,
                           no_match_contribution=-0.5) is None
    # a term given both present and absent is a present row only
    m = evidence_matrix([FEBRILE], [FEBRILE, ASD], genes[:1], is_at_or_below=lambda a, b: a == b,
                        no_match_contribution=-0.5)
    assert m.terms == [FEBRILE, ASD]


def test_table_rows_and_png(matrix):
    m, _ = matrix
    rows = m.rows()
    assert len(rows) == 5 and list(rows[0]) == ["phenotype", *m.genes]
    assert rows[0]["phenotype"].startswith("+ Febrile seizure") and rows[3]["phenotype"].startswith("− ")
    assert rows[0]["SCN1A"].endswith("=") and rows[1]["SCN1A"] == "—"
    png = matrix_png(m)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import struct
    w, h = struct.unpack(">II", png[16:24])               # IHDR: a readable size, taller with more rows
    assert 300 < w < 3000 and 200 < h < 3000
    small = evidence_matrix([FEBRILE], [], genes_of(m), is_at_or_below=lambda a, b: a == b,
                            no_match_contribution=-1.0)
    assert struct.unpack(">II", matrix_png(small)[16:24])[1] < h


def genes_of(m):
    return [GeneScore(g, s, evidence=Evidence(None, None, unmatched=[FEBRILE])) for g, s in zip(m.genes, m.scores)]
