"""Batch scoring: upload many cases, rank them all, download; grade them when true genes are known."""

from __future__ import annotations

import json
import time

import pandas as pd
import streamlit as st

from app import lib
from genedx.errors import GenedxError

S = st.session_state
home = lib.app_home()
release = S.get("hpo_release") or lib.kb_release(home)

st.title("Batch scoring")
st.caption("Upload phenopackets (JSON, JSONL, .jsonl.gz or a zip of them) or genedx case/RFT JSONL; "
           "every case is ranked. When the file carries the true genes, the ranking is graded.")

up = st.file_uploader(f"Cases file (up to {lib.MAX_BATCH_MB} MB)", type=["json", "jsonl", "gz", "zip"], key="bt_upload",
                      max_upload_size=lib.MAX_BATCH_MB,
                      help=f"Files over {lib.MAX_BATCH_MB} MB (or zips unpacking to over {lib.MAX_UNPACKED_MB} MB): "
                           "score them with `genedx score` on the command line.")
if up is None:
    S.pop("bt_parsed", None)
    S.pop("bt_result", None)
    st.info("Upload a file to start, e.g. `data/phenopackets/sample/*.json` zipped, or the output of "
            "`genedx data export`.")
    st.stop()

if S.get("bt_parsed", {}).get("file_id") != up.file_id:
    with st.spinner(f"Reading {up.name}…"):
        cases, bad = lib.read_upload(up.name, up.getvalue(), lib.term_mapper(str(home.root), release),
                                     lib.gene_normalizer())
    S.bt_parsed = {"file_id": up.file_id, "name": up.name, "cases": cases, "bad": bad}
    S.pop("bt_result", None)
parsed = S.bt_parsed
cases, bad = parsed["cases"], parsed["bad"]

if bad:
    with st.expander(f"{len(bad)} problem(s) in {parsed['name']} (these records or terms were left out)",
                     expanded=not cases):
        st.dataframe([{"where": b.origin, "record": b.record, "problem": b.problem} for b in bad],
                     hide_index=True, width="stretch")
if not cases:
    st.error(f"No usable case in {parsed['name']}: see the problems above, fix the file and upload it again.")
    st.stop()

with_gene = sum(1 for c in cases if c.gene)
st.success(f"{len(cases)} case(s) read from {parsed['name']}; {with_gene} with a true gene.")

models = lib.find_models(home)
c1, c2, c3 = st.columns([3, 1, 2])
choice = c1.selectbox("Predictor", [lib.RANKER, *models], key="bt_predictor",
                      format_func=lambda c: "Phenotype ranker (default)" if c == lib.RANKER else f"Model: {c}")
top = int(c2.number_input("Genes per case", min_value=1, max_value=100, value=20, key="bt_top"))
mode = "closed"
if choice != lib.RANKER:
    mode = st.radio("Model mode", ["closed", "retrieval"], horizontal=True, key="bt_mode")
c3.write("")
if c3.button(f"Score {len(cases)} case(s)", type="primary", key="bt_score", width="stretch"):
    bar = st.progress(0.0, text="Scoring…")
    try:
        loaded = lib.get_predictor(home, release, choice, mode)
        t0 = time.perf_counter()
        preds = lib.rank_many(loaded, cases, top=top,
                              progress=lambda n: bar.progress(n / len(cases), text=f"Scored {n} / {len(cases)}"))
        S.bt_result = {"predictions": preds, "seconds": time.perf_counter() - t0, "predictor": loaded.name,
                       "top": top}
    except GenedxError as e:
        st.error(str(e))
        S.pop("bt_result", None)
    bar.empty()

res = S.get("bt_result")
if res:
    preds = res["predictions"]
    st.caption(f"Predictor **{res['predictor']}** · HPO release **{release}** · {len(preds)} cases in "
               f"{res['seconds']:.1f} s")
    rows = lib.batch_rows(preds, cases)
    if with_gene:
        from genedx.grade.metrics import metrics_from_rankings
        by_id = {c.id: c for c in cases}
        m = metrics_from_rankings([(p.case_id, by_id[p.case_id].gene, [g.symbol for g in p.genes],
                                    by_id[p.case_id].source) for p in preds if by_id[p.case_id].gene],
                                  max_genes=res["top"])
        cols = st.columns(4)
        for col, key, label in zip(cols, ("top1", "top5", "topmax", "mean_grade"),
                                   ("top@1", "top@5", f"top@max ({res['top']})", "mean grade")):
            e = m[key]
            col.metric(label, f"{e.value:.1%}" if key != "mean_grade" else f"{e.value:.3f}",
                       help=f"95% bootstrap interval {e.lo:.3f}–{e.hi:.3f} over {m.n} cases")
        st.caption(f"95% intervals: " + " · ".join(f"{lab} {m[k].lo:.2f}–{m[k].hi:.2f}" for k, lab in
                                                     (("top1", "top@1"), ("top5", "top@5"), ("topmax", "top@max"))))
        ranks = [r["rank of true gene"] for r in rows if r["true gene"]]
        dist = lib.rank_distribution(ranks)
        c_dist, c_topk = st.columns(2)
        c_dist.markdown("**Rank of the true gene**")
        c_dist.bar_chart(pd.DataFrame({"rank": list(dist), "cases": list(dist.values())}), x="rank", y="cases",
                         x_label="rank of the true gene", y_label="cases", sort=False, height=260)
        # top@k beyond the listed genes is unknown, so the curve stops at "Genes per case"
        max_k = min(20, res["top"])
        c_topk.markdown(f"**top@k**, k = 1–{max_k}")
        c_topk.line_chart(pd.DataFrame(lib.topk_curve(ranks, max_k)), x="k", y="top@k",
                          x_label="k (true gene within the first k)", y_label="share of cases", height=260)
    st.dataframe(rows, hide_index=True, width="stretch", key="bt_table")
    d1 = d2 = st.container(horizontal=True)
    d1.download_button("Download JSONL", "\n".join(json.dumps(p.to_json()) for p in preds) + "\n",
                       file_name="genedx-scores.jsonl", mime="application/jsonl", key="bt_dl_jsonl")
    d2.download_button("Download CSV", lib.to_csv(rows), file_name="genedx-scores.csv", mime="text/csv",
                       key="bt_dl_csv")
