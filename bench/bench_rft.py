"""Benchmark of reinforcement fine-tuning: ranker alone vs SFT model vs SFT+RFT model, closed and
retrieval modes, on real phenopacket-store cases split by publication.

    python bench/bench_rft.py --sft-closed DIR --sft-retrieval DIR [--steps 40] [--n-report 150] [--write]

Data: ``/work/shared/data/phenopacket-store/dev.jsonl.gz`` in a bench home prepared exactly like
``bench/bench_rank.py`` (split BY PUBLICATION, seed 0: train 60%, test 20% = the fixed TUNING part,
validation 20% = the REPORT part). RFT trains on the train split (real cases), its in-training
validation curve runs on a fixed sample of the tuning part, and every number in the table is on a
fixed seeded sample of the report part (no constant was chosen by looking at it; the recipes are the
shipped ``training/configs/rft-{closed,retrieval}.yaml`` with ``--set`` overrides shown below).
Models are judged as ``genedx eval`` judges them: ``ModelPredictor`` greedy answers, grader metrics
with bootstrap 95% intervals.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_rank import DEV, prepare  # noqa: E402

from genedx.cases.store import load_cases  # noqa: E402
from genedx.grade.metrics import compute_metrics, grade_predictions  # noqa: E402
from genedx.home import Home, connect  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MACHINE = "2-core CPU, 24 GiB, no GPU (shared with ~5 other engineers' jobs: load average 6-9 during the runs)"
SECTION = "## RFT"


def report_cases(home: Home, n: int, split: str, seed: int = 0):
    con = connect(home, read_only=True)
    try:
        cases = [c for c in load_cases(con, split=split) if c.gene and c.present and c.source != "simulated"]
    finally:
        con.close()
    random.Random(seed).shuffle(cases)
    return cases[:n]


def evaluate(home: Home, spec: str, cases, mode: str = "closed", max_new_tokens: int = 128) -> tuple[dict, float]:
    """Metrics ({name: (value, lo, hi)}) of one predictor on the report cases, and seconds per case."""
    from genedx.model.predictor import ModelPredictor
    from genedx.predictors import load_predictor

    con = connect(home, read_only=True)
    try:
        if spec == "ranker":
            pred = load_predictor("ranker", con, home, profiles="none")
        else:
            pred = ModelPredictor.from_db(con, spec, mode=mode, profiles="none", batch_size=25,
                                          max_new_tokens=max_new_tokens, device="cpu")
        t0 = time.perf_counter()
        preds = pred.predict(cases, top=20)
        secs = (time.perf_counter() - t0) / max(1, len(cases))
    finally:
        con.close()
    graded, _ = grade_predictions(preds, cases)
    m = compute_metrics(graded, by_source=False)
    return {k: (e.value, e.lo, e.hi) for k, e in m.values.items()}, secs


def train_rft(home: Home, mode: str, sft_dir: str, steps: int, out_root: Path, extra: list[str],
              curve_split: str) -> dict:
    from genedx.train import runs
    from genedx.train.recipes import load_recipe
    from genedx.train.rft import RFTRecipe, run_rft

    out = out_root / f"rft-{mode}"
    sets = [f"model={sft_dir}", f"max_steps={steps}", f"eval_split={curve_split}", f"output_dir={out}",
            f"run_name=bench-rft-{mode}"] + extra
    recipe = load_recipe(RFTRecipe, ROOT / "training" / "configs" / f"rft-{mode}.yaml", sets)
    resume = (out / "genedx_run.json").exists() and any(out.glob("checkpoint-*"))
    t0 = time.perf_counter()
    res = run_rft(recipe, home, resume=resume, log=lambda s: print(s, flush=True))
    wall = time.perf_counter() - t0
    con = connect(home, read_only=True)
    try:
        step_s = runs.run_metrics(con, res.run_id, "train").get("train/step_seconds", {})
        curve = runs.run_metrics(con, res.run_id, "validation").get("validation/top1", {})
    finally:
        con.close()
    steps_times = [v[0] for v in step_s.values() if v[0] is not None]
    return {"run_id": res.run_id, "model_dir": str(res.model_dir), "train_seconds": res.train_seconds,
            "wall_seconds": wall, "steps": res.steps, "sets": sets, "resumed": resume,
            "mean_step_seconds": sum(steps_times) / max(1, len(steps_times)),
            "curve_top1": {int(k): v[0] for k, v in sorted(curve.items())}}


def fmt(v: tuple) -> str:
    value, lo, hi = v
    return f"{100 * value:.1f} [{100 * lo:.1f}–{100 * hi:.1f}]"


def section(results: dict, args) -> str:
    rows = []
    for name, r in results["eval"].items():
        m = r["metrics"]
        rows.append(f"| {name} | {fmt(m['top1'])} | {fmt(m['top5'])} | {fmt(m['topmax'])} | "
                    f"{100 * m['well_formed'][0]:.0f} | {r['seconds_per_case']:.2f} |")
    train_lines = []
    for mode, t in results.get("rft", {}).items():
        curve = ", ".join(f"{k}: {100 * v:.1f}" for k, v in t["curve_top1"].items())
        train_lines.append(f"- RFT {mode}: {t['steps']} steps, {t['train_seconds'] / 60:.1f} min training "
                           f"({t['wall_seconds'] / 60:.1f} min wall incl. data and validations), "
                           f"{t['mean_step_seconds']:.1f} s per step; curve (top@1 % on the curve sample by step): "
                           f"{curve}; "
                           f"run `{t['run_id']}`; overrides `{' '.join(t['sets'][1:])}`")
    return f"""{SECTION}

Machine: {MACHINE}. Date: {date.today()}. Command:
`{results['command']}`

Report cases: {results['n_report']} real cases, a fixed seeded sample of the publication-disjoint `{args.report_split}`
part of the dev phenopackets (split by publication, seed 0, as in `## Ranker`); it is exactly the
validation part of the SFT model's own split, so neither SFT nor RFT trained on it. RFT trained on the
`train` part (real cases only). Greedy decoding, answers cut at 20 genes; %, bootstrap 95% intervals.
Ranker = genedx phenotype ranker without case profiles (the candidates that retrieval prompts list).

| predictor | top@1 | top@5 | top@max | well-formed % | s / case |
|---|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

{chr(10).join(train_lines)}

{results.get('notes', '')}
"""


def write_section(text: str) -> None:
    path = ROOT / "bench" / "RESULTS.md"
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    lines = old.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.strip() == SECTION), None)
    if start is None:
        new = old.rstrip("\n") + "\n\n" + text.strip() + "\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        new = "".join(lines[:start]) + text.strip() + "\n\n" + "".join(lines[end:])
    path.write_text(new.rstrip("\n") + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", default="/work/rft_bench/home")
    ap.add_argument("--sft-closed", required=True)
    ap.add_argument("--sft-retrieval", required=True)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--n-report", type=int, default=150)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--modes", default="closed,retrieval")
    ap.add_argument("--report-split", default="test", help="split the table reports on (never trained on)")
    ap.add_argument("--set", action="append", default=[], help="extra recipe overrides for both modes")
    ap.add_argument("--results", default="/work/rft_bench/results.json")
    ap.add_argument("--write", action="store_true", help="write the ## RFT section of bench/RESULTS.md")
    ap.add_argument("--notes", help="a markdown file appended to the section (targets, findings)")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    home = Home(Path(args.home)).ensure()
    prepare(home, DEV)
    cases = report_cases(home, args.n_report, args.report_split)
    path = Path(args.results)
    results = json.loads(path.read_text()) if path.exists() else {"eval": {}, "rft": {}}
    results["n_report"] = len(cases)
    results.setdefault("command", "python bench/bench_rft.py " + " ".join(a for a in sys.argv[1:] if a != "--write"))

    def save() -> None:
        path.write_text(json.dumps(results, indent=1))

    def ev(name: str, spec: str, mode: str) -> None:
        if name in results["eval"]:
            return
        print(f"evaluating {name}", flush=True)
        m, secs = evaluate(home, spec, cases, mode, args.max_new_tokens)
        results["eval"][name] = {"metrics": m, "seconds_per_case": secs, "spec": spec, "mode": mode}
        print(name, {k: round(v[0], 3) for k, v in m.items()}, flush=True)
        save()

    ev("ranker alone", "ranker", "closed")
    sft = {"closed": args.sft_closed, "retrieval": args.sft_retrieval}
    for mode in args.modes.split(","):
        ev(f"SFT {mode}", sft[mode], mode)
        if mode not in results["rft"]:
            results["rft"][mode] = train_rft(home, mode, sft[mode], args.steps, Path(args.home).parent / "runs",
                                             args.set, args.report_split)
            save()
        ev(f"SFT+RFT {mode}", results["rft"][mode]["model_dir"], mode)
    if args.notes:
        results["notes"] = Path(args.notes).read_text().strip()
    text = section(results, args)
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
