"""The Local geometry page's four descriptor maps (Streamlit): crisp clickable images, a colour bar under each, and
a one-line "what you see" caption. A click reports its cell through ``webui.heatmaps.cell_from_click``."""

from __future__ import annotations

import numpy as np
import streamlit as st
from streamlit_image_coordinates import streamlit_image_coordinates

from webui import heatmaps

#: What each map's colour means, in plain words.
MEANINGS = {
    "psi": "ψ = Σ log σᵢ, the log-volume change of G at the cell's latent (nats; brighter: G stretches more)",
    "nu": "ν = #{σᵢ > 10⁻³ σ₁}, how many directions G keeps (brighter: higher rank)",
    "nu_eff": "ν_eff = exp(entropy of σ/Σσ), the effective rank (brighter: the spectrum is flatter)",
    "delta": "δ = neurons whose sign changes within radius r of the latent (brighter: more kinks nearby)",
}
#: Image width of one map in pixels (cells are scaled up to about this).
TARGET_PX = 256


def colour_bar(lo: float, hi: float, colorscale: str = "Viridis", width: int = TARGET_PX) -> np.ndarray:
    """A (10, width, 3) gradient strip from ``lo`` (left) to ``hi`` (right)."""
    strip = np.linspace(lo, hi, width)[None, :].repeat(10, 0)
    return heatmaps.colorize(strip, colorscale, lo, hi)


def draw_maps(arrays: dict, names: dict, n: int, cell, key: str,
              flat_names: dict | None = None) -> tuple[int, int] | None:
    """Draw the four maps side by side; returns the cell (i, j) just clicked, or None. ``cell``: the selected cell
    (framed in red); anchors are white crosses. ``flat_names``: what to say of a map when it is one colour."""
    u, v = np.asarray(arrays["u"]), np.asarray(arrays["v"])
    anchors = heatmaps.nearest_cell(u, v, arrays["anchor_coords"]) if len(arrays["anchor_coords"]) else []
    selected = tuple(cell) if cell and len(cell) == 2 and max(cell) < n else None
    marks = heatmaps.marks_for(anchors, selected)
    flat_names = flat_names or {}
    scale = max(1, TARGET_PX // n)
    clicked = None
    for col, name in zip(st.columns(4), ("psi", "nu", "nu_eff", "delta"), strict=True):
        values = np.asarray(arrays[name], dtype=np.float64)
        lo, hi = heatmaps.value_range(values)
        with col:
            st.markdown(f"**{names[name]}**")
            img = heatmaps.heatmap_image(values, scale, marks=marks)
            ck = f"{key}_{name}"
            value = streamlit_image_coordinates(img, key=ck, use_column_width="always", cursor="crosshair")
            seen = st.session_state.get(f"_seen_{ck}")
            if value and value.get("unix_time") != seen:
                st.session_state[f"_seen_{ck}"] = value.get("unix_time")
                clicked = heatmaps.cell_from_click(value, len(v), len(u)) or clicked
            st.image(colour_bar(lo, hi), width="stretch")
            finite = values[np.isfinite(values)]
            if finite.size and finite.min() == finite.max():
                st.caption(flat_names.get(name) or f"One value everywhere: {finite.min():.4g}.")
            else:
                st.caption(f"{lo:.4g} (dark) … {hi:.4g} (bright). {MEANINGS[name]}.")
    st.caption(f"Each map covers the plane u, v ∈ [{u[0]:.3g}, {u[-1]:.3g}] (v up); white × = the anchor seeds, "
               "red frame = the selected cell. Click a cell for its latent, its sample and its spectrum.")
    return clicked
