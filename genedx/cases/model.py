"""The one case model shared by import, simulation, export, ranking, grading and the app."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SOURCES = ("phenopacket", "simulated", "user", "text")


@dataclass
class Case:
    """A case report: phenotypes present / absent, basic information, and (when known) the causal gene.

    ``present``/``absent`` hold current HPO ids; ``gene`` an approved HGNC symbol; ``age`` an ISO 8601
    duration (``P3Y``); ``sex`` one of female/male/other/unknown or None.
    """

    id: str
    present: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    sex: str | None = None
    age: str | None = None
    gene: str | None = None
    disease: str | None = None
    disease_label: str | None = None
    source: str = "user"
    publication: str | None = None
    cohort: str | None = None
    split: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Case":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


@dataclass
class BadRecord:
    """A record that could not be used, with where it came from and why (one line for the user)."""

    origin: str   # file (and line) it came from
    record: str   # the record's id, or a line number when it has none
    problem: str
    reason: str = "invalid record"  # short category for import reports ("no gene", "malformed JSON", ...)

    def __str__(self) -> str:
        return f"{self.origin}: {self.record}: {self.problem}"
