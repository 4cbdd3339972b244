"""Geometry reward guidance (DESIGN.md §6, issue 15): the reward-guided DDIM sampler."""

from __future__ import annotations

from explorer.guidance.sampler import GuidedDDIM, guided_generator, guided_sample

__all__ = ["GuidedDDIM", "guided_generator", "guided_sample"]
