"""Read the knowledge-base tables the ranker needs into plain arrays, once.

Only phenotypic-abnormality terms (the ``HP:0000118`` subtree, annotation aspect ``P``) take part
in scoring; inheritance, onset and modifier terms are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np

from genedx.cases.terms import UNKNOWN, TermMapper  # noqa: F401  (UNKNOWN re-exported for the ranker)
from genedx.home import require_kb

PHENOTYPIC_ABNORMALITY = "HP:0000118"


@dataclass
class KbData:
    """The ontology and annotations as index arrays (columns = phenotype terms, rows = diseases)."""

    hpo_release: str
    terms: list[str]                      # column index -> phenotype term id
    term_index: dict[str, int]
    labels: dict[str, str]                # every term id -> label
    mapper: TermMapper                    # any id a case may carry -> (current id | None, kind)
    anc_ptr: np.ndarray                   # CSR of the is_a closure (self included) over columns:
    anc_idx: np.ndarray                   #   ancestors of column j = anc_idx[anc_ptr[j]:anc_ptr[j+1]]
    anc_dist: np.ndarray                  #   is_a steps from j to each ancestor (closest first)
    diseases: list[str]                   # disease row index -> disease id (all annotated diseases)
    disease_names: dict[str, str]
    ann_row: np.ndarray                   # direct positive annotations (aspect P)
    ann_col: np.ndarray
    ann_freq: np.ndarray                  # probability; NaN where the release gives none
    not_row: np.ndarray                   # NOT annotations (aspect P)
    not_col: np.ndarray
    genes: list[str]                      # gene index -> approved symbol (genes with a disease link)
    gd_gene: np.ndarray                   # gene-disease links as (gene index, disease row) pairs
    gd_row: np.ndarray
    gene_names: dict[str, str] = field(default_factory=dict)

    def ancestors(self, col: int) -> np.ndarray:
        return self.anc_idx[self.anc_ptr[col]:self.anc_ptr[col + 1]]


def _index(values: list[str]) -> dict[str, int]:
    return {v: i for i, v in enumerate(values)}


def load_kb_data(con: duckdb.DuckDBPyConnection) -> KbData:
    """All KB tables the ranker uses, as arrays (about 1 s on the real release)."""
    release = require_kb(con)
    terms = [r[0] for r in con.execute(
        "SELECT DISTINCT term FROM hpo_ancestor WHERE ancestor = ? ORDER BY term", [PHENOTYPIC_ABNORMALITY]
    ).fetchall()]
    tix = _index(terms)
    mapper = TermMapper.from_db(con)  # the one id-map + label loader
    labels = mapper.labels

    anc = con.execute("""
        SELECT a.term, a.ancestor, a.distance FROM hpo_ancestor a
        WHERE a.term IN (SELECT term FROM hpo_ancestor WHERE ancestor = ?)
          AND a.ancestor IN (SELECT term FROM hpo_ancestor WHERE ancestor = ?)
        ORDER BY a.term, a.distance""", [PHENOTYPIC_ABNORMALITY, PHENOTYPIC_ABNORMALITY]).fetchnumpy()
    t_col = np.fromiter((tix[t] for t in anc["term"]), dtype=np.int64, count=len(anc["term"]))
    a_col = np.fromiter((tix[t] for t in anc["ancestor"]), dtype=np.int32, count=len(anc["ancestor"]))
    order = np.argsort(t_col, kind="stable")   # keep distance order inside each term
    anc_ptr = np.zeros(len(terms) + 1, dtype=np.int64)
    np.add.at(anc_ptr, t_col + 1, 1)
    anc_ptr = np.cumsum(anc_ptr)

    disease_rows = con.execute("SELECT id, name FROM disease ORDER BY id").fetchall()
    diseases = [d for d, _ in disease_rows]
    dix = _index(diseases)
    ann = con.execute("""
        SELECT disease, term, max(frequency) AS frequency FROM disease_phenotype
        WHERE aspect = 'P' AND NOT excluded GROUP BY disease, term""").fetchnumpy()
    keep = np.fromiter((t in tix for t in ann["term"]), dtype=bool, count=len(ann["term"]))
    nots = con.execute("""
        SELECT DISTINCT disease, term FROM disease_phenotype WHERE aspect = 'P' AND excluded""").fetchnumpy()
    gd = con.execute("SELECT DISTINCT gene, disease FROM gene_disease ORDER BY gene").fetchnumpy()
    genes = sorted(set(gd["gene"].tolist()))
    gix = _index(genes)
    gd_keep = [i for i, d in enumerate(gd["disease"]) if d in dix]
    gene_names = dict(con.execute("SELECT symbol, name FROM gene WHERE in_hpo").fetchall())

    freq = np.asarray(ann["frequency"], dtype=np.float64)
    if np.ma.isMaskedArray(ann["frequency"]):
        freq = np.ma.filled(ann["frequency"].astype(np.float64), np.nan)
    return KbData(
        hpo_release=release, terms=terms, term_index=tix, labels=labels, mapper=mapper,
        anc_ptr=anc_ptr, anc_idx=a_col[order], anc_dist=np.asarray(anc["distance"], dtype=np.int32)[order],
        diseases=diseases, disease_names=dict(disease_rows),
        ann_row=np.array([dix[d] for d in ann["disease"][keep]], dtype=np.int64),
        ann_col=np.array([tix[t] for t in ann["term"][keep]], dtype=np.int64),
        ann_freq=freq[keep],
        not_row=np.array([dix[d] for d, t in zip(nots["disease"], nots["term"]) if t in tix], dtype=np.int64),
        not_col=np.array([tix[t] for t in nots["term"] if t in tix], dtype=np.int64),
        genes=genes,
        gd_gene=np.array([gix[gd["gene"][i]] for i in gd_keep], dtype=np.int64),
        gd_row=np.array([dix[gd["disease"][i]] for i in gd_keep], dtype=np.int64),
        gene_names=gene_names,
    )
