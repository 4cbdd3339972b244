"""Tiny random diffusers pipelines for the tests (diffusers' ``get_dummy_components()`` habit): DDPM (pixel space,
with attention), DiT and Stable Diffusion (latent, with a VAE), built from configs in milliseconds, saved with
``save_pretrained`` (safetensors) into a temporary folder and opened through ``load_model(path)``.

Sizes: the DDPM is 1×8×8; DiT and SD run on a 4×4×4 latent that a two-block VAE decodes to 3×8×8, so d = 64 and a
full Jacobian costs little. The SD tokenizer is a CLIP BPE tokenizer over ``WORDS`` written here (transformers 5
takes ``vocab=`` and ``merges=`` as a dict and a list of pairs). Each scheduler is of the class a real pipeline of
that kind ships (DDPM, DDIM with clipping, PNDM with SD 1.x's scaled-linear betas), so the loader's pinned DDIM
conventions are exercised.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from pathlib import Path

import torch

WORDS = ("a", "photo", "of", "cat", "dog", "red", "blue", "painting", "tree")
MAX_TOKENS = 8
SD_SCHEDULE = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "steps_offset": 1,
               "skip_prk_steps": True, "set_alpha_to_one": False}


def tiny_unet2d(seed: int = 0, out_channels: int = 1, **config):
    from diffusers import UNet2DModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return UNet2DModel(**{"sample_size": 8, "in_channels": 1, "out_channels": out_channels,
                              "block_out_channels": (8, 16), "layers_per_block": 1, "norm_num_groups": 4,
                              "down_block_types": ("DownBlock2D", "AttnDownBlock2D"),
                              "up_block_types": ("AttnUpBlock2D", "UpBlock2D"), "attention_head_dim": 4,
                              **config}).eval()


def tiny_vae(seed: int = 0):
    from diffusers import AutoencoderKL

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                             up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=4,
                             norm_num_groups=4, sample_size=8, scaling_factor=0.18215).eval()


def ddpm_components(seed: int = 0, prediction_type: str = "epsilon", learned_variance: bool = False,
                    scheduler: str = "ddpm", **unet_config) -> dict:
    from diffusers import DDIMScheduler, DDPMScheduler

    variance = "learned_range" if learned_variance else "fixed_small"
    unet = tiny_unet2d(seed, out_channels=2 if learned_variance else 1, **unet_config)
    if scheduler == "ddim":
        sched = DDIMScheduler(num_train_timesteps=1000, prediction_type=prediction_type)
    else:
        sched = DDPMScheduler(num_train_timesteps=1000, prediction_type=prediction_type, variance_type=variance)
    return {"unet": unet, "scheduler": sched}


def dit_components(seed: int = 0) -> dict:
    from diffusers import DDIMScheduler, DiTTransformer2DModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = DiTTransformer2DModel(sample_size=4, patch_size=2, in_channels=4, out_channels=8, num_layers=2,
                                            num_attention_heads=2, attention_head_dim=4, num_embeds_ada_norm=1000,
                                            activation_fn="gelu-approximate", norm_type="ada_norm_zero",
                                            norm_elementwise_affine=False).eval()
        # ada-norm-zero starts at zero: give the modulations weights so the blocks do something
        for name, p in transformer.named_parameters():
            if "norm1.linear" in name or "proj_out" in name:
                p.data.normal_(0, 0.2)
    return {"transformer": transformer, "vae": tiny_vae(seed + 1),
            "scheduler": DDIMScheduler(num_train_timesteps=1000, clip_sample=True)}


def tiny_tokenizer():
    """A CLIP BPE tokenizer whose vocabulary holds the letters and every word of WORDS (merged letter by letter)."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    merges: list[tuple[str, str]] = []
    for ch in "abcdefghijklmnopqrstuvwxyz":
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    for word in WORDS:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:
            pair = (pieces[0], pieces[1])
            if pair not in merges:
                merges.append(pair)
            pieces = [pieces[0] + pieces[1]] + pieces[2:]
            vocab.setdefault(pieces[0], len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=MAX_TOKENS)


def sd_components(seed: int = 0) -> dict:
    from diffusers import PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = tiny_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(sample_size=4, in_channels=4, out_channels=4, block_out_channels=(8, 16),
                                    layers_per_block=1, norm_num_groups=4, cross_attention_dim=16,
                                    attention_head_dim=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D")).eval()
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=16, intermediate_size=24, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=MAX_TOKENS, bos_token_id=0, eos_token_id=1,
            pad_token_id=1)).eval()
    return {"unet": unet, "vae": tiny_vae(seed + 1), "text_encoder": text_encoder, "tokenizer": tokenizer,
            "scheduler": PNDMScheduler(num_train_timesteps=1000, **SD_SCHEDULE)}


def make_pipeline(kind: str, seed: int = 0, **kw):
    """The diffusers pipeline object of ``kind`` ("ddpm", "ddim", "dit", "sd") from the components above."""
    from diffusers import DDIMPipeline, DDPMPipeline, DiTPipeline, StableDiffusionPipeline

    if kind == "ddpm":
        return DDPMPipeline(**ddpm_components(seed, **kw))
    if kind == "ddim":
        return DDIMPipeline(**ddpm_components(seed, scheduler="ddim", **kw))
    if kind == "dit":
        return DiTPipeline(**dit_components(seed), **kw)
    if kind == "sd":
        return StableDiffusionPipeline(**sd_components(seed), safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False, **kw)
    raise ValueError(f"unknown tiny pipeline kind {kind!r}")


def save_pipeline(kind: str, folder, seed: int = 0, **kw) -> Path:
    folder = Path(folder)
    make_pipeline(kind, seed, **kw).save_pretrained(folder, safe_serialization=True)
    return folder


_root: Path | None = None
_saved: dict[str, Path] = {}
_lock = threading.Lock()


def tiny_folder(kind: str) -> Path:
    """The saved folder of the tiny ``kind`` pipeline (seed 0), written once per test process into a temporary
    folder removed at exit."""
    global _root
    with _lock:
        if kind not in _saved:
            if _root is None:
                _root = Path(tempfile.mkdtemp(prefix="tiny-pipelines-"))
                atexit.register(shutil.rmtree, _root, True)
            _saved[kind] = save_pipeline(kind, _root / kind)
        return _saved[kind]
