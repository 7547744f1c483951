"""Grade a set of cases and aggregate: top@k, mean grade, well-formed share, MRR, with bootstrap CIs.

Every metric is a mean of one number per case (top@k: 1 when the true gene ranks <= k; MRR:
1/rank or 0), so one seeded, vectorised bootstrap over cases gives all the 95% intervals.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from rich.table import Table

from genedx.answer_format import MAX_GENES, format_answer
from genedx.grade.graders import ConfiguredGrader, grader_from_config
from genedx.grade.parse import parse_answer
from genedx.kb.genes import GeneNormalizer

# Keys as stored in the ``metric`` table (same names as genedx.train.runs); labels for display.
METRIC_NAMES = ("top1", "top5", "top10", "topmax", "mean_grade", "well_formed", "mrr")
METRIC_LABELS = {"top1": "top@1", "top5": "top@5", "top10": "top@10", "topmax": "top@max",
                 "mean_grade": "mean grade", "well_formed": "well-formed", "mrr": "MRR"}


@dataclass
class GradedCase:
    """One graded answer. ``rank`` is the 1-based rank of the true gene in the cut list, None if absent."""

    case_id: str
    correct_answer: str
    genes: list[str]
    grade: float
    rank: int | None
    well_formed: bool
    source: str | None = None
    output: str | None = None   # the raw model text, when the prediction was text
    scores: list[float | None] | None = None  # the predictor's score of each of ``genes``, when it gave them


@dataclass
class Estimate:
    value: float
    lo: float
    hi: float

    def __str__(self) -> str:
        if math.isnan(self.value):
            return "-"
        return f"{self.value:.3f} [{self.lo:.3f}, {self.hi:.3f}]"


@dataclass
class Metrics:
    """Metrics over ``n`` cases (name -> Estimate), plus the same per case source."""

    n: int
    values: dict[str, Estimate]
    by_source: dict[str, "Metrics"] = field(default_factory=dict)
    max_genes: int = MAX_GENES

    def __getitem__(self, name: str) -> Estimate:
        return self.values[name]

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "max_genes": self.max_genes,
                "metrics": {k: _clean(asdict(v)) for k, v in self.values.items()},
                "by_source": {s: m.to_dict() for s, m in self.by_source.items()}}


def _clean(d: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else round(v, 6)) for k, v in d.items()}


def default_grader(max_genes: int = MAX_GENES) -> ConfiguredGrader:
    """The default ranked-gene grader, cutting answers at ``max_genes`` (used when no grader is given)."""
    return grader_from_config({"type": "ranked_gene", "max_rank": max_genes})


def grade_output(case_id: str, correct_answer: str, output: str, grader: ConfiguredGrader | None = None,
                 source: str | None = None, max_genes: int = MAX_GENES,
                 normalizer: GeneNormalizer | None = None) -> GradedCase:
    """Grade one raw model output (rank/genes from the parser, grade from ``grader``)."""
    norm = normalizer or GeneNormalizer.default()
    grader = grader or default_grader(max_genes)
    parsed = parse_answer(output, max_genes, norm)
    truth = norm.normalize(correct_answer) or correct_answer if correct_answer else correct_answer
    return GradedCase(case_id, truth, parsed.genes, grader(output, correct_answer), parsed.rank(truth),
                      parsed.well_formed, source, output if isinstance(output, str) else None)


def grade_genes(case_id: str, correct_answer: str, genes: Sequence[str], grader: ConfiguredGrader | None = None,
                source: str | None = None, max_genes: int = MAX_GENES,
                normalizer: GeneNormalizer | None = None) -> GradedCase:
    """Grade a ranked symbol list (a ranker's output) as if it were a well-formed answer."""
    symbols = [s.strip() for s in genes if isinstance(s, str) and s.strip() and "," not in s]
    graded = grade_output(case_id, correct_answer, format_answer(symbols), grader, source, max_genes, normalizer)
    graded.output = None
    return graded


def grade_predictions(predictions: Iterable[Any], cases: Iterable[Any] | Mapping[str, Any],
                      grader: ConfiguredGrader | None = None, max_genes: int = MAX_GENES
                      ) -> tuple[list[GradedCase], list[str]]:
    """Grade ``genedx.predict.Prediction`` objects (or ``{"id", "output"|"genes"}`` dicts) against cases.

    Returns the graded cases (in prediction order) and the ids of cases with a gene but no
    prediction. Predictions whose case is unknown or has no gene are skipped.
    """
    by_id = dict(cases) if isinstance(cases, Mapping) else {c.id: c for c in cases}
    grader = grader or default_grader(max_genes)
    graded, seen = [], set()
    for p in predictions:
        if isinstance(p, dict):
            cid, output, genes = str(p.get("id")), p.get("output"), p.get("genes")
        else:
            cid, output, genes = p.case_id, p.output, [{"symbol": g.symbol, "score": g.score} for g in p.genes]
        case = by_id.get(cid)
        if case is None or not case.gene or cid in seen:
            continue
        seen.add(cid)
        graded.append(_grade_any(cid, case.gene, output, genes, grader, case.source, max_genes))
    missing = [cid for cid, c in by_id.items() if c.gene and cid not in seen]
    return graded, missing


def _grade_any(cid: str, truth: str, output: Any, genes: Any, grader: ConfiguredGrader, source: str | None,
               max_genes: int) -> GradedCase:
    """Grade text when there is text, else a gene list (symbols or ``{"symbol", "score"}`` dicts)."""
    if isinstance(output, str):
        return grade_output(cid, truth, output, grader, source, max_genes)
    items = [g if isinstance(g, dict) else {"symbol": g} for g in (genes or [])]
    graded = grade_genes(cid, truth, [g["symbol"] for g in items if isinstance(g.get("symbol"), str)], grader,
                         source, max_genes)
    if any(isinstance(g.get("score"), (int, float)) for g in items):
        norm = GeneNormalizer.default()
        by_symbol: dict[str, float | None] = {}
        for g in items:
            if isinstance(g.get("symbol"), str):
                by_symbol.setdefault(norm.normalize(g["symbol"]) or "", g.get("score"))
        graded.scores = [by_symbol.get(sym) for sym in graded.genes]
    return graded


def metrics_from_rankings(rows: Iterable[tuple[str, str, Sequence[str], str | None]],
                          grader: ConfiguredGrader | dict | None = None, max_genes: int = MAX_GENES,
                          n_boot: int = 1000, seed: int = 0) -> Metrics:
    """Metrics for ranked gene lists: rows of ``(case_id, true_gene, ranked_symbols, source)``.

    >>> m = metrics_from_rankings([("c1", "SCN1A", ["SCN1A"], "sim"), ("c2", "TBX5", ["CRYAB", "TBX5"], "sim")])
    >>> m["top1"].value, m["topmax"].value, round(m["mean_grade"].value, 2)
    (0.5, 1.0, 0.85)
    """
    g = grader if isinstance(grader, ConfiguredGrader) or grader is None else grader_from_config(grader)
    g = g or default_grader(max_genes)
    graded = [grade_genes(cid, truth, list(genes), g, source, max_genes) for cid, truth, genes, source in rows]
    return compute_metrics(graded, n_boot=n_boot, seed=seed, max_genes=max_genes)


def _per_case(graded: Sequence[GradedCase], max_genes: int) -> np.ndarray:
    """(metric, case) matrix of per-case values in METRIC_NAMES order."""
    ranks = np.array([r if r is not None else 0 for r in (c.rank for c in graded)], dtype=float)
    found = ranks > 0
    rows = [found & (ranks <= 1), found & (ranks <= 5), found & (ranks <= 10), found & (ranks <= max_genes),
            np.array([c.grade for c in graded], dtype=float), np.array([c.well_formed for c in graded], dtype=float),
            np.divide(1.0, ranks, out=np.zeros_like(ranks), where=found)]
    return np.vstack([np.asarray(r, dtype=float) for r in rows])


def _bootstrap(values: np.ndarray, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Percentile 95% intervals of the row means, resampling cases (columns) with replacement."""
    m, n = values.shape
    if n_boot <= 0 or n == 0:
        return np.full(m, np.nan), np.full(m, np.nan)
    rng = np.random.default_rng(seed)
    means = np.empty((n_boot, m))
    chunk = max(1, 4_000_000 // (n * m))  # bound memory: chunk x m x n values at a time
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(k, n))
        means[start:start + k] = values[:, idx].mean(axis=2).T
    lo, hi = np.percentile(means, [2.5, 97.5], axis=0)
    return lo, hi


def compute_metrics(graded: Sequence[GradedCase], n_boot: int = 1000, seed: int = 0,
                    max_genes: int = MAX_GENES, by_source: bool = True) -> Metrics:
    """top@1/5/10/max, mean grade, well-formed share and MRR with seeded bootstrap 95% CIs."""
    graded = list(graded)
    if not graded:
        nan = float("nan")
        return Metrics(0, {k: Estimate(nan, nan, nan) for k in METRIC_NAMES}, {}, max_genes)
    values = _per_case(graded, max_genes)
    lo, hi = _bootstrap(values, n_boot, seed)
    means = values.mean(axis=1)
    est = {k: Estimate(float(means[i]), float(lo[i]), float(hi[i])) for i, k in enumerate(METRIC_NAMES)}
    sources: dict[str, Metrics] = {}
    if by_source:
        groups: dict[str, list[GradedCase]] = {}
        for c in graded:
            groups.setdefault(c.source or "unknown", []).append(c)
        if len(groups) > 1:
            sources = {s: compute_metrics(g, n_boot, seed, max_genes, by_source=False) for s, g in sorted(groups.items())}
    return Metrics(len(graded), est, sources, max_genes)


def metrics_table(metrics: Metrics, title: str | None = None) -> Table:
    """A rich table: one row per metric, columns for all cases and each source (value [95% CI])."""
    table = Table(title=title or f"Grades in % with 95% CI (top@max: true gene in the first {metrics.max_genes})")
    table.add_column("metric")
    table.add_column(f"all (n={metrics.n})", justify="right")
    for s, m in metrics.by_source.items():
        table.add_column(f"{s} (n={m.n})", justify="right")
    for name in METRIC_NAMES:
        table.add_row(METRIC_LABELS[name], _pct(metrics.values[name]), *(_pct(m.values[name]) for m in metrics.by_source.values()))
    return table


def _pct(e: Estimate) -> str:
    if math.isnan(e.value):
        return "-"
    ci = "" if math.isnan(e.lo) else f" [{100 * e.lo:.1f}-{100 * e.hi:.1f}]"
    return f"{100 * e.value:.1f}{ci}"
