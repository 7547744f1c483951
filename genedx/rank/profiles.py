"""Gene phenotype profiles learned from stored real cases (issue 4, part 2).

HPO's own annotations are curated from published cases; this does the same with the cases in the
database: for each gene, how many of its cases show each term (or a descendant of it) and how many
explicitly exclude it. Only real (not simulated) cases count, and only those of the chosen split feed a profile (``train`` by default), so a
case is never scored against a profile that saw it or its siblings from the same publication.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import duckdb
import numpy as np

from genedx.errors import GenedxError
from genedx.rank.kbdata import PHENOTYPIC_ABNORMALITY, KbData

PROFILE_CHOICES = ("none", "train", "all")


@dataclass
class CaseProfiles:
    """Per-gene term counts from real cases, as COO arrays over (gene, term column)."""

    which: str
    genes: list[str]                 # profile index -> gene symbol
    n_cases: np.ndarray              # cases per profile
    present_gene: np.ndarray         # ancestor-propagated present counts (a case counts once per term)
    present_col: np.ndarray
    present_count: np.ndarray
    direct_gene: np.ndarray          # direct present terms (for explanations)
    direct_col: np.ndarray
    direct_count: np.ndarray
    excluded_gene: np.ndarray        # direct excluded terms
    excluded_col: np.ndarray
    excluded_count: np.ndarray
    n_publications: np.ndarray | None = None   # distinct publications per profile (a case without one counts alone)

    @property
    def total_cases(self) -> int:
        return int(self.n_cases.sum())


def _case_filter(which: str) -> str:
    if which == "train":
        return "AND c.id IN (SELECT case_id FROM case_split WHERE split = 'train')"
    return ""


def load_case_profiles(con: duckdb.DuckDBPyConnection, kb: KbData, which: str = "train",
                       case_ids: Sequence[str] | None = None) -> CaseProfiles | None:
    """Profiles from the stored cases of split ``which`` ('train' or 'all'); None for 'none'.

    ``case_ids``: only these stored cases (within ``which``) feed the profiles; the re-ranker builds
    its training features out of fold with it, so a case is never scored against its own profile.
    """
    if which not in PROFILE_CHOICES:
        raise GenedxError(f"unknown profiles choice {which!r}: use one of {', '.join(PROFILE_CHOICES)}")
    if which == "none":
        return None
    flt = _case_filter(which)
    if case_ids is not None:
        # a temp table, not an inlined list: thousands of ids; dropped again below
        con.execute("CREATE OR REPLACE TEMP TABLE _profile_ids AS SELECT unnest(?::VARCHAR[]) AS id",
                    [[str(i) for i in case_ids]])
        flt += " AND c.id IN (SELECT id FROM _profile_ids)"
    try:
        return _load_profiles(con, kb, which, flt)
    finally:
        if case_ids is not None:
            con.execute("DROP TABLE IF EXISTS _profile_ids")


def _load_profiles(con: duckdb.DuckDBPyConnection, kb: KbData, which: str, flt: str) -> CaseProfiles:
    # Case terms are mapped through hpo_id_map so stored alt/obsolete ids still count.
    base = f"""
        WITH c AS (SELECT id, gene, coalesce(publication, id) AS pub FROM "case" c WHERE gene IS NOT NULL AND source <> 'simulated' {flt}),
        cp AS (SELECT c.gene, c.id, c.pub, m.term, p.excluded FROM c JOIN case_phenotype p ON p.case_id = c.id
               JOIN hpo_id_map m ON m.id = p.term WHERE m.term IS NOT NULL)"""
    n = con.execute(base + """
        SELECT gene, count(DISTINCT id), count(DISTINCT pub) FROM cp GROUP BY gene ORDER BY gene""").fetchall()
    if not n:
        return CaseProfiles(which, [], *(np.zeros(0, dtype=np.int64) for _ in range(11)))
    genes = [g for g, _, _ in n]
    gix = {g: i for i, g in enumerate(genes)}
    prop = con.execute(base + f"""
        SELECT cp.gene, a.ancestor AS term, count(DISTINCT cp.id) AS k FROM cp
        JOIN hpo_ancestor a ON a.term = cp.term
        WHERE NOT cp.excluded
          AND a.ancestor IN (SELECT term FROM hpo_ancestor WHERE ancestor = '{PHENOTYPIC_ABNORMALITY}')
        GROUP BY cp.gene, a.ancestor""").fetchall()
    direct = con.execute(base + """
        SELECT gene, term, count(DISTINCT id), excluded FROM cp GROUP BY gene, term, excluded""").fetchall()
    tix = kb.term_index

    def coo(rows):
        rows = [(gix[g], tix[t], k) for g, t, k in rows if t in tix]
        if not rows:
            return (np.zeros(0, dtype=np.int64),) * 3
        a = np.array(rows, dtype=np.int64)
        return a[:, 0], a[:, 1], a[:, 2]

    pg, pc, pk = coo(prop)
    dg, dc, dk = coo([(g, t, k) for g, t, k, ex in direct if not ex])
    eg, ec, ek = coo([(g, t, k) for g, t, k, ex in direct if ex])
    return CaseProfiles(which, genes, np.array([k for _, k, _ in n], dtype=np.int64),
                        pg, pc, pk, dg, dc, dk, eg, ec, ek, np.array([k for _, _, k in n], dtype=np.int64))
