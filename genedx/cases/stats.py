"""Dataset statistics: counts by source and split, genes, terms per case, the HPO release."""

from __future__ import annotations

import duckdb

from genedx.home import meta_get


def dataset_stats(con: duckdb.DuckDBPyConnection) -> dict:
    """A JSON-ready summary of the stored cases (works before the KB is built: release is None)."""
    total, genes, diseases, publications = con.execute("""
        SELECT count(*), count(DISTINCT gene), count(DISTINCT disease), count(DISTINCT publication)
        FROM "case" """).fetchone()
    by_source = dict(con.execute('SELECT source, count(*) FROM "case" GROUP BY 1 ORDER BY 1').fetchall())
    by_split = {str(k): v for k, v in con.execute("""
        SELECT coalesce(s.split, 'unassigned'), count(*) FROM "case" c LEFT JOIN case_split s ON s.case_id = c.id
        GROUP BY 1 ORDER BY 1""").fetchall()}
    by_source_split = [{"source": a, "split": b, "cases": n, "genes": g} for a, b, n, g in con.execute("""
        SELECT c.source, coalesce(s.split, 'unassigned'), count(*), count(DISTINCT c.gene)
        FROM "case" c LEFT JOIN case_split s ON s.case_id = c.id GROUP BY 1, 2 ORDER BY 1, 2""").fetchall()]
    terms = con.execute("""
        WITH per AS (SELECT c.id, count(p.term) FILTER (WHERE NOT p.excluded) AS present,
                            count(p.term) FILTER (WHERE p.excluded) AS absent
                     FROM "case" c LEFT JOIN case_phenotype p ON p.case_id = c.id GROUP BY c.id)
        SELECT avg(present), median(present), min(present), max(present), avg(absent), median(absent), max(absent)
        FROM per""").fetchone()
    split_by = con.execute("SELECT any_value(split_by), any_value(seed) FROM case_split").fetchone()
    issues = con.execute("SELECT count(*) FROM import_issue").fetchone()[0]
    r = lambda x: None if x is None else round(float(x), 2)  # noqa: E731
    return {
        "hpo_release": meta_get(con, "hpo_release"), "cases": total, "genes": genes, "diseases": diseases,
        "publications": publications, "by_source": by_source, "by_split": by_split,
        "by_source_split": by_source_split, "split_by": split_by[0], "split_seed": split_by[1],
        "present_per_case": {"mean": r(terms[0]), "median": r(terms[1]), "min": terms[2], "max": terms[3]},
        "absent_per_case": {"mean": r(terms[4]), "median": r(terms[5]), "max": terms[6]},
        "import_issues_logged": issues,
    }
