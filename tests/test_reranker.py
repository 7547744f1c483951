"""The learned re-ranker (issue 13): features by hand on the toy ontology, the out-of-fold rule, a tiny
training run that saves, reloads and re-ranks, refused models, bad input."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from genedx.cases.model import Case
from genedx.errors import GenedxError
from genedx.home import Home, connect
from genedx.kb.build import build_kb
from genedx.rank.features import ABSENT_FEATURES, FEATURES, FeatureContext, candidate_features, select_features
from genedx.rank.ranker import Ranker, RankerConfig
from tests.conftest import TOY_HPO

CFG = RankerConfig(no_match_lr=0.1, default_frequency=0.5, max_frequency=0.95, not_lr=0.01,
                   excluded_weight=1.0, propagation="noisy_or", profile_smoothing=1.0, ancestor_decay=1.0,
                   case_prior=0.0)
SEIZURE, FEBRILE, GDD, ASD, VSD, CATARACT = ("HP:0001250", "HP:0002373", "HP:0001263", "HP:0001631",
                                             "HP:0001629", "HP:0000518")


def _ranker(home: Home, profiles: str = "none", cfg: RankerConfig = CFG) -> Ranker:
    con = connect(home, read_only=True)
    try:
        return Ranker.load(con, profiles=profiles, config=cfg)
    finally:
        con.close()


def test_features_by_hand(toy_home):
    # Toy KB, annotation-only, ancestor decay 1, no_match 0.1, absent weight 1 (values worked out in full):
    # P[SCN1A] Seizure 1-(1-.895)(1-.5)=.9475, GDD .5 (no frequency), nervous system .95 (cap);
    # P[TBX5] GDD .1, nervous .1; P[CRYAB] Seizure .2, nervous .2, Cataract .895.
    r = _ranker(toy_home)
    ctx = FeatureContext(r)
    q = r.query([SEIZURE, GDD], [CATARACT])
    c = candidate_features(ctx, q, top=50)
    assert c.genes == [g.symbol for g in r.rank_query(q, top=50, explain=False)] == ["SCN1A", "TBX5", "CRYAB"]
    f = {name: c.X[:, i] for i, name in enumerate(FEATURES)}
    bg_seiz, bg_gdd, bg_ns, bg_cat = (0.9475 + 0.2) / 3, (0.5 + 0.1) / 3, (0.95 + 0.1 + 0.2) / 3, 0.895 / 3
    free = -math.log10(1 - bg_cat)                               # an absent Cataract the row does not expect
    scn1a = math.log10(0.9475 / bg_seiz) + math.log10(0.5 / bg_gdd) + free
    tbx5 = math.log10(0.1 / bg_ns) + math.log10(0.1 / bg_gdd) + free     # Seizure only via the nervous system
    cat_lr = math.log10(1 - 0.895) - math.log10(1 - bg_cat)
    cryab = math.log10(0.2 / bg_seiz) + math.log10(0.2 / bg_ns) + cat_lr  # GDD only via the nervous system
    ap = lambda v: pytest.approx(v, abs=1e-4)  # noqa: E731
    assert list(f["score"]) == [ap(scn1a), ap(tbx5), ap(cryab)]
    assert list(f["rank"]) == [1, 2, 3]
    assert list(f["gap_top"]) == [0, ap(scn1a - tbx5), ap(scn1a - cryab)]
    assert list(f["gap_prev"]) == [0, ap(scn1a - tbx5), ap(tbx5 - cryab)]
    assert list(f["gap_next"]) == [ap(scn1a - tbx5), ap(tbx5 - cryab), 0]
    assert list(f["n_matched"]) == [2, 2, 2] and list(f["n_unmatched"]) == [0, 0, 0]
    assert list(f["n_direct"]) == [2, 1, 1]                       # TBX5 has GDD, CRYAB has Seizure
    assert list(f["n_best_terms"]) == [2, 0, 0]                   # SCN1A has the best LR on both terms
    assert list(f["present_max"]) == [ap(math.log10(0.5 / bg_gdd)), ap(math.log10(0.1 / bg_gdd)),
                                      ap(math.log10(0.2 / bg_seiz))]
    assert list(f["case_n_present"]) == [2, 2, 2] and list(f["case_n_absent"]) == [1, 1, 1]
    assert list(f["case_ic"]) == [ap(-math.log10(bg_seiz) - math.log10(bg_gdd))] * 3
    assert list(f["n_absent_against"]) == [0, 0, 1]
    assert list(f["absent_sum"]) == [ap(free), ap(free), ap(cat_lr)]
    assert list(f["score_noabsent"]) == [ap(scn1a - free), ap(tbx5 - free), ap(cryab - cat_lr)]
    assert list(f["prior"]) == [0, 0, 0] and list(f["score_annot"]) == [ap(scn1a), ap(tbx5), ap(cryab)]
    assert np.isnan(f["score_profile"]).all()                     # no profiles loaded
    assert list(f["n_diseases"]) == [1, 1, 1]
    # reverse coverage over closures, IC = -log10 bg (root 0). The case's closure is Seizure, GDD and the
    # nervous system; SCN1A's adds Febrile seizure, TBX5's the heart terms, CRYAB's the eye terms.
    ic = {t: -math.log10(b) for t, b in {"s": bg_seiz, "g": bg_gdd, "n": bg_ns, "feb": 0.5 / 3, "cv": 0.95 / 3,
                                         "vsd": 0.895 / 3, "asd": 0.9 / 3, "eye": 0.895 / 3, "cat": bg_cat}.items()}
    case = ic["s"] + ic["g"] + ic["n"]
    gic = [case / (case + ic["feb"]),
           (ic["g"] + ic["n"]) / (case + ic["cv"] + ic["vsd"] + ic["asd"]),
           (ic["s"] + ic["n"]) / (case + ic["eye"] + ic["cat"])]
    assert list(f["gic_sim"]) == [ap(v) for v in gic]
    assert list(f["gic_sim_rel"]) == [ap(v - gic[0]) for v in gic]
    assert list(f["row_ic_covered"]) == [ap(gic[0]), ap((ic["g"] + ic["n"]) / (ic["g"] + ic["n"] + ic["cv"] + ic["vsd"] + ic["asd"])),
                                         ap((ic["s"] + ic["n"]) / (ic["s"] + ic["n"] + ic["eye"] + ic["cat"]))]
    shown = 0.95 * ic["n"] + 0.9475 * ic["s"] + 0.5 * ic["g"]
    assert f["row_freq_covered"][0] == ap(shown / (shown + 0.5 * ic["feb"]))
    assert list(f["sys_p_mean"]) == [ap(0.95), ap(0.1), ap(0.2)]   # P of the nervous system, the one system touched
    assert list(f["sys_missing"]) == [0, 1, 1]                     # TBX5: heart at .95, CRYAB: eye at .895
    # without absent terms the absent features say so (0 / missing), not stale values
    c0 = candidate_features(ctx, r.query([SEIZURE, GDD]), top=2)
    f0 = {name: c0.X[:, i] for i, name in enumerate(FEATURES)}
    assert len(c0.genes) == 2 and list(f0["case_n_absent"]) == [0, 0] and np.isnan(f0["absent_min"]).all()


def test_feature_selection():
    assert set(select_features(["absent"])) == set(FEATURES) - ABSENT_FEATURES
    assert "rank" not in select_features(["rank"])
    with pytest.raises(GenedxError, match="unknown feature"):
        select_features(["nope"])


# --------------------------------------------------------------------------------------- training
def _add_case(con, cid, gene, present, absent=(), split="train", pub=None):
    con.execute('INSERT INTO "case" (id, source, gene, publication) VALUES (?, ?, ?, ?)',
                [cid, "phenopacket", gene, pub or cid])
    for t in present:
        con.execute("INSERT INTO case_phenotype VALUES (?, ?, false)", [cid, t])
    for t in absent:
        con.execute("INSERT INTO case_phenotype VALUES (?, ?, true)", [cid, t])
    con.execute("INSERT INTO case_split (case_id, split, split_by, seed) VALUES (?, ?, 'publication', 0)",
                [cid, split])


PATTERNS = {"SCN1A": ([SEIZURE, GDD], [FEBRILE]), "TBX5": ([ASD, VSD], [GDD]), "CRYAB": ([CATARACT], [SEIZURE]),
            "NEWG1": ([CATARACT, VSD], [])}


@pytest.fixture(scope="module")
def rr_home(tmp_path_factory) -> Home:
    """Toy KB + 48 real train cases over 24 publications (two cases each) + 4 validation cases."""
    h = Home(tmp_path_factory.mktemp("toy_rr")).ensure()
    con = connect(h)
    build_kb(con, TOY_HPO)
    rng = np.random.default_rng(0)
    i = 0
    for p in range(24):
        gene = list(PATTERNS)[p % 4]
        for _ in range(2):
            core, extra = PATTERNS[gene]
            present = [t for t in core if rng.random() < 0.8] or core[:1]
            present += [t for t in extra if rng.random() < 0.3]
            absent = [SEIZURE] if gene == "TBX5" and rng.random() < 0.5 else []
            _add_case(con, f"t{i:02d}", gene, present, absent, pub=f"pub{p}")
            i += 1
    for j, gene in enumerate(PATTERNS):
        _add_case(con, f"v{j}", gene, PATTERNS[gene][0], split="validation")
    con.close()
    return h


def _recipe(tmp_path, **kw):
    from genedx.train.reranker import RerankerRecipe
    base = dict(output_dir=str(tmp_path / "rr"), top_k=4, folds=3, holdout=0.3, min_data_in_leaf=2,
                num_leaves=4, max_rounds=20, early_stopping=5, learning_rate=0.2)
    base.update(kw)
    return RerankerRecipe(**base)


def test_out_of_fold_profiles(rr_home, tmp_path, monkeypatch):
    """Every fold's profiles leave out exactly that fold's cases, and a case's features see a profile
    without its own publication (NEWG1 is findable only through profiles)."""
    import genedx.rank.profiles as profiles_mod
    from genedx.rank.kbdata import load_kb_data
    from genedx.train import reranker as tr

    seen: list[set[str]] = []
    real = profiles_mod.load_case_profiles

    def spy(con, kb, which="train", case_ids=None):
        seen.append(set(case_ids))
        return real(con, kb, which, case_ids=case_ids)

    monkeypatch.setattr(profiles_mod, "load_case_profiles", spy)
    recipe = _recipe(tmp_path, absent_copies=False, foreign_copies=False)
    con = connect(rr_home, read_only=True)
    try:
        from genedx.cases.store import load_gradable_cases
        kb = load_kb_data(con)
        cases = load_gradable_cases(con, "train", include_simulated=False)
        groups, problems, sizes = tr.build_groups(con, kb, cases, recipe, log=lambda m: None)
    finally:
        con.close()
    assert not problems and sum(g.variant == "given" for g in groups) == len(cases) == 48
    assert {g.variant for g in groups} <= {"given", "other_absent"}   # held-out cases: also foreign absents
    fold = {c.id: tr.fold_of(c.publication, recipe.seed, recipe.folds) for c in cases}
    assert len(set(fold.values())) == 3                        # the folds are not empty
    assert len(seen) == 3
    for k, ids in enumerate(seen):
        in_fold = {cid for cid, f in fold.items() if f == k}
        assert ids.isdisjoint(in_fold) and ids | in_fold == set(fold)
        assert sizes[f"fold{k}"] == len(ids)
    # NEWG1 cases: the profile behind their features counts only NEWG1 cases of other folds
    col = FEATURES.index("log_profile_cases")
    by_id = {c.id: c for c in cases}
    for g in groups:
        c = by_id[g.case_id]
        if c.gene != "NEWG1":
            continue
        others = sum(1 for o in cases if o.gene == "NEWG1" and fold[o.id] != fold[c.id])
        row = list(np.flatnonzero(g.y))
        if others == 0:
            assert not row                                     # no profile: NEWG1 is not a candidate at all
        else:
            assert g.X[row[0], col] == pytest.approx(np.log10(1 + others))


def test_tiny_training_saves_reloads_and_reranks(rr_home, tmp_path):
    from genedx.predictors import load_predictor
    from genedx.rank.reranker import RerankerModel
    from genedx.train.reranker import run_reranker
    from genedx.train.runs import get_run, run_metrics

    res = run_reranker(_recipe(tmp_path), rr_home, log=lambda m: None)
    meta = json.loads((tmp_path / "rr" / "reranker.json").read_text())
    from genedx.train.reranker import HABIT_FEATURES
    assert meta["features"] == list(select_features(HABIT_FEATURES)) and meta["hpo_release"] == "2099-01-01" and meta["top_k"] == 4
    assert meta["data"]["real_cases"] == 48 and meta["best_iteration"] == res.best_iteration >= 1
    model = RerankerModel.load(tmp_path / "rr", hpo_release="2099-01-01")
    assert model.booster.num_feature() == len(FEATURES) - len(HABIT_FEATURES)
    assert res.summary["groups"] > 48                                  # as given + without absent + foreign absent
    con = connect(rr_home, read_only=True)
    try:
        run = get_run(con, res.run_id)
        assert run.kind == "reranker" and run.model_dir == str(tmp_path / "rr")
        m = run_metrics(con, res.run_id)
        assert "holdout_given/reranker_top1" in m and "importance/score" in m
        pred = load_predictor(f"reranker:{tmp_path / 'rr'}", con, rr_home, explain=True)
    finally:
        con.close()
    case = Case("new", present=[CATARACT, VSD])
    p = pred.predict([case], top=4)[0]
    assert p.predictor == "reranker" and p.options["profiles"] == "train" and p.options["top_k"] == 4
    assert sorted(g.symbol for g in p.genes) == ["CRYAB", "NEWG1", "SCN1A", "TBX5"]
    scores = [g.score for g in p.genes]
    assert scores == sorted(scores, reverse=True)
    top = p.genes[0]
    assert top.evidence is not None and top.evidence.matched          # the ranker's evidence is kept
    assert any(n.startswith("order from the learned re-ranker") for n in top.evidence.notes)
    # rerank() is the same list, from a Case or a resolved Query
    assert [g.symbol for g in pred.rerank(case, top=4)] == [g.symbol for g in p.genes]
    q = pred.ranker.query(case.present, case.absent)
    assert [g.symbol for g in pred.rerank(q, top=2, explain=False)] == [g.symbol for g in p.genes[:2]]
    # more genes than the model's K: the rest follow in ranker order, below
    assert len(pred.rerank(case, top=10)) == len(pred.ranker.genes)


def test_missing_or_incompatible_model(rr_home, tmp_path):
    from genedx.predictors import load_predictor
    from genedx.rank.reranker import RerankerModel
    from genedx.train.reranker import run_reranker

    con = connect(rr_home, read_only=True)
    try:
        with pytest.raises(GenedxError, match="no re-ranker at") as e:
            load_predictor(f"reranker:{tmp_path / 'none'}", con, rr_home)
        assert "\n" not in str(e.value)
        with pytest.raises(GenedxError, match="no re-ranker at"):
            load_predictor("reranker", con, rr_home)               # default folder, nothing trained
    finally:
        con.close()
    run_reranker(_recipe(tmp_path, max_rounds=3), rr_home, log=lambda m: None, store=False)
    good = tmp_path / "rr"
    for name, change, msg in (("rel", lambda m: m | {"hpo_release": "2000-01-01"}, "trained on HPO 2000-01-01"),
                              ("feat", lambda m: m | {"features": m["features"][:-1] + ["old_feature"]}, "old_feature"),
                              ("fmt", lambda m: m | {"format": 99}, "format 99")):
        bad = tmp_path / name
        shutil.copytree(good, bad)
        meta = json.loads((bad / "reranker.json").read_text())
        (bad / "reranker.json").write_text(json.dumps(change(meta)))
        with pytest.raises(GenedxError, match=msg) as e:
            RerankerModel.load(bad, hpo_release="2099-01-01")
        assert "\n" not in str(e.value)
    (tmp_path / "fmt" / "reranker.json").write_text("{not json")
    with pytest.raises(GenedxError, match="not valid JSON"):
        RerankerModel.load(tmp_path / "fmt")


def test_bad_input_per_record_and_nothing_stored(rr_home, tmp_path):
    from genedx.predictors import load_predictor
    from genedx.rank.batch import score_cases
    from genedx.train.reranker import run_reranker

    run_reranker(_recipe(tmp_path, max_rounds=3), rr_home, log=lambda m: None, store=False)
    con = connect(rr_home, read_only=True)
    try:
        pred = load_predictor(f"reranker:{tmp_path / 'rr'}", con, rr_home)
    finally:
        con.close()
    with pytest.raises(GenedxError, match=r"case bad: unknown HPO term 'HP:1234567'"):
        pred.predict([Case("bad", present=["HP:1234567"])])
    with pytest.raises(GenedxError, match="case noterm: no present phenotypic-abnormality term"):
        pred.predict([Case("noterm", present=["HP:0000006"])])
    rep = score_cases([Case("ok", present=[SEIZURE]), Case("bad", present=["HP:1234567"])], pred,
                      tmp_path / "out.jsonl", top=3)
    assert rep.scored == 1 and rep.skipped == 1 and "bad" in str(rep.problems[0])
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["ok"]
    # a training run that cannot train stores nothing: no model folder, no run row
    empty = Home(tmp_path / "empty").ensure()
    c = connect(empty)
    build_kb(c, TOY_HPO)
    c.close()
    with pytest.raises(GenedxError, match="no stored real train cases"):
        run_reranker(_recipe(tmp_path, output_dir=str(tmp_path / "never")), empty, log=lambda m: None)
    assert not (tmp_path / "never").exists()
    c = connect(empty, read_only=True)
    assert c.execute("SELECT count(*) FROM run").fetchone()[0] == 0
    c.close()


def test_recipe_is_checked(tmp_path):
    from genedx.train.recipes import load_recipe
    from genedx.train.reranker import RerankerRecipe

    r = load_recipe(RerankerRecipe, "training/configs/reranker.yaml", ["top_k=30", "exclude_features=[absent]"])
    assert r.top_k == 30 and r.exclude_features == ["absent"] and r.num_threads == 1
    with pytest.raises(GenedxError, match="folds"):
        load_recipe(RerankerRecipe, None, ["folds=1"])
    with pytest.raises(GenedxError, match="unknown feature"):
        load_recipe(RerankerRecipe, None, ["exclude_features=[nope]"])


def test_cli_train_rank_runs_show_and_app_choice(rr_home, run_cli, capsys, tmp_path):
    """`genedx train reranker` into the default folder, `rank --predictor reranker --explain`,
    `runs show`, `eval --predictor reranker`; the app then lists the re-ranker first."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from app import lib

    rr_home = Home(shutil.copytree(rr_home.root, tmp_path / "home"))     # this test writes a model and runs
    home = ["--home", str(rr_home.root)]
    sets = ["--set", "top_k=4", "--set", "folds=3", "--set", "holdout=0.3", "--set", "min_data_in_leaf=2",
            "--set", "num_leaves=4", "--set", "max_rounds=10", "--set", "early_stopping=3"]
    assert lib.predictor_choices(rr_home)[0] == lib.RANKER
    assert run_cli([*home, "train", "reranker", "--config", "training/configs/reranker.yaml", *sets]) == 0
    out = capsys.readouterr().out
    run_id = out.split("run ")[1].split()[0]
    assert (rr_home.models_dir / "reranker" / "reranker.json").is_file()
    assert lib.predictor_choices(rr_home)[:2] == [lib.RERANKER, lib.RANKER]
    assert run_cli([*home, "rank", CATARACT, VSD, "--predictor", "reranker", "--explain", "--top", "3"]) == 0
    cap = capsys.readouterr()
    assert "genedx re-ranker" in cap.out and "order from the learned re-ranker" in cap.out + cap.err
    assert run_cli([*home, "runs", "show", run_id]) == 0
    shown = capsys.readouterr().out
    assert "holdout_given" in shown and "importance" in shown
    assert run_cli([*home, "eval", "--predictor", "reranker", "--cases", "validation", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["n"] == 4 and ev["predictor"] == "reranker"
    assert run_cli([*home, "rank", CATARACT, "--predictor", "reranker:/nonexistent/rr"]) == 1  # a user error (README: exit codes)
    assert "no re-ranker at /nonexistent/rr" in capsys.readouterr().err


def test_model_prompt_takes_reranker_candidates(rr_home, tmp_path):
    """Issue 13 item 5: retrieval prompts list the re-ranker's order (with the ranker's evidence), and a
    model predictor asked for ``candidates=reranker:DIR`` builds its prompts from it."""
    from genedx.model.prompts import PromptBuilder, load_labels
    from genedx.predictors import load_predictor
    from genedx.train.reranker import run_reranker
    from tests.model_fixtures import make_tiny_model

    run_reranker(_recipe(tmp_path), rr_home, log=lambda m: None)
    tiny = make_tiny_model(rr_home, tmp_path / "tiny")
    con = connect(rr_home, read_only=True)
    try:
        rr = load_predictor(f"reranker:{tmp_path / 'rr'}", con, rr_home, explain=True)
        labels = load_labels(con)
        case = Case("new", present=[CATARACT, VSD], absent=[SEIZURE])
        order = [g.symbol for g in rr.rerank(case, top=4)]
        pb = PromptBuilder(labels, "retrieval", rr.ranker, top_k=4, layout="compact", reranker=rr)
        assert [g.symbol for g in pb.ranked(case)] == order
        assert all(g.evidence is not None for g in pb.ranked(case))      # the ranker's evidence per candidate
        ctx = pb.context(case)
        assert [ctx.index(s) for s in order] == sorted(ctx.index(s) for s in order)   # listed in that order
        with pytest.raises(GenedxError, match="own ranker"):
            PromptBuilder(labels, "retrieval", Ranker.load(con, profiles="none"), reranker=rr)
        model = load_predictor(f"model:{tiny}", con, rr_home, mode="retrieval", batch_size=2, max_new_tokens=4,
                               candidates=f"reranker:{tmp_path / 'rr'}")
        assert model.prompts.reranker is not None and model.prompts.top_k == 10
        assert [g.symbol for g in model.prompts.ranked(case)][:4] == order
        p = model.predict([case], top=4)[0]
        assert p.options["candidates"] == f"reranker:{tmp_path / 'rr'}"
        with pytest.raises(GenedxError, match="retrieval mode only"):
            load_predictor(f"model:{tiny}", con, rr_home, mode="closed", candidates=f"reranker:{tmp_path / 'rr'}")
        with pytest.raises(GenedxError, match="unknown candidate source"):
            load_predictor(f"model:{tiny}", con, rr_home, mode="retrieval", candidates="oracle")
    finally:
        con.close()
