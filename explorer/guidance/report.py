"""What guidance does, at the same seeds for every ρ, through the disk cache: the one entry point of the CLI
(``python -m explorer guidance``) and the Guidance page.

``reward_cached`` trains (or reads) the reward: ψ of the N training latents is one cache entry
(``guidance_psi``: the expensive part), the trained network another (``guidance_reward``: its tensors, no pickles, and
its record). ``guidance_report`` samples ``model.latents(n, seed)`` at each ρ with that reward and measures every
sample (``explorer.guidance.figures``), as one ``guidance`` entry keyed by the reward's weights hash and every
parameter, so a CLI run fills the page's cache and a shipped entry opens at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np
import torch

from explorer import cache
from explorer.guidance.figures import MAX_BOOT, N_BOOT, FigureContext, bootstrap
from explorer.guidance.fit import DEFAULT_FIT, DEFAULT_IMAGE_FIT, fit_reward
from explorer.guidance.inversion import FAILED, STATUS_NAMES, invert_plain
from explorer.guidance.reward import Reward, default_net_config, reward_from_tensors
from explorer.guidance.sampler import guided_generator, guided_sample
from explorer.guidance.targets import (
    DEFAULT_STATES,
    check_target_map,
    psi_of_latents,
    resolved_directions,
    reward_training_set,
)

#: Bumped when what the entries of this module store changes meaning (part of every key).
CACHE_VERSION = 1
#: The report refuses to call an inversion trustworthy above this failed fraction (issue 15: below 5%).
MAX_FAILED_FRACTION = 0.05
INVERT_FROM = ("auto", "sample", "last_input")
LOG_2PI = float(np.log(2 * np.pi))


def _progress(progress, lo: float, hi: float):
    """A callback for the part [lo, hi] of the whole: (fraction, message) or (done, total)."""
    if progress is None:
        return None

    def cb(*args):
        if len(args) == 2 and not isinstance(args[1], str):
            progress(lo + (hi - lo) * args[0] / max(args[1], 1), "ψ of the reward's training latents")
        else:
            progress(lo + (hi - lo) * float(args[0]), args[1] if len(args) > 1 else None)

    return cb


def _is_image(model) -> bool:
    return model.image_shape is not None or int(np.prod(model.diffusion_shape)) > 16


def reward_params(model, n: int, seed: int, steps: int | None, map: str, n_directions: int | None,
                  condition: dict) -> dict:  # ψ's parameters (the states are the reward's)
    """The parameters that name the reward's training set (steps and P resolved)."""
    check_target_map(model, map)
    return {"model": model.name, "n": int(n), "seed": int(seed),
            "steps": int(model.default_steps if steps is None else steps), "map": map,
            "n_directions": resolved_directions(model, map, n_directions), "condition": cache.jsonable(condition),
            "version": CACHE_VERSION}


def reward_entry_params(model, n: int, seed: int, steps: int | None, map: str, n_directions: int | None,
                        net: dict | None, fit: dict | None, states: str, condition: dict) -> dict:
    """The parameters that name a trained reward: its training set's, its states, and the net and training settings
    with every default resolved (a changed default must not hit a reward trained under the old one)."""
    fit_cfg = {**(DEFAULT_IMAGE_FIT if _is_image(model) else DEFAULT_FIT), **(fit or {})}
    net_cfg = dict(net or default_net_config(model.diffusion_shape, image=_is_image(model)))
    return {**reward_params(model, n, seed, steps, map, n_directions, condition), "states": states,
            "net": cache.jsonable(net_cfg), "fit": cache.jsonable(fit_cfg)}


def reward_cached(model, n: int = 2048, seed: int = 1, steps: int | None = None, map: str = "sampler",
                  n_directions: int | None = None, net: dict | None = None, fit: dict | None = None,
                  progress: Callable | None = None, states: str = DEFAULT_STATES, **condition) -> tuple[Reward, dict]:
    """The reward trained on ``reward_training_set(model, n, seed, steps, map, n_directions)`` (``fit_reward``
    with ``net`` and ``fit``), read from the disk cache when present. Returns ``(reward, record)``; ``record`` has
    ``hit`` (the network came from disk), ``psi_hit``, ``key`` and the seconds of ψ and of training."""
    model.check_condition(condition)
    params = reward_params(model, n, seed, steps, map, n_directions, condition)
    rparams = reward_entry_params(model, n, seed, steps, map, n_directions, net, fit, states, condition)
    fit_cfg = rparams["fit"]
    state: dict = {}

    def compute_psi():
        z = model.latents(int(n), seed)
        return {"psi": psi_of_latents(model, z, map, params["steps"], n_directions,
                                      progress=_progress(progress, 0.0, 0.7), **condition)}

    def compute_reward():
        psi_arrays, psi_record = cache.cached("guidance_psi", params, compute_psi, weights_hash=model.weights_hash)
        state["psi"] = psi_record
        data = reward_training_set(model, int(n), seed, params["steps"], map, n_directions,
                                   psi=psi_arrays["psi"], states=states, **condition)
        reward = fit_reward(data, net=rparams["net"], progress=_progress(progress, 0.7, 1.0), **fit_cfg)
        reward.record["psi_seconds"] = psi_record.get("seconds")
        return {**{f"w.{k}": v.numpy() for k, v in reward.tensors().items()},
                "record_json": np.array(json.dumps(cache.jsonable(reward.record)))}

    arrays, record = cache.cached("guidance_reward", rparams, compute_reward, weights_hash=model.weights_hash)
    rec = json.loads(str(arrays["record_json"]))
    tensors = {k[2:]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith("w.")}
    reward = reward_from_tensors(tensors, rec)
    psi_hit = state.get("psi", {}).get("hit", True)
    return reward, {**record, "psi_hit": bool(psi_hit), "reward_record": rec}


def resolve_invert_from(model, invert_from: str = "auto") -> str:
    """``sample`` (invert the whole sampler from the sample) where the model's exact sampler inversion works (its
    default likelihood is the ``discrete`` one: the toys) or the space is too large for exact inversion (then DDIM
    inversion); else ``last_input``: the last step's input (the digits, whose last step does not invert)."""
    if invert_from not in INVERT_FROM:
        raise ValueError(f"invert_from must be one of {', '.join(INVERT_FROM)}; got {invert_from!r}")
    if invert_from != "auto":
        return invert_from
    if (model.default_likelihood or {}).get("method") == "discrete":
        return "sample"
    return "last_input" if int(np.prod(model.diffusion_shape)) <= 1024 else "sample"


def report_params(model, rhos, n: int, seed: int, steps: int | None, reward: Reward, map: str,
                  n_directions: int | None, invert_from: str, model_likelihood: bool, n_boot: int,
                  condition: dict) -> dict:
    rhos = [float(r) for r in rhos]
    if not rhos or not all(np.isfinite(rhos)):
        raise ValueError(f"rhos must be a non-empty list of finite numbers, got {rhos}")
    if int(n) < 2:
        raise ValueError(f"n (samples per ρ) must be at least 2, got {n}")
    return {"model": model.name, "rhos": rhos, "n": int(n), "seed": int(seed),
            "steps": int(model.default_steps if steps is None else steps), "map": map,
            "n_directions": resolved_directions(model, map, n_directions), "reward": reward.weights_hash,
            "invert_from": invert_from, "model_likelihood": bool(model_likelihood), "n_boot": int(n_boot),
            "condition": cache.jsonable(condition), "version": CACHE_VERSION}


def measure_rho(model, reward: Reward, rho: float, n: int, seed: int, steps: int, map: str, n_directions: int | None,
                invert_from: str, model_likelihood: bool, ctx: FigureContext, **condition) -> dict[str, np.ndarray]:
    """Every per-sample figure of the guided samples at one ρ (see ``guidance_report``)."""
    det = guided_sample(model, n, seed, steps, reward, rho, return_details=True, **condition)
    skip = 0 if invert_from == "sample" else 1
    inv = invert_plain(model, det["x0"] if skip == 0 else det["last_input"], steps, skip_last=skip, **condition)
    z_inv = torch.from_numpy(inv.z).float()
    full = map == "sampler" and resolved_directions(model, map, n_directions) == int(np.prod(model.latent_shape))
    psi = np.array(inv.logdet, dtype=np.float64) if full else np.full(n, np.nan)
    todo = ~np.isfinite(psi)
    if todo.any():  # ψ of the map at the latents the exact inversion did not give it for
        psi[todo] = psi_of_latents(model, z_inv[todo], map, steps, n_directions, **condition)
    zf = inv.z.reshape(n, -1)
    log_p = -0.5 * (zf ** 2).sum(1) - 0.5 * zf.shape[1] * LOG_2PI - psi
    from explorer.device import compute_view

    view = compute_view(model)
    plain = guided_generator(view, steps, None, 0.0, **condition)
    with torch.no_grad():
        back = torch.cat([plain.trajectory(z_inv[s:s + 1024].to(view.device, view.dtype))["x0"].float().cpu()
                          for s in range(0, n, 1024)]).numpy().reshape(n, -1)
    gap = np.sqrt(((back - det["x0"].reshape(n, -1)) ** 2).mean(1))
    z0 = model.latents(n, seed).double().numpy().reshape(n, -1)
    out = {"samples": det["samples"], "x0": det["x0"], "inverted_latents": inv.z.astype(np.float32),
           "psi_measured": psi, "psi_predicted": det["predicted"], "log_p": log_p,
           "inversion_status": inv.status.astype(np.int8), "residual": inv.residual, "gap": gap,
           "latent_shift": np.sqrt(((zf - z0) ** 2).mean(1))}
    if model_likelihood:  # over the space the diffusion runs in (x_0: the VAE latent of DiT/SD), at guidance 1
        points = det["x0"] if model.decode_module() is not None else det["samples"]
        unguided = {k: v for k, v in condition.items() if k not in ("guidance_scale", "negative_prompt")}
        out["log_p_model"] = np.asarray(model.log_prob(points, **model.default_likelihood, **unguided), np.float64)
    out.update(ctx.sample_figures(det["samples"]))
    return out


def guidance_report(model, rhos: Sequence[float] = (-1.0, 0.0, 1.0, 2.0), n: int = 512, seed: int = 0,
                    steps: int | None = None, reward: Reward | None = None, progress: Callable | None = None, *,
                    reward_n: int = 2048, reward_seed: int = 1, map: str = "sampler", n_directions: int | None = None,
                    reward_net: dict | None = None, reward_fit: dict | None = None, reward_states: str = DEFAULT_STATES,
                    invert_from: str = "auto",
                    model_likelihood: bool | None = None, n_boot: int = N_BOOT,
                    **condition) -> tuple[dict[str, np.ndarray], dict]:
    """Guided samples of ``model.latents(n, seed)`` at every ρ of ``rhos`` and what they measure (disk-cached).

    ``reward``: a trained ``Reward`` (e.g. ``load_reward(path)``), else ``reward_cached(model, reward_n, reward_seed,
    steps, map, n_directions, reward_net, reward_fit)``. Per sample: ``psi_measured`` (ψ of the plain sampler at the
    latent z̃ the sample corresponds to: ``invert_plain`` from the sample, or from the last step's input, see
    ``resolve_invert_from``), ``psi_predicted`` (the reward at the last step's input), ``log_p`` = log N(z̃) − ψ(z̃)
    (exact for the toys), ``log_p_model`` (the model's default likelihood where that is another one: the digits' ODE;
    ``model_likelihood`` None: then), ``inversion_status`` (0 exact, 1 approximate, 2 failed), ``residual``,
    ``gap`` (RMS of G(z̃) − the guided x_0), ``latent_shift`` (RMS of z̃ − z: at ρ = 0 the inversion's own error), and
    the model's figures (``explorer.guidance.figures``).

    Returns ``(arrays, record)``: arrays ``rho`` (R,), ``samples`` (R, n, *sample_shape), ``latents`` (n, ...),
    every per-sample figure as (R, n); ``record["figures"]`` one dict per ρ of means with bootstrap intervals
    (``n_boot`` resamples, 95%) and the failed fraction, ``record["reward"]`` the reward's record,
    ``record["inversion_ok"]`` (every ρ below ``MAX_FAILED_FRACTION``), ``hit``, ``key``, ``seconds``.
    """
    model.check_condition(condition)
    steps = int(model.default_steps if steps is None else steps)
    invert_from = resolve_invert_from(model, invert_from)
    model_likelihood = _model_likelihood(model, model_likelihood)
    reward_record = None
    if reward is None:
        reward, reward_record = reward_cached(model, reward_n, reward_seed, steps, map, n_directions, reward_net,
                                              reward_fit, progress=_progress(progress, 0.0, 0.4), states=reward_states,
                                              **condition)
    params = report_params(model, rhos, n, seed, steps, reward, map, n_directions, invert_from, model_likelihood,
                           n_boot, condition)
    rhos = params["rhos"]
    lo = 0.0 if reward_record is None or reward_record.get("hit") else 0.4

    def compute():
        ctx = FigureContext(model, n)
        per: list[dict] = []
        summary = []
        for i, rho in enumerate(rhos):
            if progress is not None:
                progress(lo + (1 - lo) * i / len(rhos), f"ρ = {rho:g}: guided samples, inversion, ψ")
            m = measure_rho(model, reward, rho, n, seed, steps, map, n_directions, invert_from, model_likelihood,
                            ctx, **condition)
            per.append(m)
            figs = bootstrap(ctx.statistics(m["samples"], m), n, n_boot, seed=seed, max_boot=MAX_BOOT)
            status = m["inversion_status"]
            summary.append({"rho": rho, **figs,
                            "inversion": {name: float((status == k).mean()) for k, name in enumerate(STATUS_NAMES)},
                            "failed_fraction": float((status == FAILED).mean()),
                            "residual_median": float(np.median(m["residual"])),
                            "gap_median": float(np.median(m["gap"])),
                            "latent_shift_median": float(np.median(m["latent_shift"]))})
        if progress is not None:
            progress(1.0, "done")
        arrays = {"rho": np.asarray(rhos), "latents": model.latents(n, seed).numpy()}
        pixel = model.decode_module() is None  # then x_0 is the sample itself
        for key in per[0]:
            if not (pixel and key == "x0"):
                arrays[key] = np.stack([m[key] for m in per])
        extras = {"swd_floor": ctx.swd_floor, "swd_floor_source": ctx.swd_floor_source}
        arrays["summary_json"] = np.array(json.dumps(cache.jsonable({"figures": summary, **extras})))
        arrays["reward_record_json"] = np.array(json.dumps(cache.jsonable(reward.record)))
        return arrays

    arrays, record = cache.cached("guidance", params, compute, weights_hash=model.weights_hash)
    summary = json.loads(str(arrays.pop("summary_json")))
    rrec = json.loads(str(arrays.pop("reward_record_json")))
    figures = summary.pop("figures")
    ok = all(f["failed_fraction"] < MAX_FAILED_FRACTION for f in figures)
    out = {**record, "params": params, "figures": figures, **summary, "reward": rrec, "inversion_ok": ok,
           "reward_cache": None if reward_record is None else {k: reward_record.get(k) for k in
                                                                 ("key", "hit", "psi_hit", "seconds")}}
    return {k: np.asarray(v) for k, v in arrays.items()}, out


def guidance_is_cached(model, rhos: Sequence[float] = (-1.0, 0.0, 1.0, 2.0), n: int = 512, seed: int = 0,
                       steps: int | None = None, reward: Reward | None = None, *, reward_n: int = 2048,
                       reward_seed: int = 1, map: str = "sampler", n_directions: int | None = None,
                       reward_net: dict | None = None, reward_fit: dict | None = None,
                       reward_states: str = DEFAULT_STATES, invert_from: str = "auto",
                       model_likelihood: bool | None = None, n_boot: int = N_BOOT, **condition) -> bool:
    """Whether ``guidance_report`` with these arguments would only read from disk (the reward and the report)."""
    steps = int(model.default_steps if steps is None else steps)
    if reward is None:
        rparams = reward_entry_params(model, reward_n, reward_seed, steps, map, n_directions, reward_net, reward_fit,
                                      reward_states, condition)
        if not cache.exists("guidance_reward", rparams, model.weights_hash):
            return False
        reward, _ = reward_cached(model, reward_n, reward_seed, steps, map, n_directions, reward_net, reward_fit,
                                  states=reward_states, **condition)
    params = report_params(model, rhos, n, seed, steps, reward, map, n_directions,
                           resolve_invert_from(model, invert_from), _model_likelihood(model, model_likelihood),
                           n_boot, condition)
    return cache.exists("guidance", params, model.weights_hash)


def _model_likelihood(model, asked: bool | None) -> bool:
    """Whether the report also evaluates the model's default likelihood: asked, or (None) where that is another
    likelihood than the plain sampler's change of variables (the digits' ODE)."""
    if asked is not None:
        return bool(asked)
    return bool(model.capabilities.likelihoods) and (model.default_likelihood or {}).get("method") not in (
        None, "discrete")


def figures_table(record: dict):
    """``record["figures"]`` as a pandas DataFrame: one row per ρ, columns ``<figure>``, ``<figure>_lo``,
    ``<figure>_hi`` and the inversion's failed fraction."""
    import pandas as pd

    rows = []
    for f in record["figures"]:
        row = {"rho": f["rho"]}
        for name, v in f.items():
            if isinstance(v, dict) and "value" in v:
                row[name], row[f"{name}_lo"], row[f"{name}_hi"] = v["value"], v["ci_low"], v["ci_high"]
        row["failed_fraction"] = f["failed_fraction"]
        rows.append(row)
    return pd.DataFrame(rows)


def samples_table(arrays: dict):
    """One row per ρ and sample: ρ, the sample index, its coordinates (point models) and every per-sample figure."""
    import pandas as pd

    R, n = arrays["psi_measured"].shape
    cols = {"rho": np.repeat(arrays["rho"], n), "sample": np.tile(np.arange(n), R)}
    if arrays["samples"].reshape(R, n, -1).shape[2] <= 16:
        flat = arrays["samples"].reshape(R * n, -1)
        for j in range(flat.shape[1]):
            cols[f"x{j}"] = flat[:, j]
    for k, v in arrays.items():
        if k not in ("rho", "samples", "latents", "x0", "inverted_latents") and np.ndim(v) == 2 and v.shape == (R, n):
            cols[k] = v.reshape(-1)
    df = pd.DataFrame(cols)
    df["inversion"] = np.asarray(STATUS_NAMES, dtype=object)[df["inversion_status"].to_numpy()]
    return df


__all__ = ["CACHE_VERSION", "MAX_FAILED_FRACTION", "figures_table", "guidance_is_cached", "guidance_report",
           "measure_rho", "resolve_invert_from", "reward_cached", "reward_entry_params", "samples_table"]
