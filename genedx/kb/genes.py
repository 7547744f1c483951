"""HGNC gene-symbol normaliser.

Maps any symbol a person, a phenopacket or a model writes to the approved HGNC symbol:
case-insensitive; approved symbols first, then previous symbols and aliases. A previous symbol or
alias shared by several genes is *ambiguous* and maps to nothing (guessing would silently credit
the wrong gene). Written by hand because no maintained PyPI package does this offline against a
pinned HGNC table; the table ships in ``data/hgnc/``.
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from genedx.home import DATA_DIR

HGNC_TSV = DATA_DIR / "hgnc" / "hgnc_genes.tsv.gz"

APPROVED, PREVIOUS, ALIAS, AMBIGUOUS, UNKNOWN = "approved", "previous", "alias", "ambiguous", "unknown"


@dataclass(frozen=True)
class HgncGene:
    symbol: str
    hgnc_id: str
    entrez_id: int | None
    name: str
    locus_group: str
    aliases: tuple[str, ...]
    prev_symbols: tuple[str, ...]


class GeneNormalizer:
    """Symbol lookup over an HGNC table.

    >>> n = GeneNormalizer.default()
    >>> n.normalize("scn1a"), n.normalize("not-a-gene")
    ('SCN1A', None)
    """

    def __init__(self, genes: list[HgncGene]):
        self.genes = {g.symbol: g for g in genes}
        self._approved = {g.symbol.upper(): g.symbol for g in genes}
        self._by_entrez = {g.entrez_id: g.symbol for g in genes if g.entrez_id is not None}
        other: dict[str, set[str]] = {}
        kind: dict[str, str] = {}
        for g in genes:
            for s, k in [(p, PREVIOUS) for p in g.prev_symbols] + [(a, ALIAS) for a in g.aliases]:
                key = s.upper()
                if key in self._approved:
                    continue  # an approved symbol always wins over another gene's alias
                other.setdefault(key, set()).add(g.symbol)
                kind.setdefault(key, k)
        self._other = {k: next(iter(v)) for k, v in other.items() if len(v) == 1}
        self._other_kind = kind
        self._ambiguous = {k for k, v in other.items() if len(v) > 1}
        self._cache: dict[str, str | None] = {}

    @classmethod
    def from_tsv(cls, path: str | Path = HGNC_TSV) -> "GeneNormalizer":
        opener = gzip.open if str(path).endswith(".gz") else open
        genes = []
        with opener(path, "rt", encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                split = lambda v: tuple(x.strip() for x in (v or "").split("|") if x.strip())  # noqa: E731
                entrez = row.get("entrez_id") or ""
                genes.append(HgncGene(
                    symbol=row["symbol"], hgnc_id=row["hgnc_id"],
                    entrez_id=int(entrez) if entrez.isdigit() else None,
                    name=row.get("name") or "", locus_group=row.get("locus_group") or "",
                    aliases=split(row.get("alias_symbol")), prev_symbols=split(row.get("prev_symbol"))))
        return cls(genes)

    @staticmethod
    @lru_cache(maxsize=1)
    def default() -> "GeneNormalizer":
        """The shipped HGNC table, loaded once per process."""
        return GeneNormalizer.from_tsv(HGNC_TSV)

    def lookup(self, symbol: str) -> tuple[str | None, str]:
        """(approved symbol or None, how it matched: approved/previous/alias/ambiguous/unknown)."""
        key = symbol.strip().upper()
        if key in self._approved:
            return self._approved[key], APPROVED
        if key in self._other:
            return self._other[key], self._other_kind[key]
        if key in self._ambiguous:
            return None, AMBIGUOUS
        return None, UNKNOWN

    def normalize(self, symbol: str) -> str | None:
        """The approved symbol, or None when unknown or ambiguous (memoised: graders call it a lot)."""
        try:
            return self._cache[symbol]
        except KeyError:
            pass
        result = self.lookup(symbol)[0]
        if len(self._cache) < 1_000_000:
            self._cache[symbol] = result
        return result

    def by_entrez(self, entrez_id: int) -> str | None:
        return self._by_entrez.get(entrez_id)
