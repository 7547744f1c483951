"""Fuzzing the readers with hypothesis: random bytes, truncated JSON, deep nesting, huge arrays and
records of the wrong shapes, fed to the case readers (genedx.cases.readers) and the prediction /
grade readers (genedx.grade.files). A reader may only answer with cases, BadRecords or one
GenedxError line, never a traceback; what is written from fuzzed input (an import, a score file) is
whole or nothing."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genedx.cases.model import BadRecord, Case
from genedx.cases.readers import parse_record, read_cases
from genedx.errors import GenedxError
from genedx.grade.files import grade_files, read_predictions
from genedx.home import connect

PP = Path(__file__).parent / "fixtures" / "phenopackets"
VALID_PHENOPACKET = (PP / "PMID_111_variant_form.json").read_text()
VALID_CASE_LINE = json.dumps({"id": "ok1", "present": ["HP:0000518"], "gene": "CRYAB"})
SUFFIXES = (".json", ".jsonl", ".jsonl.gz", ".json.gz", ".zip")

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
KEYS = ("id", "present", "absent", "gene", "correct_answer", "sex", "age", "disease", "source", "publication",
        "cohort", "phenopacket", "phenotypicFeatures", "subject", "interpretations", "metaData")
records = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6)


def _encode(payload: bytes, suffix: str) -> bytes:
    """The payload as a file of that kind (gzip / zip wrapping the bytes)."""
    if suffix.endswith(".gz"):
        return gzip.compress(payload)
    if suffix == ".zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("member.jsonl", payload)
            z.writestr("member.json", payload)
        return buf.getvalue()
    return payload


def _read_all(path: Path) -> list:
    items = list(read_cases([path], require_gene=False))
    assert all(isinstance(i, (Case, BadRecord)) for i in items)
    for i in items:
        if isinstance(i, BadRecord):
            assert "\n" not in str(i)                      # one line per problem
        else:                                              # a case is well typed whatever the input was
            assert isinstance(i.id, str) and all(isinstance(t, str) for t in i.present + i.absent)
            assert all(v is None or isinstance(v, str) for v in (i.gene, i.sex, i.age, i.disease, i.publication))
    return items


def _deep(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)


@FUZZ
@given(data=st.binary(max_size=300), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes(tmp_path, data, suffix):
    path = tmp_path / f"f{suffix}"
    path.write_bytes(data)
    _read_all(path)
    path.write_bytes(_encode(data, suffix))             # the same bytes, correctly wrapped
    _read_all(path)


@FUZZ
@given(cut=st.integers(min_value=0, max_value=len(VALID_PHENOPACKET) - 1), suffix=st.sampled_from(SUFFIXES))
def test_truncated_json(tmp_path, cut, suffix):
    lines = suffix.startswith(".jsonl")
    compact = json.dumps(json.loads(VALID_PHENOPACKET))            # one JSONL line
    text = VALID_CASE_LINE + "\n" + compact[:cut % len(compact)] if lines else VALID_PHENOPACKET[:cut]
    path = tmp_path / f"f{suffix}"
    path.write_bytes(_encode(text.encode(), suffix))
    items = _read_all(path)
    assert any(isinstance(i, BadRecord) for i in items) or lines and cut % len(compact) == 0
    if suffix.startswith(".jsonl"):
        assert [i.id for i in items if isinstance(i, Case)][:1] == ["ok1"]   # the good line before still reads


@FUZZ
@given(depth=st.integers(min_value=1, max_value=200_000), kind=st.sampled_from(["list", "dict"]),
       where=st.sampled_from(["top", "field", "phenopacket"]), suffix=st.sampled_from([".json", ".jsonl"]))
def test_deep_nesting(tmp_path, depth, kind, where, suffix):
    nested = _deep(depth, kind)
    text = {"top": nested, "field": '{"id": "d", "present": ' + nested + "}",
            "phenopacket": '{"id": "p", "phenotypicFeatures": [{"type": ' + nested + "}]}"}[where]
    path = tmp_path / f"f{suffix}"
    path.write_text(VALID_CASE_LINE + "\n" + text + "\n" if suffix == ".jsonl" else text)
    items = _read_all(path)
    empty_list_file = where == "top" and kind == "list" and depth == 1 and suffix == ".json"   # "[]": no records
    assert any(isinstance(i, BadRecord) for i in items) or empty_list_file


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(min_value=10_000, max_value=200_000), item=st.sampled_from(['"HP:0000518"', "1", "null", '"x"']))
def test_huge_arrays(tmp_path, n, item):
    path = tmp_path / "f.jsonl"
    path.write_text('{"id": "h", "present": [' + ",".join([item] * n) + '], "gene": "CRYAB"}\n')
    (only,) = _read_all(path)
    assert isinstance(only, Case) == item.startswith('"')           # any text is an id here; the store maps it
    if isinstance(only, Case):
        assert len(only.present) == n


@FUZZ
@given(obj=st.one_of(json_values, records, records.map(lambda r: {"phenopacket": r})))
def test_any_decoded_record(obj):
    item = parse_record(obj, "fuzz:1", "line 1", require_gene=False)
    assert isinstance(item, (Case, BadRecord))
    if isinstance(item, Case):
        assert isinstance(item.id, str) and all(isinstance(t, str) for t in item.present + item.absent)
        assert all(v is None or isinstance(v, str) for v in (item.gene, item.sex, item.age, item.source))


@pytest.mark.parametrize("record, problem", [
    ({"id": "a", "present": ["HP:0000518"], "gene": 5}, "'gene' must be text, got int"),
    ({"id": {"x": 1}, "present": ["HP:0000518"]}, "'id' must be a string or a number"),
    ({"id": True, "present": ["HP:0000518"]}, "'id' must be a string or a number"),
    ({"id": "a", "present": ["HP:0000518"], "sex": ["female"]}, "'sex' must be text, got list"),
    ({"id": "a", "present": ["HP:0000518"], "age": 3}, "'age' must be text, got int"),
])
def test_wrongly_typed_case_fields_are_bad_records(record, problem):
    item = parse_record(record, "f.jsonl:1", "line 1", require_gene=False)
    assert isinstance(item, BadRecord) and item.problem == problem


def test_numeric_id_is_text():
    item = parse_record({"id": 17, "present": ["HP:0000518"]}, "f.jsonl:1", "line 1", require_gene=False)
    assert isinstance(item, Case) and item.id == "17"


# --- the prediction / grade readers ---------------------------------------------------------------------
@FUZZ
@given(data=st.binary(max_size=300), lines=st.lists(st.one_of(json_values, records).map(json.dumps), max_size=4),
       gz=st.booleans())
def test_prediction_reader(tmp_path, data, lines, gz):
    payload = b"\n".join([data] + [line.encode() for line in lines])
    path = tmp_path / ("p.jsonl.gz" if gz else "p.jsonl")
    path.write_bytes(_encode(payload, ".jsonl.gz") if gz else payload)
    try:
        preds, problems = read_predictions(path)
    except GenedxError as e:                              # an unreadable file: one line
        assert "\n" not in str(e)
        return
    assert all(isinstance(p.id, str) for p in preds) and all("\n" not in p for p in problems)


@FUZZ
@given(depth=st.integers(min_value=1, max_value=200_000), kind=st.sampled_from(["list", "dict"]))
def test_prediction_reader_deep_nesting(tmp_path, depth, kind):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a", "genes": ["CRYAB"]}\n{"id": "b", "genes": ' + _deep(depth, kind) + "}\n")
    preds, problems = read_predictions(path)
    assert preds[0].id == "a" and len(preds) + len(problems) == 2


@FUZZ
@given(data=st.binary(max_size=200), cut=st.integers(min_value=0, max_value=60))
def test_grade_files_never_crash(tmp_path, data, cut):
    cases = tmp_path / "c.jsonl"
    cases.write_bytes(VALID_CASE_LINE.encode() + b"\n" + data)
    preds = tmp_path / "p.jsonl"
    preds.write_text('{"id": "ok1", "genes": ["CRYAB", "TBX5"]}\n' + '{"id": "ok1", "genes": ["CRYAB"]}'[:cut])
    try:
        report = grade_files([cases], preds, n_boot=0)
    except GenedxError as e:
        assert "\n" not in str(e)
        return
    assert report.metrics.n >= 1 and report.graded[0].case_id == "ok1" and report.graded[0].rank == 1


# --- never a partial write --------------------------------------------------------------------------------
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200), suffix=st.sampled_from([".jsonl", ".json", ".zip"]))
def test_strict_import_of_fuzzed_input_is_all_or_nothing(toy_home, tmp_path, data, suffix):
    from genedx.cases.store import import_cases
    path = tmp_path / f"f{suffix}"
    payload = VALID_CASE_LINE.encode() + b"\n" + data if suffix == ".jsonl" else data
    path.write_bytes(_encode(payload, suffix))
    con = connect(toy_home)
    try:
        before = con.execute('SELECT count(*) FROM "case"').fetchone()[0]
        try:
            report = import_cases(con, read_cases([path]), strict=True)
        except GenedxError as e:
            assert "\n" not in str(e)
            assert con.execute('SELECT count(*) FROM "case"').fetchone()[0] == before   # nothing written
            return
        assert not report.problems
        assert con.execute('SELECT count(*) FROM "case"').fetchone()[0] == before + report.imported
    finally:
        con.close()


@pytest.fixture(scope="module")
def ranker_predictor(tmp_path_factory):
    from genedx.home import Home
    from genedx.kb.build import build_kb
    from genedx.rank.ranker import Ranker, RankerPredictor
    from tests.conftest import TOY_HPO
    home = Home(tmp_path_factory.mktemp("fuzz_score")).ensure()
    con = connect(home)
    build_kb(con, TOY_HPO)
    pred = RankerPredictor(Ranker.load(con))
    from genedx.cases.terms import TermMapper
    mapper = TermMapper.from_db(con)
    con.close()
    return pred, mapper


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(records.map(json.dumps), st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
                                st.just(VALID_CASE_LINE)), max_size=6))
def test_scoring_fuzzed_input_writes_whole_lines(tmp_path, ranker_predictor, lines):
    from genedx.rank.batch import score_cases
    pred, mapper = ranker_predictor
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(x.replace("\n", " ").replace("\r", " ") for x in lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    report = score_cases(read_cases([path], require_gene=False), pred, out, top=2, mapper=mapper)
    written = out.read_text().splitlines()
    assert len(written) == report.scored and all(json.loads(x)["genes"] for x in written)
    assert all("\n" not in str(p) for p in report.problems)
