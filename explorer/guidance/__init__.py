"""Geometry reward guidance (DESIGN.md §6, issue 15): a reward r_φ(x_t, t) ≈ ψ(z) trained on DDIM trajectories, the
reward-guided DDIM sampler, and what guidance of strength ρ does to ψ, likelihood, quality, diversity and memorization.

One module per job: ``targets`` (the training set), ``reward`` (the network and its files), ``fit`` (training),
``sampler`` (guided DDIM), ``inversion`` (the latent a guided sample corresponds to under the plain sampler),
``figures`` (quality, diversity, memorization, bootstrap intervals) and ``report`` (everything at once, through the
disk cache: what the CLI and the Guidance page call).
"""

from __future__ import annotations

from explorer.guidance.fit import fit_reward
from explorer.guidance.reward import Reward, load_reward, save_reward
from explorer.guidance.sampler import GuidedDDIM, guided_generator, guided_sample
from explorer.guidance.targets import RewardData, psi_of_latents, reward_training_set

__all__ = ["GuidedDDIM", "Reward", "RewardData", "fit_reward", "guided_generator", "guided_sample", "load_reward",
           "psi_of_latents", "reward_training_set", "save_reward"]
