"""Page: the papers' figures, one click each, from the shipped cache (explorer.views.figures), each with what to
look at and a link to the page that explores it live."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from explorer.models import load_model
from explorer.views import figures
from explorer.views import local_geometry as lgv
from explorer.views.sizes import sizes_for
from webui import charts, heatmaps, jobs, profiles, sidebar
from webui import memorization as mem

sidebar.sidebar()
preset = profiles.profile_name()
st.title("Paper figures")
st.caption("The figures of the two papers this explorer implements, recomputed by it on its built-in models (from the "
           "shipped cache: nothing is computed on a first visit). Each links to the page that explores it live.")

FIGURES = {
    "g2": "Geodesics, Figure 2: paths as λ shrinks",
    "g3": "Geodesics, Figure 3: ε-graphs, connected and broken",
    "g4": "Geodesics, Figure 4: convergence with the number of points",
    "g5": "Geodesics, Figure 5: Euclidean vs geodesic affinity",
    "l1": "Local geometry: ψ, ν, δ over a latent plane",
    "l2": "Local geometry: on- vs off-manifold over t",
    "l3": "Local geometry: memorized vs novel samples",
}
choice = st.radio("Figure", list(FIGURES), format_func=FIGURES.get, horizontal=True, key="fig_choice",
                  label_visibility="collapsed")
ring = load_model("toy2d/ring")
JOBS = figures.figure_jobs(preset)


def result(name):
    """The backend's result of figure ``name`` (None while it runs: the page stops there)."""
    kind, spec, params = JOBS[name]
    res = jobs.result_of(kind, load_model(spec), params)
    if res is None:
        st.stop()
    return res


def live(page: str, label: str, **query) -> None:
    st.page_link(page, label=f"Explore it live: {label}", query_params=query or None, icon="➡️")


def log_p_trace(grid, opacity=0.6):
    return go.Heatmap(x=grid["u"], y=grid["v"], z=grid["log_p"], colorscale="Greys", reversescale=True,
                      showscale=False, opacity=opacity, hoverinfo="skip", **charts.log_p_color_range(grid["log_p"]))


def square(fig, height=460):
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"orientation": "h"})
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


if choice == "g2":
    res = result("g2")
    f = go.Figure(log_p_trace(res["grid"]))
    X, bg = res["X"], res["is_bg"]
    f.add_trace(go.Scatter(x=X[~bg, 0], y=X[~bg, 1], mode="markers", marker={"size": 2, "color": "#4a6fa5"},
                           name="training points", hoverinfo="skip"))
    for p, colour in zip(res["paths"], charts.categorical_colours(len(res["paths"])), strict=True):
        if p["points"] is not None:
            f.add_trace(go.Scatter(x=p["points"][:, 0], y=p["points"][:, 1], mode="lines", line={"width": 3,
                                   "color": colour}, name=f"λ = {p['lam']:g} (length {p['length']:.3g})"))
    st.plotly_chart(square(f), key="fig_g2", config={"displayModeBar": False})
    st.markdown("The same two training points of toy2d/ring joined by the generative geodesic at four values of λ "
                "(relative to p_ref), over the model's log p (lighter = denser). At λ = 5 the metric is nearly "
                "Euclidean and the path is almost straight; as λ shrinks, dense regions get cheaper and the path "
                "bends along the ring instead of crossing the empty centre.")
    live("app_pages/geodesics.py", "drag λ on Geodesics", model="toy2d/ring")

elif choice == "g3":
    res = result("g3")
    cols = st.columns(2)
    for col, g in zip(cols, res["graphs"], strict=True):
        X = res["X"]
        ex, ey = [], []
        for a, b in g["edges"]:
            ex += [X[a, 0], X[b, 0], None]
            ey += [X[a, 1], X[b, 1], None]
        f = go.Figure(go.Scatter(x=ex, y=ey, mode="lines", line={"width": 0.5, "color": "#bbbbbb"}, name="edges",
                                 hoverinfo="skip"))
        palette = charts.categorical_colours(max(1, g["n_components"]))
        f.add_trace(go.Scatter(x=X[:, 0], y=X[:, 1], mode="markers", name="points", hoverinfo="skip",
                               marker={"size": 4, "color": [palette[c % len(palette)] for c in g["labels"]]}))
        if g["path"] is not None:
            pts = X[g["path"]]
            f.add_trace(go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="lines", line={"width": 3, "color": "#d62728"},
                                   name="geodesic"))
        verdict = "connected" if g["n_components"] == 1 else f"broken into {g['n_components']} components"
        f.update_layout(title=f"ε = {g['eps']:.3g} ({g['factor']:g} ε*): {verdict}")
        with col:
            st.plotly_chart(square(f, 420), key=f"fig_g3_{g['factor']}", config={"displayModeBar": False})
    st.markdown(f"ε-graphs on 400 training points of toy2d/ring (colour: connected component). ε* = "
                f"{res['eps_star']:.3g} is the smallest ε that connects them (the longest edge of their minimum "
                "spanning tree). Above it a geodesic crosses the data (red); below it the graph falls apart and "
                "distances between components are infinite: the paper's ε = 0.56 vs 0.4. The explorer reports "
                "components and the ε or k that would connect them instead of letting an infinite distance through.")
    live("app_pages/geodesics.py", "try an ε-graph on Geodesics", model="toy2d/ring", graph="epsilon")

elif choice == "g4":
    res = result("g4")
    t = res["table"]
    f = go.Figure()
    for sampling, dash in (("uniform", "solid"), ("density", "dash")):
        for lam in sorted(set(t["lam"].tolist())):
            sel = (t["sampling"] == sampling) & (t["lam"] == lam)
            f.add_trace(go.Scatter(x=t["n"][sel], y=t["rel_error"][sel], mode="lines+markers",
                                   line={"dash": dash}, name=f"{sampling} points, λ = {lam:g}"))
    f.update_layout(height=420, xaxis_title="number of points N", yaxis_title="relative error of d(a, b)",
                    margin={"l": 10, "r": 10, "t": 30, "b": 10},
                    xaxis={"type": "log", "dtick": "D1"}, yaxis={"type": "log", "dtick": 1, "exponentformat": "power"})
    st.plotly_chart(f, key="fig_g4", config={"displayModeBar": False})
    st.markdown("The graph distance between two points of a ring density against an independent reference (the "
                "eikonal distance: |∇T| = c solved by fast marching on a fine grid), as the number of graph points "
                "grows, for points drawn uniformly over the box (solid) or from p itself (dashed). The error falls "
                "with N; at large λ the p-samples leave the empty centre empty, so their error stays high and barely "
                "falls: why the explorer adds uniform background points.")
    live("app_pages/geodesics.py", "change the number of points on Geodesics", model="toy2d/ring")

elif choice == "g5":
    res = result("g5")
    for r in res:
        c1, c2 = st.columns(2)
        for col, name in ((c1, "euclidean"), (c2, "geodesic")):
            X = r["X"]
            f = go.Figure(go.Scatter(x=X[:, 0], y=X[:, 1], mode="markers", hoverinfo="skip",
                                     marker={"size": 4, "color": r[name], "colorscale": "Viridis", "cmin": 0,
                                             "cmax": 1, "showscale": True, "colorbar": {"title": "affinity"}}))
            f.add_trace(go.Scatter(x=[X[r["src"], 0]], y=[X[r["src"], 1]], mode="markers", hoverinfo="skip",
                                   marker={"size": 12, "color": "red", "symbol": "x"}))
            f.update_layout(title=f"{r['model']}: {name} affinity", showlegend=False)
            with col:
                st.plotly_chart(square(f, 320), key=f"fig_g5_{r['model']}_{name}", config={"displayModeBar": False})
    st.markdown("Affinity exp(−d²/2σ²) of every point to the red × on the four toy data sets, with the straight-line "
                "distance (left) and the generative geodesic distance at λ = 0.05 (right). Geodesic affinity follows "
                "the data: points on the same arm or ring stay close even when far in a straight line, points across "
                "a gap do not. That is what makes spectral clustering on it recover the data's components.")
    live("app_pages/embedding.py", "cluster with both on Embedding", model="toy2d/moons")

elif choice == "l1":
    S = sizes_for(ring, preset)
    d = lgv.local_geometry_defaults(ring, preset)
    arrays, _ = result("l1")
    cols = st.columns(3)
    for col, (name, label) in zip(cols, (("psi", "ψ"), ("nu_eff", "ν_eff"), ("delta", "δ")), strict=True):
        lo, hi = heatmaps.value_range(arrays[name])
        with col:
            st.image(heatmaps.heatmap_image(arrays[name], max(1, 256 // d["n"])), width="stretch",
                     caption=f"{label}: {lo:.3g} (dark) … {hi:.3g} (bright)")
    st.markdown(f"ψ, ν_eff and δ of toy2d/ring's 50-step DDIM sampler over its whole latent plane z ∈ [−3, 3]² "
                f"({d['n']}×{d['n']} latents). The sampler folds the Gaussian latent onto the ring's 8 modes: ψ is "
                "lowest (strongest contraction) inside each mode's basin and highest on the boundaries between "
                "basins, where the sampler stretches space to separate the modes; δ (boundary neurons within radius "
                f"{d['radius']:.3g}) lights up on the same boundaries, where the linear regions are smallest.")
    live("app_pages/local_geometry.py", "click a cell on Local geometry", model="toy2d/ring")

elif choice == "l2":
    S = sizes_for(ring, preset)
    T = ring.num_train_timesteps
    (table, counts), sweep = result("l2")
    f = go.Figure()
    for name in [c for c in sweep.columns if c != "t"]:
        f.add_trace(go.Scatter(x=sweep["t"], y=sweep[name], mode="lines+markers", name=name))
    f.add_vline(x=0.17 * T, line_dash="dot", annotation_text="0.17·T")
    f.update_layout(height=380, xaxis_title="t (the map from_t starts at step t)", yaxis_title="AUROC, on vs off",
                    margin={"l": 10, "r": 10, "t": 30, "b": 10})
    st.plotly_chart(f, key="fig_l2", config={"displayModeBar": False})
    st.markdown(f"Inputs x_t on a {S['onoff_grid']}² grid around toy2d/ring's data, labelled on-manifold within "
                "0.05 × the data's scale of a training point, fed to the sampler from step t. The AUROC says how "
                f"well each descriptor tells on from off ({counts['on']} on, {counts['off']} off at t = "
                f"{int(0.17 * T)}); the paper finds the separation strongest near t ≈ 0.17·T.")
    live("app_pages/local_geometry.py", "run the on-/off-manifold analysis on Local geometry", model="toy2d/ring")

elif choice == "l3":
    dm = load_model("digits/memorized")
    S = sizes_for(dm, preset)
    rep, _ = result("l3")
    train = dm.training_data().reshape(len(dm.training_set), -1)
    for flag, title in ((True, "memorized"), (False, "novel")):
        rows = mem.gallery_order(rep.table, "ratio", not flag, "memorized" if flag else "novel")[:6]
        if not len(rows):
            st.info(f"No {title} samples among these.")
            continue
        _, nn = mem.neighbours(train, rep.samples[rows], 3)
        strips = [mem.image_strip(np.vstack([rep.samples[r][None], train[nn[k]]]), dm.image_shape)
                  for k, r in enumerate(rows)]
        st.markdown(f"**{title.capitalize()}** samples (left) beside their 3 nearest training images")
        st.image(strips, width=strips[0].shape[1],
                 caption=[f"ratio {rep.table['ratio'].iloc[r]:.2f}, ψ {rep.table['psi'].iloc[r]:.1f}" for r in rows])
    c = rep.counts
    st.markdown(f"digits/memorized was trained on 48 digits until it copies them: {c['memorized']} of {c['n']} samples "
                "are memorized (the nearest training image is less than a third as far as the nearest other one). "
                "Memorized samples are near-exact copies; the paper reports that their local geometry differs "
                "(see the AUROC table on the Memorization page).")
    live("app_pages/memorization.py", "sort by any descriptor on Memorization", model="digits/memorized")
