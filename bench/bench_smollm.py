"""Compare stored `genedx eval` runs on the same cases: metrics with 95% intervals, and paired
bootstrap differences (resampling publications, so cases of one paper move together).

    python bench/bench_smollm.py --run ranker=eval-... --run base=eval-... --run sft=eval-... \
        --pair sft:base --pair rft:sft --markdown

Each ``--run NAME=RUN_ID`` names an eval run stored in the home's database (``genedx runs list``);
``--pair A:B`` prints A minus B in points of top@1 / top@5 / top@max / well-formed with the
paired 95% interval. Only cases graded in both runs count for a pair (the script says when they differ).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genedx.home import connect  # noqa: E402

METRICS = {"top@1": lambda r: (r >= 1) & (r <= 1), "top@5": lambda r: (r >= 1) & (r <= 5),
           "top@max": lambda r: r >= 1}


def load_run(con, run_id: str) -> dict[str, tuple[int, bool, str]]:
    """case id -> (rank of the true gene or 0, well-formed, publication)."""
    rows = con.execute(
        'SELECT g.case_id, coalesce(g.rank, 0), coalesce(g.well_formed, false), coalesce(c.publication, g.case_id) '
        'FROM grade g LEFT JOIN "case" c ON c.id = g.case_id WHERE g.run_id = ?', [run_id]).fetchall()
    if not rows:
        raise SystemExit(f"run {run_id}: no stored grades")
    return {r[0]: (int(r[1]), bool(r[2]), r[3]) for r in rows}


def cluster_bootstrap(values: np.ndarray, groups: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% interval of the mean of ``values`` resampling whole groups (publications)."""
    rng = np.random.default_rng(seed)
    uniq, inv = np.unique(groups, return_inverse=True)
    sums = np.bincount(inv, weights=values, minlength=len(uniq))
    counts = np.bincount(inv, minlength=len(uniq))
    draws = rng.integers(0, len(uniq), size=(n_boot, len(uniq)))
    means = sums[draws].sum(1) / counts[draws].sum(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summary(run: dict) -> dict[str, tuple[float, float, float]]:
    ids = sorted(run)
    ranks = np.array([run[i][0] for i in ids])
    pubs = np.array([run[i][2] for i in ids])
    out = {}
    for name, f in METRICS.items():
        v = f(ranks).astype(float)
        out[name] = (100 * v.mean(), *(100 * x for x in cluster_bootstrap(v, pubs)))
    wf = np.array([run[i][1] for i in ids], dtype=float)
    out["well-formed"] = (100 * wf.mean(), *(100 * x for x in cluster_bootstrap(wf, pubs)))
    return out


def paired(a: dict, b: dict) -> tuple[int, dict[str, tuple[float, float, float]]]:
    ids = sorted(set(a) & set(b))
    ra, rb = np.array([a[i][0] for i in ids]), np.array([b[i][0] for i in ids])
    pubs = np.array([a[i][2] for i in ids])
    out = {}
    for name, f in METRICS.items():
        d = f(ra).astype(float) - f(rb).astype(float)
        out[name] = (100 * d.mean(), *(100 * x for x in cluster_bootstrap(d, pubs)))
    d = np.array([a[i][1] for i in ids], float) - np.array([b[i][1] for i in ids], float)
    out["well-formed"] = (100 * d.mean(), *(100 * x for x in cluster_bootstrap(d, pubs)))
    return len(ids), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--home", default=None)
    ap.add_argument("--run", action="append", default=[], help="NAME=RUN_ID")
    ap.add_argument("--pair", action="append", default=[], help="A:B (A minus B)")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    con = connect(args.home, read_only=True)
    runs = {}
    for spec in args.run:
        name, _, rid = spec.partition("=")
        runs[name] = load_run(con, rid)
    cols = list(METRICS) + ["well-formed"]
    print("| predictor | n | " + " | ".join(cols) + " |")
    print("| --- | ---: |" + " --- |" * len(cols))
    for name, run in runs.items():
        s = summary(run)
        print(f"| {name} | {len(run)} | " + " | ".join(f"{v:.1f} [{lo:.1f}, {hi:.1f}]" for v, lo, hi in
                                                     (s[c] for c in cols)) + " |")
    if args.pair:
        print()
        print("| difference (points, paired by case, 95% interval by publication) | n | " + " | ".join(cols) + " |")
        print("| --- | ---: |" + " --- |" * len(cols))
        for spec in args.pair:
            a, _, b = spec.partition(":")
            n, d = paired(runs[a], runs[b])
            print(f"| {a} - {b} | {n} | " + " | ".join(f"{v:+.1f} [{lo:+.1f}, {hi:+.1f}]" for v, lo, hi in
                                                     (d[c] for c in cols)) + " |")


if __name__ == "__main__":
    main()
