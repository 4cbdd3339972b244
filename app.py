"""Generative Geometry Explorer: the Streamlit app. Run with ``streamlit run app.py`` (or ``scripts/app``).

Routes the pages in app_pages/ with ``st.navigation``; each page starts with the shared sidebar (model, device,
computations, cache: ``webui.sidebar.sidebar``). The folder is not called ``pages/``: Streamlit 1.67 treats a
``pages/`` folder next to the main script as a legacy multipage app, which runs a deep link without this script.

Every page opens at its own path, the default one too: Streamlit serves the default page only at ``/`` and
reserves its ``url_path``, so Local geometry is also registered a second time, hidden, at ``/local_geometry``.
The navigation is drawn here as links (the built-in one would list that second entry).
"""

import streamlit as st

from webui import profiles, resources
from webui.pages import PAGES

st.set_page_config(page_title="Generative Geometry Explorer", layout="wide")

pages = {spec.key: st.Page(spec.file, title=spec.title, url_path=spec.url_path, default=spec.default)
         for spec in PAGES}
page = st.navigation(list(pages.values()), position="hidden")
with st.sidebar:
    for spec in PAGES:
        if spec.listed:
            st.page_link(pages[spec.key], label=spec.title)
    st.divider()
if profiles.profile()["warm_umap"]:
    resources.umap_warmer()
page.run()
