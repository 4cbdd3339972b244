"""The app's own package (Streamlit glue beside ``app.py``): size profiles, URL parameters, chart selections,
galleries, downloads, cost display and the shared sidebar. Pages in ``app_pages/`` arrange widgets over it; the
computations live in the library (``explorer``), which never imports this package.

Pure modules (no Streamlit, unit-tested): ``profiles``, ``query``, ``selections``, ``galleries``, ``downloads``,
``uploads``, ``costs``, ``charts``, ``catalog``, ``memorization``. Streamlit modules: ``state``, ``resources``,
``sidebar``, ``widgets``, ``image_geodesics``.
"""
