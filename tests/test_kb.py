"""Knowledge-base build (toy ontology) and the HGNC normaliser."""

from __future__ import annotations

import pytest

from genedx.errors import GenedxError
from genedx.home import connect, meta_get
from genedx.kb.build import build_kb
from genedx.kb.genes import GeneNormalizer
from tests.conftest import TOY_HPO


def test_terms_and_release(con):
    assert con.execute("SELECT count(*) FROM hpo_term").fetchone()[0] == 15
    assert meta_get(con, "hpo_release") == "2099-01-01"
    label, syn, alt = con.execute("SELECT label, synonyms, alt_ids FROM hpo_term WHERE id = 'HP:0001250'").fetchone()
    assert label == "Seizure" and "Epileptic seizure" in syn and alt == ["HP:0001251"]
    obsolete, replaced = con.execute("SELECT obsolete, replaced_by FROM hpo_term WHERE id = 'HP:0009999'").fetchone()
    assert obsolete and replaced == "HP:0001250"


def test_ancestor_closure(con):
    terms = {t for (t,) in con.execute("SELECT id FROM hpo_term WHERE NOT obsolete").fetchall()}
    self_rows = {t for (t,) in con.execute("SELECT term FROM hpo_ancestor WHERE term = ancestor AND distance = 0")
                 .fetchall()}
    assert self_rows == terms
    anc = dict(((t, a), d) for t, a, d in con.execute("SELECT * FROM hpo_ancestor").fetchall())
    assert anc[("HP:0002373", "HP:0001250")] == 1
    assert anc[("HP:0002373", "HP:0000118")] == 3
    assert anc[("HP:0002373", "HP:0000001")] == 4
    assert ("HP:0001250", "HP:0002373") not in anc


def test_annotations_frequency_and_not(con):
    rows = {(d, t): (f, ex) for d, t, f, ex in con.execute(
        "SELECT disease, term, frequency, excluded FROM disease_phenotype").fetchall()}
    assert rows[("OMIM:100001", "HP:0002373")][0] == pytest.approx(0.5)        # "1/2"
    assert rows[("OMIM:100002", "HP:0001631")][0] == pytest.approx(0.9)        # "90%"
    assert rows[("OMIM:100001", "HP:0001250")][0] == pytest.approx(0.895)      # HP:0040281 very frequent
    assert rows[("OMIM:100001", "HP:0001263")][0] is None                      # not given
    assert rows[("OMIM:100001", "HP:0001631")][1] is True                      # NOT qualifier
    assert rows[("OMIM:100002", "HP:0001631")][1] is False
    assert con.execute("SELECT aspect FROM disease_phenotype WHERE term = 'HP:0000006'").fetchone()[0] == "I"


def test_genes_and_links(con):
    links = sorted(con.execute("SELECT gene, disease FROM gene_disease").fetchall())
    assert links == [("CRYAB", "OMIM:100003"), ("SCN1A", "OMIM:100001"), ("TBX5", "OMIM:100002")]
    assert con.execute("SELECT in_hpo FROM gene WHERE symbol = 'SCN1A'").fetchone()[0] is True
    assert con.execute("SELECT count(*) FROM gene").fetchone()[0] > 40000


def test_rebuild_is_idempotent(con, toy_home):
    from tests.conftest import TOY_HPO
    before = con.execute("SELECT count(*) FROM disease_phenotype").fetchall()[0][0]
    build_kb(con, TOY_HPO)
    assert con.execute("SELECT count(*) FROM disease_phenotype").fetchone()[0] == before


def test_missing_release_files(con, tmp_path):
    with pytest.raises(GenedxError, match="lacks"):
        build_kb(con, tmp_path)


@pytest.mark.parametrize("raw,expected", [
    ("SCN1A", ("SCN1A", "approved")), ("scn1a", ("SCN1A", "approved")),
    ("Nav1.1", ("SCN1A", "alias")), ("feb3", ("SCN1A", "previous")), ("CRYA2", ("CRYAB", "previous")),
    ("HOS", (None, "ambiguous")), ("NOTAGENE99", (None, "unknown"))])
def test_gene_normalizer(raw, expected):
    n = GeneNormalizer.default()
    assert n.lookup(raw) == expected
    assert n.normalize(raw) == expected[0]


def test_real_kb(real_home):
    c = connect(real_home, read_only=True)
    n_terms, release = c.execute("SELECT count(*), (SELECT value FROM meta WHERE key='hpo_release') FROM hpo_term"
                                 ).fetchone()
    assert n_terms > 15000 and release == "2025-01-16"
    assert c.execute("SELECT count(*) FROM hpo_term t LEFT JOIN hpo_ancestor a ON a.term = t.id AND a.distance = 0 "
                     "WHERE NOT t.obsolete AND a.term IS NULL").fetchone()[0] == 0
    assert c.execute("SELECT count(DISTINCT gene) FROM gene_disease").fetchone()[0] > 4000
    assert c.execute("SELECT count(*) FROM disease_phenotype WHERE excluded").fetchone()[0] > 0
    c.close()


def test_rebuild_on_the_same_connection(toy_home):
    """A second build on one connection works (no pending result blocks it)."""
    c = connect(toy_home)
    build_kb(c, TOY_HPO)
    assert build_kb(c, TOY_HPO).terms == 15
    c.close()


def test_corrupt_release_file_is_one_line_error_and_kb_unchanged(toy_home, tmp_path):
    import shutil

    bad = tmp_path / "bad'hpo"   # a quote in the path must not break the SQL either
    shutil.copytree(TOY_HPO, bad)
    (bad / "genes_to_phenotype.txt").write_text('garbage\n"unterminated\tx\n')
    c = connect(toy_home)
    build_kb(c, TOY_HPO)
    before = c.execute("SELECT count(*) FROM gene_disease").fetchall()[0][0]
    with pytest.raises(GenedxError, match="could not be read.*left unchanged") as e:
        build_kb(c, bad)
    assert "\n" not in str(e.value)
    assert c.execute("SELECT count(*) FROM gene_disease").fetchall()[0][0] == before
    assert c.execute("SELECT count(*) FROM hpo_term").fetchall()[0][0] == 15
    c.close()
