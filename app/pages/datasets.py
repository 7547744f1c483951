"""Datasets: stored cases by source and split, cases per gene, terms per case, and a case browser."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import lib

S = st.session_state
home = lib.app_home()
release = S.get("hpo_release") or lib.kb_release(home)
index = lib.term_index(str(home.root), release)

st.title("Datasets")

with lib.read_db(home) as con:
    n_cases = con.execute('SELECT count(*) FROM "case"').fetchone()[0]
    if n_cases:
        by_split = con.execute("""
            SELECT c.source, coalesce(s.split, '(no split)') AS split, count(*) AS cases,
                   count(DISTINCT c.gene) AS genes, count(DISTINCT c.publication) AS publications
            FROM "case" c LEFT JOIN case_split s ON s.case_id = c.id GROUP BY ALL ORDER BY 1, 2""").df()
        per_gene = con.execute("""SELECT gene, count(*) AS cases FROM "case" WHERE gene IS NOT NULL
                                  GROUP BY gene ORDER BY cases DESC, gene""").df()
        terms = con.execute("""
            SELECT c.id, count(p.term) FILTER (WHERE NOT p.excluded) AS present,
                   count(p.term) FILTER (WHERE p.excluded) AS absent
            FROM "case" c LEFT JOIN case_phenotype p ON p.case_id = c.id GROUP BY c.id""").df()
        issues = con.execute("SELECT count(*) FROM import_issue").fetchone()[0]

if not n_cases:
    st.info("No cases in the database yet. Import some with `genedx data import PATH` (phenopacket JSON, "
            "folder, zip or .jsonl.gz), or simulate patients with `genedx data simulate`, then split them "
            "with `genedx data split`.")
    st.stop()

m1, m2, m3, m4 = st.columns(4)
m1.metric("cases", f"{n_cases:,}")
m2.metric("genes", f"{len(per_gene):,}")
m3.metric("median present terms", f"{terms['present'].median():.0f}")
m4.metric("import problems logged", f"{issues:,}")

st.subheader("Cases by source and split")
st.dataframe(by_split, hide_index=True, width="stretch", key="ds_split")

left, right = st.columns(2)
with left:
    k = st.slider("Genes shown", 5, 100, 30, key="ds_top_genes")
    st.markdown(f"**Cases per gene** (top {k} of {len(per_gene)})")
    st.bar_chart(per_gene.head(k), x="gene", y="cases", sort=False, height=320)
with right:
    st.markdown("**Present terms per case**")
    hist = terms["present"].clip(upper=40).value_counts().sort_index()
    st.bar_chart(pd.DataFrame({"present terms (40 = 40+)": hist.index.astype(int), "cases": hist.values}),
                 x="present terms (40 = 40+)", y="cases", height=320)

st.subheader("Case browser")
q = st.text_input("Filter by case id, gene or publication", key="ds_filter", placeholder="e.g. SCN1A or PMID_")
with lib.read_db(home) as con:
    found = con.execute("""
        SELECT c.id FROM "case" c WHERE ? = '' OR c.id ILIKE '%' || ? || '%' OR c.gene ILIKE ? || '%'
              OR coalesce(c.publication, '') ILIKE '%' || ? || '%'
        ORDER BY c.id LIMIT 500""", [q.strip(), q.strip(), q.strip(), q.strip()]).fetchall()
ids = [r[0] for r in found]
if not ids:
    st.caption("No case matches this filter.")
    st.stop()
cid = st.selectbox(f"Case ({len(ids)}{'+' if len(ids) == 500 else ''} matching)", ids, key="ds_case")
from genedx.cases.store import load_cases  # noqa: E402
with lib.read_db(home) as con:
    case = load_cases(con, ids=[cid])[0]
info = {"id": case.id, "source": case.source, "split": case.split, "sex": case.sex, "age": case.age,
        "gene": case.gene, "disease": case.disease, "disease label": case.disease_label,
        "publication": case.publication, "cohort": case.cohort}
st.table([{"field": k, "value": "" if v is None else str(v)} for k, v in info.items()])
c1, c2 = st.columns(2)
c1.markdown(f"**Present ({len(case.present)})**  \n" + "  \n".join(f"{index.label(t)} `{t}`" for t in case.present))
c2.markdown(f"**Absent ({len(case.absent)})**  \n" + ("  \n".join(f"{index.label(t)} `{t}`" for t in case.absent)
                                                      or "none recorded"))


def _open_in_diagnose() -> None:
    S.dx_present, S.dx_absent = list(case.present), list(case.absent)
    S.dx_sex = case.sex if case.sex in lib.SEXES else "unknown"
    S.dx_age = lib.iso_to_years(case.age)
    S.pop("dx_sex_w", None)  # the Diagnose widgets re-read the values above
    S.pop("dx_age_w", None)
    S.dx_case_id, S.dx_result, S.dx_error = case.id, None, None
    S.dx_notice = f"loaded stored case {case.id}" + (f" (reported gene: {case.gene})" if case.gene else "")


if st.button("Open this case in Diagnose", key="ds_open", on_click=_open_in_diagnose):
    st.switch_page("pages/diagnose.py")
