"""Page: local geometry of the generator (Humayun et al., ICLR 2025): ψ, ν, ν_eff, δ over a latent plane.

For 2-D models the latents and samples are scatter plots; for image models (``model.image_shape``) they are image
galleries: anchors are picked by clicking images, a clicked cell shows its generated image, samples are sorted by
a descriptor, and the on-/off-manifold grid (2-D only) is left out.
"""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from explorer.views import local_geometry as lgv
from explorer.views import sizes
from webui import (
    commands,
    conditioning,
    descriptor_maps,
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
DEF = lgv.local_geometry_defaults(model, profiles.profile_name())
T = model.num_train_timesteps
IMAGE = model.image_shape  # (h, w) for image models, else None
DISPLAY = galleries.display_of(model)  # a pipeline's colour images (or decoded latents), else None: grey values
d = sizes.latent_dim(model)
NAMES = {"psi": "ψ (local scaling)", "nu": "ν (thresholded rank)", "nu_eff": "ν_eff (effective rank)",
         "delta": "δ (local complexity)"}

st.title("Local geometry")
st.caption("Descriptors of the generator G at each latent (DESIGN.md §2): ψ = Σ log σᵢ of the Jacobian, the "
           "thresholded rank ν = #{σᵢ > 10⁻³σ₁} and the effective rank ν_eff = exp(entropy of σ/Σσ), and δ = the "
           "number of neurons whose sign changes over a small cross-polytope around the latent.")

COND = conditioning.condition_fields(model)
COND_NOTE = conditioning.describe(COND)

# ---------------------------------------------------------------------------- map and steps
maps = [m for m in ("sampler", "from_t", "denoiser", "decoder") if m in model.capabilities.maps]
c1, c2, c3, *c4 = st.columns(4 if d > 2 else 3)
with c1:
    map_name = st.selectbox("Map G", maps, **session.bind("lg_map", "sampler", lambda v: v in maps),
                            help="sampler: x_T → x_0 (DDIM, η = 0); from_t: x_t → x_0 from step t; "
                                 "denoiser: x_t → x̂_0 in one step; decoder (latent pipelines): the VAE decoder "
                                 "alone, x_0 latent → image, over planes through the x_0 latents of samples")
    session.store("lg_map", map_name)
with c2:
    t = st.number_input(f"t (timestep in [0, {T}))", 0, T - 1, **session.bind("lg_t", DEF["t"]),
                        disabled=map_name in ("sampler", "decoder"),
                        help="the paper finds on-/off-manifold best separated near t ≈ 0.17·T")
    session.store("lg_t", int(t))
with c3:
    steps = st.number_input("DDIM steps S", 1, 1000, **session.bind("lg_steps", DEF["steps"]))
    session.store("lg_steps", int(steps))
if c4:
    with c4[0]:
        opts = profiles.direction_options(d)
        dirs = st.selectbox("Jacobian directions P", opts,
                            format_func=lambda q: f"{q} (full Jacobian)" if q == d else f"{q} (sketch)",
                            **session.bind("lg_dirs", DEF["n_directions"], lambda v: v in opts),
                            help=f"ψ and ν from the singular values of J·B, B a random orthonormal (P × {d}) "
                                 "sketch from seed 0 shared by every latent (P = d: the full Jacobian J); δ "
                                 "uses the same P directions. Cost grows about linearly in P; descriptors "
                                 "compare only at equal P.")
        session.store("lg_dirs", int(dirs))
    n_dirs = int(dirs)
else:
    n_dirs = d
t_arg = None if map_name in ("sampler", "decoder") else int(t)
P_NOTE = f"P = {n_dirs} of d = {d} Jacobian directions ({'full Jacobian' if n_dirs == d else 'sketch'})"

# ---------------------------------------------------------------------------- latents
st.subheader("Latents and the plane")
got = jobs.result_of("pool", model, {"n": int(P["n_pool"]), "steps": int(steps), "condition": COND})
if got is None:
    st.stop()
pool = got[0]
seeds = [int(s) for s in st.session_state.get("lg_seeds", DEF["seeds"])][:3]
if IMAGE:
    gallery_col, lc3 = st.columns([4, 3])
else:
    lc1, lc2, lc3 = st.columns([2, 2, 3])
with lc3:
    text = st.text_input("Anchor seeds (up to three; three define the plane)", ", ".join(map(str, seeds)),
                         key=f"lg_seed_text_{','.join(map(str, seeds))}",
                         help="each seed's latent is model.latent_of_seed(seed); with fewer than three, the "
                              "plane is the whole 2-D latent plane (2-D models only)")
    try:
        typed = selections.parse_ints(text)[:3]
        if typed != seeds:
            seeds = typed
            session.set_state("lg_seeds", seeds)
    except ValueError as err:
        st.error(str(err))
    b1, b2 = st.columns(2)
    if b1.button("Draw three random seeds", key="lg_random"):
        rng = np.random.default_rng()
        seeds = [int(s) for s in rng.choice(P["n_pool"], 3, replace=False)]
        session.set_state("lg_seeds", seeds)
        st.rerun()
    if b2.button("Clear seeds", key="lg_clear"):
        session.set_state("lg_seeds", [])
        st.rerun()
    extent = st.number_input("Extent (half-width, latent units)", 0.01, 100.0, step=0.5,
                             **session.bind("lg_extent", DEF["extent"]),
                             help="u, v ∈ [−extent, extent] around the first anchor" + (
                                 f"; the three anchors' latents are about {np.sqrt(2 * d):.0f} apart" if d > 2
                                 else ""))
    session.store("lg_extent", float(extent))
    res = st.number_input("Resolution n (n × n cells)", 2, 512, **session.bind("lg_res", DEF["n"]))
    session.store("lg_res", int(res))
    st.session_state["lg_seeds"] = seeds



def pick_anchors(picked) -> None:
    """Toggle the clicked pool seeds as anchors, keep them in the URL state and redraw."""
    new = list(seeds)
    for s in selections.indices_from_selection({"selection": {"points": [{"customdata": c} for c in picked]}},
                                              P["n_pool"]):
        new = selections.add_anchor(new, s)
    session.set_state("lg_seeds", new)
    st.rerun()


chosen = np.isin(pool["seeds"], seeds)
if IMAGE:
    with gallery_col:
        picked = widgets.image_gallery(pool["samples"], IMAGE, pool["seeds"], "lg_pool_images", ncols=12, pixel=5,
                                      display=DISPLAY,
                                      highlight=seeds, hover=[f"seed {s}" for s in pool["seeds"]],
                                      title=f"Samples G(z) of seeds 0–{P['n_pool'] - 1} (click to pick anchors)",
                                      name="pool images")
        st.caption("Anchors are framed in red. Three anchor seeds define the latent plane through their latents "
                   "(the first at u = v = 0).")
    if picked:
        pick_anchors(picked)
pool_views = [] if IMAGE else [(lc1, pool["latents"], "Latents z (click to pick anchors)", "lg_pool_z"),
                               (lc2, pool["samples"], "Their samples G(z)", "lg_pool_x")]
for col, arr, title, ck in pool_views:
    with col:
        f = go.Figure(go.Scatter(x=arr[:, 0], y=arr[:, 1], mode="markers", customdata=pool["seeds"],
                                   marker={"size": np.where(chosen, 12, 6), "color": np.where(chosen, "#d62728",
                                                                                               "#4a6fa5")},
                                   hovertemplate="seed %{customdata}<extra></extra>"))
        f.update_layout(title=title, height=320, margin={"l": 10, "r": 10, "t": 40, "b": 10})
        f.update_yaxes(scaleanchor="x", scaleratio=1)
        ev = st.plotly_chart(f, key=ck, on_select="rerun", selection_mode="points", config={"displayModeBar": False})
        picked = session.new_selection(ck, ev)
        if picked:
            pick_anchors(picked)

# ---------------------------------------------------------------------------- descriptor maps
n = int(res)
radius = float(DEF["radius"])
arrays = None
plane = None
if d > 2 and len(seeds) != 3:
    st.info(f"A plane in the {d}-dimensional latent space needs three anchor seeds: click three images above or "
            "type their seeds.")
else:
    plane = jobs.result_of("descriptor_plane", model, {
        "map": map_name, "steps": int(steps), "t": t_arg, "seeds": seeds, "n": n, "extent": float(extent),
        "n_directions": n_dirs, "radius": radius, "condition": COND}, what=f"the {n}×{n} descriptor maps ({P_NOTE})")
if plane is not None:
    arrays, record = plane
    origin = ("From the shipped cache (assets/cache)" if record.get("shipped") else "From the disk cache"
              if record["hit"] else f"Computed in {record['seconds']:.1f} s")
    st.caption(f"{origin}; {map_name} map, S = {int(steps)} steps{'' if t_arg is None else f', t = {t_arg}'}, "
               f"{P_NOTE}; δ counts boundary neurons within radius r = {float(arrays['radius']):.3g} of each "
               "latent (the model's δ radius, the same on every page)"
               + (f"; {COND_NOTE}" if COND_NOTE else "")
               + ("; the plane passes through the x_0 latents of the anchor seeds' samples (the decoder's inputs)"
                  if map_name == "decoder" else "") + ".")
    if not model.capabilities.piecewise_linear:
        st.caption("δ on a smooth network: the number of pre-activations of its nonlinearities (SiLU, GELU) that "
                   "change sign over the cross-polytope; softmax and normalisations are not counted.")
    st.info("Each cell is far larger than the linear regions of a trained sampler (latent displacements of 10⁻³ "
            "already flip neurons): a cell is a sample of the descriptors at its centre, not one linear region.",
            icon="ℹ️")
    flat = {}
    if d == 2:
        flat["nu"] = ("ν = 2 everywhere: the 2-D sampler keeps both directions at every latent (its Jacobian is "
                      "invertible), so ν carries no information here and its correlation with the others is undefined.")
    cells = descriptor_maps.draw_maps(arrays, NAMES, n, st.session_state.get("lg_cell"), f"lg_maps_{n}",
                                      flat_names=flat)
    if cells is not None and list(cells) != st.session_state.get("lg_cell"):
        st.session_state["lg_cell"] = list(cells)
        st.rerun()
    mparams = {"model": spec, "weights_hash": model.weights_hash, "latent_dim": d, **record["params"]}
    widgets.download_npz("Download maps (NPZ)", {k: arrays[k] for k in arrays}, mparams, "descriptor_maps.npz",
                        "dl_lg_maps")
    widgets.cli_hint(commands.local_geometry(spec, map_name, int(steps), t_arg, seeds, n, float(extent), n_dirs,
                                             float(arrays["radius"]), COND))

# ---------------------------------------------------------------------------- samples and the clicked cell
st.subheader("Generated samples sorted by a descriptor" if IMAGE else "Generated samples over the training data")
cell = st.session_state.get("lg_cell")
detail = None
if arrays is not None and cell and len(cell) == 2 and max(cell) < n:
    z_cell = lgv.cell_latent(arrays, cell[0], cell[1])
    x_cell = jobs.result_of("cell", model, {"map": map_name, "steps": int(steps), "t": t_arg,
                                            "latent": z_cell.tolist(), "condition": COND})
    if x_cell is not None:
        detail = lgv.cell_details(model, map_name, int(steps), t_arg, arrays, cell[0], cell[1], sample=x_cell)

got = jobs.result_of("sample_descriptors", model, {"map": map_name, "steps": int(steps), "t": t_arg,
                                                   "n": int(P["n_samples"]), "radius": radius,
                                                   "n_directions": n_dirs, "condition": COND},
                     what=f"descriptors of {P['n_samples']} samples ({P_NOTE})")
if got is None:
    st.stop()
samp, srec = got
xs = samp["samples"].reshape(len(samp["samples"]), -1)
d1, d2 = st.columns([3, 2])
with d1:
    color = st.selectbox("Sort samples by" if IMAGE else "Colour samples by", list(NAMES), format_func=NAMES.get,
                         **session.bind("lg_color", "psi", lambda v: v in NAMES))
    session.store("lg_color", color)
    if IMAGE:
        order = galleries.sorted_by(samp[color])
        vals = np.asarray(samp[color], dtype=np.float64)[order]
        picked = widgets.image_gallery(
            xs[order], IMAGE, samp["seeds"][order], "lg_samples", ncols=12, pixel=4, values=vals, value_name=color,
            display=DISPLAY,
            highlight=seeds, hover=[f"seed {s}: {color} = {v:.4g}" for s, v in zip(samp["seeds"][order], vals,
                                                                                     strict=True)],
            title=f"{len(xs)} samples by {NAMES[color]}: lowest top left, highest bottom right",
            name=f"samples ({NAMES[color]})")
        st.caption(f"Frames coloured by {NAMES[color]}; click a sample to use its seed as an anchor (red frame). "
                   f"{map_name} map, S = {int(steps)} steps, {P_NOTE}.")
        if picked:
            for s in picked:
                seeds = selections.add_anchor(seeds, int(s))
            session.set_state("lg_seeds", seeds)
            st.rerun()
    else:
        data = model.training_data().reshape(len(model.training_data()), -1)
        data = data[np.random.default_rng(0).choice(len(data), min(len(data), 2000), replace=False)]
        f = go.Figure(go.Scatter(x=data[:, 0], y=data[:, 1], mode="markers", name="training data",
                                   marker={"size": 3, "color": "#cccccc"}, hoverinfo="skip"))
        f.add_trace(go.Scatter(x=xs[:, 0], y=xs[:, 1], mode="markers", name=f"samples ({NAMES[color]})",
                                 customdata=samp["seeds"],
                                 marker={"size": 7, "color": samp[color], "colorscale": "Plasma", "showscale": True,
                                         "colorbar": {"title": color}},
                                 hovertemplate="seed %{customdata}: " + color + "=%{marker.color:.4g}<extra></extra>"))
        if detail is not None:
            x = detail["sample"]
            f.add_trace(go.Scatter(x=[x[0]], y=[x[1]], mode="markers", name="selected cell's sample",
                                   marker={"size": 16, "color": "red", "symbol": "star"}))
        f.update_layout(height=460, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h"})
        f.update_yaxes(scaleanchor="x", scaleratio=1)
        st.plotly_chart(f, key="lg_samples", config={"displayModeBar": False})
with d2:
    if detail is None:
        st.info("Click a cell of a heatmap to see its " + (
            "generated image, its descriptors and its singular-value spectrum." if IMAGE else
            "latent, its sample (starred on the data plot), its descriptors and its singular-value spectrum."))
    else:
        where = (f"**Cell** (row {detail['i']}, column {detail['j']}): u = {detail['u']:.4g}, "
                 f"v = {detail['v']:.4g}")
        if IMAGE:
            i1, i2 = st.columns([1, 2])
            with i1:
                widgets.show_image(detail["sample"], IMAGE, "G(z) of the cell" if map_name == "sampler"
                                  else f"G(z) of the cell ({map_name}, t = {t_arg})", scale=16, display=DISPLAY)
            with i2:
                st.markdown(where)
                st.caption(f"‖z‖ = {np.linalg.norm(detail['latent']):.3g} (a typical latent: about "
                           f"{np.sqrt(d):.1f})")
        else:
            st.markdown(where)
            st.markdown(f"latent z = `{np.array2string(detail['latent'], precision=4)}` → "
                        f"G(z) = `{np.array2string(detail['sample'], precision=4)}`")
        st.dataframe(pd.DataFrame([detail["values"]]), hide_index=True)
        sv = go.Figure(go.Bar(x=[f"σ{k + 1}" for k in range(len(detail["singular_values"]))],
                              y=detail["singular_values"]))
        sv.update_layout(title="Singular values of J" + ("" if n_dirs == d else f"·B (P = {n_dirs})"), height=240,
                         yaxis_type="log", margin={"l": 10, "r": 10, "t": 40, "b": 10})
        st.plotly_chart(sv, key="lg_sv", config={"displayModeBar": False})
    pear, spear = lgv.descriptor_correlations(samp)
    st.markdown(f"**Correlations over {P['n_samples']} samples** (Pearson; are the descriptors redundant?)")
    st.dataframe(pear.round(3))
    with st.expander("Spearman"):
        st.dataframe(spear.round(3))
    sparams = {"model": spec, "weights_hash": model.weights_hash, "latent_dim": d, **srec["params"]}
    coords = {} if IMAGE else {"x": xs[:, 0], "y": xs[:, 1]}
    widgets.download_csv("Download sample descriptors (CSV)",
                        {"seed": samp["seeds"], **coords, **{k: samp[k] for k in ("psi", "nu", "nu_eff", "delta")}},
                        sparams, "sample_descriptors.csv", "dl_lg_samples")
    widgets.download_csv("Download correlations (CSV)", pear.reset_index(names="descriptor"), sparams,
                        "descriptor_correlations.csv", "dl_lg_corr")

# ---------------------------------------------------------------------------- on- vs off-manifold
if IMAGE or d != 2:
    st.subheader("On- vs off-manifold")
    st.caption("Not available for this model: the analysis labels inputs on a 2-D grid over the data's box, which "
               f"has no counterpart for {d}-dimensional images (almost every point of their box is off-manifold).")
else:
    st.subheader("On- vs off-manifold")
    st.caption("Inputs on a grid over a box around the data, fed as x_t to the from_t or denoiser map at step t; an "
               "input is on-manifold within r_on (0.05 × the data's scale) of a training point.")
    o1, o2, o3, o4 = st.columns(4)
    omap = o1.selectbox("Map", ["from_t", "denoiser"], key="lg_on_map")
    ot = o2.number_input("t", 0, T - 1, int(0.17 * T), key="lg_on_t")
    r_factor = o3.number_input("r_on (× data scale)", 0.001, 1.0, 0.05, step=0.01, format="%.3f", key="lg_on_r")
    run = o4.button("Run the analysis", key="lg_on_run") or st.session_state.get("_lg_on_done") == (omap, ot, r_factor)
    if run:
        st.session_state["_lg_on_done"] = (omap, ot, r_factor)
        got = jobs.result_of("on_off", model, {"map": omap, "t": int(ot), "steps": int(steps),
                                               "grid_n": int(P["onoff_grid"]), "r_factor": float(r_factor),
                                               "n_ts": int(P["auroc_ts"])})
        if got is None:
            st.stop()
        res_on, sweep = got
        table, counts = res_on
        st.caption(f"Counts: {counts}")
        hc = st.columns(4)
        label_col = "on"
        for col, name in zip(hc, [c for c in ("psi", "nu", "nu_eff", "delta") if c in table], strict=False):
            with col:
                f = go.Figure()
                for lab, nm in ((True, "on"), (False, "off")):
                    vals = table.loc[table[label_col].astype(bool) == lab, name]
                    f.add_trace(go.Histogram(x=vals, name=f"{nm} ({len(vals)})", opacity=0.6))
                f.update_layout(barmode="overlay", title=NAMES.get(name, name), height=280,
                                margin={"l": 10, "r": 10, "t": 40, "b": 10})
                st.plotly_chart(f, key=f"lg_on_hist_{name}", config={"displayModeBar": False})
        f = go.Figure()
        for name in [c for c in sweep.columns if c != "t"]:
            f.add_trace(go.Scatter(x=sweep["t"], y=sweep[name], mode="lines+markers", name=name))
        f.add_vline(x=0.17 * T, line_dash="dot", annotation_text="0.17·T")
        f.update_layout(title="AUROC of each descriptor at separating on from off, over t", height=320,
                        xaxis_title="t", yaxis_title="AUROC")
        st.plotly_chart(f, key="lg_on_auroc", config={"displayModeBar": False})
        oparams = {"model": spec, "weights_hash": model.weights_hash, "map": omap, "t": int(ot), "steps": int(steps),
                   "grid_n": P["onoff_grid"], "r_on_factor": float(r_factor)}
        widgets.download_csv("Download on/off table (CSV)", table, oparams, "on_off_manifold.csv", "dl_lg_on")
        widgets.download_csv("Download AUROC sweep (CSV)", sweep, oparams, "auroc_sweep.csv", "dl_lg_auroc")

session.sync_query(["lg_map", "lg_t", "lg_steps", "lg_dirs", "lg_seeds", "lg_extent", "lg_res", "lg_color",
                   "lg_cell"])
