"""Page: generative geodesics (Kim et al. 2024) on a neighbourhood graph, with a λ slider that only re-weights."""

import hashlib

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from explorer.density.cached import has_likelihood, make_density
from explorer.views import geodesics as geov
from webui import charts, commands, jobs, profiles, query, resources, selections, session, sidebar, uploads, widgets

P = profiles.profile()
spec = sidebar.sidebar()
model = resources.get_model(spec)
if getattr(model, "image_shape", None) is not None:  # image models: strips of images instead of 2-D plots
    from webui import image_geodesics

    image_geodesics.render(spec, model)
    st.stop()

DEFAULT_LAM = geov.DEFAULT_LAM

st.title("Generative geodesics")
st.caption("Shortest paths of the metric c(x)·‖dx‖ with c = (p0 + λ)/(p(x) + λ) on a k-NN or ε-graph (DESIGN.md §3). "
           "Small λ: paths hug the data; large λ: straight lines. λ and p0 are relative to p_ref, the median "
           "density of the training data.")

# ---------------------------------------------------------------------------- settings
uploaded = st.session_state.get("geo_upload") is not None  # the uploader's file of this run (drawn below)
with st.expander("Points, graph and density", expanded=False):
    c1, c2, c3, c4 = st.columns(4)
    kinds = ["data", "samples", "uniform"]
    with c1:
        kind = st.selectbox("Points", kinds, **session.bind("geo_points", "data", lambda v: v in kinds),
                            help="training data (a seeded subset), model samples, or uniform points over the view")
        session.store("geo_points", kind)
        n_pts = st.number_input("Number of points", 20, 20000, P["graph_n"], step=100, key="geo_n",
                                help="a seeded subset of the points (of your CSV's when one is uploaded: at most "
                                     "all of them)")
        n_bg = st.number_input("Background points (uniform)", 0, 20000, P["n_background"], step=50, key="geo_nbg",
                               help="let geodesics cross empty regions (DESIGN.md §3)")
    with c2:
        graphs = ["knn", "epsilon"]
        graph = st.selectbox("Graph", graphs, **session.bind("geo_graph", "knn", lambda v: v in graphs))
        session.store("geo_graph", graph)
        if graph == "knn":
            k = st.number_input("k (neighbours)", 1, 100, **session.bind("geo_k", P["k"]))
            session.store("geo_k", int(k))
            eps = None
        else:
            eps = st.number_input("ε (edge length)", 0.001, 10.0, step=0.05, format="%.3f",
                                  **session.bind("geo_eps", 0.3))
            session.store("geo_eps", float(eps))
            k = P["k"]
    with c3:
        nq = st.number_input("Quadrature points per edge", 1, 16, **session.bind("geo_nq", 3),
                             help="Gauss–Legendre nodes; small λ makes c rougher and needs more")
        session.store("geo_nq", int(nq))
        sources = ["model", "kde"] if has_likelihood(model) and not uploaded else ["kde"]
        source = st.selectbox("Density p", sources, key="geo_density" if not uploaded else "geo_density_upload",
                              disabled=uploaded,
                              format_func={"kde": "Gaussian KDE of your uploaded points" if uploaded else
                                           "Gaussian KDE of the training data (model-free baseline)",
                                           "model": "model likelihood (exact density of the DDIM sampler)"}.get)
    with c4:
        upload = st.file_uploader("Bring your own data: a CSV of 2-D points", type=["csv", "txt"], key="geo_upload",
                                  help=f"two numeric columns, at most {uploads.MAX_UPLOAD_ROWS} rows; the "
                                       "density is then a KDE of your points. `python -m explorer train toy2d "
                                       "--csv FILE` trains a diffusion model on it for the other pages.")

user_data, user_sha = None, None
if upload is not None:
    try:
        raw = upload.getvalue()
        user_data = uploads.parse_points_csv(raw)
        user_sha = hashlib.sha256(raw).hexdigest()[:16]
        st.success(f"Using your {len(user_data)} points with a KDE density (model: none).")
    except ValueError as err:
        st.error(f"Could not use the uploaded file: {query.plain(str(err))}. Remove it (×) to go back to the "
                 "model's data.")
        st.stop()
if user_data is not None:
    source = "kde"
    if kind == "samples":
        kind = "data"
    n_pts = min(int(n_pts), len(user_data))
data_id = user_sha or f"{spec}/{kind}/{source}"
if st.session_state.get("_geo_data_id") not in (None, data_id):  # other points: old indices name other points
    for key in ("geo_ends", "geo_source"):
        st.session_state.pop(key, None)
st.session_state["_geo_data_id"] = data_id


@st.cache_resource(show_spinner=False, max_entries=8)
def upload_density(spec_, user_sha_, _data):
    """The KDE of an uploaded CSV, one object per upload (the job's density)."""
    return make_density(resources.get_model(spec_), "kde", data=_data, name=f"upload-{user_sha_}")


density = upload_density(spec, user_sha, user_data) if user_data is not None else resources.get_density(spec, source)
graph_params = {"points": kind, "n": int(n_pts), "n_background": int(n_bg), "graph": graph, "k": int(k), "eps": eps,
                "n_quad": int(nq), "seed": 0, "density": density, "view_grid": int(P["view_grid"]),
                "upload": user_sha, "model_name": spec if user_data is None else f"upload-{user_sha}"}
if user_data is not None:
    graph_params["data"] = user_data
got = jobs.result_of("geodesic_graph", model, graph_params)
if got is None:
    st.stop()
state, grid = got
st.caption(f"Graph: {len(state.est.nodes_)} nodes, {len(state.est.edges_)} edges, {state.est.n_components_} "
           f"component(s); log p at {state.est.n_density_evals_:,} points, cached on disk.")

conn = geov.connectivity(state)
if conn["n_components"] > 1:
    sizes = ", ".join(map(str, conn["sizes"][:5]))
    st.warning(f"The graph has {conn['n_components']} connected components (largest sizes {sizes}). Distances "
               f"between them are infinite. Fix: {conn.get('fix')}")


N = len(state.X)
ends = st.session_state.get("geo_ends")
if not ends or len(ends) != 2 or max(ends) >= N:
    ends = geov.default_endpoints(state.X, state.is_bg)
    st.session_state["geo_ends"] = ends


def points_trace(color=None, name="points", colorscale=None, cbar=None):
    kw = {"color": color if color is not None else np.where(state.is_bg, "#c8c8c8", "#4a6fa5"), "size": 4}
    if colorscale:
        kw.update(colorscale=colorscale, showscale=True, colorbar={"title": cbar, "len": 0.6})
    return charts.scatter_trace(len(state.X))(x=state.X[:, 0], y=state.X[:, 1], mode="markers", marker=kw, name=name,
                        customdata=np.arange(N), hovertemplate="point %{customdata}<extra></extra>")


def base_layout(fig, title, height=480):
    fig.update_layout(title=title, height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "y": -0.08}, uirevision="geo")
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def refined_panel(i: int, j: int, lam: float, p0: float):
    """A button that refines the geodesic under the continuous metric (a backend job, disk-cached), and its length
    beside the graph's; returns the job's result once shown (None before)."""
    key = (spec, state.params.get("model"), i, j, float(lam), float(p0), id(state))
    if not (st.button("Refine the path", key="geo_refine",
                      help="the shortest of the graph path and the straight line, moved by L-BFGS under the "
                           "continuous metric: the k-NN graph's zig-zag makes the graph length too long, most at "
                           "small λ") or st.session_state.get("_geo_refine") == key):
        return None
    st.session_state["_geo_refine"] = key
    res = jobs.result_of("refined_geodesic", model, {"density": state.density, "state": state, "i": int(i),
                                                     "j": int(j), "lam": float(lam), "p0": float(p0)})
    if res is None:
        return None
    if not res["ok"]:
        st.info(f"No refinement: {res['message']}")
        return res
    r1, r2 = st.columns(2)
    r1.metric("Refined length", f"{res['length']:.4g}")
    r2.metric("Graph path, same measure", f"{res['length_graph']:.4g}")
    st.caption(f"Green: the refined geodesic, from the {res['start']} path ({len(res['points'])} points). Both lengths "
               f"are Gauss–Legendre quadrature of ∫ c ds with segments cut to {res['max_step']:.3g}; the refined one "
               "is never longer than the graph path or the straight line. On toy2d/ring at λ = 5 it is within 0.1 % of "
               "the eikonal (continuum) distance where the graph's is 7 % too long (bench/RESULTS.md).")
    return res


# ---------------------------------------------------------------------------- the λ panel (a fragment)
@st.fragment
def lambda_panel():
    c1, c2, c3 = st.columns([3, 2, 2])
    with c1:
        lam = st.select_slider("λ (relative to p_ref, log scale)", query.LAM_OPTIONS,
                               **session.bind("geo_lam", DEFAULT_LAM, lambda v: v in query.LAM_OPTIONS),
                               help="small λ: the path hugs dense regions (c ≈ p0/p); large λ: c → 1, straight lines")
        session.store("geo_lam", lam)
    with c2:
        p0 = st.select_slider("p0 (relative to p_ref)", query.LAM_OPTIONS,
                              **session.bind("geo_p0", 1.0, lambda v: v in query.LAM_OPTIONS))
        session.store("geo_p0", p0)
    with c3:
        click_mode = st.radio("A click on a point sets", ["endpoints", "affinity source"], horizontal=True,
                              key="geo_click")
    i, j = st.session_state["geo_ends"]
    view = geov.geodesic_view(state, lam, p0, i, j)

    left, right = st.columns([3, 2])
    refined = None
    with right:
        if not view["ok"]:
            st.error(f"No geodesic: {view['message']}")
        else:
            m1, m2, m3 = st.columns(3)
            m1.metric("Geodesic length (graph)", f"{view['length']:.4g}")
            m2.metric("Straight line (metric)", f"{view['straight_length']:.4g}")
            m3.metric("Ratio", f"{view['ratio']:.3f}")
            st.caption(f"Euclidean ‖A − B‖ = {view['euclidean']:.4g}; graph distance with c ≡ 1 = "
                       f"{view['graph_c1']:.4g}; λ sits at the {view['lam_quantile']:.0%} quantile of the cached "
                       f"log p. Path: {len(view['path'])} nodes. Points A = {i}, B = {j}.")
            refined = refined_panel(i, j, lam, p0)
    with left:
        fig = go.Figure()
        fig.add_trace(go.Heatmap(x=grid["u"], y=grid["v"], z=grid["log_p"], colorscale="Greys", showscale=True,
                                 **charts.log_p_color_range(grid["log_p"]), reversescale=True,
                                 colorbar={"title": "log p", "len": 0.6, "x": 1.02},
                                 hoverinfo="skip", opacity=0.6, name="log p"))
        fig.add_trace(points_trace())
        line = view["straight_points"]
        fig.add_trace(go.Scatter(x=line[:, 0].tolist(), y=line[:, 1].tolist(), mode="lines", name="straight line",
                                 line={"color": "#888", "dash": "dash", "width": 2}))
        if view["ok"]:
            pp = view["path_points"]
            fig.add_trace(go.Scatter(x=pp[:, 0].tolist(), y=pp[:, 1].tolist(), mode="lines+markers",
                                     name=f"geodesic λ={lam:g}", line={"color": "#d62728", "width": 3},
                                     marker={"size": 5}))
        if refined is not None and refined["ok"]:
            rp = refined["points"]
            fig.add_trace(go.Scatter(x=rp[:, 0].tolist(), y=rp[:, 1].tolist(), mode="lines", name="refined geodesic",
                                     line={"color": "#2ca02c", "width": 3}))
        ends_xy = state.X[[i, j]]
        fig.add_trace(go.Scatter(x=ends_xy[:, 0].tolist(), y=ends_xy[:, 1].tolist(), mode="markers+text",
                                 text=["A", "B"], textposition="top center", name="endpoints",
                                 marker={"size": 12, "color": "#d62728", "symbol": "star"}))
        base_layout(fig, "Geodesic vs straight line over log p (click points to change the endpoints)")
        event = st.plotly_chart(fig, key="geo_plot", on_select="rerun", selection_mode="points",
                                config={"displayModeBar": False})
        st.caption("Grey shading: log p of the density (lighter = denser, over its top 25 nats); blue dots: the "
                   "graph's points (light grey: uniform background points); red: the geodesic at this λ; dashed: the "
                   "straight line. Click two points to set the endpoints A and B.")
    picked = session.new_selection("geo_plot", event)
    if picked:
        idx = selections.indices_from_selection({"selection": {"points": [{"customdata": c} for c in picked]}}, N)
        if idx:
            if click_mode == "endpoints":
                st.session_state["geo_ends"] = selections.update_endpoints(st.session_state["geo_ends"], idx[-1])
            else:
                st.session_state["geo_source"] = idx[-1]
            st.rerun(scope="fragment")
    with right:
        if view["ok"]:
            prof = go.Figure()
            for name, pr, color in (("geodesic", view["geodesic_profile"], "#d62728"),
                                    ("straight line", view["straight_profile"], "#888")):
                prof.add_trace(go.Scatter(x=pr["arclength"], y=pr["log_p"], name=f"log p, {name}",
                                          line={"color": color}))
                prof.add_trace(go.Scatter(x=pr["arclength"], y=pr["c"], name=f"c, {name}", yaxis="y2",
                                          line={"color": color, "dash": "dot"}))
            prof.update_layout(height=330, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                               title="Density and metric factor along each path", xaxis_title="arc length",
                               yaxis_title="log p", yaxis2={"title": "c", "overlaying": "y", "side": "right",
                                                            "type": "log", "dtick": 1, "exponentformat": "power"},
                               legend={"orientation": "h", "y": -0.25})
            st.plotly_chart(prof, key="geo_profile", config={"displayModeBar": False})
            st.caption("Solid: log p along each path (left axis); dotted: the metric factor c = (p0 + λ)/(p + λ) "
                       "(right axis, log scale: c < 1 where the density is above p0, so dense stretches are cheap).")
            table = pd.DataFrame({"path_index": view["path"], "x": view["path_points"][:, 0],
                                  "y": view["path_points"][:, 1], "log_p": view["geodesic_profile"]["log_p"],
                                  "c": view["geodesic_profile"]["c"]})
            params = {**state.params, "lam": lam, "p0": p0, "relative": True, "log_p_ref": state.density.log_p_ref,
                      "endpoints": [i, j], "length": view["length"], "straight_length": view["straight_length"]}
            widgets.download_csv("Download path (CSV)", table, params, "geodesic_path.csv", "dl_geo_path")

    # affinity from a point (the paper's Figure 5)
    src = st.session_state.get("geo_source")
    src = i if src is None or src >= N else src
    aff = geov.affinity_view(state, lam, p0, src)
    if aff["message"]:
        st.info(aff["message"])
    a1, a2 = st.columns(2)
    for col, name in ((a1, "geodesic"), (a2, "euclidean")):
        with col:
            f = go.Figure(points_trace(aff[name], name, "Viridis", "affinity"))
            f.add_trace(go.Scatter(x=[state.X[src, 0]], y=[state.X[src, 1]], mode="markers", name="source",
                                   marker={"size": 12, "color": "red", "symbol": "x"}))
            base_layout(f, f"{name.capitalize()} affinity exp(−d²/2σ²) from point {src}", 380)
            st.plotly_chart(f, key=f"geo_aff_{name}", config={"displayModeBar": False})
            st.caption(("Geodesic" if name == "geodesic" else "Euclidean") + " affinity exp(−d²/2σ²) of every point "
                       "to the red × (bright = close; σ = the median distance). Paper 2, Figure 5.")
    widgets.download_csv("Download affinities (CSV)",
                        {"x": state.X[:, 0], "y": state.X[:, 1], "background": state.is_bg,
                         "d_geodesic": aff["d_geodesic"], "affinity_geodesic": aff["geodesic"],
                         "d_euclidean": aff["d_euclidean"], "affinity_euclidean": aff["euclidean"]},
                        {**state.params, "lam": lam, "p0": p0, "source": src}, "affinity.csv", "dl_geo_aff")
    if kind == "data" and user_data is None:
        widgets.cli_hint(commands.geodesics(spec, source, int(n_pts), int(n_bg), int(k), int(nq), lam, p0, i, j))
    session.sync_query(["geo_points", "geo_graph", "geo_k", "geo_eps", "geo_nq", "geo_lam", "geo_p0", "geo_ends",
                       "geo_overlay", "geo_source"])


lambda_panel()

# ---------------------------------------------------------------------------- several λ on one plot
st.subheader("Several λ on one plot")
default_overlay = ",".join(f"{v:g}" for v in st.session_state.get("geo_overlay", list(geov.DEFAULT_OVERLAY)))
text = st.text_input("λ values (relative, comma-separated)", default_overlay, key="geo_overlay_text")
try:
    lams = selections.parse_floats(text)[:8]
    st.session_state["geo_overlay"] = lams
except ValueError as err:
    st.error(str(err))
    lams = []
if lams:
    i, j = st.session_state["geo_ends"]
    paths = geov.overlay_paths(state, lams, st.session_state.get("geo_p0", 1.0), i, j)
    fig = go.Figure(go.Heatmap(x=grid["u"], y=grid["v"], z=grid["log_p"], colorscale="Greys", reversescale=True,
                               **charts.log_p_color_range(grid["log_p"]), showscale=False, opacity=0.5,
                               hoverinfo="skip"))
    for p in paths:
        if p["points"] is not None:
            fig.add_trace(go.Scatter(x=p["points"][:, 0], y=p["points"][:, 1], mode="lines",
                                     name=f"λ = {p['lam']:g} (L = {p['length']:.3g})", line={"width": 3}))
    base_layout(fig, "Geodesics from A to B at several λ", 440)
    st.plotly_chart(fig, key="geo_overlay_plot", config={"displayModeBar": False})
    st.caption("The geodesic from A to B at each λ over log p (paper 2, Figure 2): at large λ it is nearly straight, "
               "at small λ it bends to stay in dense regions; L is each path's metric length.")
    if any(p["points"] is None for p in paths):
        st.warning("A and B are not connected in the graph; " + str(conn.get("fix", "")))

with st.expander("Graph connectivity and downloads"):
    st.json(conn)
    widgets.download_npz("Download graph (NPZ: points, edges, log p at nodes and quadrature points)",
                        {"X": state.X, "is_background": state.is_bg, "edges": state.est.edges_,
                         "log_p_nodes": state.est.log_p_nodes_, "log_p_quad": state.est.log_p_quad_,
                         "view_u": grid["u"], "view_v": grid["v"], "view_log_p": grid["log_p"]},
                        {**state.params, "log_p_ref": state.density.log_p_ref}, "geodesic_graph.npz", "dl_geo_graph")
