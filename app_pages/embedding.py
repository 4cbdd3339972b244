"""Page: UMAP embeddings and spectral clusterings of geodesic distances against two baselines.

For image models the true labels are the digit classes and the selected points are shown as images.
"""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from explorer.density.cached import has_likelihood
from explorer.views import embedding as embv
from webui import (
    charts,
    commands,
    conditioning,
    galleries,
    jobs,
    profiles,
    resources,
    selections,
    session,
    sidebar,
    widgets,
)

spec = sidebar.sidebar()
model = resources.get_model(spec)
P = profiles.sizes_for(model)
DEF = embv.embedding_defaults(model, profiles.profile_name())
IMAGE = model.image_shape  # (h, w) for image models, else None
LIKELIHOOD = model.default_likelihood.get("method", "discrete")
SAMPLES = DEF["points"] == "samples"  # a pipeline without a training set: over its own samples
DISPLAY = galleries.display_of(model)

st.title("Embedding & clusters")
st.caption("UMAP of the geodesic distances d_λ next to UMAP of the straight-line distance and of the c ≡ 1 graph "
           "distance, coloured by spectral clusters (affinity exp(−d²/2σ²)) or by the data set's true labels. "
           "The λ slider moves over a precomputed grid whose embeddings are Procrustes-aligned one onto the next.")

COND = conditioning.density_condition(model, conditioning.condition_fields(model, guidance=False))
if SAMPLES:
    st.caption("This pipeline has no training set: the points are its own samples (the x_0 of seeds 1 … n, "
               f"{DEF['steps']} DDIM steps{', ' + conditioning.describe(COND) if COND else ''})"
               + (", in the VAE latent space (shown decoded)" if model.latent_space else "")
               + ", with the model's density at guidance scale 1; the labels are all one class.")
with st.expander("Settings", expanded=False):
    c1, c2, c3 = st.columns(3)
    n = int(c1.number_input("Samples" if SAMPLES else "Training points", 10, 5000, DEF["n"], step=100, key="emb_n",
                            help="a seeded subset of the training data" + (
                                "; every node and quadrature point costs one ODE likelihood with the model density"
                                if IMAGE else "")))
    k = int(c1.number_input("k (neighbours)", 2, 100, DEF["k"], key="emb_k"))
    nq = int(c2.number_input("Quadrature points per edge", 1, 16, DEF["n_quad"], key="emb_nq"))
    n_neighbors = int(c2.number_input("UMAP n_neighbors", 2, 200, DEF["n_neighbors"], key="emb_nn"))
    sources = ["model"] if SAMPLES else ["kde", "model"] if has_likelihood(model) else ["kde"]
    source = c3.selectbox("Density p", sources, key="emb_density",
                          format_func={"kde": "Gaussian KDE of the training data (fast)",
                                       "model": "model likelihood (probability-flow ODE; slow)" if LIKELIHOOD == "ode"
                                       else "model likelihood (exact DDIM; slow)"}.get)
    text = c3.text_input("λ grid (relative)", ", ".join(f"{v:g}" for v in DEF["lams"]), key="emb_lams")
try:
    lams = sorted(set(selections.parse_floats(text)))[:12] or list(DEF["lams"])
except ValueError as err:
    st.error(f"λ grid: {err}")
    lams = list(DEF["lams"])

if not SAMPLES and embv.embedding_n(model, n) < n:
    n = embv.embedding_n(model, n)
    st.caption(f"The training set has {n} points: the embedding uses all of them.")
density = resources.get_density(spec, source, conditioning.key_of(COND) if source == "model" else "")
eparams = {"density": density, "n": int(n), "lams": [float(x) for x in lams], "k": int(k), "n_quad": int(nq),
           "n_neighbors": int(n_neighbors)}
if SAMPLES:
    eparams.update(points="samples", condition=COND, steps=DEF["steps"])
got = jobs.result_of("embedding", model, eparams)
if got is None:
    st.stop()
arrays, record = got
if int(arrays["n_components"]) > 1:
    st.warning(f"The graph has {int(arrays['n_components'])} components: infinite distances were replaced by twice "
               "the largest finite one for UMAP. Raise k to connect it.")

grid_lams = [float(x) for x in arrays["lams"]]
s1, s2 = st.columns([3, 2])
with s1:
    lam = st.select_slider("λ (relative, precomputed grid)", grid_lams,
                           **session.bind("emb_lam", grid_lams[len(grid_lams) // 2], lambda v: v in grid_lams))
    session.store("emb_lam", lam)
with s2:
    colors = ["clusters", "labels"]
    color_names = {"clusters": "spectral clusters (each view's)", "labels": "digit classes" if IMAGE else "true labels"}
    color_by = st.radio("Colour by", colors, horizontal=True, format_func=color_names.get,
                        **session.bind("emb_color", "clusters", lambda v: v in colors))
    session.store("emb_color", color_by)
li = grid_lams.index(lam)
sel = [i for i in st.session_state.get("emb_sel", []) if i < n]
views = [("geodesic", f"Geodesic distance, λ = {lam:g}", arrays["Y_geodesic"][li], arrays["clusters_geodesic"][li]),
         ("euclidean", "Straight-line distance", arrays["Y_euclidean"], arrays["clusters_euclidean"]),
         ("graph", "Graph distance, c ≡ 1", arrays["Y_graph"], arrays["clusters_graph"])]
st.caption("Click a point to select it (shift-click adds more); for many at once, pick the box or lasso tool in a "
           "chart's toolbar and drag. The selection is highlighted in all three views. Colour: "
           + ("each view's spectral clusters (cluster numbers are per view)." if color_by == "clusters" else
              "the data set's true labels."))
cols = st.columns(3)
new_sel = None
for col, (name, title, Y, cl) in zip(cols, views, strict=True):
    c = arrays["labels"] if color_by == "labels" else cl
    opacity = np.where(np.isin(np.arange(n), sel), 1.0, 0.25) if sel else np.ones(n)
    size = np.where(np.isin(np.arange(n), sel), 9, 5) if sel else np.full(n, 5)
    with col:
        f = go.Figure()
        groups = np.unique(c)
        palette = charts.categorical_colours(len(groups))
        what = "label" if color_by == "labels" else "cluster"
        for g, colour in zip(groups, palette, strict=True):
            idx = np.flatnonzero(c == g)
            f.add_trace(charts.scatter_trace(n)(
                x=Y[idx, 0], y=Y[idx, 1], mode="markers", customdata=idx, name=f"{what} {g}",
                text=[f"label {arrays['labels'][i]}" for i in idx],
                marker={"color": colour, "size": size[idx], "opacity": opacity[idx]},
                hovertemplate="point %{customdata} (%{text})<extra></extra>"))
        f.update_layout(title=title, height=430, margin={"l": 10, "r": 10, "t": 40, "b": 10}, dragmode="zoom",
                        clickmode="event+select", legend={"orientation": "h", "y": -0.1, "font": {"size": 10}})
        ev = st.plotly_chart(f, key=f"emb_{name}", on_select="rerun", selection_mode=("points", "box", "lasso"),
                             config={"displayModeBar": True, "displaylogo": False,
                                     "modeBarButtonsToRemove": ["toImage", "autoScale2d"]})
        picked = session.new_selection(f"emb_{name}", ev)
        if picked:
            new_sel = selections.indices_from_selection({"selection": {"points": [{"customdata": p} for p in picked]}},
                                                       n)
if new_sel is not None:
    st.session_state["emb_sel"] = new_sel
    st.rerun()
if IMAGE:
    shown = sel[:48] if sel else list(range(min(n, 24)))
    st.caption((f"{len(sel)} points selected (highlighted in every view); the first {len(shown)} as images"
                if sel else f"The first {len(shown)} of the {n} points as images (select points in a view to see "
                            "theirs)") + f"; their labels: {', '.join(str(arrays['labels'][i]) for i in shown)}.")
    widgets.image_gallery(arrays["X"][shown], IMAGE, np.asarray(shown), "emb_images", selectable=False, ncols=16,
                         display=DISPLAY,
                         pixel=5, hover=[f"point {i}: label {arrays['labels'][i]}" for i in shown],
                         name="selected images" if sel else "images")
elif sel:
    st.caption(f"{len(sel)} points selected; they are highlighted in every view. "
               f"Data-space coordinates of the first: {np.round(arrays['X'][sel[0]], 3).tolist()}")
if sel and st.button("Clear the selection", key="emb_clear"):
    st.session_state["emb_sel"] = []
    st.rerun()

st.subheader("Clustering against the true labels")
table = embv.scores_table(arrays)
st.dataframe(table.style.format({"ARI": "{:.3f}", "NMI": "{:.3f}"}), hide_index=True)
params = {"model": spec, "weights_hash": record["weights_hash"], **record["params"]}
d1, d2 = st.columns(2)
with d1:
    widgets.download_csv("Download scores (CSV)", table, params, "cluster_scores.csv", "dl_emb_scores")
with d2:
    widgets.download_npz("Download embeddings (NPZ)", {k: arrays[k] for k in arrays}, params, "embeddings.npz",
                        "dl_emb_npz")
widgets.cli_hint(commands.embedding(spec, source, n, lams, k, nq, n_neighbors))
session.sync_query(["emb_lam", "emb_color", "emb_sel"])
