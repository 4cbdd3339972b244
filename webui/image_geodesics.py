"""The Geodesics page for image models (Streamlit UI; the computations are ``explorer.views.image_geodesics``).

A k-NN graph over digit images with the model's likelihood cached at nodes and quadrature points; the geodesic
between two chosen digits as an image strip under a λ slider; on demand, the geodesic refined into a smooth
curve next to the straight line in pixel space and the slerp between the two latents, with log p along each.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from explorer.views import geodesics as geov
from explorer.views import image_geodesics as igv
from webui import commands, conditioning, galleries, jobs, profiles, query, resources, session, widgets


def render(spec: str, model) -> None:
    S = igv.image_graph_defaults(model, profiles.profile_name())
    shape = model.image_shape
    display = galleries.display_of(model)  # colour, or a latent model's latents decoded
    samples = S["points"] == "samples"
    st.title("Generative geodesics between images")
    cond = conditioning.density_condition(model, conditioning.condition_fields(model, guidance=False))
    if samples:
        st.caption("This pipeline has no training set: the graph's nodes are its own samples (the x_0 of seeds 1 … n, "
                   f"{S['steps']} DDIM steps{', ' + conditioning.describe(cond) if cond else ''})"
                   + (", in the VAE latent space the diffusion runs in (shown decoded)" if model.latent_space else "")
                   + "; log p is the model's own, at guidance scale 1.")
    lik = model.default_likelihood
    st.caption("Shortest paths of the metric c(x)·‖dx‖, c = (p0 + λ)/(p(x) + λ), on a k-NN graph of training images "
               f"(DESIGN.md §3). log p: the model's likelihood ({lik.get('method')}"
               + (f", {lik.get('n_steps')} RK4 steps, {lik.get('n_probes')} Hutchinson probes per point: a noisy "
                  "estimate, its standard deviation about 1 nat" if lik.get("method") == "ode" else "")
               + "), cached per node and quadrature point. λ and p0 are relative to p_ref, the median log p of the "
                 "training images.")
    with st.expander("Graph", expanded=False):
        c1, c2, c3 = st.columns(3)
        if samples:
            n = int(c1.number_input("Samples (nodes)", 4, 20000, int(S["n"]), step=20, key="geo_img_n"))
        else:
            n_train = len(model.training_data())
            n = int(c1.number_input("Training images (nodes)", min(4, n_train), n_train, min(S["n"], n_train),
                                    step=100, key="geo_img_n"))
        k = int(c2.number_input("k (neighbours)", 1, 50, S["k"], key="geo_img_k"))
        nq = int(c3.number_input("Quadrature points per edge", 1, 8, S["n_quad"], key="geo_img_nq"))

    density = resources.get_density(spec, "model", conditioning.key_of(cond))
    gparams = {"density": density, "n": n, "k": k, "n_quad": nq}
    if samples:
        gparams.update(points="samples", condition=cond, steps=S["steps"])
    graph = jobs.result_of("image_graph", model, gparams)
    if graph is None:
        st.stop()
    st.caption(f"Graph: {len(graph.est.nodes_)} images, {len(graph.est.edges_)} edges, "
               f"{graph.est.n_components_} component(s); log p cached on disk.")
    N = len(graph.X)
    labels = graph.labels
    ends = st.session_state.get("geo_ends")
    if not ends or len(ends) != 2 or max(ends) >= N:
        ends = igv.default_endpoints(labels)
        st.session_state["geo_ends"] = ends

    e1, e2, e3 = st.columns([2, 2, 3])
    i = int(e1.number_input("Start image A (node index)", 0, N - 1, int(ends[0]), key=f"geo_img_a_{ends[0]}"))
    j = int(e2.number_input("End image B (node index)", 0, N - 1, int(ends[1]), key=f"geo_img_b_{ends[1]}"))
    if [i, j] != list(ends):
        st.session_state["geo_ends"] = [i, j]
    with e3:
        if st.button("Random pair of different digits", key="geo_img_random"):
            rng = np.random.default_rng()
            a = int(rng.integers(N))
            others = np.flatnonzero(labels != labels[a]) if labels is not None else np.arange(N)
            st.session_state["geo_ends"] = [a, int(rng.choice(others))]
            st.rerun()
        st.image(galleries.strip(graph.X[[i, j]], shape, 6, display),
                 caption=f"A = {i}" + (f" (digit {labels[i]})" if labels is not None else "")
                         + f", B = {j}" + (f" (digit {labels[j]})" if labels is not None else ""))

    lam = st.select_slider("λ (relative to p_ref, log scale)", query.LAM_OPTIONS,
                           **session.bind("geo_lam", 1.0, lambda v: v in query.LAM_OPTIONS))
    session.store("geo_lam", lam)
    p0 = float(st.session_state.get("geo_p0", 1.0))
    view = geov.geodesic_view(graph, lam, p0, i, j)
    if not view["ok"]:
        st.error(f"No geodesic: {view['message']}")
        st.stop()
    m1, m2, m3 = st.columns(3)
    m1.metric("Geodesic length", f"{view['length']:.4g}")
    m2.metric("Straight line (metric)", f"{view['straight_length']:.4g}")
    m3.metric("Ratio", f"{view['ratio']:.3f}")
    path_labels = "" if labels is None else " → ".join(str(labels[p]) for p in view["path"])
    st.image(galleries.strip(view["path_points"], shape, display=display),
             caption=f"The graph geodesic at λ = {lam:g}: {len(view['path'])} "
                     f"{'samples' if samples else 'training images'}"
                     + (f" (digits {path_labels})" if path_labels else ""))

    st.subheader("Refined geodesic vs pixel line vs latent slerp")
    st.caption("The straight line in pixel space; G(slerp(G⁻¹(A), G⁻¹(B))), the interpolation a latent-space user "
               "sees; and the geodesic: the shortest of these two and the graph path, refined by L-BFGS on its "
               "metric length (gradient of log p: the model's score at noise σ ≈ 0.1), shown at equally spaced "
               "points. All three lengths are one measure (Gauss–Legendre quadrature with every segment cut to "
               "1/32 of the endpoints' distance, from A to B), so the geodesic is never longer than the other two; "
               "log p is the model's (an ODE estimate for digits).")
    key = ("geo_img_cmp", spec, n, k, nq, i, j, float(lam), p0)
    if st.button("Compare the three paths", key="geo_img_compare") or st.session_state.get("_geo_img_cmp") == key:
        st.session_state["_geo_img_cmp"] = key
        res = jobs.result_of("three_paths", model, {"density": graph.density, "state": graph, "i": i, "j": j,
                                                    "lam": float(lam), "p0": float(p0), "n_points": S["n_points"],
                                                    "max_iter": S["refine_iter"], "n_quad": nq,
                                                    "path_len": len(view["path"])})
        if res is None:
            st.stop()
        geo = res["geodesic"]
        measured = ", ".join(f"{name} {length:.4g}" for name, length in geo.get("candidates", {}).items())
        st.caption(f"Geodesic length {geo['metric_length']:.4g}, graph path {geo['length_graph']:.4g}: refined from "
                   f"the {geo.get('start', 'graph')} path (the candidates measured: {measured}).")
        names = {"geodesic": "refined geodesic", "straight": "straight line in pixel space",
                 "slerp": "slerp of the latents"}
        for name, title in names.items():
            r = res[name]
            st.image(galleries.strip(r["points"], shape, display=display),
                     caption=f"{title}: metric length {r['metric_length']:.4g}, mean log p {np.mean(r['log_p']):.1f}")
        f = go.Figure()
        for name, title in names.items():
            r = res[name]
            s = r["arclength"] / max(r["arclength"][-1], 1e-12)
            f.add_trace(go.Scatter(x=s, y=r["log_p"], mode="lines+markers", name=title))
        f.update_layout(title="log p along each path (fraction of its Euclidean length)", height=320,
                        xaxis_title="position along the path", yaxis_title="log p",
                        margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"orientation": "h", "y": -0.3})
        st.plotly_chart(f, key="geo_img_profile", config={"displayModeBar": False})
        table = {f"{name}_log_p": res[name]["log_p"] for name in names}
        widgets.download_csv("Download log p along the paths (CSV)", table, res["meta"]["params"],
                            "three_paths.csv", "dl_geo_img_paths")
        widgets.download_npz("Download the three paths (NPZ)",
                            {f"{name}_points": res[name]["points"] for name in names}, res["meta"]["params"],
                            "three_paths.npz", "dl_geo_img_npz")
    widgets.cli_hint(commands.image_geodesics(spec, n, k, nq, lam, p0, i, j, S["n_points"]))
    session.sync_query(["geo_lam", "geo_ends"])
