"""Generative Geometry Explorer: the Streamlit app. Run with ``streamlit run app.py`` (or ``scripts/app``).

Routes the pages in app_pages/ with ``st.navigation``; each page starts with the shared sidebar (model, device,
cache: ``sidebar.sidebar``). The folder is not called ``pages/``: Streamlit 1.67 treats a ``pages/`` folder next to
the main script as a legacy multipage app, which runs a deep link such as /geodesics without this script (no
page config, a file-name navigation).
"""

import streamlit as st

from webui import profiles, resources

st.set_page_config(page_title="Generative Geometry Explorer", layout="wide")

PAGES = [
    st.Page("app_pages/local_geometry.py", title="Local geometry", url_path="local_geometry", default=True),
    st.Page("app_pages/geodesics.py", title="Geodesics", url_path="geodesics"),
    st.Page("app_pages/embedding.py", title="Embedding & clusters", url_path="embedding"),
    st.Page("app_pages/memorization.py", title="Memorization", url_path="memorization"),
]

page = st.navigation(PAGES)
if profiles.profile()["warm_umap"]:
    resources.umap_warmer()
page.run()
