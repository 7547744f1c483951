"""The Streamlit app, page by page, with ``streamlit.testing.v1.AppTest`` on a prepared home
(real HPO knowledge base + the bundled sample phenopackets, as `genedx data quickstart` makes it)."""

from __future__ import annotations

import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from genedx.cases.quickstart import SAMPLE_DIR, quickstart
from genedx.cases.store import load_cases
from genedx.home import Home, connect

APP = str(Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py")
KNOWN_CASE = "PMID_10077612_Family_A_IV_20"  # a shipped sample phenopacket (Holt-Oram family, TBX5)


@pytest.fixture(scope="module")
def app_home(real_home, tmp_path_factory) -> Home:
    """A copy of the real KB with the sample cases imported and split (read-only for the tests)."""
    home = Home(tmp_path_factory.mktemp("app_home")).ensure()
    shutil.copy(real_home.db_path, home.db_path)
    con = connect(home)
    try:
        quickstart(con)
    finally:
        con.close()
    return home


@pytest.fixture
def at(app_home, monkeypatch) -> AppTest:
    monkeypatch.setenv("GENEDX_HOME", str(app_home.root))
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    assert not app.exception, app.exception
    return app


def known_case(home: Home):
    con = connect(home, read_only=True)
    try:
        (case,) = load_cases(con, ids=[KNOWN_CASE])
    finally:
        con.close()
    return case


def table_genes(app: AppTest) -> list[str]:
    return list(app.table[0].value["gene"])


def gene_expanders(app: AppTest) -> list:
    """The "Evidence per gene" expanders ("1. TBX5 — …"), in rank order."""
    return [e for e in app.expander if re.match(r"\d+\. ", e.label)]


def add_ids(app: AppTest, ids: list[str], status: str) -> None:
    app.text_input(key="dx_ids").set_value(", ".join(ids))
    app.button(key=f"dx_ids_{status}").click().run()


# ---- Diagnose ----------------------------------------------------------------------------------
def test_diagnose_present_absent_terms_rank_known_case(at, app_home):
    case = known_case(app_home)
    assert case.gene and case.present and case.absent
    add_ids(at, case.present, "present")
    add_ids(at, case.absent, "absent")
    assert at.session_state.dx_present == case.present
    assert at.session_state.dx_absent == case.absent
    at.button(key="dx_rank").click().run()
    assert not at.exception and not at.error
    genes = table_genes(at)
    assert genes[0] == case.gene                      # the reported gene ranks first
    assert len(genes) == 20
    # evidence per gene, HPO release and predictor shown
    assert gene_expanders(at)[0].label.startswith(f"1. {case.gene} — ")
    assert any("Matched phenotypes" in m.value for m in gene_expanders(at)[0].markdown)
    release_caption = [c.value for c in at.caption if "HPO release" in c.value]
    assert release_caption and "ranker" in release_caption[0] and at.session_state.hpo_release in release_caption[0]
    # downloads carry the same ranking
    dl = {b.proto.label: b for b in at.get("download_button")}
    assert {"Download CSV", "Download JSON"} <= set(dl)


def test_diagnose_evidence_matrix_picture_table_and_png(at, app_home):
    case = known_case(app_home)
    add_ids(at, case.present, "present")
    add_ids(at, case.absent, "absent")
    at.button(key="dx_rank").click().run()
    assert not at.exception
    genes = table_genes(at)
    assert any(m.value.startswith("**Evidence matrix** (top 10 genes)") for m in at.markdown)
    (img,) = at.image
    assert "log10 likelihood-ratio contribution" in img.captions[0] and img.value[0]
    dl = {b.proto.label: b for b in at.get("download_button")}
    assert "Download evidence matrix (PNG)" in dl
    matrix, png = at.session_state.dx_result["matrix"]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # the table twin of the picture: present then absent phenotypes x the top 10 genes in rank order
    table = next(t.value for t in at.table if "phenotype" in t.value.columns)
    assert list(table.columns) == ["phenotype", *genes[:10]]
    assert len(table) == len(case.present) + len(case.absent)
    assert table["phenotype"].iloc[0].startswith("+ ") and table["phenotype"].iloc[-1].startswith("− ")
    top = table[case.gene]
    assert sum(v.endswith("=") for v in top) >= 1       # the reported gene matches some phenotypes directly
    # a widget click reruns the page: the picture is kept, not redrawn
    at.selectbox(key="dx_sex_w").set_value("female").run()
    assert at.session_state.dx_result["matrix"][1] is png


def test_diagnose_absent_terms_count_against(at, app_home):
    # Declaring some of the known case's terms absent instead of present must lower its gene's score
    # and rank, and the evidence must list the absent terms that counted against it.
    case = known_case(app_home)
    add_ids(at, case.present, "present")
    at.button(key="dx_rank").click().run()
    before = {g.symbol: (i, g.score) for i, g in enumerate(at.session_state.dx_result["prediction"].genes)}
    assert table_genes(at)[0] == case.gene
    flipped = case.present[:3]
    add_ids(at, flipped, "absent")          # moves them from present to absent
    assert not set(flipped) & set(at.session_state.dx_present)
    at.button(key="dx_rank").click().run()
    after = {g.symbol: (i, g.score) for i, g in enumerate(at.session_state.dx_result["prediction"].genes)}
    genes = table_genes(at)
    if case.gene in after:
        assert after[case.gene][1] < before[case.gene][1]
        assert after[case.gene][0] >= before[case.gene][0]
        i = genes.index(case.gene)
        assert any("counted against" in m.value for m in gene_expanders(at)[i].markdown)


def test_diagnose_flip_remove_and_stale_warning(at):
    add_ids(at, ["HP:0001631", "HP:0001199"], "present")
    at.button(key="dx_rank").click().run()
    at.button(key="dx_flip_HP:0001631").click().run()
    assert at.session_state.dx_present == ["HP:0001199"] and at.session_state.dx_absent == ["HP:0001631"]
    assert any("case changed" in w.value for w in at.warning)
    at.button(key="dx_rm_HP:0001631").click().run()
    assert at.session_state.dx_absent == []


def test_diagnose_unknown_ids_are_reported_and_page_keeps_working(at):
    add_ids(at, ["HP:0001631", "HP:9999999", "seizure"], "present")
    assert at.error and "HP:9999999" in at.error[0].value and "seizure" in at.error[0].value
    assert at.session_state.dx_present == ["HP:0001631"]   # the good id was still added
    at.button(key="dx_rank").click().run()
    assert not at.exception and at.session_state.dx_result is not None and len(table_genes(at)) == 20


def test_diagnose_saved_case_json_loads_back(at):
    from genedx.cases.model import Case
    saved = Case(id="my-patient", present=["HP:0001631", "HP:0001199"], absent=["HP:0001629"], sex="female", age="P2Y6M")
    at.file_uploader(key="dx_upload").set_value(("genedx-case.json", json.dumps(saved.to_dict()).encode(),
                                                 "application/json")).run()
    assert not at.error
    assert (at.session_state.dx_present, at.session_state.dx_absent) == (saved.present, saved.absent)
    assert at.session_state.dx_sex == "female" and at.session_state.dx_age == 2.5
    assert at.selectbox(key="dx_sex_w").value == "female" and at.number_input(key="dx_age_w").value == 2.5
    assert not at.button(key="dx_rank").disabled


def test_diagnose_alt_id_is_mapped_to_current_term(at, app_home):
    con = connect(app_home, read_only=True)
    alt, current = con.execute("SELECT id, term FROM hpo_id_map WHERE kind = 'alt' ORDER BY id LIMIT 1").fetchone()
    con.close()
    add_ids(at, [alt], "present")
    assert at.session_state.dx_present == [current]


def test_diagnose_free_text_extraction_confirm(at):
    at.text_area(key="dx_text").set_value(
        "Boy with triphalangeal thumbs and an atrial septal defect. No ventricular septal defect. Denies headaches.")
    at.button(key="dx_extract").click().run()
    extracted = at.session_state.dx_extracted
    # "septal defect" inside "atrial septal defect" is a nested mention of its ancestor (HP:0001671),
    # reported as GSC+ annotates nested concepts; the clinician can untick it
    assert [(t[0], t[3]) for t in extracted] == [("HP:0001199", False), ("HP:0001631", False),
                                                 ("HP:0001671", False), ("HP:0001629", True),
                                                 ("HP:0002315", True)]
    boxes = [c for c in at.checkbox if c.key.startswith("dx_use_")]
    assert len(boxes) == 5 and "absent" in boxes[3].label
    boxes[2].uncheck()  # the clinician drops the redundant ancestor
    boxes[4].uncheck()  # and rejects "headache"
    at.button(key="dx_add_extracted").click().run()
    assert at.session_state.dx_present == ["HP:0001199", "HP:0001631"]
    assert at.session_state.dx_absent == ["HP:0001629"]
    at.button(key="dx_rank").click().run()
    assert not at.exception and len(table_genes(at)) == 20


def highlighted(app: AppTest, cls: str = "dx-note") -> str:
    """The HTML of the Free text tab's highlighted note (or its legend, ``cls="dx-legend"``)."""
    (h,) = [h.value for h in app.html if f'class="{cls}"' in h.value]
    return h


def test_diagnose_free_text_highlights_and_flip_reaches_the_ranked_case(at):
    at.text_area(key="dx_text").set_value("Atrial septal defect. No seizures.")
    at.button(key="dx_extract").click().run()
    assert [(t[0], t[3]) for t in at.session_state.dx_extracted] == [
        ("HP:0001631", False), ("HP:0001671", False), ("HP:0001250", True)]
    note = highlighted(at)
    # both colours, on the right words; the note's text is HTML-escaped, the legend names the colours
    assert re.search(r'class="dx-hl dx-present[^"]*"[^>]*>Atrial ', note)
    assert re.search(r'class="dx-hl dx-absent"[^>]*>seizures</span>', note)
    assert "No " in note and "dx-dropped" not in note
    legend = highlighted(at, "dx-legend")
    assert all(c in legend for c in ("dx-present", "dx-absent", "dx-dropped"))
    # flip Atrial septal defect to absent, drop the nested ancestor, flip seizures to present
    at.button(key="dx_xflip_0").click().run()
    assert at.session_state["dx_neg_0"] is True
    assert "absent" in at.checkbox(key="dx_use_0").label and "flipped" in at.checkbox(key="dx_use_0").label
    assert re.search(r'class="dx-hl dx-absent[^"]*"[^>]*>Atrial ', highlighted(at))
    at.checkbox(key="dx_use_1").uncheck().run()
    assert "dx-dropped" in highlighted(at)
    at.button(key="dx_xflip_2").click().run()
    assert re.search(r'class="dx-hl dx-present"[^>]*>seizures</span>', highlighted(at))
    at.button(key="dx_add_extracted").click().run()
    assert at.session_state.dx_present == ["HP:0001250"] and at.session_state.dx_absent == ["HP:0001631"]
    assert not [h for h in at.html if "dx-note" in h.value]  # the highlight goes once the terms are in the case
    at.button(key="dx_rank").click().run()
    assert not at.exception
    ranked = at.session_state.dx_result["case"]
    assert ranked.present == ["HP:0001250"] and ranked.absent == ["HP:0001631"]


def test_diagnose_free_text_note_is_escaped():
    from genedx.extract.highlight import Span, highlight_html
    out = highlight_html("<script>x</script> seizures\nataxia", [Span(19, 27, "dx-absent", 'Seizure "x"'),
                                                                   Span(28, 34, "dx-present", "Ataxia")])
    assert "<script>" not in out and "&lt;script&gt;" in out and "<br>" in out
    assert 'title="Seizure &quot;x&quot;"' in out


def test_diagnose_free_text_without_terms_says_so(at):
    at.text_area(key="dx_text").set_value("The weather was fine.")
    at.button(key="dx_extract").click().run()
    assert at.error and "no HPO term" in at.error[0].value


def test_diagnose_phenopacket_upload_and_bad_upload(at):
    at.text_input(key="dx_ids").set_value("HP:0001250")
    at.button(key="dx_ids_present").click().run()
    # a corrupt file: an error, the current case is kept, the page keeps working
    at.file_uploader(key="dx_upload").set_value(("broken.json", b"{not json", "application/json")).run()
    assert not at.exception
    assert at.error and "broken.json" in at.error[0].value
    assert at.session_state.dx_present == ["HP:0001250"]
    # valid JSON that is not a phenopacket
    at.file_uploader(key="dx_upload").set_value(("x.json", b'{"hello": 1}', "application/json")).run()
    assert at.error and "x.json" in at.error[0].value
    # a real phenopacket replaces the case
    pp = SAMPLE_DIR / f"{KNOWN_CASE}.json"
    at.file_uploader(key="dx_upload").set_value((pp.name, pp.read_bytes(), "application/json")).run()
    assert not at.error
    assert "HP:0001250" not in at.session_state.dx_present and len(at.session_state.dx_present) > 2
    assert any(KNOWN_CASE in i.value and "TBX5" in i.value for i in at.info)
    at.button(key="dx_rank").click().run()
    assert table_genes(at)[0] == "TBX5"


def test_diagnose_rank_disabled_without_terms_and_models_empty_state(at):
    assert at.button(key="dx_rank").disabled
    assert any("No trained model yet" in c.value for c in at.caption)
    assert at.selectbox(key="dx_predictor").options == ["Phenotype ranker (default)"]


# ---- Batch scoring -------------------------------------------------------------------------------
def sample_zip(n: int = 8, broken: bool = True) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in sorted(SAMPLE_DIR.glob("*.json"))[:n]:
            z.write(f, f.name)
        if broken:
            z.writestr("broken.json", "{not json")
    return buf.getvalue()


def test_batch_zip_scores_grades_and_lists_bad_records(at):
    at.switch_page("pages/batch.py").run()
    assert at.info and "Upload a file" in at.info[0].value
    at.file_uploader(key="bt_upload").set_value(("cases.zip", sample_zip(8), "application/zip")).run()
    assert not at.exception
    assert "8 case(s)" in at.success[0].value
    assert any("1 problem" in e.label for e in at.expander)
    at.button(key="bt_score").click().run()
    assert not at.exception and not at.error
    metrics = {m.label.split(" ")[0]: m.value for m in at.metric}
    assert {"top@1", "top@5", "top@max"} <= set(metrics)
    table = at.dataframe[-1].value
    assert len(table) == 8
    ranks = table["rank of true gene"]
    top1 = (ranks == 1).sum() / len(table)
    assert metrics["top@1"] == f"{top1:.1%}"
    charts = at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
    assert len(charts) == 2                                  # rank distribution and top@k curve
    assert any(m.value.startswith("**top@k**, k = 1–20") for m in at.markdown)


def test_batch_bad_upload_shows_error_and_page_keeps_working(at):
    at.switch_page("pages/batch.py").run()
    at.file_uploader(key="bt_upload").set_value(("junk.jsonl", b"{oops\n[1, 2]\n", "application/octet-stream")).run()
    assert not at.exception
    assert at.error and "No usable case in junk.jsonl" in at.error[0].value
    assert any("2 problem" in e.label for e in at.expander)
    # the same session then scores a good file
    at.file_uploader(key="bt_upload").set_value(("ok.zip", sample_zip(3, broken=False), "application/zip")).run()
    at.button(key="bt_score").click().run()
    assert not at.exception and len(at.dataframe[-1].value) == 3


def test_oversized_and_non_json_uploads_say_why(at, monkeypatch):
    from app import lib as app_lib
    monkeypatch.setattr(app_lib, "MAX_BATCH_MB", 1)
    at.switch_page("pages/batch.py").run()
    assert "up to 1 MB" in at.file_uploader(key="bt_upload").label
    big = b'{"id": "a", "present": ["HP:0001631"]}\n' * 30_000           # 1.2 MB
    at.file_uploader(key="bt_upload").set_value(("big.jsonl", big, "application/jsonl")).run()
    assert not at.exception
    assert at.error and "No usable case in big.jsonl" in at.error[0].value
    problems = at.dataframe[0].value["problem"]
    assert "over the app's 1 MB limit" in problems[0] and "genedx score" in problems[0]
    at.file_uploader(key="bt_upload").set_value(("photo.json", b"\x89PNG\r\n\x1a\n\x00\x00binary", "image/png")).run()
    assert not at.exception and at.error and "No usable case in photo.json" in at.error[0].value
    # Diagnose: one case file over its limit, and JSON nested too deeply, are one-line errors
    monkeypatch.setattr(app_lib, "MAX_CASE_MB", 1)
    at.switch_page("pages/diagnose.py").run()
    at.file_uploader(key="dx_upload").set_value(("big.json", b" " * (1024 * 1024 + 1), "application/json")).run()
    assert not at.exception and "big.json: the file is 1.0 MB, over the app's 1 MB limit" in at.error[0].value
    at.file_uploader(key="dx_upload").set_value(("deep.json", b"[" * 100_000, "application/json")).run()
    assert not at.exception and "deep.json: not a usable JSON file (nested too deeply)" in at.error[0].value


def test_batch_jsonl_without_genes_has_no_metrics(at):
    lines = [json.dumps({"id": f"c{i}", "present": ["HP:0001631", "HP:0001199"]}) for i in range(3)]
    at.switch_page("pages/batch.py").run()
    at.file_uploader(key="bt_upload").set_value(("plain.jsonl", "\n".join(lines).encode(), "application/jsonl")).run()
    at.button(key="bt_score").click().run()
    assert not at.exception and not at.metric   # no true genes: no grades
    tops = at.dataframe[-1].value["top genes"]
    assert len(tops) == 3 and tops.nunique() == 1 and tops[0]   # identical cases, identical ranking


# ---- Training runs -------------------------------------------------------------------------------
def test_runs_empty_state(at):
    at.switch_page("pages/runs.py").run()
    assert not at.exception
    assert at.info and "No training runs yet" in at.info[0].value and "genedx train" in at.info[0].value


def test_runs_curves_overlaid_and_recipes(app_home, tmp_path, monkeypatch):
    from genedx.train.runs import finish_run, record_metrics, record_samples, start_run
    home = Home(tmp_path / "runs_home").ensure()
    shutil.copy(app_home.db_path, home.db_path)
    con = connect(home)
    for rid, lr in (("rft-a", 1e-5), ("rft-b", 3e-5)):
        start_run(con, rid, "rft", f"lr {lr}", {"learning_rate_multiplier": lr, "seed": 0})
        for step in (0, 10, 20):
            record_metrics(con, rid, step, "validation", {"top1": (0.1 + step / 100 + lr * 1e4, 0.0, 0.5),
                                                          "top5": 0.3 + step / 100, "topmax": 0.5})
        record_samples(con, rid, 20, "validation", [{"case_id": "c1", "prompt": "p", "completion": f"<answer>TBX5</answer> {rid}",
                                                     "correct_answer": "TBX5", "reward": 1.0}])
        finish_run(con, rid)
    con.close()
    monkeypatch.setenv("GENEDX_HOME", str(home.root))
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    app.switch_page("pages/runs.py").run()
    assert not app.exception
    assert set(app.dataframe[0].value["run"]) == {"rft-a", "rft-b"}
    assert set(app.multiselect(key="rn_pick").value) == {"rft-a", "rft-b"}
    charts = app.get("arrow_vega_lite_chart") or app.get("vega_lite_chart")
    assert len(charts) == 3                                    # top@1, top@5, top@max
    assert any("rft-a" in e.label for e in app.expander)
    assert any(j.value and "learning_rate_multiplier" in j.value for j in app.json)
    assert "Sample completions (latest first)" in [h.value for h in app.subheader]
    samples = app.dataframe[-1].value
    assert set(samples["run"]) == {"rft-a", "rft-b"} and (samples["step"] == 20).all()


# ---- Datasets ------------------------------------------------------------------------------------
def test_datasets_counts_and_case_browser(at, app_home):
    at.switch_page("pages/datasets.py").run()
    assert not at.exception
    con = connect(app_home, read_only=True)
    n = con.execute('SELECT count(*) FROM "case"').fetchone()[0]
    con.close()
    assert dict((m.label, m.value) for m in at.metric)["cases"] == f"{n:,}"
    split_table = at.dataframe[0].value
    assert split_table["cases"].sum() == n
    at.text_input(key="ds_filter").set_value("PMID_10077612").run()
    assert at.selectbox(key="ds_case").options == [KNOWN_CASE]
    assert any("TBX5" in str(v) for v in at.table[0].value["value"])
    at.button(key="ds_open").click().run()
    # AppTest does not follow st.switch_page: open the page it switched to
    at.switch_page("pages/diagnose.py").run()
    assert at.session_state.dx_present == known_case(app_home).present
    at.button(key="dx_rank").click().run()
    assert table_genes(at)[0] == "TBX5"


def test_datasets_filter_without_match(at):
    at.switch_page("pages/datasets.py").run()
    at.text_input(key="ds_filter").set_value("no-such-case-xyz").run()
    assert not at.exception and any("No case matches" in c.value for c in at.caption)


def test_empty_home_datasets_and_first_start(tmp_path, monkeypatch, real_home):
    """A home with a KB but no cases shows what to do next (the KB build itself is in the browser test)."""
    home = Home(tmp_path / "kb_only").ensure()
    shutil.copy(real_home.db_path, home.db_path)
    monkeypatch.setenv("GENEDX_HOME", str(home.root))
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    app.switch_page("pages/datasets.py").run()
    assert not app.exception
    assert app.info and "No cases in the database yet" in app.info[0].value


def test_case_entry_survives_a_visit_to_another_page(at):
    add_ids(at, ["HP:0001631"], "present")
    at.selectbox(key="dx_sex_w").set_value("female")
    at.number_input(key="dx_age_w").set_value(4.0).run()
    at.switch_page("pages/runs.py").run()
    at.switch_page("pages/diagnose.py").run()
    assert at.selectbox(key="dx_sex_w").value == "female" and at.number_input(key="dx_age_w").value == 4.0
    assert at.session_state.dx_present == ["HP:0001631"]
    at.button(key="dx_rank").click().run()
    assert at.session_state.dx_result["case"].sex == "female" and at.session_state.dx_result["case"].age == "P4Y"
