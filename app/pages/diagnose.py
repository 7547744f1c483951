"""Diagnose: enter one case (HPO search, ids, free text, or a phenopacket), rank genes, read the evidence."""

from __future__ import annotations

import json
import time

import pandas as pd
import streamlit as st

from app import lib
from genedx.answer_format import THINK_CLOSE, THINK_OPEN
from genedx.cases.model import Case
from genedx.errors import GenedxError

S = st.session_state
PREDICTOR_LABELS = {lib.RANKER: "Phenotype ranker{default}", lib.RERANKER: "Learned re-ranker{default}"}
for key, default in (("dx_present", []), ("dx_absent", []), ("dx_sex", "unknown"), ("dx_age", None),
                     ("dx_extracted", []), ("dx_note", ""), ("dx_spans", []), ("dx_result", None),
                     ("dx_notice", None), ("dx_error", None)):
    S.setdefault(key, default)

# Sex and age live in plain keys (dx_sex, dx_age); their widgets use their own keys (dx_sex_w, dx_age_w),
# re-initialised from the plain keys whenever Streamlit dropped them (after a visit to another page)
# or a callback reset them (case loaded or cleared).
WIDGET_OF = {"dx_sex": "dx_sex_w", "dx_age": "dx_age_w"}


def set_basic(sex: str, age: float | None) -> None:
    S.dx_sex, S.dx_age = sex, age
    for w in WIDGET_OF.values():
        S.pop(w, None)


def keep(key: str) -> None:
    S[key] = S[WIDGET_OF[key]]


for key, w in WIDGET_OF.items():
    if w not in S:
        S[w] = S[key]

home = lib.app_home()
release = S.get("hpo_release") or lib.kb_release(home)
index = lib.term_index(str(home.root), release)


# ---- state changes (run as widget callbacks, before the page re-renders) ------------------------
def add_terms(ids: list[str], status: str) -> None:
    """Add current HPO ids as present/absent; a term moves if it was in the other list."""
    mine, other = (S.dx_present, S.dx_absent) if status == "present" else (S.dx_absent, S.dx_present)
    for t in ids:
        if t in other:
            other.remove(t)
        if t not in mine:
            mine.append(t)


def add_typed_ids(status: str) -> None:
    raw = [x for x in S.get("dx_ids", "").replace(",", " ").replace(";", " ").split() if x]
    good, bad = [], []
    for x in raw:
        t = index.current(x)
        (good if t else bad).append(t or x)
    add_terms(good, status)
    S.dx_error = f"not a current HPO term in release {release}: {', '.join(bad)}" if bad else None
    if not bad:
        S.dx_ids = ""


def remove_term(term: str) -> None:
    for lst in (S.dx_present, S.dx_absent):
        if term in lst:
            lst.remove(term)


def flip_term(term: str) -> None:
    add_terms([term], "absent" if term in S.dx_present else "present")


def clear_case() -> None:
    S.dx_present, S.dx_absent, S.dx_result = [], [], None
    S.dx_extracted, S.dx_note, S.dx_spans = [], "", []
    S.dx_error, S.dx_notice = None, None
    set_basic("unknown", None)


# Free text: S.dx_extracted holds one (id, label, text, negated, cue) per term as the extractor found
# it; the clinician's decisions live in S["dx_use_<i>"] (keep the term) and S["dx_neg_<i>"] (absent),
# S.dx_note / S.dx_spans the extracted note and every mention (start, end, term index, negated, cue).
def extract_text() -> None:
    text = S.get("dx_text", "")
    ex = lib.term_extractor(str(home.root), release)
    terms = ex.extract(text)
    index_of = {m.id: i for i, m in enumerate(terms)}
    for k in [k for k in S if isinstance(k, str) and k.startswith(("dx_use_", "dx_neg_"))]:
        del S[k]
    S.dx_extracted = [(m.id, m.label, m.text, m.negated, m.cue) for m in terms]
    S.dx_note = text
    S.dx_spans = [(m.start, m.end, index_of[m.id], m.negated, m.cue) for m in ex.mentions(text) if m.id in index_of]
    for i, m in enumerate(terms):
        S[f"dx_use_{i}"] = True
        S[f"dx_neg_{i}"] = m.negated
    S.dx_error = None if S.dx_extracted or not text.strip() else "no HPO term found in the text"


def extracted_negated(i: int) -> bool:
    """The clinician's status of extracted term ``i`` (the extractor's until flipped)."""
    return bool(S.get(f"dx_neg_{i}", S.dx_extracted[i][3]))


def flip_extracted(i: int) -> None:
    S[f"dx_neg_{i}"] = not extracted_negated(i)


def add_extracted() -> None:
    for i, (term, _, _, _, _) in enumerate(S.dx_extracted):
        if S.get(f"dx_use_{i}", True):
            add_terms([term], "absent" if extracted_negated(i) else "present")
    S.dx_extracted, S.dx_note, S.dx_spans = [], "", []


def note_html() -> str:
    """The extracted note with every mention coloured by its term's current status."""
    from genedx.extract.highlight import Span, highlight_html
    spans = []
    for start, end, i, mention_negated, cue in S.dx_spans:
        term, label = S.dx_extracted[i][:2]
        use, negated = S.get(f"dx_use_{i}", True), extracted_negated(i)
        status = "dropped" if not use else ("absent" if negated else "present")
        title = f"{label} ({term}): {status}"
        if mention_negated:
            title += f"; this mention is negated by “{cue}”"
        spans.append(Span(start, end, f"dx-{status}", title))
    return highlight_html(S.dx_note, spans)


def load_phenopacket() -> None:
    """Replace the case with an uploaded phenopacket (or case JSON); errors keep the old case."""
    up = S.get("dx_upload")
    if up is None:
        return
    try:
        case, problems = parse_upload(up.name, up.getvalue())
    except GenedxError as e:
        S.dx_error, S.dx_notice = str(e), None
        return
    clear_case()
    S.dx_present, S.dx_absent = list(case.present), list(case.absent)
    set_basic(case.sex if case.sex in lib.SEXES else "unknown", lib.iso_to_years(case.age))
    S.dx_case_id = case.id
    note = f"loaded {case.id} from {up.name}: {len(case.present)} present, {len(case.absent)} absent terms"
    if case.gene:
        note += f" (reported gene: {case.gene})"
    S.dx_notice = note + ("; " + "; ".join(problems) if problems else "")


def parse_upload(name: str, data: bytes) -> tuple[Case, list[str]]:
    """One uploaded phenopacket / case JSON -> a case with current HPO ids (+ problems dropped)."""
    from genedx.cases.model import BadRecord
    from genedx.cases.readers import parse_record
    from genedx.cases.store import normalize_case
    problem = lib.too_big(name, len(data), lib.MAX_CASE_MB)
    if problem:
        raise GenedxError(problem)
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GenedxError(f"{name}: not a JSON file ({e})") from e
    except RecursionError as e:  # JSON nested thousands of levels deep
        raise GenedxError(f"{name}: not a usable JSON file (nested too deeply)") from e
    if isinstance(obj, list):
        if len(obj) != 1:
            raise GenedxError(f"{name}: holds {len(obj)} records; upload one case here (use Batch scoring for many)")
        obj = obj[0]
    item = parse_record(obj, name, name, require_gene=False)
    if isinstance(item, BadRecord):
        raise GenedxError(str(item))
    case, problems = normalize_case(item, lib.term_mapper(str(home.root), release), None, name)
    if case is None:
        raise GenedxError("; ".join(p.problem for p in problems) or f"{name}: no usable phenotype")
    return case, [p.problem for p in problems]


def current_case() -> Case:
    return Case(id=S.get("dx_case_id") or "app-case", present=list(S.dx_present), absent=list(S.dx_absent),
                sex=None if S.dx_sex == "unknown" else S.dx_sex, age=lib.age_to_iso(S.dx_age), source="user")


# ---- page ----------------------------------------------------------------------------------------
st.title("Diagnose")
st.caption("Enter the patient's phenotypes, then rank the genes most likely to explain them.")

left, right = st.columns([2, 3], gap="large")
with left:
    t_search, t_text, t_ids, t_file = st.tabs(["Search HPO", "Free text", "HPO ids", "Phenopacket"])
    with t_search:
        try:
            from streamlit_searchbox import st_searchbox
            picked = st_searchbox(index.search, key="dx_search", placeholder="Type a phenotype, synonym or HP id…",
                                  label="HPO term", debounce=150)
        except Exception as e:  # the component failed to load: the ids tab still works
            picked = None
            st.warning(f"term search unavailable ({e}); use the HPO ids tab")
        if picked:
            st.caption(index.display(picked))
        b1, b2 = st.columns(2)
        b1.button("Add as present", key="dx_add_present", on_click=add_terms, args=([picked] if picked else [], "present"),
                  disabled=not picked, width="stretch")
        b2.button("Add as absent", key="dx_add_absent", on_click=add_terms, args=([picked] if picked else [], "absent"),
                  disabled=not picked, width="stretch")
    with t_text:
        st.text_area("Clinical note", key="dx_text", height=140,
                     placeholder="e.g. 2-year-old boy with febrile seizures and developmental delay. No hypotonia.")
        st.button("Extract HPO terms", key="dx_extract", on_click=extract_text)
        if S.dx_extracted:
            from genedx.extract.highlight import legend_html
            st.write("Found in the note (uncheck what is wrong, flip present / absent, then add):")
            if S.get("dx_text", "") != S.dx_note:
                st.caption("The note was edited after this extraction: press **Extract HPO terms** again "
                           "to update the terms.")
            with st.container(border=True):
                st.html(note_html())
                st.html(legend_html())
            for i, (term, label, text, negated, cue) in enumerate(S.dx_extracted):
                now = extracted_negated(i)
                if now == negated:
                    status = f"**absent** (“{cue}”)" if negated else "**present**"
                else:
                    status = "**absent** (flipped)" if now else f"**present** (flipped; the note says “{cue}”)"
                c_box, c_flip = st.columns([10, 1], vertical_alignment="center", gap="small")
                c_box.checkbox(f"{label} ({term}) — {status} — from “{text}”", key=f"dx_use_{i}")
                c_flip.button("", icon=":material/swap_horiz:", key=f"dx_xflip_{i}", on_click=flip_extracted,
                              args=(i,), help=f"mark as {'present' if now else 'absent'}", type="tertiary")
            st.button("Add checked terms to the case", key="dx_add_extracted", on_click=add_extracted, type="primary")
    with t_ids:
        st.text_input("HPO ids", key="dx_ids", placeholder="HP:0001250, HP:0001263")
        c1, c2 = st.columns(2)
        c1.button("Add ids as present", key="dx_ids_present", on_click=add_typed_ids, args=("present",),
                  width="stretch")
        c2.button("Add ids as absent", key="dx_ids_absent", on_click=add_typed_ids, args=("absent",),
                  width="stretch")
    with t_file:
        st.file_uploader(f"Phenopacket JSON (GA4GH v2) or a genedx case JSON (up to {lib.MAX_CASE_MB} MB)",
                         type=["json"], key="dx_upload", max_upload_size=lib.MAX_CASE_MB,
                         on_change=load_phenopacket)
        st.caption("Loading a file replaces the current case.")

    st.subheader("Case")
    if S.dx_error:
        st.error(S.dx_error)
    if S.dx_notice:
        st.info(S.dx_notice)
    for title, terms, verb in (("Present", S.dx_present, "absent"), ("Absent", S.dx_absent, "present")):
        st.markdown(f"**{title}** ({len(terms)})")
        if not terms:
            st.caption("none yet" if title == "Present" else "none (optional: symptoms the patient does not have)")
        for t in terms:
            c_lab, c_flip, c_rm = st.columns([10, 1, 1], vertical_alignment="center", gap="small")
            c_lab.markdown(f"{index.label(t)} `{t}`")
            c_flip.button("", icon=":material/swap_horiz:", key=f"dx_flip_{t}", on_click=flip_term, args=(t,),
                          help=f"mark as {verb}", type="tertiary")
            c_rm.button("", icon=":material/close:", key=f"dx_rm_{t}", on_click=remove_term, args=(t,),
                        help="remove", type="tertiary")
    c_sex, c_age = st.columns(2)
    c_sex.selectbox("Sex", lib.SEXES, key="dx_sex_w", on_change=keep, args=("dx_sex",))
    c_age.number_input("Age (years)", min_value=0.0, max_value=120.0, step=1.0, key="dx_age_w",
                       on_change=keep, args=("dx_age",),
                       placeholder="unknown")

    models = lib.find_models(home)
    c_pred, c_top = st.columns([3, 1])
    choices = lib.predictor_choices(home)   # the re-ranker first (the default) once one is trained
    choice = c_pred.selectbox("Predictor", choices, key="dx_predictor",
                              format_func=lambda c: (PREDICTOR_LABELS[c].format(
                                  default=" (default)" if c == choices[0] else "")
                                  if c in PREDICTOR_LABELS else f"Model: {c}"))
    top = c_top.number_input("Genes", min_value=1, max_value=100, value=20, step=5, key="dx_top")
    mode = "closed"
    if choice not in (lib.RANKER, lib.RERANKER):
        mode = st.radio("Model mode", ["retrieval", "closed"], horizontal=True, key="dx_mode",
                        help="closed: the model names genes from the case alone; retrieval: it re-ranks the "
                             "phenotype ranker's candidates")
    if not models:
        st.caption("No trained model yet: `genedx model init --from smollm2-135m-instruct --out "
                   "<home>/models/smollm2-135m`, then `bash training/cpu_smollm.sh OUT` (SFT + RFT on the "
                   "pretrained base; models in the home's models folder appear here).")
    r1, r2 = st.columns([2, 1])
    rank_clicked = r1.button("Rank genes", type="primary", key="dx_rank", disabled=not S.dx_present,
                             width="stretch")
    r2.button("Clear case", key="dx_clear", on_click=clear_case, width="stretch")
    st.download_button("Save case as JSON", json.dumps(current_case().to_dict(), indent=2),
                       file_name="genedx-case.json", mime="application/json", key="dx_save_case",
                       disabled=not S.dx_present, type="tertiary", icon=":material/download:",
                       help="Reload it later in the Phenopacket tab")
    if not S.dx_present:
        st.caption("Add at least one present phenotype to rank genes.")

if rank_clicked:
    case = current_case()
    try:
        loaded = lib.get_predictor(home, release, choice, mode)
        t0 = time.perf_counter()
        pred = lib.rank_case(loaded, case, top=int(top))
        S.dx_result = {"prediction": pred, "case": case, "seconds": time.perf_counter() - t0,
                       "predictor": loaded.name, "kind": loaded.kind}
        S.dx_error = None
    except GenedxError as e:
        S.dx_result = None
        right.error(str(e))

res = S.dx_result
with right:
    if not res:
        st.subheader("Ranked genes")
        st.info("Add the patient's phenotypes on the left (search, free text, HPO ids or a phenopacket), "
                "then press **Rank genes**.")
        # A legend in the same element types as the result (table, expander): it explains the output and
        # lets the browser load their code now, so the first ranking is not slowed by it.
        with st.expander("How to read the result", expanded=True):
            st.table(pd.DataFrame([
                {"column": "rank", "meaning": "1 = the gene that best explains the phenotypes"},
                {"column": "gene", "meaning": "approved HGNC symbol"},
                {"column": "score", "meaning": "log10 likelihood ratio of the gene's best disease (higher is better)"},
                {"column": "disease", "meaning": "the OMIM / Orphanet disease that carried the gene"},
            ]), hide_index=True)
            st.caption("Each gene's evidence lists the patient's phenotypes it matched and the absent "
                       "phenotypes that counted against it.")
    else:
        pred, case = res["prediction"], res["case"]
        st.subheader("Ranked genes")
        if (case.present, case.absent) != (S.dx_present, S.dx_absent):
            st.warning("The case changed since this ranking: press **Rank genes** again.")
        st.caption(f"Predictor **{res['predictor']}** · HPO release **{pred.hpo_release or release}** · "
                   f"{len(case.present)} present / {len(case.absent)} absent terms · answered in {res['seconds']:.2f} s")
        if pred.output is not None:  # a model: its reasoning, then the raw answer
            think = (pred.output.split(THINK_OPEN, 1)[1].split(THINK_CLOSE, 1)[0].strip()
                     if THINK_OPEN in pred.output else "")
            with st.expander("Model reasoning", expanded=True):
                st.text(think or "(no <think> reasoning in the output)")
                st.code(pred.output, language=None)
        if res["kind"] == lib.RERANKER:
            st.caption("Order from the learned re-ranker (LightGBM over the phenotype ranker's top candidates); "
                       "score = its relevance score. The evidence per gene is the phenotype ranker's, with the "
                       "re-ranker's strongest features for that gene in the notes.")
        rows = lib.result_rows(pred)
        if not rows:
            st.info("No gene matched these phenotypes." if pred.output is None else
                    "The model's answer names no known gene (see its output above).")
        else:
            # st.table (static HTML), not st.dataframe (canvas): short, printable, readable by any browser tool
            st.table(pd.DataFrame([{**r, "score": f"{r['score']:.3f}"} for r in rows]), hide_index=True)
            d1 = d2 = st.container(horizontal=True)
            d1.download_button("Download CSV", lib.to_csv(rows), file_name=f"{case.id}-genes.csv", mime="text/csv",
                               key="dx_dl_csv")
            d2.download_button("Download JSON", lib.prediction_json(pred, case), file_name=f"{case.id}-genes.json",
                               mime="application/json", key="dx_dl_json")
            picture = lib.evidence_picture(res, home, release, index.label)
            if picture is not None:  # one picture: which phenotypes carry, or count against, each top gene
                matrix, png = picture
                st.markdown(f"**Evidence matrix** (top {len(matrix.genes)} genes)")
                st.image(png, caption="Each cell: the phenotype's log10 likelihood-ratio contribution to the "
                                      "gene's score (blue for, red against; = matched, ^ through an ancestor only, "
                                      "x absent but typical, ? not explained, grey: not scored)",
                         alt=f"Evidence matrix: {len(matrix.terms)} phenotypes x genes {', '.join(matrix.genes)}")
                st.download_button("Download evidence matrix (PNG)", png, file_name=f"{case.id}-evidence.png",
                                   mime="image/png", key="dx_dl_matrix", icon=":material/download:")
                with st.expander("Evidence matrix as a table"):
                    st.table(pd.DataFrame(matrix.rows()), hide_index=True)
            st.markdown("**Evidence per gene**")
            for i, g in enumerate(pred.genes, 1):
                ev = g.evidence
                title = f"{i}. {g.symbol} — {g.disease_name or g.disease or 'no disease'} · score {g.score:.3f}"
                with st.expander(title):
                    st.markdown(f"Disease: {lib.disease_link(g.disease)} {g.disease_name or ''}")
                    if ev is None:
                        st.caption("No per-phenotype evidence from this predictor.")
                        continue
                    if ev.matched:
                        st.markdown(f"Matched phenotypes ({len(ev.matched)})")
                        st.table([{"patient": f"{m.patient_label or index.label(m.patient_term)} ({m.patient_term})",
                                   "annotated": f"{m.annotated_label or index.label(m.annotated_term)} ({m.annotated_term})",
                                   "contribution": round(m.contribution, 3)} for m in ev.matched])
                    if ev.excluded:
                        st.markdown(f"Absent in the patient but typical of the disease — counted against ({len(ev.excluded)})")
                        st.table([{"absent in patient": f"{m.patient_label or index.label(m.patient_term)} ({m.patient_term})",
                                   "annotated": f"{m.annotated_label or index.label(m.annotated_term)} ({m.annotated_term})",
                                   "contribution": round(m.contribution, 3)} for m in ev.excluded])
                    if ev.unmatched:
                        st.markdown("Not explained by this disease: " +
                                    ", ".join(f"{index.label(t)} ({t})" for t in ev.unmatched))
                    for note in ev.notes:
                        st.caption(note)
