"""The cached computations behind every view of the app, as plain functions the CLI and notebooks use too:
``local_geometry``, ``geodesics``, ``image_geodesics``, ``embedding``, ``memorization``, their default sizes
(``sizes``) and ``precompute`` (every default view of a model into the disk cache)."""
