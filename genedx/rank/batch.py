"""Batch scoring: cases in, one ``Prediction.to_json()`` line per case out (``genedx score``).

A bad record is reported and skipped, never aborts the batch; unknown HPO ids are dropped and
reported (the case is still scored on the rest), alt/obsolete ids are mapped. ``resume`` keeps the
lines already in the output and skips their ids, so an interrupted batch picks up where it stopped.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from genedx.cases.model import BadRecord, Case
from genedx.cases.store import normalize_case
from genedx.cases.terms import TermMapper
from genedx.errors import GenedxError
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

    def to_dict(self) -> dict:
        return {"out": self.out, "scored": self.scored, "resumed": self.resumed, "skipped": self.skipped,
                "problems": [str(p) for p in self.problems], "seconds": round(self.seconds, 3)}


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


def score_cases(items: Iterable[Case | BadRecord], predictor: Predictor, out: str | Path, top: int = 10,
                resume: bool = False, mapper: TermMapper | None = None, evidence: bool = False,
                progress: Callable[[int], None] | None = None, batch_size: int = 16) -> ScoreReport:
    """Score every case into ``out`` (JSONL), ``batch_size`` cases per ``predictor.predict`` call
    (a model predictor generates a batch at once); a batch that fails is retried case by case so
    only the bad case is skipped. ``progress(n)`` is called after each record read."""
    t0 = time.perf_counter()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = ScoreReport(out=str(out))
    done = read_existing(out) if resume else {}
    genes = GeneNormalizer.default()
    seen: set[str] = set()
    pending: list[tuple[Case, str, str | None]] = []     # (case, origin, true gene)

    def write(f, case: Case, truth: str | None, pred) -> None:
        f.write(json.dumps(pred.to_json(evidence=evidence)) + "\n")
        report.scored += 1
        if truth:
            report.rankings.append((case.id, truth, [g.symbol for g in pred.genes], case.source))

    def flush(f) -> None:
        if not pending:
            return
        try:
            preds = predictor.predict([c for c, _, _ in pending], top=top)
            for (case, _, truth), pred in zip(pending, preds):
                write(f, case, truth, pred)
        except GenedxError:
            for case, origin, truth in pending:
                try:
                    write(f, case, truth, predictor.predict([case], top=top)[0])
                except GenedxError as e:
                    msg = str(e).removeprefix(f"case {case.id}: ")
                    report.problems.append(BadRecord(origin, case.id, f"{msg}; skipped"))
                    report.skipped += 1
        f.flush()
        pending.clear()

    n = 0
    with open(out, "a" if resume else "w", encoding="utf-8") as f:
        for item in items:
            n += 1
            if progress:
                progress(n)
            if isinstance(item, BadRecord):
                report.problems.append(item)
                report.skipped += 1
                continue
            case = item
            origin = getattr(case, "_origin", None) or case.source or ""
            if case.id in seen:
                report.problems.append(BadRecord(origin, case.id, "duplicate case id; skipped"))
                report.skipped += 1
                continue
            seen.add(case.id)
            truth = (genes.normalize(case.gene) or case.gene) if case.gene else None
            if case.id in done:
                report.resumed += 1
                if truth:
                    report.rankings.append((case.id, truth, done[case.id], case.source))
                continue
            if mapper is not None:
                norm, problems = normalize_case(case, mapper, None, origin=origin)
                report.problems.extend(problems)
                if norm is None:
                    report.skipped += 1
                    continue
                case = norm
            pending.append((case, origin, truth))
            if len(pending) >= max(1, batch_size):
                flush(f)
        flush(f)
        os.fsync(f.fileno())
    report.seconds = time.perf_counter() - t0
    return report
