"""The predictor contract: anything that turns cases into ranked genes (the phenotype ranker, a
trained model) returns the same ``Prediction`` objects, so batch scoring, evaluation and the app
do not care which predictor ran.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, Sequence

from genedx.cases.model import Case


@dataclass
class TermMatch:
    """One patient term and the annotated term it matched (or, for excluded terms, counted against)."""

    patient_term: str
    annotated_term: str
    contribution: float
    patient_label: str | None = None
    annotated_label: str | None = None


@dataclass
class Evidence:
    """Why a gene ranks where it does: the disease that carried it and the terms that counted."""

    disease: str | None
    disease_name: str | None
    matched: list[TermMatch] = field(default_factory=list)
    excluded: list[TermMatch] = field(default_factory=list)   # absent terms the disease usually shows
    unmatched: list[str] = field(default_factory=list)        # patient terms the disease does not explain
    notes: list[str] = field(default_factory=list)


@dataclass
class GeneScore:
    symbol: str
    score: float
    disease: str | None = None
    disease_name: str | None = None
    evidence: Evidence | None = None


@dataclass
class Prediction:
    case_id: str
    genes: list[GeneScore]
    predictor: str
    hpo_release: str | None = None
    output: str | None = None          # a model's raw text (reasoning + answer); None for the ranker
    options: dict[str, Any] = field(default_factory=dict)  # e.g. profiles=train, mode=retrieval

    def to_json(self, evidence: bool = False) -> dict[str, Any]:
        """The batch-scoring output line: ``{"id", "genes": [{"symbol", "score", "disease"}], ...}``."""
        genes = []
        for g in self.genes:
            d: dict[str, Any] = {"symbol": g.symbol, "score": round(float(g.score), 6), "disease": g.disease}
            if evidence and g.evidence is not None:
                d["evidence"] = asdict(g.evidence)
            genes.append(d)
        out: dict[str, Any] = {"id": self.case_id, "genes": genes, "predictor": self.predictor,
                               "hpo_release": self.hpo_release}
        if self.options:
            out["options"] = self.options
        if self.output is not None:
            out["output"] = self.output
        return out


class Predictor(Protocol):
    """Turns cases into ranked genes."""

    name: str
    hpo_release: str | None

    def predict(self, cases: Sequence[Case], top: int = 10) -> list[Prediction]:
        ...
