"""Normalise cases against the knowledge base and store them in DuckDB (``case``, ``case_phenotype``).

An import is ONE transaction: either every usable case is written (and every problem logged in
``import_issue``) or, on failure or with ``strict=True`` and any problem, nothing is. Re-importing a
case with the same id replaces it (idempotent); its stored split is kept.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Sequence

import duckdb
import pyarrow as pa

from genedx.cases.model import BadRecord, Case
from genedx.cases.readers import NO_GENE, NO_OBSERVED
from genedx.cases.terms import CURRENT, UNKNOWN, TermMapper
from genedx.errors import GenedxError
from genedx.kb.genes import GeneNormalizer
from genedx.home import transaction

UNKNOWN_HPO, UNKNOWN_GENE = "unknown HPO id", "unknown gene"


@dataclass
class ImportReport:
    """What an import did. ``skipped`` counts skipped records by reason; ``unknown_terms`` counts the
    HPO ids that were dropped (not in the KB's release) over all cases."""

    read: int = 0
    imported: int = 0
    updated: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    unknown_terms: dict[str, int] = field(default_factory=dict)
    mapped_terms: int = 0          # obsolete/alt ids replaced by their current term
    replaced: int = 0              # stored cases of ``replace_source`` removed first
    problems: list[str] = field(default_factory=list)
    written: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def normalize_case(case: Case, mapper: TermMapper, genes: GeneNormalizer | None,
                   origin: str = "") -> tuple[Case | None, list[BadRecord]]:
    """The case with current HPO ids and an approved gene symbol, plus the problems met.

    Unknown HPO ids are dropped and reported (the case is kept); alt/obsolete ids map to the current
    term. An unknown or ambiguous gene, or no observed phenotype left, skips the case (returns None).
    ``genes=None`` leaves the gene as it is (cases without a known gene, e.g. the app's patient).
    """
    problems: list[BadRecord] = []

    def current(ids: Sequence[str]) -> list[str]:
        out = []
        for raw in ids:
            term, kind = mapper.map(raw)
            if term is None:
                why = "obsolete without a replacement" if kind != UNKNOWN else "not in this HPO release"
                problems.append(BadRecord(origin, case.id, f"{UNKNOWN_HPO} {raw} ({why}); dropped", UNKNOWN_HPO))
            else:
                out.append(term)
        return list(dict.fromkeys(out))

    present = current(case.present)
    absent = [t for t in current(case.absent) if t not in set(present)]
    gene = case.gene
    if genes is not None:
        if not gene:
            problems.append(BadRecord(origin, case.id, "no causal gene", NO_GENE))
            return None, problems
        gene, how = genes.lookup(case.gene)
        if gene is None:
            problems.append(BadRecord(origin, case.id, f"{UNKNOWN_GENE} {case.gene!r} ({how} in HGNC); case skipped",
                                      UNKNOWN_GENE))
            return None, problems
    if not present:
        problems.append(BadRecord(origin, case.id, "no observed phenotype (only excluded or unknown terms); "
                                  "case skipped", NO_OBSERVED))
        return None, problems
    out = Case(**{**case.to_dict(), "present": present, "absent": absent, "gene": gene})
    return out, problems


def import_cases(con: duckdb.DuckDBPyConnection, items: Iterable[Case | BadRecord], strict: bool = False,
                 progress: Callable[[int], None] | None = None, origin: str = "",
                 genes: GeneNormalizer | None = None, replace_source: str | None = None) -> ImportReport:
    """Normalise and store cases (from ``read_cases``, the simulator or the app) in one transaction.

    ``replace_source`` first removes every stored case of that source in the same transaction, so a
    failed import never leaves the old cases deleted (``data simulate --replace``).

    ``progress(n)`` is called with the number of records read so far. With ``strict=True`` any
    problem (bad record, unknown id or gene, skipped case) raises ``GenedxError`` and writes nothing.
    """
    t0 = time.perf_counter()
    mapper = TermMapper.from_db(con)
    genes = genes or GeneNormalizer.default()
    report = ImportReport()
    issues: list[BadRecord] = []
    skipped: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    cases: dict[str, tuple[Case, str]] = {}
    for item in items:
        report.read += 1
        if progress and report.read % 100 == 0:
            progress(report.read)
        if isinstance(item, BadRecord):
            issues.append(item)
            skipped[item.reason] += 1
            continue
        where = getattr(item, "_origin", None) or origin  # set by the readers: file (+ line)
        case, probs = normalize_case(item, mapper, genes, where)
        issues.extend(probs)
        for t in item.present + item.absent:
            term, kind = mapper.map(t)
            if term is None:
                unknown[t] += 1
            elif kind != CURRENT:
                report.mapped_terms += 1
        if case is None:
            skipped[probs[-1].reason] += 1
            continue
        cases[case.id] = (case, where)  # a later record with the same id wins
    if progress:
        progress(report.read)
    report.skipped = dict(skipped.most_common())
    report.unknown_terms = dict(unknown.most_common())
    report.problems = [str(p) for p in issues]
    if strict and issues:
        raise GenedxError(f"--strict: {len(issues)} problem(s), nothing written; first: {issues[0]}")

    ids = list(cases)
    case_tbl = pa.table({
        "id": ids, "source": [c.source for c, _ in cases.values()], "sex": [c.sex for c, _ in cases.values()],
        "age": [c.age for c, _ in cases.values()], "gene": [c.gene for c, _ in cases.values()],
        "disease": [c.disease for c, _ in cases.values()],
        "disease_label": [c.disease_label for c, _ in cases.values()],
        "publication": [c.publication for c, _ in cases.values()],
        "cohort": [c.cohort for c, _ in cases.values()], "origin": [o for _, o in cases.values()]})
    ph = [(c.id, t, ex) for c, _ in cases.values() for ts, ex in ((c.present, False), (c.absent, True)) for t in ts]
    ph_tbl = pa.table({"case_id": [r[0] for r in ph], "term": [r[1] for r in ph],
                       "excluded": pa.array([r[2] for r in ph], pa.bool_())})
    issue_tbl = pa.table({"origin": [i.origin for i in issues], "record": [i.record for i in issues],
                          "problem": [i.problem for i in issues]}, schema=pa.schema(
        [("origin", pa.string()), ("record", pa.string()), ("problem", pa.string())]))
    con.register("_imp_case", case_tbl)
    con.register("_imp_ph", ph_tbl)
    con.register("_imp_issue", issue_tbl)
    try:
        with transaction(con):
            if replace_source is not None:
                report.replaced = _delete_cases(con, replace_source)
            report.updated = con.execute(
                'SELECT count(*) FROM "case" WHERE id IN (SELECT id FROM _imp_case)').fetchone()[0]
            con.execute("DELETE FROM case_phenotype WHERE case_id IN (SELECT id FROM _imp_case)")
            con.execute('DELETE FROM "case" WHERE id IN (SELECT id FROM _imp_case)')
            con.execute('INSERT INTO "case" (id, source, sex, age, gene, disease, disease_label, publication, '
                        'cohort, origin) SELECT * FROM _imp_case')
            con.execute("INSERT INTO case_phenotype SELECT * FROM _imp_ph")
            con.execute("INSERT INTO import_issue (origin, record, problem) SELECT * FROM _imp_issue")
    finally:
        for name in ("_imp_case", "_imp_ph", "_imp_issue"):
            con.unregister(name)
    report.imported = len(ids) - report.updated
    report.written = True
    report.seconds = time.perf_counter() - t0
    return report


def delete_cases(con: duckdb.DuckDBPyConnection, source: str | None = None) -> int:
    """Remove cases (all, or of one source) with their phenotypes and splits; returns how many."""
    with transaction(con):
        return _delete_cases(con, source)


def _delete_cases(con: duckdb.DuckDBPyConnection, source: str | None) -> int:
    """The deletion itself, inside the caller's transaction."""
    where, args = ("WHERE source = ?", [source]) if source else ("", [])
    con.execute(f'CREATE OR REPLACE TEMP TABLE _del AS SELECT id FROM "case" {where}', args)
    n = con.execute("SELECT count(*) FROM _del").fetchone()[0]
    con.execute("DELETE FROM case_phenotype WHERE case_id IN (SELECT id FROM _del)")
    con.execute("DELETE FROM case_split WHERE case_id IN (SELECT id FROM _del)")
    con.execute('DELETE FROM "case" WHERE id IN (SELECT id FROM _del)')
    con.execute("DROP TABLE _del")
    return n


def load_gradable_cases(con: duckdb.DuckDBPyConnection, split: str,
                        include_simulated: bool = True) -> list[Case]:
    """Stored cases of ``split`` that training and evaluation can use: a causal gene (for the grader)
    and at least one present phenotype (for the prompt), ordered by id."""
    return [c for c in load_cases(con, split=split) if c.gene and c.present
            and (include_simulated or c.source != "simulated")]


def load_cases(con: duckdb.DuckDBPyConnection, split: str | None = None, source: str | None = None,
               ids: Sequence[str] | None = None) -> list[Case]:
    """Stored cases (ordered by id), optionally filtered; ``split`` is filled from ``case_split``."""
    conds, args = [], []
    if split is not None:
        conds.append("s.split = ?")
        args.append(split)
    if source is not None:
        conds.append("c.source = ?")
        args.append(source)
    if ids is not None:
        conds.append("c.id IN (SELECT unnest(?::VARCHAR[]))")
        args.append(list(ids))
    where = ("WHERE " + " AND ".join(conds)) if conds else ""
    rows = con.execute(f"""
            SELECT c.id, c.sex, c.age, c.gene, c.disease, c.disease_label, c.source, c.publication, c.cohort,
                   s.split,
                   coalesce(list(p.term ORDER BY p.rowid) FILTER (WHERE NOT p.excluded), []),
                   coalesce(list(p.term ORDER BY p.rowid) FILTER (WHERE p.excluded), [])
            FROM "case" c LEFT JOIN case_split s ON s.case_id = c.id
                 LEFT JOIN case_phenotype p ON p.case_id = c.id
            {where}
            GROUP BY ALL ORDER BY c.id""", args).fetchall()
    return [Case(id=r[0], sex=r[1], age=r[2], gene=r[3], disease=r[4], disease_label=r[5], source=r[6],
                 publication=r[7], cohort=r[8], split=r[9], present=list(r[10]), absent=list(r[11]))
            for r in rows]
