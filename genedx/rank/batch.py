"""Batch scoring: cases in, one ``Prediction.to_json()`` line per case out (``genedx score``).

A bad record is reported and skipped, never aborts the batch; unknown HPO ids are dropped and
reported (the case is still scored on the rest), alt/obsolete ids are mapped. ``resume`` keeps the
lines already in the output and skips their ids, so an interrupted batch picks up where it stopped.
``workers > 1`` fans batches out to spawned processes (each loads the predictor once) and writes
their results back in input order; sharding across machines is :mod:`genedx.rank.shards`.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from genedx.cases.model import BadRecord, Case
from genedx.cases.store import normalize_case
from genedx.cases.terms import TermMapper
from genedx.errors import GenedxError
from genedx.grade.truth import check_true_gene
from genedx.kb.genes import GeneNormalizer
from genedx.predict import Predictor


@dataclass
class ScoreReport:
    out: str
    scored: int = 0                      # cases scored in this run
    resumed: int = 0                     # cases skipped because OUT already had them
    skipped: int = 0                     # bad records and cases that could not be scored
    problems: list[BadRecord] = field(default_factory=list)   # every problem, skipped or not
    seconds: float = 0.0
    # (case id, true gene, ranked symbols, source) for every input case that carries a gene
    rankings: list[tuple[str, str, list[str], str | None]] = field(default_factory=list)
    # ids of cases whose true gene is not an HGNC symbol: scored, but not in the metrics
    ungraded: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"out": self.out, "scored": self.scored, "resumed": self.resumed, "skipped": self.skipped,
                "problems": [str(p) for p in self.problems], "unknown_true_genes": self.ungraded,
                "seconds": round(self.seconds, 3)}


def read_existing(out: Path) -> dict[str, list[str]]:
    """Ids (and ranked symbols) already in ``out``. A torn last line (a killed run) is cut off, so the
    file stays valid JSONL; any other unreadable line is an error (the file is not ours to rewrite)."""
    done: dict[str, list[str]] = {}
    if not out.exists():
        return done
    raw = out.read_bytes()
    complete, _, tail = raw.rpartition(b"\n")
    if tail.strip():
        try:
            json.loads(tail)
            complete, tail = raw, b""          # a valid last line without its newline
        except json.JSONDecodeError:
            pass
    for i, line in enumerate(complete.split(b"\n") if complete else []):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            done[str(obj["id"])] = [g["symbol"] for g in obj.get("genes", [])]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise GenedxError(f"{out}: line {i + 1} is not a genedx score line; "
                              "use another --out or drop --resume") from None
    if tail.strip():                            # torn last line: cut it off
        with open(out, "r+b") as f:
            f.truncate(len(complete) + 1)
    elif complete and not complete.endswith(b"\n") and raw == complete:
        with open(out, "ab") as f:
            f.write(b"\n")
    return done


@dataclass(frozen=True)
class PredictorSpec:
    """How a worker process loads the predictor itself: ``load_predictor(spec, <home db>, **opts)``.

    Worker processes never receive a loaded predictor (pickling a ranker or a model would cost more
    than loading it, and DuckDB connections cannot be pickled); each loads one from this, once."""

    spec: str
    home: str
    opts: dict = field(default_factory=dict)

    def load(self) -> Predictor:
        from genedx.home import Home, connect
        from genedx.predictors import load_predictor

        home = Home(Path(self.home))
        con = connect(home, read_only=True)
        try:
            return load_predictor(self.spec, con, home, **self.opts)
        finally:
            con.close()


# (output line, ranked symbols) for a scored case, or the problem for a case that could not be scored
_Result = tuple[str, list[str]] | str


def _predict_batch(predictor: Predictor, cases: list[Case], top: int, evidence: bool) -> list[_Result]:
    """One result per case. The batch goes to ``predictor.predict`` at once (a model generates a
    batch together); if that fails it is retried case by case so only the bad case is lost."""
    def result(pred) -> tuple[str, list[str]]:
        return json.dumps(pred.to_json(evidence=evidence)) + "\n", [g.symbol for g in pred.genes]

    try:
        return [result(p) for p in predictor.predict(cases, top=top)]
    except GenedxError:
        pass
    out: list[_Result] = []
    for case in cases:
        try:
            out.append(result(predictor.predict([case], top=top)[0]))
        except GenedxError as e:
            out.append(str(e).removeprefix(f"case {case.id}: "))
    return out


# --- worker processes (``--workers N``) -------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(spec: PredictorSpec, threads: int) -> None:
    """Pool initializer: load the predictor once per process (a load error is kept and reported by
    the first batch, as one line, rather than a traceback from a broken pool)."""
    try:
        _WORKER["predictor"] = spec.load()
    except GenedxError as e:
        _WORKER["error"] = str(e)
    if "torch" in sys.modules:      # a model predictor: torch's own pool, not only OpenMP's env
        sys.modules["torch"].set_num_threads(threads)


def _worker_batch(cases: list[Case], top: int, evidence: bool) -> list[_Result] | GenedxError:
    if "error" in _WORKER:
        return GenedxError(_WORKER["error"])
    return _predict_batch(_WORKER["predictor"], cases, top, evidence)


@contextmanager
def _thread_env(threads: int) -> Iterator[None]:
    """Spawned workers inherit the environment: cap each one's BLAS/OpenMP threads so N workers do
    not oversubscribe the cores (a value the user set is kept)."""
    keys = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {k: os.environ.get(k) for k in keys}
    for k in keys:
        os.environ.setdefault(k, str(threads))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def score_cases(items: Iterable[Case | BadRecord], predictor: Predictor | PredictorSpec, out: str | Path,
                top: int = 10, resume: bool = False, mapper: TermMapper | None = None, evidence: bool = False,
                progress: Callable[[int], None] | None = None, batch_size: int = 16,
                workers: int = 1) -> ScoreReport:
    """Score every case into ``out`` (JSONL), ``batch_size`` cases per ``predictor.predict`` call
    (a model predictor generates a batch at once); a batch that fails is retried case by case so
    only the bad case is skipped. ``progress(n)`` is called after each record read.

    ``workers > 1`` scores batches in that many processes (``predictor`` must then be a
    :class:`PredictorSpec`; each process loads it once). Reading, term mapping, ``resume`` and
    writing stay in this process and lines are written in input order, so the output is the same
    file whatever the worker count."""
    t0 = time.perf_counter()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = ScoreReport(out=str(out))
    done = read_existing(out) if resume else {}
    genes = GeneNormalizer.default()
    seen: set[str] = set()
    pending: list[tuple[Case, str, str | None, int]] = []     # (case, origin, true gene, record number)
    problems: list[tuple[int, BadRecord]] = []   # by record number: the same order whatever the workers
    if workers < 1:
        raise GenedxError(f"--workers must be >= 1, got {workers}")
    if workers > 1 and not isinstance(predictor, PredictorSpec):
        raise GenedxError("score_cases(workers > 1) needs a PredictorSpec: each worker loads its own predictor")
    if workers == 1 and isinstance(predictor, PredictorSpec):
        predictor = predictor.load()

    def write(f, batch: list[tuple[Case, str, str | None, int]], results: list[_Result]) -> None:
        for (case, origin, truth, pos), res in zip(batch, results):
            if isinstance(res, str):
                problems.append((pos, BadRecord(origin, case.id, f"{res}; skipped")))
                report.skipped += 1
                continue
            line, symbols = res
            f.write(line)
            report.scored += 1
            if truth:
                report.rankings.append((case.id, truth, symbols, case.source))
        f.flush()

    with ExitStack() as stack:
        f = stack.enter_context(open(out, "a" if resume else "w", encoding="utf-8"))
        in_flight: deque = deque()       # (batch, future), oldest first: results are written in order
        pool = None
        if workers > 1:
            threads = max(1, (os.cpu_count() or 1) // workers)
            stack.enter_context(_thread_env(threads))
            pool = stack.enter_context(ProcessPoolExecutor(
                max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=(predictor, threads)))

        def collect_oldest() -> None:
            batch, fut = in_flight.popleft()
            res = fut.result()
            if isinstance(res, GenedxError):
                raise res
            write(f, batch, res)

        def flush() -> None:
            if not pending:
                return
            batch = list(pending)
            pending.clear()
            if pool is None:
                write(f, batch, _predict_batch(predictor, [b[0] for b in batch], top, evidence))
                return
            in_flight.append((batch, pool.submit(_worker_batch, [b[0] for b in batch], top, evidence)))
            while len(in_flight) > 2 * workers:    # bounded: memory stays flat on any input size
                collect_oldest()

        n = 0
        for item in items:
            n += 1
            if progress:
                progress(n)
            if isinstance(item, BadRecord):
                problems.append((n, item))
                report.skipped += 1
                continue
            case = item
            origin = getattr(case, "_origin", None) or case.source or ""
            if case.id in seen:
                problems.append((n, BadRecord(origin, case.id, "duplicate case id; skipped")))
                report.skipped += 1
                continue
            seen.add(case.id)
            truth = None
            if case.gene:
                truth, gene_problem = check_true_gene(case.gene, genes)
                if gene_problem:      # scored all the same; left out of the metrics, said per record
                    problems.append((n, BadRecord(origin, case.id, f"{gene_problem} (scored)")))
                    report.ungraded.append(case.id)
            if case.id in done:
                report.resumed += 1
                if truth:
                    report.rankings.append((case.id, truth, done[case.id], case.source))
                continue
            if mapper is not None:
                norm, term_problems = normalize_case(case, mapper, None, origin=origin)
                problems.extend((n, p) for p in term_problems)
                if norm is None:
                    report.skipped += 1
                    continue
                case = norm
            pending.append((case, origin, truth, n))
            if len(pending) >= max(1, batch_size):
                flush()
        flush()
        while in_flight:
            collect_oldest()
        os.fsync(f.fileno())
    report.problems = [p for _, p in sorted(problems, key=lambda x: x[0])]   # stable within a record
    report.seconds = time.perf_counter() - t0
    return report
