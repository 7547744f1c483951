"""Read cases from every input genedx accepts, so all commands taking CASES read the same things.

Accepted inputs (``read_cases``):

- a GA4GH phenopacket v2 JSON file (one object, or a JSON list of them);
- a folder (searched recursively for the files below) or a ``.zip`` of them;
- ``.jsonl`` / ``.jsonl.gz`` lines, each one of:
  ``{"phenopacket": {...}, "cohort": ...}`` (the phenopacket-store ``dev.jsonl.gz`` format),
  a bare phenopacket object, genedx's own RFT export (``correct_answer`` + ``present``/``absent``),
  or a plain case dict (``Case.to_dict()``: ``present``/``absent``/``gene``...).

Phenopackets are validated and parsed with the ``phenopackets`` protobuf classes
(``google.protobuf.json_format.ParseDict``, unknown fields ignored). Anything unusable comes back as a
``BadRecord`` naming the file (+ line) and the record id; reading always continues.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from google.protobuf.json_format import ParseDict, ParseError
from phenopackets import GenomicInterpretation, Phenopacket, Sex

from genedx.cases.model import BadRecord, Case

CASE_FILE_SUFFIXES = (".json", ".jsonl", ".jsonl.gz", ".json.gz", ".zip")
_PMID_PREFIX = re.compile(r"^PMID[_:](\d+)", re.IGNORECASE)
_SEX = {"FEMALE": "female", "MALE": "male", "OTHER_SEX": "other", "UNKNOWN_SEX": "unknown"}
_CAUSATIVE = GenomicInterpretation.InterpretationStatus.Value("CAUSATIVE")
_REJECTED = GenomicInterpretation.InterpretationStatus.Value("REJECTED")

# Short reasons used in import reports (BadRecord.reason).
MALFORMED, INVALID, NO_GENE, NO_OBSERVED, MISSING, UNRECOGNISED, SEVERAL_GENES = (
    "malformed JSON", "invalid phenopacket", "no gene", "no observed phenotype", "missing file",
    "unrecognised record", "several causal genes")

Item = Case | BadRecord
# Case fields that must be text (or absent) in a plain case dict / RFT record.
_TEXT_FIELDS = ("gene", "sex", "age", "disease", "disease_label", "source", "publication", "cohort")


def _has_suffix(name: str) -> bool:
    return name.lower().endswith(CASE_FILE_SUFFIXES)


def read_cases(paths: Iterable[str | Path], require_gene: bool = True) -> Iterator[Item]:
    """Every case (or bad record) in the given files, folders and zips, in a stable order."""
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files = sorted(f for f in path.rglob("*") if f.is_file() and _has_suffix(f.name))
            if not files:
                yield BadRecord(str(path), "-", "folder holds no .json/.jsonl/.jsonl.gz/.zip files", MISSING)
            for f in files:
                yield from _read_file(f, require_gene)
        elif path.is_file():
            yield from _read_file(path, require_gene)
        else:
            yield BadRecord(str(path), "-", "no such file or folder", MISSING)


def _read_file(path: Path, require_gene: bool) -> Iterator[Item]:
    name = path.name.lower()
    opener = gzip.open if name.endswith(".gz") else open
    try:
        if name.endswith(".zip"):
            yield from _read_zip(path, require_gene)
        elif name.endswith((".jsonl", ".jsonl.gz")):
            with opener(path, "rt", encoding="utf-8") as f:
                yield from _read_lines(f, str(path), require_gene)
        else:
            with opener(path, "rt", encoding="utf-8") as f:
                text = f.read()
            yield from _read_json_text(text, str(path), path.stem, require_gene)
    except (OSError, UnicodeDecodeError, EOFError, zipfile.BadZipFile) as e:
        yield BadRecord(str(path), "-", f"cannot read file: {e}", MALFORMED)


def _read_zip(path: Path, require_gene: bool) -> Iterator[Item]:
    with zipfile.ZipFile(path) as z:
        for member in sorted(z.namelist()):
            low = member.lower()
            if member.endswith("/") or not _has_suffix(low) or low.endswith(".zip") or "__macosx" in low:
                continue
            origin = f"{path}!{member}"
            raw = z.read(member)
            if low.endswith(".gz"):
                raw = gzip.decompress(raw)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield BadRecord(origin, "-", f"not UTF-8 text: {e}", MALFORMED)
                continue
            if low.endswith((".jsonl", ".jsonl.gz")):
                yield from _read_lines(io.StringIO(text), origin, require_gene)
            else:
                yield from _read_json_text(text, origin, Path(member).stem, require_gene)


def loads_json(text: str | bytes) -> tuple[Any, str | None]:
    """(decoded value, None), or (None, the one-line reason it is not usable JSON). Nesting deeper
    than Python's recursion limit is refused here (``json`` raises RecursionError on it), so no
    caller ever sees a traceback for it."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as e:
        return None, f"malformed JSON: {e.msg} (line {e.lineno}, column {e.colno})"
    except RecursionError:
        return None, "malformed JSON: nested too deeply"


def _read_lines(f: Iterable[str], origin: str, require_gene: bool) -> Iterator[Item]:
    for n, line in enumerate(f, 1):
        if not line.strip():
            continue
        where = f"{origin}:{n}"
        obj, problem = loads_json(line)
        if problem:
            yield BadRecord(where, f"line {n}", problem.replace(" (line 1, ", " ("), MALFORMED)
            continue
        yield parse_record(obj, where, f"line {n}", require_gene)


def _read_json_text(text: str, origin: str, stem: str, require_gene: bool) -> Iterator[Item]:
    obj, problem = loads_json(text)
    if problem:
        yield BadRecord(origin, stem, problem, MALFORMED)
        return
    if isinstance(obj, list):
        for i, o in enumerate(obj):
            yield parse_record(o, f"{origin}[{i}]", f"item {i}", require_gene)
    else:
        yield parse_record(obj, origin, stem, require_gene)


def parse_record(obj: Any, origin: str, fallback_id: str = "-", require_gene: bool = True) -> Item:
    """One decoded JSON record of any accepted shape -> Case or BadRecord."""
    if not isinstance(obj, dict):
        return BadRecord(origin, fallback_id, f"expected a JSON object, got {type(obj).__name__}", UNRECOGNISED)
    if isinstance(obj.get("phenopacket"), dict):
        return parse_phenopacket(obj["phenopacket"], origin, cohort=obj.get("cohort"), fallback_id=fallback_id,
                                 require_gene=require_gene)
    if "correct_answer" in obj or "present" in obj:
        return parse_case_dict(obj, origin, fallback_id, require_gene)
    if any(k in obj for k in ("phenotypicFeatures", "subject", "interpretations", "metaData")):
        return parse_phenopacket(obj, origin, fallback_id=fallback_id, require_gene=require_gene)
    return BadRecord(origin, str(obj.get("id") or fallback_id),
                     "not a phenopacket, an RFT record or a case (no phenotypicFeatures/present)", UNRECOGNISED)


def parse_case_dict(obj: dict, origin: str, fallback_id: str = "-", require_gene: bool = True) -> Item:
    """A plain case dict or a genedx RFT export line (``correct_answer`` is the gene)."""
    raw_id = obj.get("id")
    if raw_id not in (None, "") and (not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool)):
        return BadRecord(origin, fallback_id, "'id' must be a string or a number", INVALID)
    rid = str(raw_id if raw_id not in (None, "") else fallback_id)
    d = dict(obj)
    d["id"] = rid
    if "correct_answer" in d and not d.get("gene"):
        d["gene"] = d["correct_answer"]
    for key in ("present", "absent"):
        v = d.get(key) or []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            return BadRecord(origin, rid, f"'{key}' must be a list of HPO ids", INVALID)
        d[key] = v
    for key in _TEXT_FIELDS:   # a number or an object here would break scoring and storing later
        if d.get(key) is not None and not isinstance(d[key], str):
            return BadRecord(origin, rid, f"'{key}' must be text, got {type(d[key]).__name__}", INVALID)
        if d.get(key) == "":
            d[key] = None
    if not d.get("id"):
        d["id"] = rid
    if require_gene and not d.get("gene"):
        return BadRecord(origin, rid, "no causal gene (gene/correct_answer missing)", NO_GENE)
    if not d["present"] and not d["absent"]:
        return BadRecord(origin, rid, "empty case: no phenotypes present or absent", NO_OBSERVED)
    case = Case.from_dict(d)
    case.split = None  # splits are stored by `genedx data split`, never taken from a file
    case._origin = origin  # type: ignore[attr-defined]  # where it came from, for the import log
    return case


def _publication(pp: Phenopacket) -> str | None:
    """PMID from the id prefix (``PMID_123_...``), else from (meta) external references."""
    m = _PMID_PREFIX.match(pp.id)
    if m:
        return f"PMID:{m.group(1)}"
    refs = list(pp.meta_data.external_references)
    for f in pp.phenotypic_features:
        refs.extend(e.reference for e in f.evidence if e.HasField("reference"))
    for r in refs:
        m = _PMID_PREFIX.match(r.id.strip())
        if m:
            return f"PMID:{m.group(1)}"
    return None


def _genes(pp: Phenopacket) -> list[str]:
    """Distinct causal gene symbols (CAUSATIVE calls; if none is marked, any call not REJECTED)."""
    causative, other = [], []
    for interp in pp.interpretations:
        for gi in interp.diagnosis.genomic_interpretations:
            kind = gi.WhichOneof("call")
            if kind == "gene":
                sym = gi.gene.symbol
            elif kind == "variant_interpretation":
                sym = gi.variant_interpretation.variation_descriptor.gene_context.symbol
            else:
                sym = ""
            if not sym:
                continue
            if gi.interpretation_status == _CAUSATIVE:
                causative.append(sym)
            elif gi.interpretation_status != _REJECTED:
                other.append(sym)
    return list(dict.fromkeys(causative or other))


def parse_phenopacket(obj: dict, origin: str, cohort: str | None = None, fallback_id: str = "-",
                      require_gene: bool = True) -> Item:
    """A GA4GH phenopacket v2 (decoded JSON) -> Case, or BadRecord saying what is wrong.

    With ``require_gene=False`` (the app's upload of an undiagnosed patient) a case without a causal
    gene is still returned, with ``gene=None``.
    """
    rid = str(obj.get("id") or fallback_id) if isinstance(obj, dict) else fallback_id
    try:
        pp = ParseDict(obj, Phenopacket(), ignore_unknown_fields=True)
    except RecursionError:
        return BadRecord(origin, rid, "invalid phenopacket: nested too deeply", INVALID)
    except (ParseError, TypeError, ValueError, AttributeError) as e:
        try:
            msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        except RecursionError:   # the message quotes a deeply nested value
            msg = type(e).__name__
        return BadRecord(origin, rid, f"invalid phenopacket: {msg}", INVALID)
    rid = pp.id or fallback_id
    if not pp.phenotypic_features:
        return BadRecord(origin, rid, "empty case: no phenotypicFeatures", NO_OBSERVED)
    present, absent = [], []
    for f in pp.phenotypic_features:
        if f.type.id:
            (absent if f.excluded else present).append(f.type.id)
    if not present and not absent:
        return BadRecord(origin, rid, "empty case: no phenotypicFeatures with a term id", NO_OBSERVED)
    genes = _genes(pp)
    if require_gene and not genes:
        return BadRecord(origin, rid, "no causal gene in the interpretations (geneContext/gene symbol)", NO_GENE)
    if len(genes) > 1:
        return BadRecord(origin, rid, f"several causal genes ({', '.join(genes)}); genedx expects one", SEVERAL_GENES)
    disease, label = None, None
    for interp in pp.interpretations:
        if interp.diagnosis.disease.id:
            disease, label = interp.diagnosis.disease.id, interp.diagnosis.disease.label or None
            break
    if disease is None and pp.diseases:
        disease, label = pp.diseases[0].term.id or None, pp.diseases[0].term.label or None
    age = pp.subject.time_at_last_encounter.age.iso8601duration or None
    sex = _SEX.get(Sex.Name(pp.subject.sex)) if pp.HasField("subject") else None
    case = Case(id=rid, present=present, absent=absent, sex=sex, age=age, gene=genes[0] if genes else None,
                disease=disease, disease_label=label, source="phenopacket", publication=_publication(pp),
                cohort=cohort)
    case._origin = origin  # type: ignore[attr-defined]  # where it came from, for the import log
    return case
