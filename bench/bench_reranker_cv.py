"""Cross-validation of re-ranker variants on the train split only (issue 13): the yardstick for recipe changes.

    GENEDX_HOME=/work/exp/home OMP_NUM_THREADS=1 python bench/bench_reranker_cv.py \
        [--config training/configs/reranker.yaml] [--set key=value ...] [--groups CACHE.pkl] \
        [--exclude f1,f2] [--params '{"num_leaves": 7}'] [--rounds 300,500]

The trainer's own holdout (15% of train publications, ~160) is too noisy to choose a recipe by, and
the validation split must not be tuned on. This script builds the recipe's out-of-fold feature groups
of **all** train cases once (``genedx.train.reranker.build_groups``: every case ranked with profiles
from the other publication folds; cached with ``--groups``), then runs a 5-fold cross-validation by
publication (a fold salt other than the profile folds'): LightGBM is trained on four folds' groups
(the recipe's variants: as given, absent removed, absent of another case) and top@1 of the ranker and
the re-ranker is measured on the fifth, for cases as given, with every absent term removed, and with
another case's absent terms, plus cases whose gene has / has no profile. Intervals: paired bootstrap
over publications. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from bench_reranker import paired_by_publication  # noqa: E402  (bench/ is the script dir)
from genedx.cases.store import load_gradable_cases  # noqa: E402
from genedx.home import connect, resolve_home  # noqa: E402
from genedx.rank.features import FEATURES, select_features  # noqa: E402
from genedx.rank.kbdata import load_kb_data  # noqa: E402
from genedx.train.recipes import load_recipe  # noqa: E402
from genedx.train.reranker import FIT_VARIANTS, RerankerRecipe, _params, build_groups, fold_of  # noqa: E402

CV_FOLDS = 5
CV_SALT = 1          # not the profile folds' seed: the CV cut is not the out-of-fold profile cut
SUBSETS = ("given", "absent_removed", "other_absent", "gene_with_profile", "gene_without_profile")


def load_groups(recipe: RerankerRecipe, cache: Path | None) -> dict:
    if cache and cache.exists():
        return pickle.load(cache.open("rb"))
    con = connect(resolve_home(None), read_only=True)
    try:
        kb = load_kb_data(con)
        cases = load_gradable_cases(con, "train", include_simulated=False)
        groups, problems, _ = build_groups(con, kb, cases, recipe, print)
    finally:
        con.close()
    data = {"groups": groups, "pub": {c.id: c.publication or c.id for c in cases}, "features": list(FEATURES),
            "problems": problems}
    if cache:
        pickle.dump(data, cache.open("wb"))
    return data


def cross_validate(data: dict, recipe: RerankerRecipe, exclude: list[str], params: dict, rounds: list[int]) -> dict:
    """Subset -> {"ranker": hits, round: hits, "pubs": publications}, each a list over the test groups."""
    import lightgbm as lgb

    names, groups, pub = data["features"], data["groups"], data["pub"]
    feats = select_features(exclude)
    missing = [f for f in feats if f not in names]
    if missing:
        raise SystemExit(f"the groups cache was built without {missing}: delete it so that it is rebuilt")
    cols = np.array([names.index(f) for f in feats])
    lpc = names.index("log_profile_cases")
    fit_variants = set(FIT_VARIANTS) | ({"other_absent"} if recipe.foreign_copies else set())
    fold = {g.case_id: fold_of(pub[g.case_id], CV_SALT, CV_FOLDS) if not g.simulated else -1 for g in groups}
    with_no_absent = {g.case_id for g in groups if g.variant == "no_absent"}
    out = {s: {"ranker": [], "pubs": [], **{r: [] for r in rounds}} for s in SUBSETS}
    for k in range(CV_FOLDS):
        fit = [g for g in groups if fold[g.case_id] != k and g.variant in fit_variants and g.positive]
        ds = lgb.Dataset(np.vstack([g.X[:, cols] for g in fit]), np.concatenate([g.y for g in fit]),
                         group=[len(g.y) for g in fit])
        booster = lgb.train(params, ds, num_boost_round=max(rounds))
        for g in (g for g in groups if fold[g.case_id] == k and not g.simulated):
            if g.variant == "given":
                keys = ["given"] + ([] if g.case_id in with_no_absent else ["absent_removed"])
                if g.positive:
                    keys.append("gene_without_profile" if g.X[int(np.argmax(g.y)), lpc] == 0 else "gene_with_profile")
            else:
                keys = ["absent_removed" if g.variant == "no_absent" else "other_absent"]
            margins = {r: booster.predict(g.X[:, cols], num_iteration=r) for r in rounds}
            for key in keys:
                out[key]["ranker"].append(float(g.y[0] == 1))
                out[key]["pubs"].append(pub[g.case_id])
                for r in rounds:
                    out[key][r].append(float(g.positive and g.y[int(np.argmax(margins[r]))] == 1))
        print(f"CV fold {k + 1}/{CV_FOLDS} done")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="training/configs/reranker.yaml")
    ap.add_argument("--set", dest="set_", action="append", default=[])
    ap.add_argument("--groups", type=Path, default=None, help="cache of the out-of-fold groups (pickle)")
    ap.add_argument("--exclude", default=None, help="features / groups left out (default: the recipe's)")
    ap.add_argument("--params", default="{}", help="LightGBM parameters over the recipe's (JSON)")
    ap.add_argument("--rounds", default="300,500")
    args = ap.parse_args()
    recipe = load_recipe(RerankerRecipe, args.config, args.set_)
    data = load_groups(recipe, args.groups)
    exclude = list(recipe.exclude_features if args.exclude is None else [e for e in args.exclude.split(",") if e])
    params = _params(recipe) | {"eval_at": [1]} | json.loads(args.params)
    rounds = [int(r) for r in args.rounds.split(",")]
    res = cross_validate(data, recipe, exclude, params, rounds)
    print(f"\nCV on train ({CV_FOLDS} folds by publication), top@1 %, re-ranker gain [95% by publication]; "
          f"exclude={exclude}, params={args.params}\n")
    print("| subset | n | ranker | " + " | ".join(f"{r} rounds" for r in rounds) + " |")
    print("| --- | ---: | ---: | " + " | ".join("---" for _ in rounds) + " |")
    for s in SUBSETS:
        rk = np.array(res[s]["ranker"])
        cells = []
        for r in rounds:
            m, lo, hi = paired_by_publication(np.array(res[s][r]), rk, res[s]["pubs"])
            cells.append(f"{100 * np.mean(res[s][r]):.1f} ({100 * m:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}])")
        print(f"| {s} | {len(rk)} | {100 * rk.mean():.1f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
