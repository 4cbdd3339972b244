"""Analyses that combine descriptors with data: on- vs off-manifold separation."""
