"""Benchmark: a trained model in closed and retrieval modes beside the phenotype ranker, on the same
validation cases (dev phenopackets split by publication). Each evaluation is stored as an `eval` run.

Setup (once, in a scratch home):
    export GENEDX_HOME=/tmp/bench_home
    genedx data build
    genedx data import /work/shared/data/phenopacket-store/dev.jsonl.gz
    genedx data simulate --cases-per-gene 4 --seed 0
    genedx data split --by publication --validation 0.2 --seed 0
    genedx train sft --config training/configs/sft-small.yaml --set output_dir=/work/models/sft-small
Run:
    python bench/bench_model.py --model /work/models/sft-small --sample 400 [--markdown]
"""

from __future__ import annotations

import argparse
import json
import time

from genedx.home import connect, resolve_home
from genedx.model.evaluate import evaluate

ROWS = ("top1", "top5", "topmax", "well_formed", "mean_grade")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--cases", default="split:validation")
    ap.add_argument("--sample", type=int, default=None, help="A seeded random sample of N validation cases.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--modes", default="closed,retrieval")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()

    home = resolve_home()
    con = connect(home)
    results = []
    specs = [("ranker (profiles none)", "ranker", None, "none"), ("ranker (profiles train)", "ranker", None, "train")]
    specs += [(f"model ({m})", f"model:{args.model}", m, "none") for m in args.modes.split(",")]
    for label, spec, mode, profiles in specs:
        t0 = time.perf_counter()
        r = evaluate(con, home, spec, [args.cases], mode=mode or "closed", top=20, sample=args.sample,
                     seed=args.seed, profiles=profiles,
                     batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, name=f"bench {label}")
        secs = time.perf_counter() - t0
        row = {"predictor": label, "run_id": r.run_id, "n": r.n, "seconds": round(secs, 1),
               "ms_per_case": round(1000 * secs / max(r.n, 1), 1)}
        row.update({k: {"value": round(r.metrics[k].value, 4), "lo": round(r.metrics[k].lo, 4),
                        "hi": round(r.metrics[k].hi, 4)} for k in ROWS})
        results.append(row)
        print(json.dumps(row), flush=True)
    con.close()
    if args.markdown:
        print("\n| predictor | n | top@1 | top@5 | top@max (20) | well-formed | mean grade | ms/case |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for row in results:
            cells = [f"{100 * row[k]['value']:.1f} [{100 * row[k]['lo']:.1f}, {100 * row[k]['hi']:.1f}]" for k in ROWS]
            print(f"| {row['predictor']} | {row['n']} | " + " | ".join(cells) + f" | {row['ms_per_case']} |")


if __name__ == "__main__":
    main()
