"""First-run set-up on the embedded defaults: KB if missing, the bundled sample cases, a split."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import duckdb

from genedx.cases.readers import read_cases
from genedx.cases.split import make_split
from genedx.cases.store import ImportReport, import_cases
from genedx.home import DATA_DIR, meta_get
from genedx.kb.build import build_kb

SAMPLE_DIR = DATA_DIR / "phenopackets" / "sample"


@dataclass
class QuickstartReport:
    hpo_release: str
    built_kb: bool
    imported: ImportReport | None
    split: dict[str, int] | None

    def to_dict(self) -> dict:
        return asdict(self)


def quickstart(con: duckdb.DuckDBPyConnection, seed: int = 0, validation: float = 0.2) -> QuickstartReport:
    """Make a home usable in one call (README's main command and the app's first start).

    Idempotent: the KB is built only when missing; the sample is imported only when no phenopacket
    case is stored yet; a split is made only when some stored case has none (by publication, or as stored).
    """
    built = meta_get(con, "hpo_release") is None
    if built:
        build_kb(con)
    report = None
    if con.execute("SELECT count(*) FROM \"case\" WHERE source = 'phenopacket'").fetchone()[0] == 0:
        report = import_cases(con, read_cases(sorted(SAMPLE_DIR.glob("*.json"))))
    split = None
    unsplit = con.execute('SELECT count(*) FROM "case" WHERE id NOT IN (SELECT case_id FROM case_split)').fetchone()[0]
    if unsplit:  # keep a stored split's grouping and seed (assignment is per group, so it stays stable)
        by, old_seed = con.execute("SELECT any_value(split_by), any_value(seed) FROM case_split").fetchone()
        split = make_split(con, by=by or "publication", seed=seed if old_seed is None else old_seed,
                           validation=validation)
    return QuickstartReport(meta_get(con, "hpo_release") or "unknown", built, report, split)
