"""`genedx train reranker`: LightGBM LambdaRank over the phenotype ranker's top-K candidates.

Training features are built **out of fold by publication**: the stored real train cases are cut into
``folds`` groups of publications; the cases of fold k are ranked with gene profiles (and the gene
prior) built from the other folds only, so no case is ever scored against a profile that contains
it or a sibling from its publication. Scoring new cases later uses profiles of all train cases,
which is what the out-of-fold features imitate.

A share ``holdout`` of the train publications is held out for early stopping (and for the run's
metrics); with ``refit`` the final model is trained on every group for the chosen number of rounds.

In phenopacket-store most absent terms are features of the patient's own disease that he lacks (a
curation habit), so by default every training case is also added with its absent terms removed
(``absent_copies``): the model must rank well without them too (docs/reranker.md).
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from genedx.errors import GenedxError
from genedx.home import Home, connect

# Left out by default: they count the absent terms that argue against a gene, which in phenopacket-store
# mostly points at the true gene (curation habit); chosen on train-internal holdout numbers (RESULTS.md).
HABIT_FEATURES = ("n_absent_against", "frac_absent_against", "absent_min")
FIT_VARIANTS = ("given", "no_absent")        # "other_absent" groups: evaluation (and training with foreign_copies)
HOLDOUT_METRICS = ("ranker_top1", "ranker_top5", "reranker_top1", "reranker_top5")


@dataclass
class RerankerRecipe:
    output_dir: Optional[str] = field(default=None, metadata={"help": "model folder (default <home>/models/reranker)"})
    name: str = field(default="reranker", metadata={"help": "run name"})
    top_k: int = field(default=50, metadata={"help": "ranker candidates the model re-orders"})
    folds: int = field(default=10, metadata={"help": "publication folds for out-of-fold profiles"})
    holdout: float = field(default=0.15, metadata={"help": "share of train publications held out for early stopping"})
    absent_copies: bool = field(default=True, metadata={"help": "also train on every case with its absent terms removed"})
    foreign_copies: bool = field(default=True, metadata={"help": "also train on every case with the absent terms of a case of another gene"})
    absent_drop: float = field(default=0.0, metadata={"help": "drop each absent term with this probability (as-given copy)"})
    exclude_features: list = field(default_factory=lambda: list(HABIT_FEATURES),
                                   metadata={"help": "feature names or groups (absent) left out"})
    simulated: int = field(default=0, metadata={"help": "simulated train cases added (a seeded sample; 0 = none)"})
    max_cases: Optional[int] = field(default=None, metadata={"help": "use only a seeded sample of the real train cases"})
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_data_in_leaf: int = 50
    feature_fraction: float = 0.9
    lambda_l2: float = 1.0
    max_rounds: int = 1000
    early_stopping: int = 50
    refit: bool = field(default=True, metadata={"help": "retrain on all groups for the early-stopped number of rounds"})
    num_threads: int = field(default=1, metadata={"help": "LightGBM threads (the machine is shared)"})
    seed: int = 0

    def __post_init__(self) -> None:
        if self.top_k < 2:
            raise GenedxError("top_k must be at least 2")
        if self.folds < 2:
            raise GenedxError("folds must be at least 2 (out-of-fold profiles)")
        if not 0 < self.holdout < 1:
            raise GenedxError("holdout must be in (0, 1)")
        if not 0 <= self.absent_drop <= 1:
            raise GenedxError("absent_drop must be in [0, 1]")
        from genedx.rank.features import select_features
        select_features(list(self.exclude_features))   # unknown names fail before any work


@dataclass
class RerankerResult:
    run_id: str
    model_dir: str
    train_seconds: float
    best_iteration: int
    holdout: dict[str, dict[str, float]]           # variant -> metric -> value
    summary: dict[str, Any]
    importance: dict[str, float]
    skipped: list[str] = field(default_factory=list)


@dataclass
class _Group:
    case_id: str
    variant: str            # "given" | "no_absent"
    holdout: bool
    X: np.ndarray
    y: np.ndarray
    simulated: bool = False

    @property
    def positive(self) -> bool:
        return bool(self.y.any())


def _unit(seed: int, key: str) -> float:
    from genedx.cases.split import _unit as unit
    return unit(seed, key)


def fold_of(publication: str, seed: int, folds: int) -> int:
    """The out-of-fold group of a publication (deterministic in seed). Salted: the stored split hashes
    the same publication ids with the split seed, so unsalted folds would inherit its cut (fold 0 empty)."""
    return min(int(_unit(seed, f"reranker-fold\x00{publication}") * folds), folds - 1)


def is_holdout(publication: str, seed: int, share: float) -> bool:
    """Whether a publication's cases are held out for early stopping (salted like :func:`fold_of`)."""
    return _unit(seed, f"reranker-holdout\x00{publication}") < share


def build_groups(con, kb, cases, recipe: RerankerRecipe, log: Callable[[str], None],
                 progress: Callable[[int, int], None] | None = None,
                 simulated: list | None = None) -> tuple[list[_Group], list[str], dict[str, int]]:
    """Feature groups (one per case and variant) with out-of-fold profiles; returns groups, problems and
    the profile size each fold used."""
    from genedx.rank.features import FeatureContext, candidate_features
    from genedx.rank.profiles import load_case_profiles
    from genedx.rank.ranker import Ranker

    rng = random.Random(recipe.seed)
    pub = {c.id: (c.publication or c.id) for c in cases}
    fold = {c.id: fold_of(pub[c.id], recipe.seed, recipe.folds) for c in cases}
    donors = [c for c in cases if c.absent]
    groups: list[_Group] = []
    problems: list[str] = []
    fold_sizes: dict[str, int] = {}
    total = len(cases) + len(simulated or [])
    done = 0

    def add(ranker_ctx, case, holdout: bool, sim: bool = False) -> None:
        absent = list(case.absent)
        if recipe.absent_drop and absent and not holdout:   # held-out cases stay as given (they are measured)
            absent = [a for a in absent if rng.random() >= recipe.absent_drop]
        variants = [("given", absent)]
        if recipe.absent_copies and case.absent:
            variants.append(("no_absent", []))
        if (holdout or recipe.foreign_copies) and donors:
            # absent terms of a case of another gene: negatives that are not this patient's own disease
            # features (roughly what a clinician rules out). Always evaluated on the holdout; trained on
            # with foreign_copies, so "the absent terms argue against it" stops meaning "it is the answer"
            other = rng.choice(donors)
            if other.gene == case.gene:
                other = next((d for d in donors if d.gene != case.gene), other)
            variants.append(("other_absent", [a for a in other.absent if a not in case.present]))
        for name, ab in variants:
            try:
                q = ranker_ctx.ranker.query(case.present, ab)
            except GenedxError as e:
                problems.append(f"case {case.id}: {e}; skipped")
                return
            cs = candidate_features(ranker_ctx, q, recipe.top_k)
            y = np.array([g == case.gene for g in cs.genes], dtype=np.int32)
            groups.append(_Group(case.id, name, holdout, cs.X, y, sim))

    for k in range(recipe.folds):
        inside = [c.id for c in cases if fold[c.id] != k]
        prof = load_case_profiles(con, kb, "train", case_ids=inside)
        ranker = Ranker(kb, prof)
        ctx = FeatureContext(ranker)
        # the rule itself, checked on every fold: no case of fold k is inside its profiles
        fold_sizes[f"fold{k}"] = prof.total_cases if prof is not None else 0
        for c in cases:
            if fold[c.id] != k:
                continue
            add(ctx, c, is_holdout(pub[c.id], recipe.seed, recipe.holdout))
            done += 1
            if progress:
                progress(done, total)
        log(f"fold {k + 1}/{recipe.folds}: profiles from {fold_sizes[f'fold{k}']} cases, "
            f"{sum(1 for c in cases if fold[c.id] == k)} cases ranked")
    if simulated:
        # simulated cases never feed profiles, so every train profile is out of fold for them
        prof = load_case_profiles(con, kb, "train", case_ids=[c.id for c in cases])
        ctx = FeatureContext(Ranker(kb, prof))
        for c in simulated:
            add(ctx, c, False, sim=True)
            done += 1
            if progress:
                progress(done, total)
    return groups, problems, fold_sizes


def _stack(groups: list[_Group], cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    X = np.vstack([g.X for g in groups])[:, cols]
    y = np.concatenate([g.y for g in groups])
    return X, y, [len(g.y) for g in groups]


def _params(recipe: RerankerRecipe) -> dict[str, Any]:
    return {"objective": "lambdarank", "metric": "ndcg", "eval_at": [1, 5], "learning_rate": recipe.learning_rate,
            "num_leaves": recipe.num_leaves, "min_data_in_leaf": recipe.min_data_in_leaf,
            "feature_fraction": recipe.feature_fraction, "lambda_l2": recipe.lambda_l2,
            "num_threads": recipe.num_threads, "seed": recipe.seed, "deterministic": True,
            "force_row_wise": True, "verbosity": -1}


def topk_hits(groups: list[_Group], margins: list[np.ndarray] | None, k: int) -> float:
    """Share of groups whose true gene is in the first ``k`` (ranker order when ``margins`` is None)."""
    hits = 0
    for i, g in enumerate(groups):
        if not g.positive:
            continue
        order = np.arange(len(g.y)) if margins is None else np.argsort(-margins[i], kind="stable")
        hits += int(g.y[order[:k]].any())
    return hits / max(len(groups), 1)


def run_reranker(recipe: RerankerRecipe, home: Home, log: Callable[[str], None] = print,
                 progress: Callable[[int, int], None] | None = None, store: bool = True) -> RerankerResult:
    """Build out-of-fold features, train, save the model and (``store``) record the run."""
    import lightgbm as lgb

    from genedx.cases.store import load_gradable_cases
    from genedx.home import require_kb
    from genedx.rank.features import feature_columns, select_features
    from genedx.rank.kbdata import load_kb_data
    from genedx.rank.ranker import RankerConfig
    from genedx.rank.reranker import RerankerModel, default_model_dir
    from genedx.train.runs import finish_run, new_run_id, record_metrics, start_run, write

    t0 = time.perf_counter()
    features = select_features(list(recipe.exclude_features))
    cols = feature_columns(features)
    out = Path(recipe.output_dir).expanduser() if recipe.output_dir else default_model_dir(home)
    con = connect(home, read_only=True)
    try:
        release = require_kb(con)
        kb = load_kb_data(con)
        cases = load_gradable_cases(con, "train", include_simulated=False)
        if recipe.max_cases and recipe.max_cases < len(cases):
            keep = set(random.Random(recipe.seed).sample(range(len(cases)), recipe.max_cases))
            cases = [c for i, c in enumerate(cases) if i in keep]
        if not cases:
            raise GenedxError("no stored real train cases with a gene: import cases and `genedx data split` first")
        sims: list = []
        if recipe.simulated:
            all_sim = [c for c in load_gradable_cases(con, "train") if c.source == "simulated"]
            sims = random.Random(recipe.seed).sample(all_sim, min(recipe.simulated, len(all_sim)))
        log(f"{len(cases)} real train cases from {len({c.publication or c.id for c in cases})} publications"
            + (f", {len(sims)} simulated" if sims else "") + f"; top-{recipe.top_k} candidates, {recipe.folds} folds")
        groups, problems, fold_sizes = build_groups(con, kb, cases, recipe, log, progress, sims)
    finally:
        con.close()
    for p in problems:
        log(f"problem: {p}")
    fit_variants = FIT_VARIANTS + (("other_absent",) if recipe.foreign_copies else ())
    fit = [g for g in groups if not g.holdout and g.positive and g.variant in fit_variants]
    val = [g for g in groups if g.holdout and g.positive and g.variant in fit_variants]
    if not fit or not val:
        raise GenedxError(f"not enough training groups with the true gene in the top {recipe.top_k} "
                          f"({len(fit)} to fit, {len(val)} held out): more cases or a larger top_k")
    feat_seconds = time.perf_counter() - t0
    params = _params(recipe)
    Xf, yf, gf = _stack(fit, cols)
    Xv, yv, gv = _stack(val, cols)
    dtrain = lgb.Dataset(Xf, yf, group=gf, feature_name=list(features), free_raw_data=False)
    dval = lgb.Dataset(Xv, yv, group=gv, reference=dtrain)
    booster = lgb.train(params, dtrain, num_boost_round=recipe.max_rounds, valid_sets=[dval], valid_names=["holdout"],
                        callbacks=[lgb.early_stopping(recipe.early_stopping, first_metric_only=True, verbose=False)])
    best = int(booster.best_iteration or recipe.max_rounds)
    log(f"early stopping: {best} rounds (holdout ndcg@1 {booster.best_score['holdout']['ndcg@1']:.3f})")

    # held-out metrics over every held-out group (a group without the true gene in the top-K is a miss)
    held: dict[str, dict[str, float]] = {}
    for variant in ("given", "no_absent", "other_absent"):
        hg = [g for g in groups if g.holdout and g.variant == variant]
        if not hg:
            continue
        m = [booster.predict(g.X[:, cols], num_iteration=best, num_threads=recipe.num_threads) for g in hg]
        held[variant] = {"n": float(len(hg)), "ranker_top1": topk_hits(hg, None, 1), "ranker_top5": topk_hits(hg, None, 5),
                         "reranker_top1": topk_hits(hg, m, 1), "reranker_top5": topk_hits(hg, m, 5)}
        log(f"holdout ({variant}, {len(hg)} cases): top@1 ranker {100 * held[variant]['ranker_top1']:.1f}% -> "
            f"re-ranker {100 * held[variant]['reranker_top1']:.1f}%, top@5 {100 * held[variant]['ranker_top5']:.1f}% -> "
            f"{100 * held[variant]['reranker_top5']:.1f}%")
    if recipe.refit:
        Xa, ya, ga = _stack(fit + val, cols)
        booster = lgb.train(params, lgb.Dataset(Xa, ya, group=ga, feature_name=list(features)), num_boost_round=best)
    gain = booster.feature_importance(importance_type="gain", iteration=None if recipe.refit else best)
    importance = {f: float(v / max(gain.sum(), 1e-12)) for f, v in zip(features, gain)}
    seconds = time.perf_counter() - t0
    summary = {"real_cases": len(cases), "publications": len({c.publication or c.id for c in cases}),
               "simulated_cases": len(sims), "groups": sum(g.variant in fit_variants for g in groups), "groups_with_true_gene": len(fit) + len(val),
               "fit_groups": len(fit), "holdout_groups": len(val), "skipped": len(problems),
               "profile_cases_per_fold": fold_sizes, "feature_seconds": round(feat_seconds, 1),
               "train_seconds": round(seconds, 1)}
    run_id = new_run_id("reranker")
    model = RerankerModel(booster if recipe.refit else _trimmed(booster, best), features, release, recipe.top_k, "train",
                          {"recipe": asdict(recipe), "params": params, "best_iteration": best, "data": summary,
                           "holdout": held, "importance": importance, "run_id": run_id,
                           "ranker_config": asdict(RankerConfig())})
    model.save(out)
    log(f"saved {out} ({seconds:.0f} s)")
    if store:
        def rec(c) -> None:
            start_run(c, run_id, "reranker", recipe.name, asdict(recipe) | {"n_train": len(cases)},
                      hpo_release=release, predictor=f"reranker:{out}")
            for variant, vals in held.items():
                record_metrics(c, run_id, best, f"holdout_{variant}", {k: vals[k] for k in HOLDOUT_METRICS})
            record_metrics(c, run_id, best, "importance", importance)
            record_metrics(c, run_id, best, "train", {"seconds": seconds, "groups": float(summary["groups"])})
            finish_run(c, run_id, model_dir=str(out))
        write(home, rec)
    return RerankerResult(run_id, str(out), seconds, best, held, summary, importance, problems)


def _trimmed(booster: Any, best: int) -> Any:
    """The booster cut to its best iteration (so a saved model predicts what was measured)."""
    import lightgbm as lgb
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
