"""Widget state bound to the session and the URL (Streamlit): the state is the truth, widgets are views of it."""

from __future__ import annotations

import streamlit as st

from webui import query
from webui.selections import selected_customdata


def init_state() -> None:
    """On a session's first run: state from the URL query parameters (problems are shown once)."""
    if st.session_state.get("_qp_loaded"):
        return
    state, problems = query.decode_query(st.query_params.to_dict())
    for key, value in state.items():
        st.session_state[key] = value
    st.session_state["_qp_problems"] = problems
    st.session_state["_qp_loaded"] = True


def bind(key: str, default, valid=None) -> dict:
    """Widget keyword arguments that bind a widget to the state ``key`` (set to ``default`` when missing or not
    ``valid``): the state is the truth, copied into the widget before it is drawn, and a user's change is copied
    back by ``on_change`` before the rerun. Widget state alone does not survive a page switch; this does."""
    if key not in st.session_state or (valid is not None and not valid(st.session_state[key])):
        st.session_state[key] = default
    wkey = f"w_{key}"
    st.session_state[wkey] = st.session_state[key]
    return {"key": wkey, "on_change": _copy_back, "args": (key, wkey)}


def _copy_back(key: str, wkey: str) -> None:
    st.session_state[key] = st.session_state[wkey]


def store(key: str, value) -> None:
    """Record a widget's value as the state ``key`` (after the widget)."""
    st.session_state[key] = value


def set_state(key: str, value) -> None:
    """Change state ``key`` from code (a click); its widget takes the value on the next run."""
    st.session_state[key] = value


def new_selection(chart_key: str, event) -> list:
    """The customdata of a chart selection, only when it differs from the one already handled."""
    data = selected_customdata(event)
    seen = st.session_state.get(f"_seen_{chart_key}")
    if not data:
        st.session_state[f"_seen_{chart_key}"] = None
        return []
    if data == seen:
        return []
    st.session_state[f"_seen_{chart_key}"] = data
    return data


def sync_query(keys) -> None:
    """Write the model and this page's shareable state into the URL (replacing the previous page's)."""
    state = {k: st.session_state.get(k) for k in ("model", *keys)}
    wanted = query.encode_query(state)
    if wanted != st.query_params.to_dict():
        st.query_params.from_dict(wanted)
