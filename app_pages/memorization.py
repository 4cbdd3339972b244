"""Page: memorized vs novel samples (nearest / second-nearest distinct training image) and how well each local
descriptor (ψ, ν, ν_eff, δ) separates them; the page glue is ``webui.memorization``, the report
``explorer.views.memorization``."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from explorer.memorization import THRESHOLD
from webui import charts, commands, jobs, profiles, resources, session, sidebar, widgets
from webui import memorization as mem

spec = sidebar.sidebar()
model = resources.get_model(spec)
if model.training_set is None:  # a pipeline without a training set: prompt lists, reference images
    from webui import prompt_memorization

    prompt_memorization.render(spec, model)
    st.stop()
is_image = model.image_shape is not None
S = {**profiles.sizes_for(model), **profiles.memorization_page()}
if st.session_state.get("_mem_model") not in (None, spec):  # model-dependent choices start afresh
    for k in ("mem_sel", "mem_steps", "mem_compare", "mem_shown"):
        st.session_state.pop(k, None)
st.session_state["_mem_model"] = spec

st.title("Memorization")
st.caption("A sample x is **memorized** when its distance to the nearest training image is below a threshold "
           "(default 1/3) of its distance to the nearest *distinct* one (near-duplicate training images count as "
           "one): ratio = d₁ / d₂ (Carlini et al. 2023; Yoon et al. 2023). Sample i is generated from the latent of "
           "seed + i by the deterministic DDIM sampler; ψ, ν, ν_eff, δ are its local descriptors (Local geometry "
           "page) and log p its log density.")

# ---------------------------------------------------------------------------- parameters
c1, c2, c3, c4 = st.columns(4)
n = int(c1.number_input("Samples n", 2, 20000, step=64, **session.bind("mem_n", S["mem_n"], lambda v: 2 <= v <= 20000),
                        help="AUROC needs at least 20 memorized and 20 novel samples"))
session.store("mem_n", n)
seed = int(c2.number_input("Seed", 0, 2 ** 31 - 1, **session.bind("mem_seed", 0, lambda v: 0 <= v < 2 ** 31),
                           help="sample i is G(latent_of_seed(seed + i))"))
session.store("mem_seed", seed)
default_steps = int(S["mem_steps"] or model.default_steps)
steps = int(c3.number_input("DDIM steps", 1, 1000,
                            **session.bind("mem_steps", default_steps, lambda v: 1 <= v <= 1000)))
session.store("mem_steps", steps)
threshold = float(c4.number_input("Threshold on the ratio", 0.01, 1.0, step=0.05, format="%.3f",
                                  **session.bind("mem_threshold", THRESHOLD, lambda v: 0.01 <= v <= 1.0),
                                  help="a sample is memorized when its ratio is below this; changing it re-labels the "
                                       "cached samples at once (only the AUROC bootstrap reruns)"))
session.store("mem_threshold", threshold)
if not is_image:
    st.info("This page is meant for image models (digits/memorized, digits/full), where each sample is drawn beside "
            "its nearest training images. This is a 2-D model: samples and neighbours are drawn as points; the score, "
            "the scatter and the AUROC table work the same.", icon="ℹ️")


def get_report(m, name: str):
    """The report of model ``m`` from the compute worker (after a confirm when it is slow), or None while it waits."""
    return jobs.result_of("memorization", m, {"n": n, "seed": seed, "steps": steps, "threshold": threshold,
                                              "preset": profiles.profile_name()},
                          what=f"the memorization report of {n} {name} samples")


got = get_report(model, spec)
if got is None:
    st.stop()
rep, rec = got
table = rep.table
summ = mem.summary(rep)
m1, m2, m3, m4 = st.columns(4)
m1.metric("Samples", summ["n"])
m2.metric("Memorized", f"{summ['memorized']} ({summ['memorized_fraction']:.0%})")
m3.metric("Novel", summ["novel"])
m4.metric("Training images", rep.params["n_train"],
          help=f"{rep.params['n_duplicate_groups']} groups of near-duplicates (distance ≤ "
               f"{rep.params['duplicate_tol']:.3g}) count as one image each")
st.caption(("From the disk cache" if rec["hit"] else f"Computed in {rec['seconds']:.1f} s")
           + f"; {rep.params['steps']} DDIM steps, Jacobian with P = {rep.params['P']} directions; δ counts "
             f"boundary neurons within radius r = {rep.params['radius']:.3g} of each latent (the model's rule, the "
             "same as on Local geometry).")

train = model.training_data().reshape(len(model.training_data()), -1)
labels = model.training_labels()


def strip(row: int, nn_index) -> np.ndarray:
    return mem.image_strip(np.vstack([rep.samples[row][None], train[np.asarray(nn_index)]]), model.image_shape)


# ---------------------------------------------------------------------------- gallery
st.subheader("Gallery: samples beside their nearest training images")
g1, g2, g3 = st.columns([2, 1, 2])
sort_by = g1.selectbox("Sort by", list(mem.SORT_KEYS), format_func=mem.SORT_KEYS.get,
                       **session.bind("mem_sort", "ratio", lambda v: v in mem.SORT_KEYS))
session.store("mem_sort", sort_by)
with g2:
    descending = st.toggle("Descending", **session.bind("mem_descending", False, lambda v: isinstance(v, bool)))
    session.store("mem_descending", bool(descending))
show = g3.radio("Show", list(mem.FILTERS), horizontal=True, format_func=mem.FILTERS.get,
                **session.bind("mem_show", "all", lambda v: v in mem.FILTERS))
session.store("mem_show", show)
order = mem.gallery_order(table, sort_by, bool(descending), show)
shown = int(st.session_state.get("mem_shown", S["page_rows"]))
rows = mem.page_slice(order, shown)
nn_d, nn_i = mem.neighbours(train, rep.samples[rows], S["k"])
if not len(rows):
    st.info(f"No {show} samples at threshold {threshold:.3g} among these {n}.")
elif is_image:
    cols = st.columns(2)
    for c, part in enumerate((slice(0, None, 2), slice(1, None, 2))):
        idx = np.arange(len(rows))[part]
        if len(idx):
            strips = [strip(rows[j], nn_i[j]) for j in idx]
            cols[c].image(strips, width=strips[0].shape[1], output_format="PNG",
                          caption=[mem.describe_sample(table.iloc[rows[j]], nn_d[j], nn_i[j], labels) for j in idx])
    st.caption("Each strip: the sample, then its nearest training images left to right (pixels upscaled ×8 without "
               "smoothing).")
else:
    keep = np.random.default_rng(0).choice(len(train), min(len(train), 2000), replace=False)
    f = go.Figure(go.Scatter(x=train[keep, 0], y=train[keep, 1], mode="markers", name="training data",
                               marker={"size": 3, "color": "#cccccc"}, hoverinfo="skip"))
    lines_x, lines_y = [], []
    for j, r in enumerate(rows):
        for i in nn_i[j]:
            lines_x += [rep.samples[r, 0], train[i, 0], None]
            lines_y += [rep.samples[r, 1], train[i, 1], None]
    f.add_trace(go.Scatter(x=lines_x, y=lines_y, mode="lines", name="to its nearest training points",
                           line={"color": "#888888", "width": 1}, hoverinfo="skip"))
    f.add_trace(go.Scatter(x=train[nn_i.ravel(), 0], y=train[nn_i.ravel(), 1], mode="markers",
                           name="nearest training points", marker={"size": 6, "color": "black", "symbol": "x"}))
    is_mem = table["memorized"].to_numpy(bool)[rows]
    f.add_trace(go.Scatter(x=rep.samples[rows, 0], y=rep.samples[rows, 1], mode="markers+text",
                           name="shown samples", text=[str(s) for s in table["latent_seed"].to_numpy()[rows]],
                           textposition="top center",
                           marker={"size": 9, "color": np.where(is_mem, "#d62728", "#1f77b4")}))
    f.update_layout(height=420, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h"})
    f.update_yaxes(scaleanchor="x", scaleratio=1)
    st.plotly_chart(f, key="mem_gallery_points", config={"displayModeBar": False})
    st.caption("Shown samples (red: memorized, blue: novel, labelled by seed) with lines to their nearest training "
               "points.")
st.dataframe(mem.gallery_table(table, rows, nn_d, nn_i), hide_index=True)
st.caption(f"Showing {len(rows)} of {len(order)} {'' if show == 'all' else show + ' '}samples, sorted by "
           f"{mem.SORT_KEYS[sort_by]} ({'descending' if descending else 'ascending'}).")
if len(rows) < len(order) and st.button(f"Show {S['page_rows']} more", key="mem_more"):
    st.session_state["mem_shown"] = shown + S["page_rows"]
    st.rerun()

# ---------------------------------------------------------------------------- descriptor vs score
st.subheader("Descriptor vs memorization score")
x1, x2 = st.columns([3, 2])
with x1:
    desc = st.selectbox("Descriptor", list(mem.DESCRIPTORS), format_func=mem.DESCRIPTORS.get,
                        **session.bind("mem_scatter", "psi", lambda v: v in mem.DESCRIPTORS))
    session.store("mem_scatter", desc)
    sel = st.session_state.get("mem_sel")
    sel_row = mem.row_of_seed(table, sel) if sel is not None else None
    f = go.Figure()
    for flag, name, color in ((True, "memorized", "#d62728"), (False, "novel", "#1f77b4")):
        part = table[table["memorized"] == flag]
        trace = charts.scatter_trace(len(part))
        f.add_trace(trace(x=part["ratio"], y=part[desc], mode="markers", name=f"{name} ({len(part)})",
                                 customdata=part["latent_seed"], marker={"size": 6, "color": color},
                                 hovertemplate="seed %{customdata}: ratio %{x:.3f}, " + desc + " %{y:.4g}"
                                               "<extra></extra>"))
    if sel_row is not None:
        f.add_trace(go.Scatter(x=[table["ratio"].iloc[sel_row]], y=[table[desc].iloc[sel_row]], mode="markers",
                               name=f"seed {sel}", hoverinfo="skip",
                               marker={"size": 16, "color": "rgba(0,0,0,0)", "line": {"color": "black", "width": 2}}))
    f.add_vline(x=threshold, line_dash="dot", annotation_text=f"threshold {threshold:.3g}")
    f.update_layout(height=440, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                    legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
                    xaxis_title="ratio d₁ / d₂ (memorization score)", yaxis_title=mem.DESCRIPTORS[desc])
    ev = st.plotly_chart(f, key="mem_scatter_chart", on_select="rerun", selection_mode="points",
                         config={"displayModeBar": False})
    picked = session.new_selection("mem_scatter_chart", ev)
    if picked:
        s = mem.selected_seed(picked, table)
        if s is not None and s != sel:
            session.set_state("mem_sel", s)
            st.rerun()
with x2:
    if sel_row is None:
        st.info("Click a point to see its sample and nearest training images, and to open its latent plane on the "
                "Local geometry page.")
    else:
        row = table.iloc[sel_row]
        d1, i1 = mem.neighbours(train, rep.samples[sel_row][None], S["k"])
        st.markdown(f"**Sample of seed {sel}**: ratio {row['ratio']:.3f} "
                    f"({'memorized' if row['memorized'] else 'novel'})")
        if is_image:
            one = strip(sel_row, i1[0])
            st.image(one, width=one.shape[1], caption=mem.describe_sample(row, d1[0], i1[0], labels),
                     output_format="PNG")
        else:
            st.caption(mem.describe_sample(row, d1[0], i1[0], labels) + f"; sample at "
                       f"{np.round(rep.samples[sel_row], 3).tolist()}")
        st.dataframe(table.iloc[[sel_row]][[c for c in ("psi", "nu", "nu_eff", "delta", "log_p", "d_nearest",
                                                        "d_second") if c in table]], hide_index=True)
        anchors = mem.local_geometry_seeds(table, sel)
        st.caption(mem.describe_anchors(table, anchors))
        if st.button("Open its latent plane in Local geometry", key="mem_open_lg", type="primary"):
            session.set_state(mem.LG_SEEDS_KEY, anchors)
            st.switch_page(mem.LG_PAGE)

# ---------------------------------------------------------------------------- AUROC
st.subheader("How well each descriptor separates memorized from novel samples")
st.caption(f"AUROC = P(f(memorized) > f(novel)) + ½ P(tie): 1 = memorized samples have the larger values, 0.5 = no "
           f"separation, 0 = the smaller ones; 95% percentile bootstrap interval ({rep.params['n_boot']} resamples, "
           "each class drawn separately). log p and d_nearest are baselines.")
st.dataframe(mem.auroc_display(rep.auroc), hide_index=True)
note = mem.na_note(rep.auroc)
if note:
    st.info(note, icon="ℹ️")

# ---------------------------------------------------------------------------- comparison
st.subheader("Compare with another model")
options = ["none", *[m for m in mem.compare_options(spec, resources.available_models()) if m is not None]]
default = mem.default_compare(spec, options) or "none"
other = st.selectbox("Compare with", options, format_func=lambda v: "(no comparison)" if v == "none" else v,
                     **session.bind("mem_compare", default, lambda v: v in options),
                     help="the same n, seed, steps and threshold on another model")
session.store("mem_compare", other)
both = None
if other != "none":
    got2 = get_report(resources.get_model(other), other)
    if got2 is not None:
        rep2 = got2[0]
        both = {spec: rep, other: rep2}
        for col, (name, r) in zip(st.columns(2), both.items(), strict=True):
            s2 = mem.summary(r)
            with col:
                st.metric(f"{name}: memorized", f"{s2['memorized_fraction']:.1%}",
                          help=f"{s2['memorized']} of {s2['n']} samples; {r.params['n_train']} training images")
                st.dataframe(mem.auroc_display(r.auroc), hide_index=True)

# ---------------------------------------------------------------------------- downloads
params = mem.download_params(spec, rep)
d1, d2, d3 = st.columns(3)
with d1:
    widgets.download_csv("Download per-sample table (CSV)", table, params, "memorization_samples.csv", "dl_mem_table")
with d2:
    widgets.download_csv("Download AUROC table (CSV)", rep.auroc, params, "memorization_auroc.csv", "dl_mem_auroc")
if both is not None:
    with d3:
        cparams = {**params, "compare_with": other, "compare_weights_hash": both[other].params["weights_hash"]}
        widgets.download_csv("Download the comparison (CSV)", mem.comparison_table(both), cparams,
                            "memorization_comparison.csv", "dl_mem_compare")

widgets.cli_hint(commands.memorization(spec, n, seed, steps, threshold))
session.sync_query(["mem_n", "mem_seed", "mem_steps", "mem_threshold", "mem_sort", "mem_descending", "mem_show",
                  "mem_compare", "mem_scatter", "mem_sel"])
