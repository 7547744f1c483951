"""Map any HPO id a case may carry (current, alt, obsolete) to the current term of the built KB."""

from __future__ import annotations

import duckdb

from genedx.home import require_kb

CURRENT, ALT, OBSOLETE, UNKNOWN = "current", "alt", "obsolete", "unknown"


class TermMapper:
    """Id mapping and labels from the knowledge base (tables ``hpo_id_map`` and ``hpo_term``).

    ``map`` returns ``(current id or None, kind)``; kind is current/alt/obsolete/unknown. An obsolete
    term without a single replacement maps to None (kind ``obsolete``): the caller reports it.
    """

    def __init__(self, id_map: dict[str, tuple[str | None, str]], labels: dict[str, str], release: str = "unknown"):
        self._map = id_map
        self.labels = labels
        self.release = release

    @classmethod
    def from_db(cls, con: duckdb.DuckDBPyConnection) -> "TermMapper":
        release = require_kb(con)
        id_map = {i: (t, k) for i, t, k in con.execute("SELECT id, term, kind FROM hpo_id_map").fetchall()}
        labels = dict(con.execute("SELECT id, label FROM hpo_term").fetchall())
        return cls(id_map, labels, release)

    def map(self, hpo_id: str) -> tuple[str | None, str]:
        hit = self._map.get(hpo_id.strip().upper().replace("_", ":"))
        return hit if hit is not None else (None, UNKNOWN)

    def label(self, hpo_id: str) -> str | None:
        return self.labels.get(hpo_id)

    def __contains__(self, hpo_id: str) -> bool:
        return self.map(hpo_id)[0] is not None
