"""`genedx eval`: run any predictor (ranker or model) on cases with known genes, grade the answers,
compute metrics with 95% intervals, and store predictions + grades + metrics as one `eval` run, so
runs can be compared later (`genedx runs list|show`)."""

from __future__ import annotations

import random
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import duckdb

from genedx.cases.model import BadRecord, Case
from genedx.errors import GenedxError
from genedx.home import Home, require_kb

SPLIT_PREFIX = "split:"


@dataclass
class EvalResult:
    run_id: str
    n: int
    metrics: Any          # genedx.grade.metrics.Metrics
    seconds: float
    skipped: int = 0
    missing: int = 0


def collect_cases(con: duckdb.DuckDBPyConnection, specs: Sequence[str], limit: int | None = None,
                  on_bad: Callable[[BadRecord], None] | None = None, sample: int | None = None,
                  seed: int = 0) -> list[Case]:
    """Cases with a known gene from files/folders/JSONL (normalised like an import) or ``split:NAME``
    (stored cases of a split). Bad records and cases without a usable gene are reported, not fatal.
    ``sample``: a seeded random sample of that many cases (in their original order); ``limit``: the first N."""
    from genedx.cases.readers import read_cases
    from genedx.cases.store import load_gradable_cases, normalize_case
    from genedx.cases.terms import TermMapper
    from genedx.kb.genes import GeneNormalizer

    say = on_bad or (lambda _b: None)
    cases: list[Case] = []
    splits = {r[0] for r in con.execute("SELECT DISTINCT split FROM case_split").fetchall()}
    # A bare split name ("validation") that is not a file means the stored split.
    specs = [f"{SPLIT_PREFIX}{s}" if s in splits and not Path(s).exists() else s for s in specs]
    paths = [s for s in specs if not s.startswith(SPLIT_PREFIX)]
    for s in specs:
        if s.startswith(SPLIT_PREFIX):
            split = s[len(SPLIT_PREFIX):]
            stored = load_gradable_cases(con, split)
            if not stored:
                raise GenedxError(f"no stored cases with a gene in split {split!r} (see `genedx data stats`)")
            cases += stored
    if paths:
        mapper, genes = TermMapper.from_db(con), GeneNormalizer.default()
        for item in read_cases(paths, require_gene=True):
            if isinstance(item, BadRecord):
                say(item)
                continue
            norm, problems = normalize_case(item, mapper, genes, origin=item.id)
            for p in problems:
                say(p)
            if norm is not None:
                cases.append(norm)
    seen: set[str] = set()
    unique = [c for c in cases if not (c.id in seen or seen.add(c.id))]
    if not unique:
        raise GenedxError("no usable cases with a known gene to evaluate")
    if sample is not None and sample < len(unique):
        keep = set(random.Random(seed).sample(range(len(unique)), sample))
        unique = [c for i, c in enumerate(unique) if i in keep]
    return unique[:limit] if limit else unique


def predict_all(predictor: Any, cases: Sequence[Case], top: int, chunk: int = 64,
                on_bad: Callable[[BadRecord], None] | None = None,
                progress: Callable[[int], None] | None = None) -> list:
    """Predictions in chunks (models batch inside a chunk); a case the predictor rejects is reported
    and skipped instead of sinking its chunk."""
    preds, done = [], 0
    for start in range(0, len(cases), chunk):
        part = list(cases[start:start + chunk])
        try:
            preds += predictor.predict(part, top=top)
        except GenedxError:
            for c in part:   # isolate the bad case(s)
                try:
                    preds += predictor.predict([c], top=top)
                except GenedxError as e:
                    if on_bad:
                        on_bad(BadRecord("eval", c.id, str(e), "rejected by predictor"))
        done += len(part)
        if progress:
            progress(done)
    return preds


def evaluate(con: duckdb.DuckDBPyConnection, home: Home | None, predictor: str, cases: Sequence[str],
             mode: str = "closed", top: int = 20, limit: int | None = None, profiles: str = "none",
             batch_size: int = 16, name: str | None = None, on_bad: Callable[[BadRecord], None] | None = None,
             progress: Callable[[int, int], None] | None = None, max_new_tokens: int | None = None,
             sample: int | None = None, n_boot: int = 1000, seed: int = 0, drop_absent: bool = False,
             candidates: str = "ranker") -> EvalResult:
    """Predict, grade, compute metrics and store them as an ``eval`` run; returns the run id and metrics.

    ``drop_absent``: remove every absent term from the cases first (the ranker behind retrieval prompts
    sees none either). In phenopacket-store absent terms are mostly features of the patient's own disease
    that he lacks, a curation habit a clinician's note does not carry; this shows what is left without it.
    ``candidates``: where a model's retrieval candidates come from, ``ranker`` or ``reranker[:DIR]``.
    """
    from genedx.grade.metrics import compute_metrics, grade_predictions
    from genedx.grade.store import save_grades
    from genedx.predictors import load_predictor
    from genedx.train.runs import new_run_id

    release = require_kb(con)
    picked = collect_cases(con, cases, limit, on_bad, sample=sample, seed=seed)
    if drop_absent:
        from dataclasses import replace
        picked = [replace(c, absent=[]) for c in picked]
    t0 = time.perf_counter()
    is_model = predictor.strip().startswith("model:")
    opts: dict[str, Any] = {"profiles": profiles}
    if is_model:
        opts.update(mode=mode, batch_size=batch_size, max_new_tokens=max_new_tokens, candidates=candidates)
    pred = load_predictor(predictor, con, home, **opts)
    preds = predict_all(pred, picked, top, chunk=max(batch_size, 64), on_bad=on_bad,
                        progress=(lambda n: progress(n, len(picked))) if progress else None)
    graded, missing = grade_predictions(preds, picked, max_genes=top)
    metrics = compute_metrics(graded, n_boot=n_boot, seed=seed, max_genes=top)
    seconds = time.perf_counter() - t0
    run_id = new_run_id("eval")
    config = {"predictor": predictor, "cases": list(cases), "limit": limit, "sample": sample, "seed": seed,
              "top": top, "profiles": profiles, "drop_absent": drop_absent,
              "seconds": round(seconds, 2), "n_cases": len(picked)}
    if is_model:
        config.update(mode=mode, batch_size=batch_size, max_new_tokens=max_new_tokens, candidates=candidates)
    save_grades(con, run_id, graded, metrics, kind="eval", name=name or predictor, predictor=predictor,
                config=config, hpo_release=release, split="eval")
    if is_model:
        con.execute("UPDATE run SET model_dir = ? WHERE id = ?", [predictor.strip()[len("model:"):], run_id])
    return EvalResult(run_id, len(graded), metrics, seconds, len(picked) - len(graded) - len(missing), len(missing))
