"""Gene profiles learned from stored real cases: train split only, blended with HPO annotations."""

from __future__ import annotations

import math

import pytest

from genedx.cases.model import Case
from genedx.errors import GenedxError
from genedx.home import Home, connect
from genedx.kb.build import build_kb
from genedx.predictors import load_predictor
from genedx.rank.ranker import Ranker, RankerConfig
from tests.conftest import TOY_HPO

CFG = RankerConfig(no_match_lr=0.1, default_frequency=0.5, max_frequency=0.95, not_lr=0.01,
                   excluded_weight=1.0, propagation="noisy_or", profile_smoothing=1.0, ancestor_decay=1.0,
                   case_prior=0.0)


def _add_case(con, cid, gene, present, absent=(), split="train", source="phenopacket"):
    con.execute('INSERT INTO "case" (id, source, gene, publication) VALUES (?, ?, ?, ?)', [cid, source, gene, cid])
    for t in present:
        con.execute("INSERT INTO case_phenotype VALUES (?, ?, false)", [cid, t])
    for t in absent:
        con.execute("INSERT INTO case_phenotype VALUES (?, ?, true)", [cid, t])
    con.execute("INSERT INTO case_split (case_id, split, split_by, seed) VALUES (?, ?, 'publication', 0)",
                [cid, split])


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Home:
    """Toy KB + cases: NEWG1 (no HPO annotation) has 2 train cases with Cataract + VSD and one
    validation case with Febrile seizure; a simulated train case of CRYAB must not count."""
    h = Home(tmp_path_factory.mktemp("toy_profiles")).ensure()
    con = connect(h)
    build_kb(con, TOY_HPO)
    _add_case(con, "t1", "NEWG1", ["HP:0000518", "HP:0001629"], absent=["HP:0001250"])
    _add_case(con, "t2", "NEWG1", ["HP:0000518", "HP:0001251"])            # alt id of Seizure, mapped
    _add_case(con, "v1", "NEWG1", ["HP:0002373"], split="validation")
    _add_case(con, "s1", "CRYAB", ["HP:0001629"], source="simulated")
    con.close()
    return h


def _load(home: Home, profiles: str, cfg: RankerConfig = CFG) -> Ranker:
    con = connect(home, read_only=True)
    try:
        return Ranker.load(con, profiles=profiles, config=cfg)
    finally:
        con.close()


def test_profiles_make_unannotated_genes_findable(home):
    none = _load(home, "none")
    assert "NEWG1" not in none.genes
    train = _load(home, "train")
    top = train.rank(["HP:0000518", "HP:0001629"], top=3)
    assert top[0].symbol == "NEWG1"
    assert top[0].disease is None and "NEWG1 cases" in top[0].disease_name
    assert any("profile from 2 stored train-split cases" in n for n in top[0].evidence.notes)
    opts = dict(train.options)
    assert opts.pop("config")["ancestor_decay"] == 1.0          # constants that differ from the defaults
    assert opts == {"profiles": "train", "profile_cases": 2, "profile_genes": 1}


def test_profile_frequencies_by_hand(home):
    # NEWG1 train profile: Cataract 2/2 cases, VSD 1/2 -> P = k / (n + 1) = 2/3 and 1/3.
    # Background now averages 3 diseases + 1 profile: bg(Cataract) = (0.895 + 2/3) / 4.
    r = _load(home, "train")
    s = {g.symbol: g.score for g in r.rank(["HP:0000518"], top=5)}
    assert s["NEWG1"] == pytest.approx(math.log10((2 / 3) / ((0.895 + 2 / 3) / 4)), abs=1e-5)
    assert s["CRYAB"] == pytest.approx(math.log10(0.895 / ((0.895 + 2 / 3) / 4)), abs=1e-5)


def test_profile_excluded_terms_count_against(home):
    # 1 of 2 NEWG1 cases excluded Seizure (share 1/(2+1)): a patient with Seizure costs the profile
    # a factor 1 - share * (1 - not_lr).
    r = _load(home, "train")
    ev = next(g for g in r.rank(["HP:0000518", "HP:0001250"], top=5) if g.symbol == "NEWG1").evidence
    seiz = next(m for m in ev.matched if m.patient_term == "HP:0001250")
    p_seiz, bg_seiz = 1 / 3, (min(0.95, 1 - 0.105 * 0.5) + 0.2 + 1 / 3) / 4
    assert seiz.contribution == pytest.approx(math.log10(p_seiz / bg_seiz) + math.log10(1 - (1 / 3) * 0.99),
                                               abs=1e-4)
    assert any("excluded" in n for n in ev.notes)


def test_only_train_split_and_real_cases(home):
    train = _load(home, "train")
    assert train.case_profiles.genes == ["NEWG1"]                 # the simulated CRYAB case is not used
    assert int(train.case_profiles.n_cases[0]) == 2               # v1 (validation) is not used
    alls = _load(home, "all")
    assert int(alls.case_profiles.n_cases[0]) == 3
    # with 'all', the validation case's Febrile seizure is part of the profile
    assert "NEWG1" in [g.symbol for g in alls.rank(["HP:0002373"], top=2)]


def test_blend_with_hpo_disease(home, tmp_path):
    # A profile for an annotated gene blends with its disease (noisy-or per term).
    con = connect(home)
    try:
        _add_case(con, "t3", "TBX5", ["HP:0000518"])
    finally:
        con.close()
    try:
        r = _load(home, "train")
        g = next(x for x in r.rank(["HP:0001631", "HP:0000518"], top=5) if x.symbol == "TBX5")
        assert g.disease == "OMIM:100002"                  # the blended row keeps the disease
        terms = {m.patient_term: m.annotated_term for m in g.evidence.matched}
        assert terms == {"HP:0001631": "HP:0001631", "HP:0000518": "HP:0000518"}
        sep = _load(home, "train", RankerConfig(**{**CFG.__dict__, "profile_mode": "separate"}))
        assert next(x for x in sep.rank(["HP:0001631", "HP:0000518"], top=5) if x.symbol == "TBX5").score < g.score
    finally:
        con = connect(home)
        con.execute("DELETE FROM case_phenotype WHERE case_id = 't3'")
        con.execute("DELETE FROM case_split WHERE case_id = 't3'")
        con.execute('DELETE FROM "case" WHERE id = \'t3\'')
        con.close()


def test_bad_profiles_choice(home):
    with pytest.raises(GenedxError, match="profiles"):
        _load(home, "bogus")


def test_load_predictor(home):
    con = connect(home, read_only=True)
    try:
        pred = load_predictor("ranker", con, home, profiles="train")
        out = pred.predict([Case(id="x", present=["HP:0000518", "HP:0001629"])], top=2)[0]
        assert out.options["profiles"] == "train" and out.genes[0].symbol == "NEWG1"
        with pytest.raises(GenedxError, match="unknown predictor"):
            load_predictor("nope", con, home)
    finally:
        con.close()


def test_case_prior(home):
    # case_prior adds w * log10(1 + n_cases) to genes with stored cases (NEWG1: 2 train cases)
    base = {g.symbol: g.score for g in _load(home, "train").rank(["HP:0000518"], top=5)}
    pri = {g.symbol: g.score for g in _load(home, "train", RankerConfig(**{**CFG.__dict__, "case_prior": 0.5}))
           .rank(["HP:0000518"], top=5)}
    assert pri["NEWG1"] - base["NEWG1"] == pytest.approx(0.5 * math.log10(3), abs=1e-5)
    assert pri["CRYAB"] == pytest.approx(base["CRYAB"])


@pytest.fixture(scope="module")
def pub_home(tmp_path_factory) -> Home:
    """NEWG2 has 3 train cases from 2 publications (p1 twice) and one case without a publication."""
    h = Home(tmp_path_factory.mktemp("toy_pubs")).ensure()
    con = connect(h)
    build_kb(con, TOY_HPO)
    for cid, pub in [("a", "p1"), ("b", "p1"), ("c", "p2"), ("d", None)]:
        con.execute('INSERT INTO "case" (id, source, gene, publication) VALUES (?, ?, ?, ?)',
                    [cid, "phenopacket", "NEWG2", pub])
        con.execute("INSERT INTO case_phenotype VALUES (?, ?, false)", [cid, "HP:0000518"])
        con.execute("INSERT INTO case_split (case_id, split, split_by, seed) VALUES (?, 'train', 'publication', 0)",
                    [cid])
    con.close()
    return h


def test_prior_counts_publications_not_cases(pub_home):
    # 4 cases, publications p1 (2 cases), p2, and none (counts alone): 3 publications.
    r0 = _load(pub_home, "train")
    assert r0.case_profiles.n_cases.tolist() == [4] and r0.case_profiles.n_publications.tolist() == [3]
    base = {g.symbol: g.score for g in r0.rank(["HP:0000518"], top=5)}
    by_pub = {g.symbol: g.score for g in _load(pub_home, "train", RankerConfig(**{**CFG.__dict__, "case_prior": 1.0}))
              .rank(["HP:0000518"], top=5)}
    by_case = {g.symbol: g.score for g in _load(pub_home, "train", RankerConfig(
        **{**CFG.__dict__, "case_prior": 1.0, "prior_unit": "cases"})).rank(["HP:0000518"], top=5)}
    assert by_pub["NEWG2"] - base["NEWG2"] == pytest.approx(math.log10(4), abs=1e-5)
    assert by_case["NEWG2"] - base["NEWG2"] == pytest.approx(math.log10(5), abs=1e-5)
    assert by_pub["CRYAB"] == pytest.approx(base["CRYAB"])


def test_prior_unit_is_checked():
    with pytest.raises(GenedxError, match="prior_unit"):
        RankerConfig(prior_unit="papers")
