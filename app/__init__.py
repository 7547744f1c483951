"""genedx clinician web app (Streamlit). Start it with `genedx app`; the router is streamlit_app.py."""
