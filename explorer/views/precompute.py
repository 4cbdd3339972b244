"""Fill the disk cache with every default view of a model, so that a first visit starts no computation
(``python -m explorer precompute`` writes them into the shipped ``assets/cache``)."""

from __future__ import annotations

from explorer.density.cached import has_likelihood, make_density
from explorer.views.embedding import embedding_defaults, embedding_grid
from explorer.views.local_geometry import descriptor_plane, local_geometry_defaults, pool, sample_descriptors
from explorer.views.sizes import latent_dim


def precompute_default_views(model, preset: str = "default", embedding: bool = True, log=print,
                             progress=None, guidance: bool | None = None) -> list[dict]:
    """Compute (or read) what each page shows first for ``model`` at the ``preset`` sizes, through the disk cache:
    Local geometry (pool, plane, sample descriptors, under the model's ``default_condition``), Embedding (with
    ``embedding``; over samples for a pipeline without a training set), for image models the Geodesics graph with
    its three paths (over training images, else samples) and, with a training set, the Memorization report, and for
    diffusion models the Guidance report (its reward, ψ of the reward's training latents, and the figures over the ρ
    grid): with ``guidance`` True for any diffusion model, None (default) for those of ``SHIPPED_GUIDANCE`` only
    (toy2d/ring, digits/full: a reward costs minutes on the digits), False never. Returns
    the cache records (what, kind, key, hit, seconds). ``progress(what)``, when given, makes a
    ``callback(fraction, ...)`` for each step (the CLI's progress bars)."""
    d = local_geometry_defaults(model, preset)
    t = None if d["map"] == "sampler" else d["t"]
    records = []

    def bar(what):
        return None if progress is None else progress(f"{model.name}: {what}")

    def note(what, rec):
        records.append({"what": what, "kind": rec.get("kind"), "key": rec.get("key"), "hit": rec.get("hit"),
                        "seconds": rec.get("seconds")})
        how = "read from the cache" if rec.get("hit") else f"computed in {rec.get('seconds') or 0:.1f} s"
        log(f"{model.name}: {what}: {how}")

    cond = d["condition"]
    note("pool", pool(model, d["n_pool"], d["steps"], cond)[1])
    if len(d["seeds"]) == 3 or latent_dim(model) == 2:
        note("descriptor plane", descriptor_plane(model, d["map"], d["steps"], t, d["seeds"], d["n"], d["extent"],
                                                  d["n_directions"], progress=bar("descriptor plane"),
                                                  condition=cond)[1])
    note("sample descriptors", sample_descriptors(model, d["map"], d["steps"], t, d["n_samples"], d["radius"],
                                                  d["n_directions"], progress=bar("sample descriptors"),
                                                  condition=cond)[1])
    usable = model.training_set is not None or has_likelihood(model)
    if embedding and usable:
        e = embedding_defaults(model, preset)
        note("embedding", embedding_grid(model, make_density(model, e["source"], condition=e["condition"]), e["n"],
                                         e["lams"], k=e["k"], n_quad=e["n_quad"], n_neighbors=e["n_neighbors"],
                                         progress=bar("embedding"), points=e["points"], condition=e["condition"],
                                         steps=e["steps"])[1])
    if model.image_shape is None and model.training_set is not None:  # the Geodesics view of a points model
        from explorer.jobs.kinds import run_kind
        from explorer.views.geodesics import default_endpoints, geodesic_view, geodesics_defaults, graph_job_params

        g = geodesics_defaults(model, preset)
        state, _ = run_kind("geodesic_graph", model, graph_job_params(g, make_density(model, g["source"])))
        i, j = default_endpoints(state.X, state.is_bg)
        geodesic_view(state, g["lam"], g["p0"], i, j)  # the straight line's log p
        records.append({"what": "geodesic graph", "kind": "graph_marker", "key": None, "hit": None, "seconds": None})
        log(f"{model.name}: geodesic graph of {len(state.X)} points, {state.est.n_density_evals_} log p values")
    if model.training_set is not None:
        from explorer.views.memorization import report_cached

        note("memorization report", report_cached(model, preset=preset, progress=bar("memorization report"))[1])
    if model.image_shape is not None and usable and has_likelihood(model):
        from explorer.views.image_geodesics import precompute_default_view

        precompute_default_view(model, preset, log=log)
    from explorer.views.guidance import SHIPPED_GUIDANCE, guidance_view

    if guidance is None:
        guidance = model.name in SHIPPED_GUIDANCE
    if guidance and model.capabilities.diffusion:
        note("guidance report", guidance_view(model, preset, progress=bar("guidance report"))[1])
    return records


def precompute_figures(preset: str = "default", log=print) -> list[dict]:
    """Compute (or read) every figure of the Paper figures page (``explorer.views.figures.figure_jobs``) through the
    same backend jobs the page runs. Returns one record (what, kind, seconds) per figure."""
    import time

    from explorer.jobs.kinds import run_kind
    from explorer.models import load_model
    from explorer.views.figures import figure_jobs

    records = []
    for name, (kind, spec, params) in figure_jobs(preset).items():
        start = time.perf_counter()
        run_kind(kind, load_model(spec), params)
        took = time.perf_counter() - start
        records.append({"what": f"figure {name}", "kind": kind, "seconds": took})
        log(f"figure {name} ({kind} of {spec}): {took:.1f} s")
    return records
