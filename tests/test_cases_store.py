"""Normalising and storing cases: id mapping, unknown ids/genes, skips, strict mode, idempotence."""

from __future__ import annotations

from pathlib import Path

import pytest

from genedx.cases.model import Case
from genedx.cases.readers import read_cases
from genedx.cases.store import delete_cases, import_cases, load_cases, normalize_case
from genedx.cases.terms import TermMapper
from genedx.errors import GenedxError
from genedx.home import connect
from genedx.kb.genes import GeneNormalizer

PP = Path(__file__).parent / "fixtures" / "phenopackets"
GOOD = [PP / "PMID_111_variant_form.json", PP / "gene_descriptor_form.json", PP / "mixed.jsonl"]
ALL = sorted(PP.iterdir())


@pytest.fixture
def con(toy_home):
    c = connect(toy_home)
    yield c
    c.close()


def _count(con, table: str) -> int:
    return con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]


def test_term_mapper_kinds(con):
    m = TermMapper.from_db(con)
    assert m.map("HP:0001250") == ("HP:0001250", "current")
    assert m.map("HP:0001251") == ("HP:0001250", "alt")
    assert m.map("HP:0009999") == ("HP:0001250", "obsolete")
    assert m.map("HP:7777777") == (None, "unknown")
    assert m.map("hp_0001250")[0] == "HP:0001250"
    assert m.label("HP:0001250") == "Seizure" and m.labels["HP:0000518"] == "Cataract"


def test_term_mapper_needs_kb(tmp_home):
    c = connect(tmp_home)
    with pytest.raises(GenedxError, match="data build"):
        TermMapper.from_db(c)
    c.close()


def test_normalize_maps_obsolete_and_alt_and_drops_unknown(con):
    (case,) = read_cases([PP / "PMID_111_variant_form.json"])
    out, problems = normalize_case(case, TermMapper.from_db(con), GeneNormalizer.default(), "f.json")
    assert out.present == ["HP:0002373", "HP:0001250", "HP:0001263"]  # alt + obsolete -> Seizure, once
    assert out.absent == ["HP:0001631"]
    assert [p.reason for p in problems] == ["unknown HPO id"]
    assert "HP:7777777" in str(problems[0]) and "PMID_111_P1" in str(problems[0])


def test_normalize_gene_previous_symbol_and_unknown(con):
    m, g = TermMapper.from_db(con), GeneNormalizer.default()
    out, _ = normalize_case(Case("a", present=["HP:0000518"], gene="CRYA2"), m, g)
    assert out.gene == "CRYAB"
    out, problems = normalize_case(Case("b", present=["HP:0000518"], gene="NOTAGENE99"), m, g)
    assert out is None and problems[0].reason == "unknown gene" and "NOTAGENE99" in problems[0].problem
    out, problems = normalize_case(Case("c", present=["HP:0000518"], gene="HOS"), m, g)  # ambiguous previous symbol
    assert out is None and "ambiguous" in problems[0].problem
    out, problems = normalize_case(Case("d", present=["HP:7777777"], absent=["HP:0000518"], gene="CRYAB"), m, g)
    assert out is None and problems[-1].reason == "no observed phenotype"


def test_import_report_counts_and_issues(con):
    r = import_cases(con, read_cases(ALL))
    assert r.written
    assert r.imported == 5  # variant form, gene descriptor, 3 good jsonl lines
    assert r.updated == 0
    assert r.skipped == {"no observed phenotype": 2, "malformed JSON": 2, "no gene": 1, "invalid phenopacket": 1,
                         "unknown gene": 1}
    assert r.unknown_terms == {"HP:7777777": 1}
    assert r.mapped_terms == 2
    assert _count(con, "case") == 5
    issues = con.execute("SELECT origin, record, problem FROM import_issue").fetchall()
    assert len(issues) == len(r.problems) == 8
    assert any(rec == "PMID_666_unknown_gene" and "NOTAGENE99" in prob for _, rec, prob in issues)
    stored = {c.id: c for c in load_cases(con)}
    assert stored["PMID_111_P1"].present == ["HP:0002373", "HP:0001250", "HP:0001263"]
    assert stored["heart_case_7"].gene == "CRYAB"
    assert stored["user_case_1"].gene == "SCN1A" and stored["user_case_1"].source == "user"
    assert con.execute('SELECT origin FROM "case" WHERE id = \'user_case_1\'').fetchone()[0].endswith("mixed.jsonl:3")


def test_reimport_is_idempotent(con):
    first = import_cases(con, read_cases(GOOD))
    before = con.execute('SELECT * EXCLUDE (imported_at) FROM "case" ORDER BY id').fetchall()
    ph_before = con.execute("SELECT * FROM case_phenotype ORDER BY ALL").fetchall()
    again = import_cases(con, read_cases(GOOD))
    assert (first.imported, first.updated) == (5, 0)
    assert (again.imported, again.updated) == (0, 5)
    assert con.execute('SELECT * EXCLUDE (imported_at) FROM "case" ORDER BY id').fetchall() == before
    assert con.execute("SELECT * FROM case_phenotype ORDER BY ALL").fetchall() == ph_before


def test_strict_writes_nothing(con):
    import_cases(con, read_cases([PP / "PMID_111_variant_form.json"]), strict=False)
    snapshot = (_count(con, "case"), _count(con, "case_phenotype"), _count(con, "import_issue"))
    for bad in [PP / "malformed.json", PP / "no_gene.json", PP / "empty_case.json", PP / "corrupt_phenopacket.json",
                PP / "unknown_gene.json", PP / "missing.json", PP / "PMID_111_variant_form.json"]:
        with pytest.raises(GenedxError, match="nothing written"):
            import_cases(con, read_cases([PP / "gene_descriptor_form.json", bad]), strict=True)
        assert (_count(con, "case"), _count(con, "case_phenotype"), _count(con, "import_issue")) == snapshot


def test_strict_clean_input_is_written(con):
    r = import_cases(con, read_cases([PP / "gene_descriptor_form.json"]), strict=True)
    assert r.written and r.imported == 1


def test_failed_write_rolls_back(con, monkeypatch):
    import_cases(con, read_cases([PP / "gene_descriptor_form.json"]))
    before = _count(con, "case")
    con.execute("DROP TABLE import_issue")  # make the last statement of the transaction fail
    with pytest.raises(Exception):
        import_cases(con, read_cases([PP / "mixed.jsonl"]))
    assert _count(con, "case") == before


def test_load_cases_filters_and_delete(con):
    import_cases(con, read_cases(GOOD))
    assert [c.id for c in load_cases(con, ids=["user_case_1", "nope"])] == ["user_case_1"]
    assert {c.id for c in load_cases(con, source="user")} == {"user_case_1"}
    assert load_cases(con, split="train") == []
    assert delete_cases(con, source="user") == 1
    assert len(load_cases(con)) == 4
    assert _count(con, "case_phenotype") == sum(len(c.present) + len(c.absent) for c in load_cases(con))


def _sim_case(i: int, gene: str = "SCN1A") -> Case:
    return Case(id=f"sim:{gene}:{i}", present=["HP:0001250"], gene=gene, source="simulated")


def test_replace_source_swaps_simulated_cases_in_one_transaction(toy_home):
    con = connect(toy_home)
    import_cases(con, [_sim_case(i) for i in range(3)])
    report = import_cases(con, [_sim_case(10)], replace_source="simulated")
    assert report.replaced == 3 and report.imported == 1
    assert [r[0] for r in con.execute('SELECT id FROM "case" ORDER BY id').fetchall()] == ["sim:SCN1A:10"]


def test_failed_replacing_import_keeps_the_old_cases(toy_home):
    """A failure while writing the new cases rolls back the removal of the old ones too."""
    con = connect(toy_home)
    import_cases(con, [_sim_case(i) for i in range(3)])

    class FailingInsert:
        def __init__(self, con):
            self._con = con

        def execute(self, sql, *args):
            if sql.startswith("INSERT INTO case_phenotype"):
                raise RuntimeError("disk full")
            return self._con.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self._con, name)

    with pytest.raises(RuntimeError, match="disk full"):
        import_cases(FailingInsert(con), [_sim_case(10)], replace_source="simulated")
    ids = [r[0] for r in con.execute('SELECT id FROM "case" ORDER BY id').fetchall()]
    assert ids == ["sim:SCN1A:0", "sim:SCN1A:1", "sim:SCN1A:2"]
    assert con.execute("SELECT count(*) FROM case_phenotype").fetchone()[0] == 3
