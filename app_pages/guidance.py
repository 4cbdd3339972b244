"""Page: reward guidance. A reward r_φ(x_t, t) ≈ ψ(z) steers the DDIM sampler, ε̃ = ε_θ − ρ·sqrt(1 − ᾱ_t)·∇r_φ; the
same latents sampled at every ρ of a precomputed grid and what guidance changed (ψ, log p, quality, diversity,
memorization). The report is ``explorer.guidance.report.guidance_report`` from the compute worker (job
``guidance``); the page glue is ``webui.guidance``."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from explorer import cache
from explorer.guidance.report import figures_table, reward_entry_params, samples_table
from explorer.views.guidance import guidance_defaults
from webui import commands, conditioning, jobs, profiles, resources, session, sidebar, widgets
from webui import guidance as gd

spec = sidebar.sidebar()
model = resources.get_model(spec)
st.title("Reward guidance")
if not model.capabilities.diffusion:
    st.info(f"{spec} is not a diffusion model: guidance steers a DDIM sampler. Pick a toy2d, digits or diffusers "
            "model in the sidebar.", icon="ℹ️")
    st.stop()
PRESET = profiles.profile_name()
DEF = guidance_defaults(model, PRESET)
STEPS = int(DEF["steps"] or model.default_steps)
IS_IMAGE = model.image_shape is not None
if st.session_state.get("_guide_model") not in (None, spec):  # model-dependent choices start afresh
    for k in ("guide_reward", "guide_pending"):
        st.session_state.pop(k, None)
st.session_state["_guide_model"] = spec
#: The class (DiT) or prompt, negative prompt and guidance scale (SD) every sample and the reward are made under: the
#: guidance adds to the classifier-free-guided ε. Unconditional models draw nothing and keep their keys.
COND = conditioning.condition_fields(model)
st.caption("A small network r_φ(x_t, t) learns to predict ψ(z), the local scaling of the sampler at the latent a "
           "trajectory came from (Humayun et al.); its gradient steers denoising: ε̃ = ε_θ(x_t, t) − ρ·sqrt(1 − ᾱ_t)·"
           "∇r_φ(x_t, t). ρ > 0 seeks larger ψ, ρ < 0 smaller; ρ = 0 is the plain sampler. Sample i at every ρ starts "
           "from the same latent (seed 0, i), so the galleries compare the same seeds. Measured ψ is the plain "
           "sampler's at the latent z̃ each guided sample corresponds to (by inversion), and log p = log N(z̃) − ψ(z̃).")

# ---------------------------------------------------------------------------- the reward
st.subheader("The reward r_φ")
default_params = reward_entry_params(model, DEF["reward_n"], DEF["reward_seed"], STEPS, DEF["map"],
                                     DEF["n_directions"], None, DEF["reward_fit"], DEF["reward_states"], COND)
default_key = cache.cache_key("guidance_reward", default_params, model.weights_hash)
on_disk = {r["key"]: r for r in gd.cached_rewards(model, STEPS, condition=COND)}
pending = dict(st.session_state.get("guide_pending", {}))
labels = {"default": "the page's default reward: " + gd.describe_reward(default_params, on_disk.get(default_key, {})
                                                                       .get("record"))
          + ("" if default_key in on_disk else " (trained on first use)")}
labels.update({k: "on disk: " + gd.describe_reward(r["params"], r["record"]) for k, r in on_disk.items()
               if k != default_key})
labels.update({k: "new: " + gd.describe_reward(p) for k, p in pending.items() if k not in labels and k != default_key})
labels["new"] = "train a new reward…"
choice = st.selectbox("Reward", list(labels), format_func=labels.get,
                      **session.bind("guide_reward", "default", lambda v: v in labels),
                      help="a reward of this model already on disk (trained here or by `python -m explorer "
                           "guidance`), or one trained now in the compute worker")
session.store("guide_reward", choice)
if choice == "new":
    with st.form("guide_new_reward"):
        c1, c2, c3, c4 = st.columns(4)
        n_new = int(c1.number_input("Training latents N", 8, 100_000, int(DEF["reward_n"]), step=256,
                                    help="ψ of each costs one full-Jacobian pass of the sampler: the expensive part"))
        seed_new = int(c2.number_input("Their seed", 0, 2 ** 31 - 1, int(DEF["reward_seed"])))
        it_default = int(DEF["reward_fit"].get("iterations") or default_params["fit"]["iterations"])
        iters_new = int(c3.number_input("Training iterations", 10, 100_000, it_default, step=500))
        states_new = c4.selectbox("States x_t", list(gd.STATES), format_func=gd.STATES.get)
        if st.form_submit_button("Train this reward", type="primary"):
            over = {"reward_n": n_new, "reward_seed": seed_new, "reward_states": states_new,
                    "reward_fit": {"iterations": iters_new}}
            p = reward_entry_params(model, n_new, seed_new, STEPS, DEF["map"], DEF["n_directions"], None,
                                    over["reward_fit"], states_new, COND)
            key = cache.cache_key("guidance_reward", p, model.weights_hash)
            if key not in on_disk and key != default_key:
                pending[key] = {**p, "overrides": over}
                session.set_state("guide_pending", pending)
            session.set_state("guide_reward", "default" if key == default_key else key)
            st.rerun()
    st.stop()
if choice == "default":
    overrides = {}
elif choice in on_disk:
    overrides = on_disk[choice]["overrides"]
else:
    overrides = pending[choice]["overrides"]
params = {"preset": PRESET, **overrides, **COND}
got = jobs.result_of("guidance", model, params,
                     what=f"reward guidance on {spec}: the reward, then guided samples at {len(DEF['rhos'])} values "
                          "of ρ, their inversion and ψ")
if got is None:
    st.stop()
arrays, record = got
rrec = record["reward"]
r1, r2, r3, r4 = st.columns(4)
r1.metric("Held-out R² of the reward", f"{rrec['heldout_r2']:.3f}",
          help=f"1 − MSE / Var(ψ) on {rrec['n_heldout']} held-out latents' states at every step: how much of ψ the "
               "reward predicts from x_t alone")
for col, r2_third, span in zip((r2, r3, r4), rrec["heldout_r2_by_third"], rrec["thirds_timesteps"], strict=True):
    if span is None:  # fewer than 3 sampler steps: this third holds no step
        col.metric("R², no step in this third", "n/a")
    else:
        col.metric(f"R², t from {span[0]} to {span[1]}", f"{r2_third:.3f}")
rc = record.get("reward_cache") or {}
st.caption(f"Trained on {rrec['n']} latents of seed {rrec['seed']} ({rrec['states']} states of the {rrec['steps']}-"
           f"step sampler, ψ with P = {rrec['n_directions']} directions), {rrec['config']['net']['kind']} body; "
           + ("from the disk cache" if rc.get("hit", True) else f"trained in {rrec.get('train_seconds', 0):.1f} s")
           + ". R² by third of the schedule, noisiest first: near t = T little of ψ is known from x_t (the reward "
             "of forward-noised states predicts E[ψ | x_t], which is what the guidance needs).")

# ---------------------------------------------------------------------------- ρ
rhos = [float(r) for r in record["params"]["rhos"]]
if "guide_rho" in st.session_state:
    st.session_state["guide_rho"] = gd.snap_rho(st.session_state["guide_rho"], rhos)
rho = float(st.select_slider("Guidance strength ρ", options=rhos, format_func=lambda v: f"{v:g}",
                             **session.bind("guide_rho", gd.default_rho(rhos), lambda v: v in rhos),
                             help="the precomputed grid; every value uses the same latents"))
session.store("guide_rho", rho)
ref = gd.reference_rho(rhos)
i0, i1 = gd.rho_index(arrays, ref), gd.rho_index(arrays, rho)
n = arrays["psi_measured"].shape[1]
ref_name = f"ρ = {ref:g}" + (" (plain sampler)" if ref == 0 else "")
m1, m2, m3, m4 = st.columns(4)
m1.metric(f"Mean measured ψ at ρ = {rho:g}", f"{np.nanmean(arrays['psi_measured'][i1]):.3f}",
          f"{np.nanmean(arrays['psi_measured'][i1]) - np.nanmean(arrays['psi_measured'][i0]):+.3f} vs {ref_name}")
m2.metric(f"Mean predicted ψ at ρ = {rho:g}", f"{np.nanmean(arrays['psi_predicted'][i1]):.3f}")
m3.metric(f"Mean log p at ρ = {rho:g}", f"{np.nanmean(arrays['log_p'][i1]):.3f}",
          f"{np.nanmean(arrays['log_p'][i1]) - np.nanmean(arrays['log_p'][i0]):+.3f} vs {ref_name}")
fig_rho = next(f for f in record["figures"] if float(f["rho"]) == rho)
m4.metric("Inversion failed", f"{fig_rho['failed_fraction']:.1%}",
          help=f"median residual {fig_rho['residual_median']:.2g}; median RMS of G(z̃) − guided x₀ "
               f"{fig_rho['gap_median']:.2g}")
if not record["inversion_ok"]:
    st.warning("At some ρ the inversion failed for 5% or more of the samples: their measured ψ and log p are "
               "approximate.")

# ---------------------------------------------------------------------------- galleries
st.subheader("The same seeds without and with guidance")
a, b = st.columns(2)
if not IS_IMAGE:
    x0, x1 = (arrays["samples"][i].reshape(n, -1) for i in (i0, i1))
    psi_all = arrays["psi_measured"][[i0, i1]]
    lo, hi = float(np.nanpercentile(psi_all, 2)), float(np.nanpercentile(psi_all, 98))
    train = model.training_data().reshape(len(model.training_data()), -1)
    keep = np.random.default_rng(0).choice(len(train), min(len(train), 2000), replace=False)
    for col, i, x, name in ((a, i0, x0, f"samples at {ref_name}"), (b, i1, x1, f"samples at ρ = {rho:g}")):
        f = go.Figure(go.Scatter(x=train[keep, 0], y=train[keep, 1], mode="markers", name="training data",
                                 marker={"size": 3, "color": "#dddddd"}, hoverinfo="skip"))
        if i == i1 and i1 != i0:
            lx = np.stack([x0[:, 0], x1[:, 0], np.full(n, np.nan)], 1).ravel()
            ly = np.stack([x0[:, 1], x1[:, 1], np.full(n, np.nan)], 1).ravel()
            f.add_trace(go.Scatter(x=lx, y=ly, mode="lines", name=f"moved from {ref_name}", hoverinfo="skip",
                                   line={"color": "rgba(120,120,120,0.35)", "width": 1}))
        f.add_trace(go.Scatter(x=x[:, 0], y=x[:, 1], mode="markers", name=name,
                               text=gd.sample_hover(arrays, i, range(n)), hovertemplate="%{text}<extra></extra>",
                               marker={"size": 5, "color": arrays["psi_measured"][i], "colorscale": "Plasma",
                                       "cmin": lo, "cmax": hi, "showscale": True,
                                       "colorbar": {"title": "ψ", "thickness": 10}}))
        f.update_layout(title=name, height=420, margin={"l": 10, "r": 10, "t": 40, "b": 10}, showlegend=False)
        f.update_yaxes(scaleanchor="x", scaleratio=1)
        col.plotly_chart(f, key=f"guide_points_{'ref' if i == i0 and col is a else 'chosen'}",
                         config={"displayModeBar": False})
    st.caption("Each point is one sample, coloured by its measured ψ (one colour scale for both); the lines on the "
               "right join each seed's sample without guidance to its guided one. Look at where guidance moves "
               "the samples: larger ψ is where the sampler stretches space, away from the dense modes.")
else:
    shown = list(range(min(n, 32)))
    grey = int(getattr(model, "channels", 1) or 1) == 1
    for col, i, title in ((a, i0, f"samples at {ref_name}"), (b, i1, f"samples at ρ = {rho:g}")):
        with col:
            st.markdown(f"**{title}**")
            x = arrays["samples"][i][shown]
            if grey:
                widgets.image_gallery(x.reshape(len(shown), -1), model.image_shape, np.array(shown),
                                      key=f"guide_gallery_{'ref' if col is a else 'chosen'}", selectable=False,
                                      ncols=8, hover=gd.sample_hover(arrays, i, shown), name=title)
            else:
                st.image(gd.rgb_grid(x.reshape(len(shown), *model.sample_shape), columns=8), caption=title)
    st.caption(f"The first {len(shown)} samples, seed by seed in the same places (hover for ψ and log p). Look for "
               "what the paper reports for larger ψ: sharper, more varied samples, and whether they still look like "
               "the data.")

# ---------------------------------------------------------------------------- histograms
st.subheader(f"Measured ψ and log p at {ref_name} and at ρ = {rho:g}")
h1, h2 = st.columns(2)
for col, key, label in ((h1, "psi_measured", "measured ψ"), (h2, "log_p", "log p")):
    v0, v1 = arrays[key][i0], arrays[key][i1]
    bins = gd.histogram_bins(v0, v1)
    f = go.Figure()
    for v, name, colour in ((v0, ref_name, "#1f77b4"), (v1, f"ρ = {rho:g}", "#d62728")):
        f.add_trace(go.Histogram(x=v[np.isfinite(v)], name=name, xbins=bins, opacity=0.6,
                                 marker={"color": colour}))
    f.update_layout(barmode="overlay", height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                    xaxis_title=label, yaxis_title="samples", legend={"orientation": "h", "y": 1.1})
    col.plotly_chart(f, key=f"guide_hist_{key}", config={"displayModeBar": False})
st.caption("ρ > 0 should shift ψ right and log p left (log p = log N(z̃) − ψ(z̃)); the overlap shows how many "
           "samples guidance actually moved.")

# ---------------------------------------------------------------------------- figures vs ρ
st.subheader("What guidance does, over the grid of ρ")
st.caption(f"Means over the {n} samples at each ρ with 95% percentile-bootstrap intervals "
           f"({record['params']['n_boot']} resamples); the dotted line is the chosen ρ.")
for group in gd.figure_groups(record):
    st.markdown(f"**{group['title']}**: {group['caption']}")
    plots = [group["series"]] if group["together"] else [{k: s} for k, s in group["series"].items()]
    cols = st.columns(min(len(plots), 3))
    for j, series in enumerate(plots):
        f = go.Figure()
        for name, s in series.items():
            f.add_trace(go.Scatter(x=s["rho"], y=s["value"], mode="lines+markers", name=s["label"],
                                   error_y=gd.error_bars(s)))
            k = int(np.argmin(np.abs(s["rho"] - rho)))
            f.add_trace(go.Scatter(x=[s["rho"][k]], y=[s["value"][k]], mode="markers", name=f"{name} at chosen ρ",
                                   showlegend=False, hoverinfo="skip",
                                   marker={"size": 14, "color": "rgba(0,0,0,0)", "line": {"color": "black",
                                                                                           "width": 2}}))
        f.add_vline(x=rho, line_dash="dot")
        title = None if group["together"] else next(iter(series.values()))["label"]
        f.update_layout(height=300, margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10}, xaxis_title="ρ",
                        title={"text": title, "font": {"size": 12}} if title else None,
                        legend={"orientation": "h", "y": -0.3}, showlegend=group["together"])
        cols[j % len(cols)].plotly_chart(f, key=f"guide_fig_{group['title']}_{j}", config={"displayModeBar": False})
table = figures_table(record)
st.dataframe(table, hide_index=True)
extra = []
if record.get("swd_floor") is not None:
    extra.append(f"the SWD ratio divides by SWD({record['swd_floor_source']}, data) = {record['swd_floor']:.3g}")
if "memorized" not in table:
    extra.append("the memorized fraction needs an image model with a training set")
if extra:
    st.caption("; ".join(extra).capitalize() + ".")

# ---------------------------------------------------------------------------- downloads, CLI
dl = {"model": spec, "weights_hash": model.weights_hash, **record["params"], "reward_record": rrec}
d1, d2 = st.columns(2)
with d1:
    widgets.download_npz("Download samples and figures (NPZ)", arrays, dl, "guidance.npz", "dl_guide_npz")
with d2:
    widgets.download_csv("Download one row per ρ and sample (CSV)", samples_table(arrays), dl, "guidance.csv",
                         "dl_guide_csv")
fit_iters = (rrec.get("fit") or {}).get("iterations")
widgets.cli_hint(commands.guidance(spec, rhos, n, record["params"]["seed"], record["params"]["steps"], rrec["n"],
                                   rrec["seed"], rrec["states"], fit_iters, record["params"]["n_boot"],
                                   condition=COND))
session.sync_query(["guide_rho"])
