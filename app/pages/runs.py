"""Training runs: the runs in the database, their validation curves overlaid, and their recipes."""

from __future__ import annotations

import duckdb
import streamlit as st

from app import lib
from genedx.train.runs import list_runs

LABELS = {"top1": "top@1", "top5": "top@5", "top10": "top@10", "topmax": "top@max", "mean_grade": "mean grade",
          "well_formed": "well-formed", "mrr": "MRR", "reward": "reward", "kl": "KL", "loss": "loss"}

home = lib.app_home()
st.title("Training runs")

with lib.read_db(home) as con:
    runs = list_runs(con, limit=500)
    metrics = con.execute("SELECT run_id, step, split, name, value, lo, hi FROM metric ORDER BY run_id, step").df()

if not runs:
    st.info("No training runs yet. Train one with `genedx train sft --config training/configs/sft-tiny.yaml` "
            "or `genedx train rft --config training/configs/rft-closed.yaml`: every run records validation "
            "top@1 / top@5 / top@max per step, and its curves and recipe appear here.")
    st.stop()

st.dataframe([{"run": r.id, "kind": r.kind, "name": r.name, "status": r.status, "started": r.started_at,
               "finished": r.finished_at, "last step": r.last_step,
               **{LABELS.get(k, k): r.last.get(k) for k in ("top1", "top5", "topmax")}} for r in runs],
             hide_index=True, width="stretch", key="rn_table",
             column_config={LABELS[k]: st.column_config.NumberColumn(format="%.3f") for k in ("top1", "top5", "topmax")})

with_metrics = [r.id for r in runs if r.id in set(metrics["run_id"])]
picked = st.multiselect("Runs to compare", [r.id for r in runs], default=with_metrics[:3], key="rn_pick")
sel = metrics[metrics["run_id"].isin(picked)]
if not picked:
    st.caption("Pick one or more runs to plot their curves.")
elif sel.empty:
    st.info("These runs have no metrics yet (validation is recorded every `eval_steps` steps).")
else:
    splits = sorted(sel["split"].dropna().unique())
    c1, c2 = st.columns([1, 3])
    split = c1.selectbox("Split", splits, index=splits.index("validation") if "validation" in splits else 0,
                         key="rn_split")
    names = sorted(sel.loc[sel["split"] == split, "name"].unique(),
                   key=lambda n: (list(LABELS).index(n) if n in LABELS else 99, n))
    default = [n for n in ("top1", "top5", "topmax") if n in names] or names[:3]
    shown = c2.multiselect("Metrics", names, default=default, format_func=lambda n: LABELS.get(n, n), key="rn_metrics")
    cols = st.columns(min(3, max(1, len(shown))))
    for i, name in enumerate(shown):
        part = sel[(sel["split"] == split) & (sel["name"] == name)]
        wide = part.pivot_table(index="step", columns="run_id", values="value", aggfunc="last").sort_index()
        with cols[i % len(cols)]:
            st.markdown(f"**{LABELS.get(name, name)}** ({split}) per step")
            st.line_chart(wide, x_label="step", y_label=LABELS.get(name, name), height=260)

    st.subheader("Recipes")
    by_id = {r.id: r for r in runs}
    for rid in picked:
        r = by_id[rid]
        with st.expander(f"{rid} — {r.kind or ''} {r.name or ''} ({r.status or 'unknown status'})"):
            if r.model_dir:
                st.markdown(f"Model: `{r.model_dir}`")
            st.json(r.config or {}, expanded=True)

    try:
        with lib.read_db(home) as con:
            samples = con.execute("""
                SELECT run_id AS run, step, split, case_id AS "case", correct_answer AS "true gene", reward,
                       completion FROM completion_sample WHERE list_contains(?, run_id)
                ORDER BY step DESC, run_id LIMIT 50""", [picked]).df()
    except duckdb.CatalogException:  # a database made before sample logging existed
        samples = None
    if samples is not None and len(samples):
        st.subheader("Sample completions (latest first)")
        st.dataframe(samples, hide_index=True, width="stretch", key="rn_samples")
