"""Reading cases: every phenopacket shape, zips, jsonl(.gz), case dicts, RFT lines, and bad input."""

from __future__ import annotations

import gzip
import json
import shutil
import zipfile
from pathlib import Path

from genedx.cases.model import BadRecord, Case
from genedx.cases.readers import parse_phenopacket, read_cases
from genedx.home import DATA_DIR

PP = Path(__file__).parent / "fixtures" / "phenopackets"


def _one(path: Path):
    items = list(read_cases([path]))
    assert len(items) == 1
    return items[0]


def test_variant_form_phenopacket():
    c = _one(PP / "PMID_111_variant_form.json")
    assert isinstance(c, Case)
    assert c.id == "PMID_111_P1" and c.gene == "SCN1A" and c.source == "phenopacket"
    assert c.present == ["HP:0002373", "HP:0001251", "HP:0009999", "HP:0001263", "HP:7777777"]
    assert c.absent == ["HP:0001631"]
    assert (c.sex, c.age, c.disease, c.publication) == ("female", "P2Y6M", "OMIM:100001", "PMID:111")
    assert c.disease_label == "Toy epilepsy syndrome"


def test_gene_descriptor_form_and_meta_reference():
    c = _one(PP / "gene_descriptor_form.json")
    assert isinstance(c, Case)
    assert c.gene == "CRYA2"  # raw symbol; normalised on import
    assert c.publication == "PMID:222"  # from metaData.externalReferences (id has no PMID prefix)
    assert c.sex == "male" and c.age == "P40Y"


def test_bad_inputs_name_file_and_record():
    bad = {p.name: _one(p) for p in [PP / "no_gene.json", PP / "empty_case.json", PP / "corrupt_phenopacket.json",
                                     PP / "malformed.json"]}
    assert all(isinstance(b, BadRecord) for b in bad.values())
    assert bad["no_gene.json"].reason == "no gene" and bad["no_gene.json"].record == "PMID_333_no_gene"
    assert bad["empty_case.json"].reason == "no observed phenotype"
    assert bad["corrupt_phenopacket.json"].reason == "invalid phenopacket"
    assert "PMID_777_corrupt" in str(bad["corrupt_phenopacket.json"])
    assert bad["malformed.json"].reason == "malformed JSON"
    assert str(bad["malformed.json"]).startswith(str(PP / "malformed.json"))


def test_missing_file_is_reported_and_reading_continues():
    items = list(read_cases([PP / "does_not_exist.json", PP / "PMID_111_variant_form.json"]))
    assert isinstance(items[0], BadRecord) and items[0].reason == "missing file"
    assert "does_not_exist.json" in str(items[0])
    assert isinstance(items[1], Case)


def test_jsonl_mixed_lines(tmp_path):
    items = list(read_cases([PP / "mixed.jsonl"]))
    assert len(items) == 4
    assert isinstance(items[0], Case) and items[0].cohort == "TBX5" and items[0].gene == "TBX5"
    assert isinstance(items[1], BadRecord) and items[1].reason == "malformed JSON"
    assert items[1].origin.endswith("mixed.jsonl:2") and items[1].record == "line 2"
    assert isinstance(items[2], Case) and items[2].gene == "scn1a" and items[2].source == "user"
    rft = items[3]
    assert isinstance(rft, Case) and rft.gene == "TBX5" and rft.present == ["HP:0001631"]
    assert rft.split is None  # splits come from the database, never from a file


def test_jsonl_gz_and_zip_and_folder(tmp_path):
    gz = tmp_path / "cases.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write((PP / "mixed.jsonl").read_text())
    assert [type(i).__name__ for i in read_cases([gz])] == ["Case", "BadRecord", "Case", "Case"]
    z = tmp_path / "cases.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(PP / "PMID_111_variant_form.json", "sub/PMID_111_variant_form.json")
        zf.write(PP / "no_gene.json", "no_gene.json")
        zf.writestr("README.txt", "not a case")
    items = list(read_cases([z]))
    assert [type(i).__name__ for i in items] == ["BadRecord", "Case"]
    assert items[0].origin.endswith("cases.zip!no_gene.json")
    folder = tmp_path / "folder" / "deep"
    folder.mkdir(parents=True)
    shutil.copy(PP / "PMID_111_variant_form.json", folder)
    shutil.copy(gz, folder.parent)
    assert len(list(read_cases([tmp_path / "folder"]))) == 5


def test_corrupt_zip(tmp_path):
    z = tmp_path / "broken.zip"
    z.write_bytes(b"PK\x03\x04 this is not a zip")
    (item,) = read_cases([z])
    assert isinstance(item, BadRecord) and "broken.zip" in str(item)


def test_shipped_sample_parses():
    items = list(read_cases([DATA_DIR / "phenopackets" / "sample"]))
    assert len(items) >= 30
    assert all(isinstance(i, Case) and i.gene and i.present and i.publication for i in items)


def test_parse_phenopacket_without_gene_for_the_app():
    obj = json.loads((PP / "no_gene.json").read_text())
    c = parse_phenopacket(obj, "upload", require_gene=False)
    assert isinstance(c, Case) and c.gene is None and c.present == ["HP:0001250"]


def test_non_object_json_line(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('[1, 2]\n{"foo": 1}\n')
    a, b = read_cases([p])
    assert isinstance(a, BadRecord) and "JSON object" in a.problem
    assert isinstance(b, BadRecord) and b.reason == "unrecognised record"


def test_bad_jsonl_lines_empty_case_and_corrupt_phenopacket(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"id": "u1", "present": [], "absent": [], "gene": "SCN1A"}) + "\n"
                 + json.dumps({"id": "u2", "present": "HP:0001250", "gene": "SCN1A"}) + "\n"
                 + json.dumps({"phenopacket": {"id": "pp3", "phenotypicFeatures": [{"type": {"id": 5}}]}}) + "\n"
                 + json.dumps({"id": "u4", "present": ["HP:0001250"]}) + "\n")
    a, b, c, d = read_cases([p])
    assert isinstance(a, BadRecord) and a.record == "u1" and "empty case" in a.problem and a.origin.endswith(":1")
    assert isinstance(b, BadRecord) and "list of HPO ids" in b.problem
    assert isinstance(c, BadRecord) and c.reason == "invalid phenopacket" and c.record == "pp3"
    assert isinstance(d, BadRecord) and d.reason == "no gene" and d.record == "u4"


def test_empty_folder_and_non_utf8_zip_member_and_several_genes(tmp_path):
    (tmp_path / "empty").mkdir()
    (item,) = read_cases([tmp_path / "empty"])
    assert isinstance(item, BadRecord) and "holds no" in item.problem
    z = tmp_path / "latin1.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("case.json", "{\"id\": \"caf\xe9\"}".encode("latin-1"))
    (item,) = read_cases([z])
    assert isinstance(item, BadRecord) and "UTF-8" in item.problem and item.origin.endswith("latin1.zip!case.json")
    obj = json.loads((PP / "PMID_111_variant_form.json").read_text())
    gis = obj["interpretations"][0]["diagnosis"]["genomicInterpretations"]
    gis.append({"subjectOrBiosampleId": "p1", "interpretationStatus": "CAUSATIVE", "gene": {"valueId": "HGNC:2",
                                                                                          "symbol": "TBX5"}})
    bad = parse_phenopacket(obj, "digenic.json")
    assert isinstance(bad, BadRecord) and bad.reason == "several causal genes" and "SCN1A, TBX5" in bad.problem
    gis[-1]["interpretationStatus"] = "REJECTED"  # a rejected call is not a causal gene
    assert parse_phenopacket(obj, "x.json").gene == "SCN1A"
