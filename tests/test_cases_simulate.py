"""The simulator: reproducibility, what terms it may produce, knobs and their validation."""

from __future__ import annotations

import time

import pytest

from genedx.cases.simulate import SimulationConfig, simulate
from genedx.errors import GenedxError
from genedx.home import connect


def _annotations(con):
    pos, neg = {}, {}
    for d, t, ex in con.execute("SELECT disease, term, excluded FROM disease_phenotype WHERE aspect = 'P'").fetchall():
        (neg if ex else pos).setdefault(d, set()).add(t)
    return pos, neg


def _ancestors(con):
    out = {}
    for t, a in con.execute("SELECT term, ancestor FROM hpo_ancestor").fetchall():
        out.setdefault(t, set()).add(a)
    return out


def test_same_seed_same_cases_different_seed_differs(con):
    cfg = dict(cases_per_gene=30, imprecision=0.3, noise_terms=2, absent_terms=2)
    a = simulate(con, SimulationConfig(seed=7, **cfg))
    b = simulate(con, SimulationConfig(seed=7, **cfg))
    c = simulate(con, SimulationConfig(seed=8, **cfg))
    assert [x.to_dict() for x in a] == [x.to_dict() for x in b]
    assert [x.to_dict() for x in a] != [x.to_dict() for x in c]


def test_cases_follow_annotations(con):
    pos, neg = _annotations(con)
    anc = _ancestors(con)
    cases = simulate(con, SimulationConfig(cases_per_gene=40, noise_terms=0, imprecision=0.0, seed=1))
    assert len(cases) == 3 * 40
    assert len({c.id for c in cases}) == len(cases)
    gene_of = {"OMIM:100001": "SCN1A", "OMIM:100002": "TBX5", "OMIM:100003": "CRYAB"}
    for c in cases:
        assert c.source == "simulated" and c.id == f"sim:{c.gene}:{c.disease}:{c.id.rsplit(':', 1)[1]}"
        assert gene_of[c.disease] == c.gene
        assert c.present and set(c.present) <= pos[c.disease]
        own_related = set().union(*(anc[t] for t in pos[c.disease]))
        for t in c.absent:  # never contradicts a feature of the disease
            assert t not in own_related and not (anc[t] & pos[c.disease])
    # the NOT annotation and look-alike features do show up as absent terms
    absent_seen = {t for c in cases if c.disease == "OMIM:100001" for t in c.absent}
    assert neg["OMIM:100001"] <= absent_seen
    assert absent_seen - neg["OMIM:100001"]


def test_frequency_weighting(con):
    # OMIM:100002: VSD very frequent (0.895) vs developmental delay 1/10 -> VSD drawn far more often
    cases = simulate(con, SimulationConfig(cases_per_gene=400, min_present=1, max_present=1, noise_terms=0,
                                           imprecision=0.0, genes=["TBX5"], seed=3))
    n_vsd = sum(c.present == ["HP:0001629"] for c in cases)
    n_dd = sum(c.present == ["HP:0001263"] for c in cases)
    assert n_vsd > 3 * n_dd > 0


def test_imprecision_replaces_with_ancestors(con):
    pos, _ = _annotations(con)
    anc = _ancestors(con)
    cases = simulate(con, SimulationConfig(cases_per_gene=20, imprecision=1.0, noise_terms=0, seed=2))
    for c in cases:
        for t in c.present:  # a strict ancestor of an annotated term (it may be annotated itself)
            assert any(t in anc[o] and t != o for o in pos[c.disease])
            assert t not in ("HP:0000118", "HP:0000001")


def test_noise_terms_come_from_other_diseases(con):
    pos, _ = _annotations(con)
    cases = simulate(con, SimulationConfig(cases_per_gene=100, noise_terms=3, imprecision=0.0, seed=4))
    extra = [t for c in cases for t in c.present if t not in pos[c.disease]]
    assert extra and all(any(t in ts for ts in pos.values()) for t in extra)


def test_per_disease_and_gene_subset(con):
    cases = simulate(con, SimulationConfig(cases_per_gene=5, per="disease", genes=["CRYAB", "SCN1A"]))
    assert sorted({c.gene for c in cases}) == ["CRYAB", "SCN1A"] and len(cases) == 10
    with pytest.raises(GenedxError, match="NOTAGENE"):
        simulate(con, SimulationConfig(genes=["NOTAGENE"]))


@pytest.mark.parametrize("bad", [dict(per="family"), dict(cases_per_gene=0), dict(min_present=5, max_present=2),
                                 dict(imprecision=1.5), dict(imprecision_max_distance=0), dict(noise_terms=-1), dict(default_frequency=0)])
def test_config_validation(bad):
    with pytest.raises(GenedxError):
        SimulationConfig(**bad)


def test_needs_kb(tmp_home):
    c = connect(tmp_home)
    with pytest.raises(GenedxError, match="data build"):
        simulate(c)
    c.close()


@pytest.mark.slow
def test_real_kb_twenty_per_gene_is_fast(real_home):
    c = connect(real_home, read_only=True)
    t0 = time.perf_counter()
    cases = simulate(c, SimulationConfig(cases_per_gene=20))
    elapsed = time.perf_counter() - t0
    c.close()
    genes = {x.gene for x in cases}
    assert len(genes) > 4000 and len(cases) == 20 * len(genes)
    assert elapsed < 60
