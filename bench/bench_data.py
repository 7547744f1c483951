"""Data benchmark: KB build, import of the phenopacket-store dev set, simulation, split, export.

Run by hand (needs /work/shared/data/phenopacket-store/dev.jsonl.gz; the project itself never does):

    python bench/bench_data.py [--dev PATH] [--per-gene 20] [--write]

``--write`` replaces the ``## Data`` section of bench/RESULTS.md with the measured table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from genedx.cases.export import export_split
from genedx.cases.readers import read_cases
from genedx.cases.simulate import SimulationConfig, simulate
from genedx.cases.split import make_split
from genedx.cases.stats import dataset_stats
from genedx.cases.store import import_cases
from genedx.home import Home, connect
from genedx.kb.build import build_kb

DEV = Path("/work/shared/data/phenopacket-store/dev.jsonl.gz")
RESULTS = Path(__file__).parent / "RESULTS.md"


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dev", type=Path, default=DEV)
    ap.add_argument("--per-gene", type=int, default=20)
    ap.add_argument("--write", action="store_true", help="write the ## Data section of bench/RESULTS.md")
    args = ap.parse_args()
    if not args.dev.exists():
        sys.exit(f"{args.dev} not found: this benchmark needs the phenopacket-store dev set")
    rows = []
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        con = connect(Home(Path(tmp)))
        kb, t = timed(lambda: build_kb(con))
        rows.append(("build KB (`genedx data build`)", t, f"HPO {kb.hpo_release}: {kb.terms} terms, "
                     f"{kb.diseases} diseases, {kb.annotations} annotations, {kb.genes_linked} genes"))
        rep, t = timed(lambda: import_cases(con, read_cases([args.dev])))
        unknown = ", ".join(f"{k} ({v})" for k, v in rep.unknown_terms.items())
        rows.append(("import dev.jsonl.gz", t, f"{rep.read} read, {rep.imported} imported, skipped "
                     f"{json.dumps(rep.skipped)}; {len(rep.unknown_terms)} unknown HPO ids dropped "
                     f"({sum(rep.unknown_terms.values())} uses)"))
        rep2, t = timed(lambda: import_cases(con, read_cases([args.dev])))
        rows.append(("re-import dev.jsonl.gz (idempotent)", t, f"{rep2.imported} new, {rep2.updated} updated"))
        cases, t = timed(lambda: simulate(con, SimulationConfig(cases_per_gene=args.per_gene, seed=0)))
        genes = len({c.gene for c in cases})
        rows.append((f"simulate {args.per_gene} per gene", t, f"{len(cases)} cases, {genes} genes"))
        rep3, t = timed(lambda: import_cases(con, cases))
        rows.append(("store simulated cases", t, f"{rep3.imported} stored"))
        counts, t = timed(lambda: make_split(con, by="publication", seed=0, validation=0.2))
        rows.append(("split by publication", t, json.dumps(counts)))
        out = Path(tmp) / "train.jsonl"
        n, t = timed(lambda: export_split(con, "train", out))
        rows.append(("export train split (RFT JSONL)", t, f"{n} records, {out.stat().st_size / 1e6:.0f} MB"))
        n, t = timed(lambda: export_split(con, "validation", out))
        rows.append(("export validation split", t, f"{n} records"))
        stats = dataset_stats(con)
        con.close()
    table = ["| step | seconds | result |", "| --- | ---: | --- |"]
    table += [f"| {a} | {b:.1f} | {c} |" for a, b, c in rows]
    section = "\n".join([
        "## Data", "",
        f"Machine: 2-core CPU, 24 GiB, no GPU (shared with other engineers' jobs; 1-min load average "
        f"{load0:.1f} at start, {os.getloadavg()[0]:.1f} at end, so times are upper bounds). Date: {dt.date.today()}.",
        f"Command: `python bench/bench_data.py --per-gene {args.per_gene} --write`", "",
        *table, "",
        f"Unknown HPO ids in dev.jsonl.gz (not in HPO {kb.hpo_release}; dropped, cases kept): {unknown or 'none'}.",
        f"Present terms per stored case: {stats['present_per_case']}; absent: {stats['absent_per_case']}.", ""])
    print(section)
    if args.write:
        text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
        if re.search(r"^## Data\s*$", text, flags=re.M):
            text = re.sub(r"^## Data\s*$.*?(?=^## |\Z)", section + "\n", text, flags=re.M | re.S)
        else:
            text = text.rstrip("\n") + "\n\n" + section
        RESULTS.write_text(text)


if __name__ == "__main__":
    main()
