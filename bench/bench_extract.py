"""Benchmark of genedx's free-text HPO recognition (``genedx.extract.TermExtractor``) on annotated corpora.

    nice -n 19 python bench/bench_extract.py            # print the markdown table
    nice -n 19 python bench/bench_extract.py --errors tune   # + top FN/FP of the tuning half only
    nice -n 19 python bench/bench_extract.py --write    # + replace the issue-14 section of RESULTS.md

Data (``/work/shared/data/hpo-text``, see its README): the GSC+ development abstracts (mention spans
with HPO ids, nested and negated mentions included) and the JAX corpus (full texts with the curated
HPO set per PMID). Gold ids come from older HPO releases and are mapped to the current term of the
bench KB (alt id -> term, obsolete -> its replacement; ids with no current term are dropped).

Measures, per corpus:

* document level: the set of *present* terms the extractor reports per document vs the gold set,
  micro-averaged precision / recall / F1 over the documents;
* mention level (GSC+ only, it has spans): every mention the extractor reports (negated ones too,
  as GSC+ annotates them) vs the gold mentions: strict = same span and id, lenient = overlapping
  span and same id;
* speed: documents (and characters) per second, extraction only (the extractor is built once; each
  document is extracted twice and the second, warm-cache pass is timed).

Split: ``genedx.extract.corpus.split_half`` (CRC32 parity of the document id, content-independent):
the *tune* half is where extractor changes were tried, the *held-out* half is reported so that the
numbers are not only on tuned data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genedx.cases.terms import TermMapper  # noqa: E402
from genedx.extract.corpus import GoldDoc, normalise_gold, read_gsc, read_jax, split_half  # noqa: E402
from genedx.extract.text import TermExtractor  # noqa: E402
from genedx.home import Home, connect, meta_get  # noqa: E402
from genedx.kb.build import build_kb  # noqa: E402
from results_md import write_section  # noqa: E402  (bench/ is the script dir: on sys.path)

DATA = ROOT.parent / "shared" / "data" / "hpo-text"
HEAD = "## Free-text phenotype recognition (issue 14)"
MACHINE = "2-core dev VM, no GPU (shared with a training job; run under nice -n 19, so speeds are lower bounds)"
TOP_ERRORS = 15


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, pred: set, gold: set) -> None:
        self.tp += len(pred & gold)
        self.fp += len(pred - gold)
        self.fn += len(gold - pred)

    @property
    def p(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def r(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        return 2 * self.p * self.r / (self.p + self.r) if self.p + self.r else 0.0


@dataclass
class Result:
    docs: int = 0
    chars: int = 0
    seconds: float = 0.0
    doc: Counts = field(default_factory=Counts)
    doc_any: Counts = field(default_factory=Counts)   # negated terms count as found
    strict: Counts = field(default_factory=Counts)
    lenient: Counts = field(default_factory=Counts)
    fn: Counter = field(default_factory=Counter)
    fp: Counter = field(default_factory=Counter)
    has_spans: bool = False


def evaluate(ex: TermExtractor, docs: list[GoldDoc]) -> Result:
    res = Result()
    for d in docs:
        mentions = ex.mentions(d.text)   # first pass: fills the per-word caches
        t0 = time.perf_counter()
        ex.mentions(d.text)              # timed pass: steady state, as in a long-running app / CLI
        res.seconds += time.perf_counter() - t0
        res.docs += 1
        res.chars += len(d.text)
        present = {m.id for m in mentions if not m.negated}
        res.doc.add(present, d.ids)
        res.doc_any.add({m.id for m in mentions}, d.ids)
        res.fn.update(d.ids - present)
        res.fp.update(present - d.ids)
        if d.mentions:
            res.has_spans = True
            pred = {(m.start, m.end, m.id) for m in mentions}
            gold = {(g.start, g.end, g.hpo_id) for g in d.mentions}
            res.strict.add(pred, gold)
            # lenient: a prediction is right when it overlaps a gold mention of the same id
            hit_p = {p for p in pred if any(p[2] == g[2] and p[0] < g[1] and g[0] < p[1] for g in gold)}
            hit_g = {g for g in gold if any(p[2] == g[2] and p[0] < g[1] and g[0] < p[1] for p in pred)}
            res.lenient.tp += len(hit_g)
            res.lenient.fn += len(gold) - len(hit_g)
            res.lenient.fp += len(pred) - len(hit_p)
    return res


def kb_home(path: Path) -> Home:
    home = Home(path).ensure()
    con = connect(home)
    try:
        if meta_get(con, "hpo_release") is None:
            print("building KB", file=sys.stderr, flush=True)
            build_kb(con)
    finally:
        con.close()
    return home


def load(data: Path, mapper: TermMapper) -> dict[str, list[GoldDoc]]:
    corpora = {"GSC+ dev": read_gsc(data / "GSC" / "GSCplus_dev_gold.tsv"), "JAX": read_jax(data / "JAX")}
    for name, docs in corpora.items():
        lost = normalise_gold(docs, lambda i: mapper.map(i)[0])
        if lost:
            print(f"{name}: {len(lost)} gold ids without a current term dropped ({len(set(lost))} distinct)",
                  file=sys.stderr)
    return corpora


def fmt(x: float) -> str:
    return f"{x:.2f}"


def merge(rs: list[Result]) -> Result:
    out = Result()
    for r in rs:
        out.docs += r.docs
        out.chars += r.chars
        out.seconds += r.seconds
        for a in ("doc", "doc_any", "strict", "lenient"):
            for f in ("tp", "fp", "fn"):
                setattr(getattr(out, a), f, getattr(getattr(out, a), f) + getattr(getattr(r, a), f))
        out.fn.update(r.fn)
        out.fp.update(r.fp)
        out.has_spans |= r.has_spans
    return out


def summary(name: str, part: str, r: Result) -> dict:
    """One table row as plain numbers (also what ``--rows-json`` prints for a ``--before`` run)."""
    prf = lambda c: [round(c.p, 4), round(c.r, 4), round(c.f1, 4)]  # noqa: E731
    return {"corpus": name, "part": part, "docs": r.docs, "doc": prf(r.doc), "doc_any_f1": round(r.doc_any.f1, 4),
            "strict": prf(r.strict) if r.has_spans else None, "lenient": prf(r.lenient) if r.has_spans else None,
            "docs_per_s": r.docs / r.seconds if r.seconds else 0.0,
            "chars_per_s": r.chars / r.seconds if r.seconds else 0.0}


def row(who: str, s: dict) -> str:
    trip = lambda v: " / ".join(fmt(x) for x in v) if v else "-"  # noqa: E731
    p, r, f = s["doc"]
    return (f"| {who} | {s['corpus']} | {s['part']} | {s['docs']} | {fmt(p)} | {fmt(r)} | **{fmt(f)}** | "
            f"{fmt(s['doc_any_f1'])} | {trip(s['strict'])} | {trip(s['lenient'])} | "
            f"{s['docs_per_s']:,.0f} ({s['chars_per_s'] / 1000:,.0f}k chars/s) |")


def error_table(counter: Counter, labels: dict[str, str], kind: str) -> str:
    lines = [f"| {kind} | term | label | docs |", "| ---: | --- | --- | ---: |"]
    for k, (t, n) in enumerate(counter.most_common(TOP_ERRORS), 1):
        lines.append(f"| {k} | {t} | {labels.get(t, '?')} | {n} |")
    return "\n".join(lines)


def report(results: dict[tuple[str, str], Result], labels: dict[str, str], release: str, errors_part: str,
           build_s: float, before: tuple[str, list[dict]] | None) -> str:
    out = [HEAD, "",
           f"Machine: {MACHINE}. Date: {dt.datetime.now(dt.timezone.utc).date().isoformat()}. "
           f"KB: HPO release {release}. Command: `nice -n 19 python bench/bench_extract.py --before REV --write`.", "",
           "Data: `shared/data/hpo-text` (PhenoTagger's copies): the 22 GSC+ development abstracts (mention "
           "spans) and the 131 JAX full texts with the curated HPO set per PMID; gold ids mapped to the current "
           "term. **doc** = the set of *present* terms the extractor reports per document vs the gold set "
           "(micro P/R/F1 over documents); *doc F1 incl. negated* counts negated terms as found too (GSC+ and "
           "JAX gold include findings the text negates). **mention** (GSC+ only) = every reported mention, "
           "negated ones too, vs the gold spans: strict = same span and id, lenient = overlapping span and "
           "same id. Halves: `split_half` (CRC32 parity of the PMID): extractor changes were tried on *tune*; "
           "*held-out* was not looked at while changing it. Speed = extraction only, one core, niced, each "
           "document's second pass (the per-word stem cache warm, as in the app or a CLI batch; building the "
           f"extractor from the KB takes {build_s:.2f} s, once per process).", "",
           "| extractor | corpus | part | docs | doc P | doc R | doc F1 | doc F1 incl. negated | "
           "mention strict P / R / F1 | mention lenient P / R / F1 | docs/s |",
           "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |"]
    now = [summary(n, p, r) for (n, p), r in results.items()]
    for s in now:
        out.append(row("genedx now", s))
    if before:
        for s in before[1]:
            out.append(row(f"genedx before ({before[0]})", s))
    out += ["", "Reference rows (not re-measured here; FastHPOCR's index is not built on this VM, too slow):", "",
            "| extractor | doc P | doc R | doc F1 | docs/s |", "| --- | ---: | ---: | ---: | ---: |",
            "| FastHPOCR 0.1.4 (from the issue) | 0.80 | 0.70 | 0.74 | ~1,100 |",
            "| old genedx extractor (from the issue) | 0.89 | 0.49 | 0.63 | - |"]
    for s in now:
        if s["corpus"] == "GSC+ dev" and s["part"] in ("held-out", "all"):
            p, r, f = s["doc"]
            out.append(f"| genedx now, GSC+ dev {s['part']} (measured above) | {fmt(p)} | {fmt(r)} | {fmt(f)} | "
                       f"{s['docs_per_s']:,.0f} |")
    for name in dict.fromkeys(n for n, _ in results):
        pick = results[(name, errors_part)]
        out += ["", f"Top {TOP_ERRORS} document-level false negatives / false positives, {name}, {errors_part} "
                "(docs = documents with the error):", "", error_table(pick.fn, labels, "FN"), "",
                error_table(pick.fp, labels, "FP")]
    return "\n".join(out) + "\n"


def run_before(rev: str, data: Path, home: Path) -> list[dict]:
    """The same measurement on the extractor of git revision ``rev`` (a temporary worktree running
    this script), as rows."""
    tmp = Path(tempfile.mkdtemp(prefix="genedx-bench-extract-before-"))
    wt = tmp / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(wt), rev], check=True)
    try:
        shutil.copy(Path(__file__), wt / "bench" / "bench_extract.py")
        p = subprocess.run([sys.executable, str(wt / "bench" / "bench_extract.py"), "--rows-json",
                            "--data", str(data), "--home", str(home)], cwd=wt, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"--before {rev} failed:\n{p.stderr}")
        return json.loads(p.stdout)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(wt)], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


NOTES_MARK = "<!-- hand-written notes below are kept by bench_extract.py -->"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "genedx-bench-extract",
                    help="bench home (its KB is built once)")
    ap.add_argument("--errors", choices=["tune", "held-out", "all"], default="all",
                    help="which part the FN/FP lists come from (tune while changing the extractor)")
    ap.add_argument("--before", metavar="REV", help="also measure the extractor of this git revision")
    ap.add_argument("--rows-json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--write", action="store_true", help="replace the issue-14 section of bench/RESULTS.md")
    args = ap.parse_args()
    if not args.data.exists():
        raise SystemExit(f"{args.data} not found")
    home = kb_home(args.home)
    con = connect(home, read_only=True)
    try:
        mapper = TermMapper.from_db(con)
        t0 = time.perf_counter()
        ex = TermExtractor.from_db(con)
        build_s = time.perf_counter() - t0
        release = meta_get(con, "hpo_release")
    finally:
        con.close()
    corpora = load(args.data, mapper)
    ex.mentions("warm-up: seizures")  # first-call caches (morphological clusters)
    results: dict[tuple[str, str], Result] = {}
    for name, docs in corpora.items():
        tune, held = split_half(docs)
        rt, rh = evaluate(ex, tune), evaluate(ex, held)
        results[(name, "tune")], results[(name, "held-out")], results[(name, "all")] = rt, rh, merge([rt, rh])
    if args.rows_json:
        print(json.dumps([summary(n, p, r) for (n, p), r in results.items()]))
        return
    before = None
    if args.before:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.before], check=True,
                             capture_output=True, text=True).stdout.strip()
        before = (rev, run_before(rev, args.data, args.home))
    text = report(results, mapper.labels, release, args.errors, build_s, before)
    print(text)
    if args.write:
        write_section(HEAD, text, NOTES_MARK)
        print("wrote", ROOT / "bench" / "RESULTS.md", file=sys.stderr)


if __name__ == "__main__":
    main()
