"""The app's Streamlit-free helpers (term search, uploads, ages, rank buckets), `genedx app`, and the
model predictor in the app (a broken model folder; a tiny from-scratch model, slow)."""

from __future__ import annotations

import io
import shutil
import sys
import zipfile
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # app/ is not an installed package
from app import lib  # noqa: E402
from genedx.cases.quickstart import SAMPLE_DIR
from genedx.cases.terms import TermMapper
from genedx.cli import app as cli_app
from genedx.cli.app_cmd import streamlit_argv
from genedx.home import Home, connect

APP = str(Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py")


@pytest.fixture(scope="module")
def index(real_home) -> lib.TermIndex:
    con = duckdb.connect(str(real_home.db_path), read_only=True)
    try:
        return lib.TermIndex.from_db(con)
    finally:
        con.close()


@pytest.fixture(scope="module")
def mapper(real_home) -> TermMapper:
    con = duckdb.connect(str(real_home.db_path), read_only=True)
    try:
        return TermMapper.from_db(con)
    finally:
        con.close()


# ---- term search -------------------------------------------------------------------------------
def test_search_exact_label_first(index):
    assert index.search("seizure")[0] == ("Seizure (HP:0001250)", "HP:0001250")


def test_search_exact_synonym_beats_longer_labels(index):
    display, term = index.search("epilepsy")[0]
    assert term == "HP:0001250" and "synonym: Epilepsy" in display


def test_search_all_words_any_order(index):
    terms = [t for _, t in index.search("septal atrial defect", limit=30)]
    assert "HP:0001631" in terms


def test_search_by_id_forms_and_alt_ids(index, mapper):
    for q in ("HP:0001250", "hp_0001250", "0001250", "HP0001250"):
        assert [t for _, t in index.search(q)] == ["HP:0001250"], q
    alt = next(i for i, (t, kind) in mapper._map.items() if kind == "alt" and t)
    assert [t for _, t in index.search(alt)] == [mapper.map(alt)[0]]


def test_search_short_or_unknown_queries(index):
    assert index.search("") == [] and index.search("s") == []
    assert index.search("zzzqqq") == []
    assert index.search("HP:9999999") == []
    assert len(index.search("abnormality", limit=7)) == 7


def test_current_maps_user_typed_ids(index):
    assert index.current(" hp:0001250 ") == "HP:0001250"
    assert index.current("HP:0000000") is None
    assert index.label("HP:0001250") == "Seizure"


# ---- uploads -------------------------------------------------------------------------------------
def test_read_upload_zip_with_bad_member(mapper):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in sorted(SAMPLE_DIR.glob("*.json"))[:3]:
            z.write(f, f.name)
        z.writestr("bad.json", "{nope")
    cases, bad = lib.read_upload("cases.zip", buf.getvalue(), mapper, lib.gene_normalizer())
    assert len(cases) == 3 and all(c.gene and c.present for c in cases)
    assert len(bad) == 1 and bad[0].origin.startswith("cases.zip") and "malformed JSON" in bad[0].problem


def test_read_upload_unknown_terms_and_gene(mapper):
    lines = [
        '{"id": "a", "present": ["HP:0001631", "HP:9999999"], "gene": "TBX5"}',
        '{"id": "b", "present": ["HP:9999999"]}',
        '{"id": "c", "present": ["HP:0001631"], "gene": "NOT_A_GENE_XYZ"}',
    ]
    cases, bad = lib.read_upload("x.jsonl", "\n".join(lines).encode(), mapper, lib.gene_normalizer())
    assert [c.id for c in cases] == ["a", "c"]
    assert cases[0].present == ["HP:0001631"] and cases[1].gene is None
    problems = " | ".join(f"{b.record}: {b.problem}" for b in bad)
    assert "a: unknown HPO id HP:9999999" in problems
    assert "b: " in problems and "NOT_A_GENE_XYZ" in problems


@pytest.mark.parametrize("name, data", [("notes.txt", b"hello"), ("x.jsonl.gz", b"not gzip"),
                                        ("x.zip", b"not a zip"), ("x.json", b"\xff\xfe")])
def test_read_upload_bad_files_never_raise(mapper, name, data):
    cases, bad = lib.read_upload(name, data, mapper)
    assert cases == [] and len(bad) == 1 and bad[0].problem


def test_read_upload_oversized_files_are_refused_with_the_limit(mapper, monkeypatch):
    monkeypatch.setattr(lib, "MAX_BATCH_MB", 1)
    line = b'{"id": "a", "present": ["HP:0001631"]}\n'
    big = line * (1024 * 1024 // len(line) + 1)
    cases, bad = lib.read_upload("big.jsonl", big, mapper)
    assert cases == [] and len(bad) == 1
    assert "big.jsonl: the file is 1.0 MB, over the app's 1 MB limit" in bad[0].problem
    assert "genedx score" in bad[0].problem
    assert len(lib.read_upload("ok.jsonl", line * 10, mapper)[0]) == 10      # under the limit: read
    # a small zip that unpacks to more than the unpacked limit (a zip bomb) is refused before reading
    monkeypatch.setattr(lib, "MAX_UNPACKED_MB", 1)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("cases.jsonl", big * 2)
    assert len(buf.getvalue()) < 1024 * 1024
    cases, bad = lib.read_upload("bomb.zip", buf.getvalue(), mapper)
    assert cases == [] and "unpacked content is 2.0 MB, over the app's 1 MB limit" in bad[0].problem


@pytest.mark.parametrize("name, data", [("deep.json", b"[" * 100_000 + b"]" * 100_000),
                                        ("deep.jsonl", b'{"id": "a", "present": ["HP:0001631"]}\n' + b"[" * 100_000),
                                        ("truncated.jsonl.gz", __import__("gzip").compress(b'{"id": "a"')[:-6])])
def test_read_upload_unreadable_content_is_a_problem_not_a_traceback(mapper, name, data):
    cases, bad = lib.read_upload(name, data, mapper)
    assert bad and all(b.problem for b in bad)
    assert len(cases) <= 1


def test_too_big_message():
    assert lib.too_big("x.json", 5 * 1024 * 1024, 5) is None
    assert lib.too_big("x.json", 5 * 1024 * 1024 + 1, 5).startswith("x.json: the file is 5.0 MB, over the app's 5 MB")


def test_topk_curve():
    curve = lib.topk_curve([1, 3, 3, None, 20, 7], max_k=20)
    assert [p["k"] for p in curve] == list(range(1, 21))
    top = [p["top@k"] for p in curve]
    assert top[0] == pytest.approx(1 / 6) and top[2] == pytest.approx(3 / 6) and top[6] == pytest.approx(4 / 6)
    assert top[19] == pytest.approx(5 / 6) and top == sorted(top)        # never reaches 1: one not listed
    assert lib.topk_curve([], 20) == []


def test_rank_distribution_buckets():
    d = lib.rank_distribution([1, 2, 5, 6, 10, 11, 20, 21, None])
    assert list(d) == list(lib.RANK_BUCKETS)
    assert d == {"1": 1, "2": 1, "3": 0, "4": 0, "5": 1, "6-10": 2, "11-20": 2, "21+": 1, "not found": 1}


@pytest.mark.parametrize("years, iso", [(None, None), (0, "P0M"), (3, "P3Y"), (1.5, "P1Y6M"), (0.25, "P3M")])
def test_age_round_trip(years, iso):
    assert lib.age_to_iso(years) == iso
    if iso:
        assert lib.iso_to_years(iso) == pytest.approx(years, abs=0.01)


def test_iso_to_years_unreadable():
    assert lib.iso_to_years("adult") is None and lib.iso_to_years("P") is None


def test_disease_links():
    assert lib.disease_link("OMIM:142900") == "[OMIM:142900](https://omim.org/entry/142900)"
    assert lib.disease_link("DECIPHER:1") == "DECIPHER:1" and lib.disease_link(None) == "—"


def test_find_models(tmp_home):
    (tmp_home.models_dir / "m1").mkdir()
    (tmp_home.models_dir / "m1" / "config.json").write_text("{}")
    (tmp_home.models_dir / "not-a-model").mkdir()
    assert lib.find_models(tmp_home) == ["m1"]


def test_read_db_missing_database(tmp_home):
    from genedx.errors import GenedxError
    with pytest.raises(GenedxError, match="genedx data build"):
        with lib.read_db(tmp_home):
            pass


# ---- `genedx app` ----------------------------------------------------------------------------
def test_streamlit_argv_is_local_and_headless():
    argv = streamlit_argv(8600, "127.0.0.1")
    assert argv[1:4] == ["-m", "streamlit", "run"] and argv[4].endswith("app/streamlit_app.py")
    flags = dict(zip(argv[5::2], argv[6::2]))
    assert flags["--server.headless"] == "true" and flags["--browser.gatherUsageStats"] == "false"
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8600"


def test_app_command_rejects_bad_port(monkeypatch):
    execs = []
    monkeypatch.setattr("os.execve", lambda *a: execs.append(a))
    res = CliRunner().invoke(cli_app, ["app", "--port", "70000"])
    assert res.exit_code != 0 and "70000" in str(res.exception) and not execs


def test_app_command_execs_streamlit_with_home(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr("os.execve", lambda path, argv, env: calls.append((path, argv, env)))
    res = CliRunner().invoke(cli_app, ["app", "--port", "8610", "--home", str(tmp_path / "h")])
    assert res.exit_code == 0, res.output
    (path, argv, env), = calls
    assert env["GENEDX_HOME"] == str((tmp_path / "h").resolve()) and (tmp_path / "h").is_dir()
    assert "--server.port" in argv and argv[argv.index("--server.port") + 1] == "8610"


# ---- a trained model as predictor ------------------------------------------------------------------
@pytest.fixture
def model_home(real_home, tmp_path) -> Home:
    home = Home(tmp_path / "model_home").ensure()
    shutil.copy(real_home.db_path, home.db_path)
    return home


def _diagnose_with_model(home: Home, monkeypatch, model: str) -> AppTest:
    monkeypatch.setenv("GENEDX_HOME", str(home.root))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.text_input(key="dx_ids").set_value("HP:0001631, HP:0001199")
    at.button(key="dx_ids_present").click().run()
    at.selectbox(key="dx_predictor").set_value(model).run()
    at.button(key="dx_rank").click().run()
    return at


def test_broken_model_folder_is_one_error_and_ranker_still_works(model_home, monkeypatch):
    bad = model_home.models_dir / "broken"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    at = _diagnose_with_model(model_home, monkeypatch, "broken")
    assert not at.exception
    assert at.error and "broken" in at.error[0].value and "config.json" in at.error[0].value
    at.selectbox(key="dx_predictor").set_value(lib.RANKER).run()
    at.button(key="dx_rank").click().run()
    assert not at.exception and at.table


@pytest.mark.slow
def test_tiny_model_predictor_shows_its_output(model_home, monkeypatch):
    from genedx.model.build import init_model
    con = connect(model_home)
    try:
        init_model(model_home.models_dir / "tiny", "tiny", con=con, seed=0)
    finally:
        con.close()
    at = _diagnose_with_model(model_home, monkeypatch, "tiny")
    assert not at.exception and not at.error
    assert any("tiny (retrieval)" in c.value for c in at.caption)   # retrieval: the default mode
    assert at.expander[0].label == "Model reasoning"
    assert isinstance(at.session_state.dx_result["prediction"].output, str)  # untrained: may be empty
    # the evidence matrix appears exactly when the model's genes carry per-term evidence
    genes = at.session_state.dx_result["prediction"].genes
    assert bool(at.image) == any(g.evidence is not None for g in genes[:10])
