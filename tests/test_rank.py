"""The phenotype ranker on the toy KB, checked against values computed by hand.

Toy annotations (tests/fixtures/toy_hpo): OMIM:100001 (SCN1A) Seizure 0.895, Febrile seizure 0.5,
GDD (no frequency -> default 0.5), NOT ASD; OMIM:100002 (TBX5) ASD 0.9, VSD 0.895, GDD 0.1;
OMIM:100003 (CRYAB) Cataract 0.895, Seizure 0.2. Background bg[c] = mean over the 3 diseases of
P[d, c] (noisy-or of the frequencies at or below c).
"""

from __future__ import annotations

import math

import pytest

from genedx.cases.model import Case
from genedx.errors import GenedxError
from genedx.home import Home, connect
from genedx.kb.build import build_kb
from genedx.rank.ranker import Ranker, RankerConfig, RankerPredictor
from tests.conftest import TOY_HPO

# Constants pinned here so tuning the defaults never changes the hand-computed values below.
CFG = RankerConfig(no_match_lr=0.1, default_frequency=0.5, max_frequency=0.95, not_lr=0.01,
                   excluded_weight=1.0, propagation="noisy_or", ancestor_decay=1.0, case_prior=0.0)
VF = 0.895                                  # "Very frequent"
P1_SEIZ = 1 - (1 - VF) * (1 - 0.5)          # SCN1A at Seizure: Seizure 0.895 or Febrile seizure 0.5
P1_NERV = min(0.95, 1 - (1 - VF) * (1 - 0.5) * (1 - 0.5))   # capped at max_frequency


@pytest.fixture(scope="module")
def ranker(tmp_path_factory) -> Ranker:
    """Built once per module (the toy KB build reads HGNC, ~1 s); tests only read it."""
    home = Home(tmp_path_factory.mktemp("toy_rank")).ensure()
    con = connect(home)
    try:
        build_kb(con, TOY_HPO)
        return Ranker.load(con, config=CFG)
    finally:
        con.close()


def scores(r: Ranker, present, absent=()) -> dict[str, float]:
    return {g.symbol: g.score for g in r.rank(present, absent, top=10)}


def test_load_attributes(ranker):
    assert ranker.hpo_release == "2099-01-01"
    assert ranker.profiles == "none"
    assert ranker.labels["HP:0001250"] == "Seizure"
    assert sorted(ranker.genes) == ["CRYAB", "SCN1A", "TBX5"]


def test_exact_match_raises_gene_by_hand_value(ranker):
    # Cataract: only CRYAB shows it, so bg = 0.895 / 3 and LR = 3 exactly.
    s = scores(ranker, ["HP:0000518"])
    top = ranker.rank(["HP:0000518"], top=1)[0]
    assert top.symbol == "CRYAB" and top.disease == "OMIM:100003"
    assert s["CRYAB"] == pytest.approx(math.log10(3), abs=1e-5)
    # the others share nothing informative with Cataract (only the root): the no-match LR
    assert s["SCN1A"] == pytest.approx(math.log10(0.1), abs=1e-5)


def test_ancestor_match_weighs_less_than_exact(ranker):
    # Patient: Febrile seizure. SCN1A is annotated with it (LR 3); CRYAB only with its parent
    # Seizure, so CRYAB matches at Seizure: LR = P3 / bg(Seizure) = 0.2 / ((P1 + 0.2) / 3).
    s = scores(ranker, ["HP:0002373"])
    assert s["SCN1A"] == pytest.approx(math.log10(3), abs=1e-5)
    lr_cryab = 0.2 / ((P1_SEIZ + 0.2) / 3)
    assert s["CRYAB"] == pytest.approx(math.log10(lr_cryab), abs=1e-5)
    assert s["SCN1A"] > s["CRYAB"] > s["TBX5"]
    ev = ranker.rank(["HP:0002373"], top=3)[1].evidence
    assert ev.disease == "OMIM:100003"
    m = ev.matched[0]
    assert (m.patient_term, m.annotated_term) == ("HP:0002373", "HP:0001250")
    assert m.contribution == pytest.approx(math.log10(lr_cryab), abs=1e-3)


def test_general_patient_term_matches_specific_annotation(ranker):
    # Patient: Abnormality of the nervous system (an ancestor of SCN1A's annotations).
    s = scores(ranker, ["HP:0000707"])
    bg = (P1_NERV + 0.1 + 0.2) / 3
    assert s["SCN1A"] == pytest.approx(math.log10(P1_NERV / bg), abs=1e-5)
    ev = ranker.rank(["HP:0000707"], top=1)[0].evidence
    assert ev.matched[0].annotated_term in {"HP:0001250", "HP:0002373", "HP:0001263"}


def test_excluded_typical_feature_lowers_gene(ranker):
    # GDD present; ASD absent. TBX5 shows ASD in 90%: LR = (1 - 0.9) / (1 - bg) with bg = 0.9 / 3.
    without = scores(ranker, ["HP:0001263"])
    with_abs = scores(ranker, ["HP:0001263"], ["HP:0001631"])
    bg = 0.9 / 3
    assert with_abs["TBX5"] - without["TBX5"] == pytest.approx(math.log10(0.1 / (1 - bg)), abs=1e-5)
    assert with_abs["SCN1A"] - without["SCN1A"] == pytest.approx(math.log10(1 / (1 - bg)), abs=1e-5)
    ev = next(g for g in ranker.rank(["HP:0001263"], ["HP:0001631"]) if g.symbol == "TBX5").evidence
    assert [(m.patient_term, m.annotated_term) for m in ev.excluded] == [("HP:0001631", "HP:0001631")]
    assert ev.excluded[0].contribution < 0


def test_not_annotation_counts_against(ranker):
    # SCN1A's disease is annotated NOT ASD: a patient with ASD costs it not_lr on top of no match.
    s = scores(ranker, ["HP:0001631"])
    assert s["TBX5"] == pytest.approx(math.log10(3), abs=1e-5)
    assert s["SCN1A"] == pytest.approx(math.log10(0.1) + math.log10(0.01), abs=1e-5)
    assert s["CRYAB"] == pytest.approx(math.log10(0.1), abs=1e-5)
    no_not = ranker.with_config(RankerConfig(**{**CFG.__dict__, "use_not": False}))
    assert scores(no_not, ["HP:0001631"])["SCN1A"] == pytest.approx(math.log10(0.1), abs=1e-5)


def test_ablations_change_scores(ranker):
    no_ex = ranker.with_config(RankerConfig(**{**CFG.__dict__, "use_excluded": False}))
    assert scores(no_ex, ["HP:0001263"], ["HP:0001631"]) == pytest.approx(scores(no_ex, ["HP:0001263"]))
    no_freq = ranker.with_config(RankerConfig(**{**CFG.__dict__, "use_frequencies": False}))
    # every annotation at 0.5: GDD is then equally typical of SCN1A and TBX5
    s = scores(no_freq, ["HP:0001263"])
    assert s["SCN1A"] == pytest.approx(s["TBX5"])
    assert scores(ranker, ["HP:0001263"])["SCN1A"] > scores(ranker, ["HP:0001263"])["TBX5"]


def test_most_specific_terms_only(ranker):
    # Seizure is implied by Febrile seizure: giving both scores like Febrile seizure alone.
    assert scores(ranker, ["HP:0002373", "HP:0001250"]) == pytest.approx(scores(ranker, ["HP:0002373"]))


def test_explanation_content(ranker):
    g = next(x for x in ranker.rank(["HP:0002373", "HP:0001263", "HP:0000518"], ["HP:0001631"], top=3)
             if x.symbol == "SCN1A")
    ev = g.evidence
    assert ev.disease == "OMIM:100001" and ev.disease_name == "Toy epilepsy syndrome"
    by_term = {m.patient_term: m for m in ev.matched}
    assert by_term["HP:0002373"].annotated_term == "HP:0002373"
    assert by_term["HP:0002373"].patient_label == "Febrile seizure"
    assert by_term["HP:0001263"].annotated_label == "Global developmental delay"
    assert ev.unmatched == ["HP:0000518"]
    assert ev.excluded == []          # SCN1A's disease does not show ASD: nothing against it
    assert sum(m.contribution for m in ev.matched) + math.log10(0.1) + math.log10(1 / 0.7) == \
        pytest.approx(g.score, abs=1e-3)


def test_obsolete_and_alt_ids_are_mapped(ranker):
    ref = scores(ranker, ["HP:0001250"])
    assert scores(ranker, ["HP:0009999"]) == pytest.approx(ref)    # obsolete, replaced_by Seizure
    assert scores(ranker, ["HP:0001251"]) == pytest.approx(ref)    # alt id of Seizure
    q = ranker.query(["HP:0001251"])
    assert any("HP:0001251 mapped to HP:0001250" in n for n in q.notes)


@pytest.mark.parametrize("bad", ["HP:1234567", "foo"])
def test_unknown_id_is_an_error_naming_it(ranker, bad):
    with pytest.raises(GenedxError, match=bad):
        ranker.rank(["HP:0001250", bad])
    with pytest.raises(GenedxError, match=bad):
        ranker.rank(["HP:0001250"], [bad])


def test_no_phenotype_term_is_an_error(ranker):
    with pytest.raises(GenedxError, match="no present phenotypic-abnormality term"):
        ranker.rank(["HP:0000006"])          # an inheritance term only
    with pytest.raises(GenedxError, match="no present"):
        ranker.rank([])
    q = ranker.query(["HP:0000006", "HP:0001250"])
    assert any("not a phenotypic abnormality" in n for n in q.notes)


def test_top_and_tie_order(ranker):
    genes = ranker.rank(["HP:0000518"], top=2)
    assert len(genes) == 2
    # SCN1A and TBX5 tie (no match): alphabetical
    assert [g.symbol for g in ranker.rank(["HP:0000518"], top=3)][1:] == ["SCN1A", "TBX5"]
    assert ranker.rank_of(ranker.query(["HP:0000518"]), "CRYAB") == 1
    assert ranker.rank_of(ranker.query(["HP:0000518"]), "NOPE") is None


def test_predictor_contract(ranker):
    pred = RankerPredictor(ranker, explain=True)
    out = pred.predict([Case(id="c1", present=["HP:0000518"]), Case(id="c2", present=["HP:0001631"])], top=2)
    assert [p.case_id for p in out] == ["c1", "c2"]
    assert out[0].genes[0].symbol == "CRYAB" and out[0].genes[0].evidence is not None
    line = out[0].to_json()
    assert set(line) >= {"id", "genes", "predictor", "hpo_release"}
    assert line["predictor"] == "ranker" and line["options"]["profiles"] == "none"
    assert set(line["genes"][0]) == {"symbol", "score", "disease"}
    with pytest.raises(GenedxError, match="case bad"):
        pred.predict([Case(id="bad", present=["HP:7654321"])])


def test_config_validation():
    with pytest.raises(GenedxError):
        RankerConfig(no_match_lr=0)
    with pytest.raises(GenedxError):
        RankerConfig(profile_mode="x")


def test_max_propagation_option(ranker):
    r = ranker.with_config(RankerConfig(**{**CFG.__dict__, "propagation": "max"}))
    s = scores(r, ["HP:0000707"])
    bg = (VF + 0.1 + 0.2) / 3        # max instead of noisy-or up the ontology
    assert s["SCN1A"] == pytest.approx(math.log10(VF / bg), abs=1e-5)


def test_gene_union_rows(tmp_path):
    """With gene_rows, a gene with two diseases is also scored on their union (element-wise max)."""
    import shutil

    toy = tmp_path / "toy"
    shutil.copytree(TOY_HPO, toy)
    # CRYAB also causes the toy heart-hand syndrome: 2 diseases, Cataract in one, ASD in the other
    with open(toy / "genes_to_phenotype.txt", "a") as f:
        f.write("1410\tCRYAB\tHP:0001631\tAtrial septal defect\t-\tOMIM:100002\n")
    home = Home(tmp_path / "h").ensure()
    con = connect(home)
    build_kb(con, toy)
    plain = Ranker.load(con, config=CFG)
    union = Ranker.load(con, config=RankerConfig(**{**CFG.__dict__, "gene_rows": True}))
    con.close()
    terms = ["HP:0000518", "HP:0001631"]
    s_plain = {g.symbol: g.score for g in plain.rank(terms, top=3)}
    g = next(x for x in union.rank(terms, top=3) if x.symbol == "CRYAB")
    # each disease alone explains one term; the union explains both (LR 3 each, bg unchanged)
    assert g.score > s_plain["CRYAB"]
    assert g.score == pytest.approx(2 * math.log10(3), abs=1e-5)
    assert g.disease in {"OMIM:100002", "OMIM:100003"}
    assert any("all the gene's diseases" in n for n in g.evidence.notes)
    assert {m.annotated_term for m in g.evidence.matched} == set(terms)


def test_ancestor_decay_by_hand(ranker):
    # Febrile seizure vs CRYAB (annotated Seizure, one is_a step up): LR x decay^1.
    r = ranker.with_config(RankerConfig(**{**CFG.__dict__, "ancestor_decay": 0.5}))
    s = scores(r, ["HP:0002373"])
    assert s["CRYAB"] == pytest.approx(math.log10(0.5 * 0.2 / ((P1_SEIZ + 0.2) / 3)), abs=1e-5)
    assert s["SCN1A"] == pytest.approx(math.log10(3), abs=1e-5)        # exact match: no decay


def test_obsolete_without_replacement_is_an_error(ranker, monkeypatch):
    monkeypatch.setitem(ranker.kb.mapper._map, "HP:0009998", (None, "obsolete"))
    with pytest.raises(GenedxError, match="HP:0009998.*obsolete and has no replacement"):
        ranker.rank(["HP:0001250", "HP:0009998"])


def test_score_gene_anywhere(ranker):
    q = ranker.query(["HP:0000518"])
    top = ranker.rank_query(q, top=3)
    for g in top:
        one = ranker.score_gene(q, g.symbol)
        assert (one.symbol, one.score, one.disease) == (g.symbol, g.score, g.disease)
        assert one.evidence.matched == g.evidence.matched
    assert ranker.score_gene(q, "NOPE") is None
