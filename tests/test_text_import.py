"""`genedx data import-text`: MEDLINE (Bio.Medline), PubTator, plain-text and JSONL case reports ->
stored cases (source 'text', PMID as publication); gene rules; idempotency; PubMed offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.error import URLError

import pytest
from typer.testing import CliRunner

from genedx.cases import text_import as ti
from genedx.cases.model import BadRecord, Case
from genedx.cli import app
from genedx.errors import GenedxError
from genedx.extract.text import TermExtractor
from genedx.home import Home, connect
from genedx.kb.genes import GeneNormalizer

FX = Path(__file__).parent / "fixtures" / "text"
MEDLINE = FX / "holt_oram.medline"
PUBTATOR = FX / "case_reports.pubtator"
PLAIN = FX / "case_report_17.txt"
JSONL = FX / "reports.jsonl"
runner = CliRunner()

ASD, SEIZURE, SHORT_STATURE = "HP:0001631", "HP:0001250", "HP:0004322"


@pytest.fixture
def home(real_home, tmp_path) -> Home:
    """A writable copy of the real knowledge base (real HPO terms and HGNC genes)."""
    h = Home(tmp_path / "home").ensure()
    shutil.copy(real_home.db_path, h.db_path)
    return h


@pytest.fixture(scope="module")
def kb(real_home):
    con = connect(real_home, read_only=True)
    yield con, TermExtractor.from_db(con), ti.known_symbols(con)
    con.close()


def cli(home: Home, *args: str):
    return runner.invoke(app, ["--home", str(home.root), "data", "import-text", *args], catch_exceptions=False)


def cases(home: Home) -> dict[str, tuple]:
    con = connect(home)
    try:
        rows = con.execute('SELECT id, source, gene, publication, origin FROM "case" ORDER BY id').fetchall()
    finally:
        con.close()
    return {r[0]: r[1:] for r in rows}


# -- readers ------------------------------------------------------------------------------------


def test_sniff_format_by_extension_and_content(tmp_path):
    assert ti.sniff_format(MEDLINE) == ti.MEDLINE
    assert ti.sniff_format(PUBTATOR) == ti.PUBTATOR
    assert ti.sniff_format(JSONL) == ti.JSONL
    assert ti.sniff_format(PLAIN) == ti.PLAIN
    as_txt = tmp_path / "export.txt"
    shutil.copy(MEDLINE, as_txt)
    assert ti.sniff_format(as_txt) == ti.MEDLINE
    pt_txt = tmp_path / "annotated.txt"
    shutil.copy(PUBTATOR, pt_txt)
    assert ti.sniff_format(pt_txt) == ti.PUBTATOR
    assert ti.sniff_format(Path("x.nbib"), head="") == ti.MEDLINE


def test_medline_export_parses_with_biopython_and_flags_the_malformed_record():
    docs = list(ti.read_documents([MEDLINE]))
    assert [d.id for d in docs] == ["PMID_30000001", "PMID_30000002", "PMID_30000003"]
    first = docs[0]
    assert first.publication == "PMID:30000001" and first.problem is None
    assert first.text.startswith("A novel TBX5 frameshift variant") and "atrial septal defect" in first.text
    assert "hypoplasia of the radius. No seizures" in first.text   # continuation lines joined
    assert docs[2].text is None and "30000003" in docs[2].problem and "no title (TI) or abstract" in docs[2].problem


def test_medline_record_without_pmid_is_named_by_its_record_number(tmp_path):
    f = tmp_path / "broken.medline"
    f.write_text("TI  - Short stature in a TBX5 carrier.\nAB  - Short stature.\n\n"
                 "PMID- 123\nTI  - Atrial septal defect in a TBX5 carrier.\n")
    docs = list(ti.read_documents([f]))
    assert docs[0].id == "record 1" and "no PMID" in docs[0].problem
    assert docs[1].id == "PMID_123" and docs[1].problem is None


def test_pubtator_parses_titles_abstracts_and_annotations():
    docs = list(ti.read_documents([PUBTATOR]))
    assert [d.id for d in docs] == ["PMID_40000001", "PMID_40000002"]
    d = docs[0]
    assert d.publication == "PMID:40000001" and d.format == ti.PUBTATOR
    assert d.text.startswith("Short stature and an atrial septal defect") and "no seizures" in d.text
    gene = next(a for a in d.annotations if a.type == "Gene")
    assert (gene.mention, gene.concept) == ("TBX5", "6910")
    assert d.text.replace("\n", " ")[gene.start:gene.end] == "TBX5"   # offsets over title + " " + abstract
    assert len(docs[1].annotations) == 2


def test_pubtator_block_mixing_two_pmids_is_malformed(tmp_path):
    f = tmp_path / "x.pubtator"
    f.write_text("1|t|Short stature\n2|a|Atrial septal defect\n")
    (doc,) = ti.read_documents([f])
    assert doc.problem and "PMID 1" in doc.problem


def test_plain_text_and_jsonl_parse(tmp_path):
    (plain,) = ti.read_documents([PLAIN], gene="TBX5")
    assert (plain.id, plain.gene, plain.publication) == ("case_report_17", "TBX5", "case_report_17")
    assert "atrial septal defect" in plain.text
    recs = list(ti.read_documents([JSONL]))
    assert [(r.id, r.gene, r.publication) for r in recs] == [
        ("jsonl_case_1", "TBX5", "jsonl_case_1"), ("PMID:50000002", None, "PMID:50000002")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a"}\nnot json\n')
    assert [d.problem is not None for d in ti.read_documents([bad])] == [True, True]
    (missing,) = ti.read_documents([tmp_path / "nope.txt"])
    assert missing.problem == "no such file"


# -- gene rules -------------------------------------------------------------------------------------


def test_gene_symbols_named_whole_word_case_sensitive(kb):
    _, _, symbols = kb
    assert ti.genes_named("A TBX5 variant; TBX5-related disease.", symbols) == ["TBX5"]
    assert ti.genes_named("Variants in FBN1 and TBX5.", symbols) == ["FBN1", "TBX5"]
    assert ti.genes_named("NKX2-5 and HLA-B.", symbols) == ["NKX2-5", "HLA-B"]
    assert ti.genes_named("tbx5 Tbx5 XTBX5 TBX5X", symbols) == []          # case-sensitive, whole words
    assert ti.genes_named("CRP was 12 mg/l; the MRI WAS normal; a SET of tests.", symbols) == []  # stoplist
    assert "IL6" not in symbols or ti.genes_named("IL6", symbols) == ["IL6"]


def doc(text: str, gene: str | None = None, rid: str = "r1") -> ti.TextDocument:
    return ti.TextDocument(rid, text, "test", publication="PMID:1", gene=gene)


def test_one_named_gene_is_taken_and_flagged(kb):
    _, ex, symbols = kb
    case, from_text = ti.document_case(doc("A TBX5 variant with an atrial septal defect. No seizures."),
                                       ex, GeneNormalizer.default(), symbols)
    assert isinstance(case, Case) and from_text
    assert case.gene == "TBX5" and case.source == "text" and case.publication == "PMID:1"
    assert ASD in case.present and case.absent == [SEIZURE]
    assert case._origin.endswith("gene_from_text")


def test_two_or_no_named_genes_skip_the_record_with_its_id(kb):
    _, ex, symbols = kb
    two, flag = ti.document_case(doc("Short stature; variants in FBN1 and TBX5.", rid="two"), ex,
                                 GeneNormalizer.default(), symbols)
    assert isinstance(two, BadRecord) and not flag and two.reason == ti.SEVERAL_GENES_NAMED
    assert "two" in str(two) and "FBN1, TBX5" in str(two) and "\n" not in str(two)
    none, _ = ti.document_case(doc("Short stature.", rid="none"), ex, GeneNormalizer.default(), symbols)
    assert isinstance(none, BadRecord) and none.reason == ti.NO_GENE_NAMED and "none" in str(none)


def test_given_gene_wins_and_unknown_given_gene_is_an_error(kb):
    _, ex, symbols = kb
    case, flag = ti.document_case(doc("Short stature; variants in FBN1 and TBX5.", gene="fbn1"), ex,
                                  GeneNormalizer.default(), symbols)
    assert isinstance(case, Case) and case.gene == "FBN1" and not flag
    bad, _ = ti.document_case(doc("Short stature.", gene="NOTAGENE9", rid="g1"), ex, GeneNormalizer.default(), symbols)
    assert isinstance(bad, BadRecord) and bad.reason == ti.UNKNOWN_GENE
    assert "g1" in str(bad) and "NOTAGENE9" in str(bad)


def test_no_recognised_terms_is_skipped_with_a_reason(kb):
    _, ex, symbols = kb
    bad, _ = ti.document_case(doc("The TBX5 family was seen twice.", rid="quiet"), ex, GeneNormalizer.default(), symbols)
    assert isinstance(bad, BadRecord) and bad.reason == ti.NO_TERMS and "quiet" in str(bad)


# -- the command ------------------------------------------------------------------------------------


def test_import_all_formats_summary_store_and_idempotent_reimport(home):
    files = [str(MEDLINE), str(PUBTATOR), str(PLAIN), str(JSONL)]
    r = cli(home, *files)
    assert r.exit_code == 0, r.output
    assert "imported 5 (5 new, 0 replaced), skipped 3" in r.stdout and "gene_from_text 4" in r.stdout
    assert "malformed record: 1" in r.stdout and "several genes named: 1" in r.stdout
    assert "no gene named: 1" in r.stdout
    # the malformed MEDLINE record: one line with its PMID
    malformed = [line for line in r.stderr.splitlines() if "30000003" in line]
    assert len(malformed) == 1 and "malformed MEDLINE record" in malformed[0]
    assert any("PMID_40000002" in line and "FBN1, TBX5" in line for line in r.stderr.splitlines())
    stored = cases(home)
    assert set(stored) == {"PMID_30000001", "PMID_30000002", "PMID_40000001", "jsonl_case_1", "PMID:50000002"}
    assert {s[0] for s in stored.values()} == {"text"}
    assert stored["PMID_30000001"][1:3] == ("TBX5", "PMID:30000001")
    assert stored["PMID_30000002"][1:3] == ("FBN1", "PMID:30000002")
    assert stored["PMID_30000001"][3].endswith("gene_from_text")
    assert not stored["jsonl_case_1"][3].endswith("gene_from_text")   # its gene was given

    again = cli(home, *files, "--json")
    assert again.exit_code == 0
    rep = json.loads(again.stdout)
    assert (rep["imported"], rep["updated"], rep["gene_from_text"]) == (0, 5, 4)
    assert cases(home).keys() == stored.keys()
    con = connect(home)
    assert con.execute("SELECT count(*) FROM case_phenotype WHERE case_id = 'PMID_30000001'").fetchone()[0] == \
        len(set(con.execute("SELECT term FROM case_phenotype WHERE case_id = 'PMID_30000001'").fetchall()))
    assert con.execute("SELECT count(*) FROM import_issue WHERE record = 'PMID_30000003'").fetchone()[0] == 2
    con.close()


def test_jsonl_gene_from_text_and_unknown_given_gene_per_record(home, tmp_path):
    f = tmp_path / "mixed.jsonl"
    f.write_text(JSONL.read_text() + json.dumps(
        {"id": "bad_gene", "text": "Short stature and an atrial septal defect.", "gene": "NOTAGENE9"}) + "\n")
    r = cli(home, str(f), "--json")
    rep = json.loads(r.stdout)
    assert (rep["imported"], rep["gene_from_text"], rep["skipped"]) == (2, 1, {"unknown gene": 1})
    assert rep["gene_from_text_ids"] == ["PMID:50000002"]
    assert len(rep["errors"]) == 1 and "bad_gene" in rep["errors"][0] and "NOTAGENE9" in rep["errors"][0]
    r = cli(home, str(f))
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "bad_gene" in errors[0]


def test_gene_option_for_one_plain_file(home, run_cli, capsys):
    r = cli(home, str(PLAIN), "--gene", "TBX5")
    assert r.exit_code == 0 and "gene_from_text 0" in r.stdout
    assert cases(home)["case_report_17"] == ("text", "TBX5", "case_report_17", str(PLAIN))
    code = run_cli(["--home", str(home.root), "data", "import-text", str(PLAIN), "--gene", "NOTAGENE9"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "NOTAGENE9" in err[0] and "HGNC" in err[0]
    assert run_cli(["--home", str(home.root), "data", "import-text", str(PLAIN), str(JSONL), "--gene", "TBX5"]) == 2
    assert run_cli(["--home", str(home.root), "data", "import-text"]) == 2


def test_failure_part_way_stores_nothing(home, monkeypatch):
    real = TermExtractor.extract
    calls = {"n": 0}

    def flaky(self, text):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        return real(self, text)

    monkeypatch.setattr(TermExtractor, "extract", flaky)
    with pytest.raises(RuntimeError):
        cli(home, str(MEDLINE), str(JSONL))
    assert cases(home) == {}


def test_pubmed_offline_fails_in_one_line(home, run_cli, capsys, monkeypatch):
    from Bio import Entrez

    def offline(*a, **k):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(Entrez, "esearch", offline)
    monkeypatch.setattr(Entrez, "efetch", offline)
    code = run_cli(["--home", str(home.root), "data", "import-text", "--pubmed", "holt-oram TBX5",
                    "--email", "someone@example.org", "--max", "5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "PubMed could not be reached" in err[0]
    assert cases(home) == {}
    with pytest.raises(GenedxError, match="PubMed could not be reached"):
        ti.fetch_pubmed("x", "someone@example.org")
    assert run_cli(["--home", str(home.root), "data", "import-text", "--pubmed", "x"]) == 2   # no --email


def test_pubmed_batches_parse_with_biopython(monkeypatch):
    """esearch + efetch (rettype=medline) in batches, answered by fakes: no network."""
    import io

    from Bio import Entrez

    calls = []
    monkeypatch.setattr(Entrez, "esearch", lambda **k: io.StringIO("search"))
    monkeypatch.setattr(Entrez, "read", lambda h: {"IdList": ["30000001", "30000002", "30000003"]})

    def efetch(**k):
        calls.append(k)
        assert k["rettype"] == "medline" and k["retmode"] == "text"
        blocks = MEDLINE.read_text().split("\n\n")
        wanted = k["id"].split(",")
        return io.StringIO("\n\n".join(b for b in blocks if b.split("\n")[0][6:].strip() in wanted) + "\n")

    monkeypatch.setattr(Entrez, "efetch", efetch)
    docs = ti.fetch_pubmed("holt-oram", "someone@example.org", max_records=3, batch=2)
    assert [c["id"] for c in calls] == ["30000001,30000002", "30000003"]
    assert [d.id for d in docs] == ["PMID_30000001", "PMID_30000002", "PMID_30000003"]
    assert docs[2].problem and Entrez.email == "someone@example.org"
