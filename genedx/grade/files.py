"""Grade a predictions JSONL file against case files (the library behind ``genedx grade``).

Prediction lines are ``{"id": ..., "output": "<raw model text>"}`` or ``{"id": ..., "genes": [...]}``
where genes are symbols or ``{"symbol": ...}`` objects (as ``genedx score`` writes them). Cases
come from anything :func:`genedx.cases.readers.read_cases` reads. Bad lines, duplicate ids, cases
without a prediction and predictions without a case are reported one line each; grading goes on.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from genedx.answer_format import MAX_GENES
from genedx.cases.model import BadRecord, Case
from genedx.cases.readers import loads_json, read_cases
from genedx.errors import GenedxError
from genedx.grade.graders import ConfiguredGrader, grader_from_config
from genedx.grade.metrics import GradedCase, Metrics, _grade_any, compute_metrics, default_grader
from genedx.grade.truth import check_true_gene


@dataclass
class PredictionLine:
    id: str
    output: str | None = None
    genes: list[str | dict] | None = None   # symbols, or {"symbol", "score", ...} as `genedx score` writes


@dataclass
class GradeReport:
    graded: list[GradedCase]
    metrics: Metrics
    grader: ConfiguredGrader
    bad_lines: list[str] = field(default_factory=list)   # unusable prediction or case records
    missing: list[str] = field(default_factory=list)     # cases with no prediction
    unknown: list[str] = field(default_factory=list)     # predictions whose id is not a case
    unknown_genes: list[str] = field(default_factory=list)  # cases whose true gene HGNC does not know: not graded

    def to_dict(self) -> dict[str, Any]:
        return {**self.metrics.to_dict(), "grader": self.grader.config, "bad_lines": self.bad_lines,
                "missing": self.missing, "unknown": self.unknown, "unknown_true_genes": self.unknown_genes}


def read_predictions(path: str | Path) -> tuple[list[PredictionLine], list[str]]:
    """Predictions of a JSONL(.gz) file and one problem line per unusable line (first id wins)."""
    path = Path(path)
    if not path.is_file():
        raise GenedxError(f"predictions file {path}: no such file")
    opener = gzip.open if path.name.endswith(".gz") else open
    preds: list[PredictionLine] = []
    problems: list[str] = []
    seen: set[str] = set()
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                p = _prediction(line)
                if isinstance(p, str):
                    problems.append(f"{path}:{n}: {p}")
                elif p.id in seen:
                    problems.append(f"{path}:{n}: {p.id}: duplicate prediction id (the first one is graded)")
                else:
                    seen.add(p.id)
                    preds.append(p)
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise GenedxError(f"predictions file {path}: cannot read: {e}") from None
    return preds, problems


def _prediction(line: str) -> PredictionLine | str:
    obj, problem = loads_json(line)
    if problem:
        return problem.replace(" (line 1, ", " (")
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    pid = obj.get("id")
    if not isinstance(pid, (str, int)) or isinstance(pid, bool) or str(pid) == "":
        return "no \"id\""
    pid = str(pid)
    output, genes = obj.get("output"), obj.get("genes")
    if isinstance(output, str):
        return PredictionLine(pid, output=output)
    if isinstance(genes, list):
        symbols = [g.get("symbol") if isinstance(g, dict) else g for g in genes]
        if not all(isinstance(s, str) for s in symbols):
            return f"{pid}: \"genes\" must hold symbols or {{\"symbol\": ...}} objects"
        return PredictionLine(pid, genes=genes)
    return f"{pid}: needs \"output\" (text) or \"genes\" (list)"


def read_truth(paths: Iterable[str | Path], unknown_genes: list[str] | None = None
               ) -> tuple[dict[str, Case], list[str], set[str]]:
    """Cases with a gene by id, one problem line per unusable or duplicate case record, and the ids
    of the unusable records (their predictions are not reported a second time). A case whose true
    gene is not an HGNC symbol is such a record (it cannot be graded); its id is also appended to
    ``unknown_genes`` when given."""
    cases: dict[str, Case] = {}
    problems: list[str] = []
    bad_ids: set[str] = set()
    for item in read_cases(paths, require_gene=True):
        if isinstance(item, BadRecord):
            problems.append(str(item))
            bad_ids.add(item.record)
        elif not item.gene:
            problems.append(f"{item.id}: case has no gene to grade against")
            bad_ids.add(item.id)
        elif item.id in cases:
            problems.append(f"{item.id}: duplicate case id (the first one is used)")
        elif (gene_problem := check_true_gene(item.gene)[1]) is not None:
            problems.append(f"{getattr(item, '_origin', None) or item.source}: {item.id}: {gene_problem}")
            bad_ids.add(item.id)
            if unknown_genes is not None:
                unknown_genes.append(item.id)
        else:
            cases[item.id] = item
    return cases, problems, bad_ids


def grade_files(cases: Iterable[str | Path], predictions: str | Path,
                grader: dict[str, Any] | str | Path | ConfiguredGrader | None = None,
                max_genes: int = MAX_GENES, n_boot: int = 1000, seed: int = 0) -> GradeReport:
    """Grade every prediction that has a case; report the rest."""
    if max_genes < 1:
        raise GenedxError(f"--max-genes must be >= 1, got {max_genes}")
    g = grader if isinstance(grader, ConfiguredGrader) else (
        grader_from_config(grader) if grader is not None else default_grader(max_genes))
    unknown_genes: list[str] = []
    truth, case_problems, bad_ids = read_truth(cases, unknown_genes)
    preds, pred_problems = read_predictions(predictions)
    if not truth:
        raise GenedxError(f"no usable cases with a gene in {', '.join(map(str, cases))}"
                          + (f" (first problem: {case_problems[0]})" if case_problems else ""))
    graded, unknown, done = [], [], set()
    for p in preds:
        case = truth.get(p.id)
        if case is None:
            if p.id not in bad_ids:  # a bad case record was reported already
                unknown.append(p.id)
            continue
        done.add(p.id)
        graded.append(_grade_any(p.id, case.gene, p.output, p.genes, g, case.source, max_genes))
    missing = [cid for cid in truth if cid not in done]
    metrics = compute_metrics(graded, n_boot=n_boot, seed=seed, max_genes=max_genes)
    return GradeReport(graded, metrics, g, case_problems + pred_problems, missing, unknown, unknown_genes)
