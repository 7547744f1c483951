"""`genedx data build`: the HPO release and HGNC genes into DuckDB, in one transaction."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import duckdb
import pyarrow as pa

from genedx.errors import GenedxError
from genedx.home import meta_set, transaction
from genedx.kb.genes import GeneNormalizer
from genedx.kb.hpo import FREQUENCY_TERMS, ancestor_closure, hpoa_header_line, parse_obo, release_dir

KB_TABLES = ("hpo_term", "hpo_id_map", "hpo_ancestor", "gene", "disease", "disease_phenotype", "gene_disease")


@dataclass
class BuildReport:
    hpo_release: str
    terms: int
    diseases: int
    annotations: int
    genes_linked: int
    gene_disease_links: int
    unmapped_gene_ids: int
    seconds: float


def _id_map(terms) -> list[tuple[str, str | None, str]]:
    """Every id a case may carry -> current term; replaced_by chains are followed."""
    by_id = {t.id: t for t in terms}
    alt = {a: t.id for t in terms for a in t.alt_ids}

    def current(tid: str, depth: int = 0) -> str | None:
        t = by_id.get(tid)
        if t is None:
            return current(alt[tid], depth + 1) if tid in alt and depth < 10 else None
        if not t.obsolete:
            return t.id
        if t.replaced_by and depth < 10:
            return current(t.replaced_by, depth + 1)
        if len(t.consider) == 1 and depth < 10:
            return current(t.consider[0], depth + 1)
        return None

    rows = []
    for t in terms:
        rows.append((t.id, current(t.id), "obsolete" if t.obsolete else "current"))
        for a in t.alt_ids:
            if a not in by_id:
                rows.append((a, current(t.id), "alt"))
    return rows


def build_kb(con: duckdb.DuckDBPyConnection, hpo_dir: str | Path | None = None,
             progress: Callable[[str], None] | None = None) -> BuildReport:
    """Rebuild every knowledge-base table from the HPO release files; all or nothing."""
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    d = release_dir(hpo_dir)
    say("parsing hp.obo")
    release, terms = parse_obo(d / "hp.obo")
    closure = ancestor_closure(terms)
    idmap = _id_map(terms)
    say("loading HGNC genes")
    norm = GeneNormalizer.default()
    genes = list(norm.genes.values())

    term_tbl = pa.table({
        "id": [t.id for t in terms], "label": [t.label for t in terms],
        "definition": [t.definition for t in terms], "synonyms": [t.synonyms for t in terms],
        "obsolete": [t.obsolete for t in terms], "replaced_by": [t.replaced_by for t in terms],
        "alt_ids": [t.alt_ids for t in terms], "parents": [t.parents for t in terms]})
    anc_tbl = pa.table({"term": [r[0] for r in closure], "ancestor": [r[1] for r in closure],
                        "distance": pa.array([r[2] for r in closure], pa.int32())})
    map_tbl = pa.table({"id": [r[0] for r in idmap], "term": [r[1] for r in idmap], "kind": [r[2] for r in idmap]})
    gene_tbl = pa.table({
        "symbol": [g.symbol for g in genes], "hgnc_id": [g.hgnc_id for g in genes],
        "entrez_id": pa.array([g.entrez_id for g in genes], pa.int32()), "name": [g.name for g in genes],
        "aliases": [list(g.aliases) for g in genes], "prev_symbols": [list(g.prev_symbols) for g in genes]})
    freq_tbl = pa.table({"code": list(FREQUENCY_TERMS), "p": list(FREQUENCY_TERMS.values())})
    for name, tbl in [("_terms", term_tbl), ("_anc", anc_tbl), ("_idmap", map_tbl), ("_genes", gene_tbl),
                      ("_freq", freq_tbl)]:
        con.register(name, tbl)

    hpoa_skip = hpoa_header_line(d / "phenotype.hpoa")
    # Paths go into SQL string literals: double any single quote.
    hpoa, g2p, p2g = (str(d / f).replace("'", "''")
                      for f in ("phenotype.hpoa", "genes_to_phenotype.txt", "phenotype_to_genes.txt"))
    say("writing tables")
    try:
        with transaction(con):  # all or nothing
            for t in KB_TABLES:
                con.execute(f"DELETE FROM {t}")
            con.execute("INSERT INTO hpo_term SELECT * FROM _terms")
            con.execute("INSERT INTO hpo_ancestor SELECT * FROM _anc")
            con.execute("INSERT INTO hpo_id_map SELECT * FROM _idmap")
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE _hpoa AS SELECT * FROM read_csv('{hpoa}', delim='\t', header=true,
                    skip={hpoa_skip}, all_varchar=true, quote='', escape='')""")
            con.execute("""
                INSERT INTO disease SELECT database_id, any_value(disease_name) FROM _hpoa GROUP BY database_id""")
            # Annotations: map alt/obsolete ids to current terms; frequency as probability when known.
            con.execute("""
                INSERT INTO disease_phenotype
                SELECT h.database_id, m.term,
                       CASE WHEN f.p IS NOT NULL THEN f.p
                            WHEN h.frequency LIKE '%/%' THEN least(1.0,
                                 try_cast(split_part(h.frequency, '/', 1) AS DOUBLE)
                                 / nullif(try_cast(split_part(h.frequency, '/', 2) AS DOUBLE), 0))
                            WHEN h.frequency LIKE '%\\%%' ESCAPE '\\' THEN least(1.0,
                                 try_cast(rtrim(h.frequency, '%') AS DOUBLE) / 100.0)
                       END,
                       coalesce(h.qualifier = 'NOT', false), nullif(h.onset, ''), h.aspect, h.reference
                FROM _hpoa h JOIN _idmap m ON m.id = h.hpo_id LEFT JOIN _freq f ON f.code = h.frequency
                WHERE m.term IS NOT NULL""")
            # Gene-disease links from both gene files; NCBI gene ids -> approved HGNC symbols.
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE _gd_raw AS
                SELECT DISTINCT try_cast(ncbi_gene_id AS INTEGER) AS entrez, gene_symbol, disease_id
                FROM read_csv('{g2p}', delim='\t', header=true, all_varchar=true, quote='')
                UNION
                SELECT DISTINCT try_cast(ncbi_gene_id AS INTEGER), gene_symbol, disease_id
                FROM read_csv('{p2g}', delim='\t', header=true, all_varchar=true, quote='')""")
            con.execute("""
                INSERT INTO gene_disease
                SELECT DISTINCT coalesce(g1.symbol, g2.symbol), r.disease_id
                FROM _gd_raw r LEFT JOIN _genes g1 ON g1.entrez_id = r.entrez
                     LEFT JOIN _genes g2 ON g2.symbol = r.gene_symbol
                WHERE coalesce(g1.symbol, g2.symbol) IS NOT NULL
                  AND r.disease_id IN (SELECT id FROM disease)""")
            unmapped = con.execute("""
                SELECT count(DISTINCT r.entrez) FROM _gd_raw r LEFT JOIN _genes g1 ON g1.entrez_id = r.entrez
                LEFT JOIN _genes g2 ON g2.symbol = r.gene_symbol WHERE coalesce(g1.symbol, g2.symbol) IS NULL
            """).fetchall()[0][0]  # fetchall completes the result: a pending one blocks con.register
            con.execute("""
                INSERT INTO gene SELECT g.*, g.symbol IN (SELECT gene FROM gene_disease) FROM _genes g""")
            meta_set(con, "hpo_release", release)
            meta_set(con, "hpo_source", str(d))
            meta_set(con, "kb_built_at", time.strftime("%Y-%m-%dT%H:%M:%S"))
    except duckdb.Error as e:
        # The transaction rolled back: the stored knowledge base is as it was.
        raise GenedxError(f"HPO release files in {d} could not be read ({type(e).__name__}: "
                          f"{str(e).splitlines()[0]}); the knowledge base was left unchanged") from None
    finally:
        for name in ("_terms", "_anc", "_idmap", "_genes", "_freq"):
            con.unregister(name)
    counts = con.execute("""SELECT (SELECT count(*) FROM hpo_term), (SELECT count(*) FROM disease),
        (SELECT count(*) FROM disease_phenotype), (SELECT count(DISTINCT gene) FROM gene_disease),
        (SELECT count(*) FROM gene_disease)""").fetchall()[0]
    return BuildReport(release, *counts, unmapped_gene_ids=unmapped, seconds=time.perf_counter() - t0)
