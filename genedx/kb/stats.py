"""What the knowledge base holds: the HPO release and how many terms, diseases, annotations and
genes it has (``genedx data stats``)."""

from __future__ import annotations

import duckdb

from genedx.home import meta_get


def kb_stats(con: duckdb.DuckDBPyConnection) -> dict:
    """A JSON-ready summary of the knowledge base; counts are 0 and the release None before a build.

    ``terms`` are current (non-obsolete) HPO terms; ``annotations`` disease-phenotype rows (``not``
    of them are NOT annotations); ``genes`` the HGNC genes and ``genes_with_disease`` those linked
    to at least one annotated disease."""
    terms, obsolete = con.execute(
        "SELECT count(*) FILTER (WHERE NOT coalesce(obsolete, false)), count(*) FILTER (WHERE obsolete) "
        "FROM hpo_term").fetchone()
    annotations, negated = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE excluded) FROM disease_phenotype").fetchone()
    genes, in_hpo = con.execute("SELECT count(*), count(*) FILTER (WHERE in_hpo) FROM gene").fetchone()
    return {
        "hpo_release": meta_get(con, "hpo_release"),
        "built_at": meta_get(con, "kb_built_at"),
        "terms": terms, "obsolete_terms": obsolete,
        "diseases": con.execute("SELECT count(*) FROM disease").fetchone()[0],
        "annotations": annotations, "not_annotations": negated,
        "genes": genes, "genes_with_disease": in_hpo,
        "gene_disease_links": con.execute("SELECT count(*) FROM gene_disease").fetchone()[0],
    }
