"""'The same from the command line': the ``python -m explorer ...`` command that recomputes what a view shows,
ready to copy (pure functions; a test parses every one with the CLI's own parser)."""

from __future__ import annotations

import shlex


def _cmd(*parts) -> str:
    out = ["python", "-m", "explorer"]
    for p in parts:
        if p is None or p == []:
            continue
        out += [str(x) for x in p] if isinstance(p, list | tuple) else [str(p)]
    return " ".join(shlex.quote(x) for x in out)


def _f(x: float) -> str:
    return f"{float(x):.6g}"


#: The CLI flag of each conditioning keyword of the pipelines (``explorer.commands._args`` defines them).
CONDITION_FLAGS = {"class_label": "--class-label", "prompt": "--prompt", "negative_prompt": "--negative-prompt",
                   "guidance_scale": "--guidance-scale"}


def condition_flags(condition: dict | None) -> list:
    """``--class-label 3 --guidance-scale 2``…: a view's canonical condition as CLI flags (empty when none)."""
    out: list = []
    for key, value in (condition or {}).items():
        out += [CONDITION_FLAGS[key], _f(value) if key == "guidance_scale" else value]
    return out


def local_geometry(spec: str, map_name: str, steps: int, t, seeds, n: int, extent: float, n_directions: int,
                   radius: float, condition: dict | None = None) -> str:
    return _cmd("descriptors", "--model", spec, "--map", map_name, "--steps", steps, condition_flags(condition),
                ["--t", t] if t is not None and map_name in ("from_t", "denoiser") else None,
                "--grid", n, "--extent", _f(extent),
                ["--anchors", ",".join(map(str, seeds))] if len(seeds) == 3 else None,
                "--n-directions", n_directions, "--radius", _f(radius), "--out", "maps.npz")


def geodesics(spec: str, source: str, n: int, n_background: int, k: int, n_quad: int, lam: float, p0: float,
              i: int, j: int) -> str:
    return _cmd("geodesics", "--model", spec, "--density", source, "--n", n, "--background", n_background, "--k", k,
                "--n-quad", n_quad, "--relative", "--lam", _f(lam), "--p0", _f(p0), "--source", i, "--target", j,
                "--out", "geodesic.npz")


def image_geodesics(spec: str, n: int, k: int, n_quad: int, lam: float, p0: float, i: int, j: int,
                    n_points: int) -> str:
    return _cmd("geodesics", "--model", spec, "--n", n, "--k", k, "--n-quad", n_quad, "--relative", "--lam", _f(lam),
                "--p0", _f(p0), "--source", i, "--target", j, "--compare", n_points, "--out", "geodesic.npz")


def embedding(spec: str, source: str, n: int, lams, k: int, n_quad: int, n_neighbors: int) -> str:
    return _cmd("embedding", "--model", spec, "--density", source, "--n", n, "--lams", [_f(x) for x in lams],
                "--k", k, "--n-quad", n_quad, "--n-neighbors", n_neighbors, "--out", "embedding")


def memorization(spec: str, n: int, seed: int, steps: int, threshold: float) -> str:
    return _cmd("memorization", "--model", spec, "--n", n, "--seed", seed, "--steps", steps, "--threshold",
                _f(threshold), "--out", "memorization")


def guidance(spec: str, rhos, n: int, seed: int, steps: int, reward_n: int, reward_seed: int, states: str,
             iterations: int | None, n_boot: int, n_directions: int | None = None,
             condition: dict | None = None) -> str:
    return _cmd("guidance", "--model", spec, "--rho=" + ",".join(_f(r) for r in rhos), "--n", n, "--seed", seed,
                condition_flags(condition),
                "--steps", steps, "--reward-n", reward_n, "--reward-seed", reward_seed, "--reward-states", states,
                ["--reward-iterations", iterations] if iterations is not None else None,
                ["--n-directions", n_directions] if n_directions is not None else None,
                "--n-boot", n_boot, "--out", "guidance")
