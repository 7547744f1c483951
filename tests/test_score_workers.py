"""`genedx score --workers N` and `--shard K/N`, `genedx shards split|merge`, and true genes unknown to
HGNC, on the toy KB: the output is the same file whatever the worker count or the sharding."""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from genedx.cases.model import BadRecord, Case
from genedx.cli import app
from genedx.errors import GenedxError
from genedx.home import Home, connect
from genedx.kb.build import build_kb
from genedx.rank.batch import PredictorSpec, score_cases
from genedx.rank.shards import Shard, merge_scores, parse_shard, select_shard, shard_number, split_cases
from tests.conftest import TOY_HPO

TERMS = {"CRYAB": ["HP:0000518", "HP:0001250"], "TBX5": ["HP:0001631", "HP:0001629", "HP:0001263"],
         "SCN1A": ["HP:0001250", "HP:0002373", "HP:0001263"]}


def make_cases(n: int, seed: int = 0) -> list[dict]:
    """Toy cases of the three genes, with the awkward records batch scoring must survive mixed in."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        gene = rng.choice(sorted(TERMS))
        present = rng.sample(TERMS[gene], k=rng.randint(1, len(TERMS[gene])))
        rows.append({"id": f"case{i:04d}", "present": present, "gene": gene})
    rows[3]["present"] = ["HP:9999998"]                       # nothing usable: skipped
    rows[5]["present"] = rows[5]["present"] + ["HP:7777777"]  # unknown id: dropped, still scored
    rows[7]["present"] = ["HP:0000006"]                       # inheritance only: the ranker refuses it
    rows[9]["gene"] = "NOTAGENE1"                             # true gene unknown to HGNC
    rows.append(dict(rows[11]))                               # a duplicate id: the second is skipped
    return rows


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Home:
    h = Home(tmp_path_factory.mktemp("toy_workers")).ensure()
    con = connect(h)
    build_kb(con, TOY_HPO)
    con.close()
    return h


@pytest.fixture(scope="module")
def cases_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cases") / "cases.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in make_cases(60)) + "{not json\n")
    return path


@pytest.fixture
def runner(home, monkeypatch) -> CliRunner:
    monkeypatch.setenv("GENEDX_HOME", str(home.root))
    return CliRunner()


def score(runner, *args) -> dict:
    r = runner.invoke(app, ["score", *map(str, args), "--json", "--top", "3", "--profiles", "none"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_two_workers_write_the_same_file_as_one(runner, cases_file, tmp_path):
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    a = score(runner, cases_file, "--out", one, "--batch-size", "4")
    b = score(runner, cases_file, "--out", two, "--batch-size", "4", "--workers", "2")
    assert one.read_bytes() == two.read_bytes()
    assert (a["scored"], a["skipped"]) == (b["scored"], b["skipped"]) == (58, 4)
    assert a["problems"] == b["problems"] and a["metrics"] == b["metrics"]
    assert any("case0007" in p and "skipped" in p for p in b["problems"])      # refused in a worker, reported
    assert [json.loads(x)["id"] for x in one.read_text().splitlines()][:4] == ["case0000", "case0001", "case0002",
                                                                            "case0004"]


def test_resume_with_workers(runner, cases_file, tmp_path):
    full, out = tmp_path / "full.jsonl", tmp_path / "out.jsonl"
    score(runner, cases_file, "--out", full)
    lines = full.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:20]) + lines[20][:15])      # a killed run: 20 lines and a torn one
    d = score(runner, cases_file, "--out", out, "--resume", "--workers", "2", "--batch-size", "3")
    assert d["resumed"] == 20 and out.read_bytes() == full.read_bytes()


def test_unknown_true_gene_is_reported_and_not_graded(runner, cases_file, tmp_path):
    out = tmp_path / "o.jsonl"
    d = score(runner, cases_file, "--out", out)
    assert d["unknown_true_genes"] == ["case0009"]
    assert any("case0009" in p and "'NOTAGENE1' is not an HGNC symbol" in p for p in d["problems"])
    assert "case0009" in out.read_text()                     # scored all the same
    assert d["metrics"]["n"] == d["scored"] - 1              # ... but not counted as a miss
    r = runner.invoke(app, ["grade", "--cases", str(cases_file), "--predictions", str(out), "--json", "--n-boot", "10"])
    assert r.exit_code == 0, r.output
    g = json.loads(r.stdout)
    assert g["unknown_true_genes"] == ["case0009"] and g["n"] == d["metrics"]["n"]
    assert any("case0009" in p and "NOTAGENE1" in p for p in g["bad_lines"])
    assert "case0009" not in g["unknown"] and "case0009" not in g["missing"]


def test_shards_partition_the_input_and_merge_back(runner, cases_file, tmp_path):
    single = tmp_path / "single.jsonl"
    score(runner, cases_file, "--out", single)
    parts, problems = [], []
    for k in (1, 2, 3):
        part = tmp_path / f"part{k}.jsonl"
        d = score(runner, cases_file, "--out", part, "--shard", f"{k}/3")
        parts.append(part)
        problems += d["problems"]
    ids = [json.loads(x)["id"] for p in parts for x in p.read_text().splitlines()]
    assert len(ids) == len(set(ids)) and sorted(ids) == sorted(json.loads(x)["id"] for x in single.read_text().splitlines())
    assert all(0 < len(p.read_text().splitlines()) < len(ids) for p in parts)
    assert sum("malformed JSON" in p for p in problems) == 1      # each bad record is reported by one shard
    assert sum("duplicate case id" in p for p in problems) == 1   # duplicates share their shard
    merged = tmp_path / "merged.jsonl"
    r = runner.invoke(app, ["shards", "merge", *map(str, reversed(parts)), "--cases", str(cases_file), "--out", str(merged)])
    assert r.exit_code == 0, r.output
    assert merged.read_bytes() == single.read_bytes()


def test_split_files_score_like_the_shard_option(runner, cases_file, tmp_path):
    r = runner.invoke(app, ["shards", "split", str(cases_file), "--shards", "2", "--out-dir", str(tmp_path / "s"),
                            "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert sum(rep["cases"]) == 61 and len(rep["problems"]) == 1 and not list((tmp_path / "s").glob("*.part"))
    for k, f in enumerate(rep["files"], 1):
        score(runner, f, "--out", tmp_path / f"from-file-{k}.jsonl")
        score(runner, cases_file, "--out", tmp_path / f"from-option-{k}.jsonl", "--shard", f"{k}/2")
        assert (tmp_path / f"from-file-{k}.jsonl").read_bytes() == (tmp_path / f"from-option-{k}.jsonl").read_bytes()


def test_shard_assignment_is_stable_and_balanced():
    cases = [Case(id=f"id{i}", present=["HP:0000001"]) for i in range(3000)]
    counts = [sum(1 for _ in select_shard(cases, Shard(k, 4))) for k in range(1, 5)]
    assert sum(counts) == 3000 and min(counts) > 650                  # each id in exactly one, roughly even
    assert shard_number(Case(id="id7"), 4) == shard_number(Case(id="id7", present=["HP:1"]), 4)
    # pinned: the split must not change between releases (BLAKE2b, not Python's salted hash)
    assert [shard_number(Case(id=f"id{i}"), 4) for i in range(6)] == [4, 3, 3, 3, 4, 4]
    assert 1 <= shard_number(BadRecord("f.jsonl:3", "line 3", "broken"), 4) <= 4


@pytest.mark.parametrize("spec", ["", "3", "0/2", "3/2", "1/0", "a/b", "1/2/3"])
def test_bad_shard_spec(spec):
    with pytest.raises(GenedxError, match="--shard"):
        parse_shard(spec)


def test_shard_cli_error_is_one_line(runner, cases_file, tmp_path):
    r = runner.invoke(app, ["score", str(cases_file), "--out", str(tmp_path / "o.jsonl"), "--shard", "4/3"])
    assert isinstance(r.exception, GenedxError) and "1 <= K <= N" in str(r.exception)
    assert not (tmp_path / "o.jsonl").exists()


def test_merge_refuses_overlapping_parts(tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_text('{"id": "x", "genes": []}\n')
    with pytest.raises(GenedxError, match="overlap"):
        merge_scores([a, a], tmp_path / "m.jsonl", [])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "y"}\n{oops\n')
    with pytest.raises(GenedxError, match=r"bad.jsonl:2: not a genedx score line"):
        merge_scores([a, bad], tmp_path / "m.jsonl", [])
    assert not (tmp_path / "m.jsonl").exists()


def test_worker_load_error_is_one_line(home, tmp_path):
    items = [Case(id="a", present=["HP:0000518"], gene="CRYAB")]
    spec = PredictorSpec(f"model:{tmp_path / 'no-such-model'}", str(home.root), {})
    with pytest.raises(GenedxError) as e:
        score_cases(items, spec, tmp_path / "o.jsonl", workers=2)
    assert "no-such-model" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(GenedxError, match="PredictorSpec"):
        score_cases(items, object(), tmp_path / "o.jsonl", workers=2)


def test_split_writes_whole_files_only(tmp_path):
    def items():
        yield Case(id="a", present=["HP:0000518"])
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        split_cases(items(), 2, tmp_path)
    assert list(tmp_path.iterdir()) == []
