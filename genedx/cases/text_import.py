"""Literature import: case reports as text (PubMed MEDLINE, PubTator, plain text, JSONL) -> stored cases.

Each document becomes one case (source ``text``): its HPO terms, present and absent, are recognised
with genedx's own free-text extractor (``genedx.extract.TermExtractor``), its causal gene is the
one given (a JSONL ``gene`` field, ``--gene``) or else the one HGNC symbol the text names, and its
publication is the PMID (``PMID:123``) or the file / record id, so splits by publication hold.

Formats (``sniff_format``):

- **MEDLINE** (``.medline``, ``.nbib``, or any file starting with ``PMID-``): PubMed's MEDLINE
  export, parsed with Biopython (``Bio.Medline.parse``); the text is the title (TI) and abstract (AB).
- **PubTator** (``.pubtator``, or lines like ``123|t|...``): ``PMID|t|title`` and ``PMID|a|abstract``
  lines, then tab-separated annotation lines; documents separated by blank lines.
- **JSONL** (``.jsonl``): ``{"id", "text", "gene"?}`` lines.
- **plain text** (anything else): one case report per file, its id the file stem.

``fetch_pubmed`` fetches MEDLINE records live with Biopython's ``Bio.Entrez`` (esearch, then efetch
``rettype=medline`` in batches; Biopython throttles to NCBI's 3 requests/s, 10 with an API key).

Case ids are deterministic (``PMID_<pmid>``, the file stem, the JSONL id), and ``import_cases``
replaces a stored case with the same id, so re-importing the same files changes nothing. Every
document is read and recognised before anything is written; the write is one transaction.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence
from urllib.error import HTTPError, URLError

import duckdb

from genedx.cases.model import BadRecord, Case
from genedx.errors import GenedxError
from genedx.extract.documents import json_object_lines
from genedx.kb.genes import GeneNormalizer

SOURCE = "text"
GENE_FROM_TEXT = "gene_from_text"  # marker appended to a case's stored ``origin``

MEDLINE, PUBTATOR, JSONL, PLAIN = "medline", "pubtator", "jsonl", "text"

# Short reasons (BadRecord.reason) in the import summary.
MALFORMED_RECORD, NO_TERMS, NO_GENE_NAMED, SEVERAL_GENES_NAMED, UNKNOWN_GENE, MISSING_FILE, ONLY_ABSENT = (
    "malformed record", "no recognised HPO terms", "no gene named", "several genes named",
    "unknown gene", "missing file", "no present term")

_PUBTATOR_LINE = re.compile(r"^(\d+)\|([ta])\|(.*)$")
_PMID_ID = re.compile(r"^(?:PMID)?[_:\s-]*(\d+)$", re.IGNORECASE)
# Candidate gene symbols: an uppercase letter or digit, then letters/digits, hyphen-joined parts
# ("NKX2-5", "HLA-B"); never inside a longer word.
_SYMBOL_TOKEN = re.compile(r"(?<![A-Za-z0-9-])[A-Z0-9][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*")
_SYMBOL_SHAPE = re.compile(r"(?=.*[A-Z])(?:[A-Z0-9-]{3,}|C\d+orf\d+)")
# Approved HGNC symbols that read as English words or as common clinical abbreviations in case
# reports ("CRP 5 mg/l", "MET", "WAS"): never taken as a named gene (a given gene may still be one).
TEXT_GENE_STOPLIST = frozenset({
    "ABR", "ACE", "AFP", "AMH", "APP", "ARC", "BAD", "CAD", "CAPS", "CAT", "CHAT", "CLOCK", "COIL", "COPE",
    "CPAP", "CRP", "GAN", "GPT", "MAX", "MET", "MICE", "NHS", "PAH", "PIGS", "POLE", "PTH", "RAN", "REST",
    "SDS", "SET", "SHE", "SMS", "STAR", "TANK", "TUB", "WAS"})


@dataclass
class Annotation:
    """One PubTator annotation line: offsets into title + " " + abstract, the words, type, concept id."""

    start: int
    end: int
    mention: str
    type: str
    concept: str | None = None


@dataclass
class TextDocument:
    """One case report as text, before recognition. ``problem`` is set (and ``text`` may be None)
    when the record cannot be used; ``gene`` is a causal gene given with the record."""

    id: str
    text: str | None
    origin: str                      # file (+ line or record number)
    publication: str | None = None
    gene: str | None = None
    format: str = PLAIN
    problem: str | None = None
    annotations: list[Annotation] = field(default_factory=list)


@dataclass
class TextImportReport:
    """What ``import_text`` did: documents read, cases written (new / replaced), records skipped
    (one line each, with a count per reason) and how many cases got their gene from the text."""

    read: int = 0
    imported: int = 0
    updated: int = 0
    gene_from_text: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)   # the problems that are errors (a given gene unknown)
    gene_from_text_ids: list[str] = field(default_factory=list)
    unknown_terms: dict[str, int] = field(default_factory=dict)
    written: bool = False
    seconds: float = 0.0

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def to_dict(self) -> dict:
        return {"read": self.read, "imported": self.imported, "updated": self.updated,
                "skipped": self.skipped, "skipped_total": self.skipped_total,
                "gene_from_text": self.gene_from_text, "gene_from_text_ids": self.gene_from_text_ids,
                "problems": self.problems, "errors": self.errors, "unknown_terms": self.unknown_terms, "written": self.written,
                "seconds": round(self.seconds, 3)}

    def summary(self) -> str:
        """The one summary line: imported N, skipped M (reasons), gene_from_text K."""
        reasons = ", ".join(f"{r}: {n}" for r, n in self.skipped.items())
        return (f"imported {self.imported + self.updated} ({self.imported} new, {self.updated} replaced), "
                f"skipped {self.skipped_total}{f' ({reasons})' if reasons else ''}, "
                f"gene_from_text {self.gene_from_text}")


# -- reading ----------------------------------------------------------------------------------------


def publication_of(rid: str) -> str:
    """``PMID:123`` for an id that is a PMID (``123``, ``PMID_123``, ``PMID:123``), else the id itself."""
    m = _PMID_ID.match(rid.strip())
    return f"PMID:{m.group(1)}" if m else rid


def sniff_format(path: Path, head: str | None = None) -> str:
    """medline | pubtator | jsonl | text, from the extension, else from the first lines."""
    name = path.name.lower()
    if name.endswith((".medline", ".nbib")):
        return MEDLINE
    if name.endswith(".pubtator"):
        return PUBTATOR
    if name.endswith(".jsonl"):
        return JSONL
    if head is None:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
    first = head.lstrip("\ufeff").lstrip("\r\n")
    if first.startswith("PMID-"):
        return MEDLINE
    if any(_PUBTATOR_LINE.match(line) for line in first.splitlines()[:5]):
        return PUBTATOR
    return PLAIN


def medline_documents(records: Iterable[dict], origin: str) -> Iterator[TextDocument]:
    """``Bio.Medline`` records -> documents; a record without a PMID or without title and abstract
    comes back with ``problem`` naming its PMID (or record number)."""
    for n, rec in enumerate(records, 1):
        pmid = str(rec.get("PMID") or "").strip()
        where = f"{origin} record {n}"
        title = _medline_text(rec.get("TI"))
        abstract = _medline_text(rec.get("AB"))
        if not pmid:
            yield TextDocument(f"record {n}", None, where, format=MEDLINE,
                               problem="malformed MEDLINE record: no PMID line (record number " + str(n) + ")")
            continue
        text = "\n".join(t for t in (title, abstract) if t)
        doc = TextDocument(f"PMID_{pmid}", text or None, where, publication=f"PMID:{pmid}", format=MEDLINE)
        if not text:
            doc.problem = f"malformed MEDLINE record (PMID {pmid}): no title (TI) or abstract (AB) text"
        yield doc


def _medline_text(value) -> str:
    if isinstance(value, list):   # a repeated tag
        value = " ".join(value)
    return re.sub(r"\s+", " ", value or "").strip()


def read_medline(path: Path) -> Iterator[TextDocument]:
    """A PubMed MEDLINE export, parsed with Biopython's ``Bio.Medline.parse``."""
    from Bio import Medline

    with open(path, encoding="utf-8") as handle:
        yield from medline_documents(Medline.parse(handle), str(path))


def read_pubtator(path: Path) -> Iterator[TextDocument]:
    """PubTator documents: ``PMID|t|title``, ``PMID|a|abstract``, annotation lines (tab-separated:
    PMID, start, end, mention, type, concept id); documents separated by blank lines."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    block: list[tuple[int, str]] = []
    for n, line in enumerate([*lines, ""], 1):
        if line.strip():
            block.append((n, line))
        elif block:
            yield _pubtator_document(block, str(path))
            block = []


def _pubtator_document(block: list[tuple[int, str]], origin: str) -> TextDocument:
    first_line = block[0][0]
    where = f"{origin}:{first_line}"
    title = abstract = None
    pmid = None
    annotations: list[Annotation] = []
    for n, line in block:
        m = _PUBTATOR_LINE.match(line)
        if m:
            if pmid is not None and m.group(1) != pmid:
                return TextDocument(pmid, None, where, format=PUBTATOR,
                                    problem=f"malformed PubTator document PMID {pmid}: line {n} belongs to "
                                            f"PMID {m.group(1)} (no blank line between documents?)")
            pmid = m.group(1)
            if m.group(2) == "t":
                title = m.group(3)
            else:
                abstract = m.group(3)
            continue
        cols = line.split("\t")
        if len(cols) >= 5 and cols[1].isdigit() and cols[2].isdigit():
            annotations.append(Annotation(int(cols[1]), int(cols[2]), cols[3], cols[4],
                                          cols[5] if len(cols) > 5 and cols[5] else None))
            pmid = pmid or cols[0]
        elif len(cols) >= 2 and cols[1] == "CID":   # relation lines (PMID, CID, chemical, disease)
            continue
        else:
            rid = f"PMID {pmid}" if pmid else f"line {first_line}"
            return TextDocument(pmid or f"line {first_line}", None, where, format=PUBTATOR,
                                problem=f"malformed PubTator document {rid}: line {n} is neither a "
                                        f"title/abstract nor an annotation line")
    if pmid is None:
        return TextDocument(f"line {first_line}", None, where, format=PUBTATOR,
                            problem="malformed PubTator document: no PMID|t| or PMID|a| line")
    text = "\n".join(t.strip() for t in (title, abstract) if t and t.strip())
    doc = TextDocument(f"PMID_{pmid}", text or None, where, publication=f"PMID:{pmid}", format=PUBTATOR,
                       annotations=annotations)
    if not text:
        doc.problem = f"malformed PubTator document PMID {pmid}: no title or abstract text"
    return doc


def read_plain(path: Path, gene: str | None = None) -> Iterator[TextDocument]:
    """One plain-text case report; its id is the file stem (its publication too, ``PMID:N`` when
    the stem is a PMID)."""
    text = path.read_text(encoding="utf-8")
    yield TextDocument(path.stem, text, str(path), publication=publication_of(path.stem), gene=gene,
                       problem=None if text.strip() else "empty file")


def read_jsonl(path: Path) -> Iterator[TextDocument]:
    """``{"id", "text", "gene"?}`` lines (a ``pmid`` or ``publication`` field sets the publication)."""
    with open(path, encoding="utf-8") as f:
        for n, where, obj, problem in json_object_lines(f, str(path)):
            if obj is None:
                yield TextDocument(f"line {n}", None, where, format=JSONL, problem=problem)
                continue
            rid, text, gene = obj.get("id"), obj.get("text"), obj.get("gene")
            if rid in (None, "") or isinstance(rid, (bool, dict, list)) or not isinstance(text, str):
                yield TextDocument(str(rid) if rid not in (None, "") else f"line {n}", None, where, format=JSONL,
                                   problem='needs an "id" and a string "text"')
                continue
            if gene is not None and not isinstance(gene, str):
                yield TextDocument(str(rid), None, where, format=JSONL, problem="'gene' must be a symbol (text)")
                continue
            pub = obj.get("pmid") or obj.get("publication")
            yield TextDocument(str(rid), text, where, format=JSONL, gene=gene or None,
                               publication=publication_of(str(pub)) if pub else publication_of(str(rid)))


def read_documents(paths: Sequence[str | Path], gene: str | None = None) -> Iterator[TextDocument]:
    """Every document in the given files, each read by the reader its format calls for.
    ``gene`` is the causal gene of plain-text files (``--gene``)."""
    for p in paths:
        path = Path(p)
        if not path.is_file():
            yield TextDocument(path.stem or str(path), None, str(path), problem="no such file", format="missing")
            continue
        try:
            kind = sniff_format(path)
            if kind == MEDLINE:
                yield from read_medline(path)
            elif kind == PUBTATOR:
                yield from read_pubtator(path)
            elif kind == JSONL:
                yield from read_jsonl(path)
            else:
                yield from read_plain(path, gene)
        except UnicodeDecodeError as e:
            yield TextDocument(path.stem, None, str(path), problem=f"not UTF-8 text ({e.reason} at byte {e.start})")
        except OSError as e:
            yield TextDocument(path.stem, None, str(path), problem=f"cannot read file: {e}")


# -- PubMed -----------------------------------------------------------------------------------------

NETWORK_ERRORS = (URLError, HTTPError, socket.error, socket.timeout, HTTPException, TimeoutError)


def fetch_pubmed(query: str, email: str, max_records: int = 100, batch: int = 200,
                 api_key: str | None = None) -> list[TextDocument]:
    """MEDLINE records for a PubMed query, fetched with Biopython's ``Bio.Entrez`` (esearch for at most
    ``max_records`` PMIDs, then efetch ``rettype=medline, retmode=text`` in batches, parsed by
    ``Bio.Medline``). Biopython spaces the requests (NCBI's 3/s, 10/s with ``api_key``) and retries
    transient failures. No connection raises ``GenedxError`` saying PubMed could not be reached."""
    from Bio import Entrez, Medline

    if not email or "@" not in email:
        raise GenedxError("--pubmed needs --email ADDR (NCBI asks every Entrez user for a contact address)")
    Entrez.email = email
    Entrez.tool = "genedx"
    if api_key:
        Entrez.api_key = api_key
    Entrez.max_tries = 2
    Entrez.sleep_between_tries = 3
    origin = f"pubmed:{query}"
    try:
        with Entrez.esearch(db="pubmed", term=query, retmax=max_records) as h:
            found = Entrez.read(h)
        ids = list(found.get("IdList", []))[:max_records]
        if not ids:
            return []
        docs: list[TextDocument] = []
        for start in range(0, len(ids), batch):
            chunk = ids[start:start + batch]
            with Entrez.efetch(db="pubmed", id=",".join(chunk), rettype="medline", retmode="text") as h:
                records = list(Medline.parse(h))
            for doc in medline_documents(records, origin):
                doc.origin = f"{origin} {doc.id}"
                docs.append(doc)
        return docs
    except NETWORK_ERRORS as e:
        raise GenedxError(f"PubMed could not be reached ({_one_line(e)}); check the network, or export the "
                          f"records as MEDLINE and import the file") from None
    except (RuntimeError, ValueError) as e:   # Entrez's way to report a bad query, a server error, or an
        # answer that is not the XML it expects (Bio.Entrez.Parser errors are ValueErrors)
        raise GenedxError(f"PubMed refused the query {query!r} or answered unreadably: {_one_line(e)}") from None


def _one_line(e: BaseException) -> str:
    text = str(getattr(e, "reason", None) or e) or type(e).__name__
    return text.splitlines()[0][:200]


# -- genes ------------------------------------------------------------------------------------------


def known_symbols(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Approved HGNC symbols that may be recognised in text: the KB's ``gene`` table (the shipped
    HGNC copy when the table is empty), at least 3 characters, upper case (``C9orf72``-style open
    reading frames allowed), minus ``TEXT_GENE_STOPLIST``."""
    rows = [r[0] for r in con.execute("SELECT symbol FROM gene").fetchall()]
    if not rows:
        rows = list(GeneNormalizer.default().genes)
    return frozenset(s for s in rows if _SYMBOL_SHAPE.fullmatch(s) and s not in TEXT_GENE_STOPLIST)


def genes_named(text: str, symbols: frozenset[str]) -> list[str]:
    """Distinct known gene symbols named in ``text`` (whole words, case-sensitive), in order of
    first mention. "TBX5-related" names TBX5; "NKX2-5" names NKX2-5."""
    out: dict[str, None] = {}
    for m in _SYMBOL_TOKEN.finditer(text):
        parts = m.group(0).split("-")
        for k in range(len(parts), 0, -1):
            cand = "-".join(parts[:k])
            if cand in symbols:
                out[cand] = None
                break
    return list(out)


# -- recognition and import -------------------------------------------------------------------------


def document_case(doc: TextDocument, extractor, genes: GeneNormalizer,
                  symbols: frozenset[str]) -> tuple[Case | BadRecord, bool]:
    """(the case, whether its gene came from the text) or (a BadRecord saying why it is skipped, False)."""
    if doc.problem or doc.text is None:
        reason = MISSING_FILE if doc.format == "missing" else MALFORMED_RECORD
        return BadRecord(doc.origin, doc.id, f"{doc.problem or 'no text'}; skipped", reason), False
    from_text = False
    if doc.gene:
        gene, how = genes.lookup(doc.gene)
        if gene is None:
            return BadRecord(doc.origin, doc.id, f"unknown gene {doc.gene!r} ({how} in HGNC, not an approved, "
                                                 f"previous or alias symbol); skipped", UNKNOWN_GENE), False
    else:
        named = genes_named(doc.text, symbols)
        if not named:
            return BadRecord(doc.origin, doc.id, "no gene given and no known gene symbol named in the text; "
                                                 "skipped (give one with --gene or a JSONL \"gene\")",
                             NO_GENE_NAMED), False
        if len(named) > 1:
            return BadRecord(doc.origin, doc.id, f"no gene given and several gene symbols named "
                                                 f"({', '.join(named)}); skipped", SEVERAL_GENES_NAMED), False
        gene, from_text = named[0], True
    terms = extractor.extract(doc.text)
    present = [t.id for t in terms if not t.negated]
    absent = [t.id for t in terms if t.negated]
    if not terms:
        return BadRecord(doc.origin, doc.id, "no HPO term recognised in the text; skipped", NO_TERMS), False
    if not present:
        return BadRecord(doc.origin, doc.id, f"only absent HPO terms recognised ({', '.join(absent)}); skipped",
                         ONLY_ABSENT), False
    case = Case(id=doc.id, present=present, absent=absent, gene=gene, source=SOURCE,
                publication=doc.publication or publication_of(doc.id))
    case._origin = f"{doc.origin}; {GENE_FROM_TEXT}" if from_text else doc.origin  # type: ignore[attr-defined]
    return case, from_text


def import_text(con: duckdb.DuckDBPyConnection, documents: Iterable[TextDocument],
                progress: Callable[[int, int | None], None] | None = None,
                extractor=None, total: int | None = None) -> TextImportReport:
    """Recognise every document's terms and gene, then store the cases (``import_cases``: one
    transaction, a case with the same id replaced). A case whose gene came from the text is marked
    ``gene_from_text`` in its stored ``origin`` and counted in the report. ``progress(done, total)``
    is called after each document."""
    from genedx.cases.store import import_cases
    from genedx.extract.text import TermExtractor

    t0 = time.perf_counter()
    extractor = extractor or TermExtractor.from_db(con)
    genes = GeneNormalizer.default()
    symbols = known_symbols(con)
    docs = list(documents)
    total = total if total is not None else len(docs)
    items: list[Case | BadRecord] = []
    flagged: dict[str, bool] = {}
    for n, doc in enumerate(docs, 1):
        item, from_text = document_case(doc, extractor, genes, symbols)
        items.append(item)
        if isinstance(item, Case):
            flagged[item.id] = from_text   # a later record with the same id wins, as in import_cases
        if progress:
            progress(n, total)
    store = import_cases(con, items, genes=genes, origin="genedx data import-text")
    report = TextImportReport(read=len(docs), imported=store.imported, updated=store.updated,
                              skipped=store.skipped, problems=store.problems, unknown_terms=store.unknown_terms,
                              written=store.written,
                              errors=[str(i) for i in items if isinstance(i, BadRecord) and i.reason == UNKNOWN_GENE])
    ids = [i for i, f in flagged.items() if f]
    if ids:   # the ones import_cases stored (it could still drop a case), marked in their origin
        report.gene_from_text_ids = [r[0] for r in con.execute(
            'SELECT id FROM "case" WHERE id IN (SELECT unnest(?::VARCHAR[])) AND origin LIKE ? ORDER BY id',
            [ids, f"%; {GENE_FROM_TEXT}"]).fetchall()]
    report.gene_from_text = len(report.gene_from_text_ids)
    report.seconds = time.perf_counter() - t0
    return report

