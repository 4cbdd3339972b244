"""Geometry reward guidance (DESIGN.md §6, issue 15): a reward r_φ(x_t, t) ≈ ψ(z) trained on DDIM trajectories and the
reward-guided DDIM sampler."""

from __future__ import annotations

from explorer.guidance.fit import fit_reward
from explorer.guidance.reward import Reward, load_reward, save_reward
from explorer.guidance.sampler import GuidedDDIM, guided_generator, guided_sample
from explorer.guidance.targets import RewardData, psi_of_latents, reward_training_set

__all__ = ["GuidedDDIM", "Reward", "RewardData", "fit_reward", "guided_generator", "guided_sample", "load_reward",
           "psi_of_latents", "reward_training_set", "save_reward"]
