"""genedx clinician app: the router (``st.navigation``), one page per task.

Started by `genedx app [--port N] [--home DIR]`. On first start with an empty home it builds the
knowledge base (and imports the bundled sample cases) with a progress indicator.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # `streamlit run app/streamlit_app.py` puts only app/ on the path
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402

from app import lib  # noqa: E402
from genedx.errors import GenedxError  # noqa: E402

st.set_page_config(page_title="genedx", page_icon=":material/genetics:", layout="wide")

home = lib.app_home()
release = lib.kb_release(home)
# One placeholder in every run, so the page below keeps its place in the element tree after the
# first-start message disappears (a shifted tree re-mounts components such as the searchbox).
first_start = st.empty()
if release is None:
    with first_start.status("First start: preparing the knowledge base (about 10 s)…", expanded=True) as status:
        release = lib.setup_home(home, report=status.write)
    first_start.empty()
st.session_state["hpo_release"] = release

page = st.navigation([
    st.Page("pages/diagnose.py", title="Diagnose", icon=":material/stethoscope:", default=True),
    st.Page("pages/batch.py", title="Batch scoring", icon=":material/table_view:"),
    st.Page("pages/runs.py", title="Training runs", icon=":material/show_chart:"),
    st.Page("pages/datasets.py", title="Datasets", icon=":material/dataset:"),
])
with st.sidebar:
    st.caption(f"HPO release **{release}**  \nhome `{home.root}`")
try:
    page.run()
except GenedxError as e:  # user-fixable (database busy or missing): one line, the app keeps running
    st.error(str(e))
# Warm the default predictor after the page is drawn, so the first "Rank genes" answers quickly.
try:
    lib.load_ranker(str(home.root), release)
except Exception:  # noqa: BLE001 - a broken ranker is reported where it is used (Rank genes), not here
    pass
