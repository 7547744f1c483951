"""Benchmark of the learned re-ranker (issue 13) on the stored validation split of a home.

    GENEDX_HOME=/work/exp/home-rr OMP_NUM_THREADS=1 nice -n 19 python bench/bench_reranker.py \
        [--config training/configs/reranker.yaml] [--set key=value ...] [--model DIR] [--speed 5000]

1. trains the re-ranker on the home's train split (timed; skipped with ``--model DIR``);
2. on every validation case, as given and with every absent term removed: the ranker with train
   profiles against the re-ranker (same profiles), top@1 / top@5 and paired bootstrap intervals of the
   gain, resampling **publications** (cases of one paper move together);
3. subsets: cases whose gene has no train profile, cases that have no absent term;
4. speed: ``genedx score`` end to end on N stored cases (load time apart).

Prints a markdown block for bench/RESULTS.md. The validation split is only read here, never tuned on.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from genedx.cases.store import load_gradable_cases, load_cases
from genedx.home import connect, resolve_home
from genedx.rank.ranker import Ranker, RankerPredictor
from genedx.rank.reranker import load_reranker

TOP = 20


def true_ranks(preds, cases) -> np.ndarray:
    """1-based rank of the true gene in each prediction (0 = not in the list)."""
    out = []
    for p, c in zip(preds, cases):
        syms = [g.symbol for g in p.genes]
        out.append(syms.index(c.gene) + 1 if c.gene in syms else 0)
    return np.array(out)


def hit(r: np.ndarray, k: int) -> np.ndarray:
    return ((r > 0) & (r <= k)).astype(float)


def paired_by_publication(a: np.ndarray, b: np.ndarray, pubs: list[str], n_boot: int = 2000,
                          seed: int = 0) -> tuple[float, float, float]:
    """mean(a - b) with a 95% interval from resampling publications (paired: same cases in a and b)."""
    d = a - b
    keys = sorted(set(pubs))
    ix = {p: i for i, p in enumerate(keys)}
    g = np.array([ix[p] for p in pubs])
    s = np.bincount(g, weights=d, minlength=len(keys))
    n = np.bincount(g, minlength=len(keys)).astype(float)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(keys), size=(n_boot, len(keys)))
    boots = s[pick].sum(axis=1) / n[pick].sum(axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(d.mean()), float(lo), float(hi)


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def gap(e: tuple[float, float, float]) -> str:
    return f"{100 * e[0]:+.1f} [{100 * e[1]:+.1f}, {100 * e[2]:+.1f}]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="training/configs/reranker.yaml")
    ap.add_argument("--set", dest="set_", action="append", default=[])
    ap.add_argument("--model", default=None, help="an already trained re-ranker (skip training)")
    ap.add_argument("--speed", type=int, default=5000, help="cases scored end to end for the speed row (0: skip)")
    args = ap.parse_args()
    home = resolve_home(None)

    train_s = None
    model_dir = args.model
    if model_dir is None:
        from genedx.train.recipes import load_recipe
        from genedx.train.reranker import RerankerRecipe, run_reranker
        recipe = load_recipe(RerankerRecipe, args.config, args.set_)
        if recipe.output_dir is None:
            recipe = replace(recipe, output_dir=str(Path(tempfile.mkdtemp()) / "reranker"))
        t0 = time.perf_counter()
        res = run_reranker(recipe, home, log=lambda m: print(m, flush=True), store=False)
        train_s = time.perf_counter() - t0
        model_dir = res.model_dir
        print(f"trained in {train_s:.0f} s -> {model_dir}", flush=True)

    con = connect(home, read_only=True)
    try:
        t0 = time.perf_counter()
        rr = load_reranker(con, model_dir, profiles="train")
        load_s = time.perf_counter() - t0
        base = RankerPredictor(rr.ranker)               # the same ranker object: same train profiles
        cases = load_gradable_cases(con, "validation", include_simulated=False)
        speed_cases = []
        if args.speed:
            pool = load_cases(con, split="validation") + load_cases(con, split="train", source="phenopacket")
            speed_cases = [c for c in pool if c.present][:args.speed]
    finally:
        con.close()
    profiled = set(rr.ranker.case_profiles.genes) if rr.ranker.case_profiles else set()
    pubs = [c.publication or c.id for c in cases]
    print(f"validation: {len(cases)} cases from {len(set(pubs))} publications; model {model_dir}; "
          f"load {load_s:.1f} s", flush=True)

    rows = []
    results = {}
    # "absent of another case": each case gets the absent terms of a seeded other case of another gene,
    # negatives that are not its own disease features (a model leaning on the curation habit drops here)
    rng = np.random.default_rng(0)
    donors = [c for c in cases if c.absent]
    foreign = []
    for c in cases:
        d = donors[rng.integers(len(donors))]
        while d.gene == c.gene:
            d = donors[rng.integers(len(donors))]
        foreign.append(replace(c, absent=[a for a in d.absent if a not in c.present]))
    variants = {"as given": cases, "absent removed": [replace(c, absent=[]) for c in cases],
                "absent of another case": foreign}
    for variant, cs in variants.items():
        t0 = time.perf_counter()
        pb = base.predict(cs, top=TOP)
        tb = time.perf_counter() - t0
        t0 = time.perf_counter()
        pr = rr.predict(cs, top=TOP)
        tr = time.perf_counter() - t0
        results[variant] = (true_ranks(pb, cs), true_ranks(pr, cs), tb / len(cs), tr / len(cs))
    for variant, (rb, rr_, tb, tr) in results.items():
        subsets = [("all", np.ones(len(cases), bool)),
                   ("gene without a train profile", np.array([c.gene not in profiled for c in cases])),
                   ("cases without absent terms", np.array([not c.absent for c in cases]))]
        for sname, m in subsets:
            if variant != "as given" and sname == "cases without absent terms":
                continue
            if not m.any():
                continue
            p = [x for x, keep in zip(pubs, m) if keep]
            g1 = paired_by_publication(hit(rr_[m], 1), hit(rb[m], 1), p)
            g5 = paired_by_publication(hit(rr_[m], 5), hit(rb[m], 5), p)
            rows.append(f"| {variant} | {sname} | {m.sum()} | {pct(hit(rb[m], 1).mean())} | {pct(hit(rr_[m], 1).mean())} "
                        f"| {gap(g1)} | {pct(hit(rb[m], 5).mean())} | {pct(hit(rr_[m], 5).mean())} | {gap(g5)} |")
    print("\n| cases | subset | n | top@1 ranker | top@1 re-ranker | gain top@1 [95% by publication] "
          "| top@5 ranker | top@5 re-ranker | gain top@5 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    rb, rr_, tb, tr = results["as given"]
    print(f"\nper case (validation, as given): ranker {1000 * tb:.1f} ms, re-ranker {1000 * tr:.1f} ms "
          f"(ranker + features + booster, no explanations)")
    if train_s is not None:
        print(f"training: {train_s:.0f} s")

    if speed_cases:
        from genedx.rank.batch import score_cases
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            rep = score_cases(speed_cases, rr, Path(d) / "out.jsonl", top=TOP, mapper=rr.ranker.kb.mapper,
                              batch_size=64)
            s = time.perf_counter() - t0
        print(f"scoring {rep.scored} cases end to end (score_cases, top {TOP}): {s:.1f} s "
              f"({1000 * s / max(rep.scored, 1):.1f} ms/case) after a {load_s:.1f} s load")


if __name__ == "__main__":
    main()
