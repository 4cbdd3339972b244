"""GPU benchmark: ψ per latent through real-sized Stable Diffusion 1.x networks (random weights), as a ratio to one
sampling pass of the same map, at P = 8 and 16 directions, in float32 and bfloat16.

Maps: the SD VAE decoder (4 × 64 × 64 → 3 × 512 × 512, 83 M parameters), and a 2-step DDIM sampler over the SD 1.x
UNet (4 × 64 × 64, 860 M parameters, a fixed random 77 × 768 prompt embedding, no guidance); the ratio does not
depend on the number of steps. Both use the adapter's own networks (``explorer.models.pipelines.networks``: the
classic attention processor, which forward-mode AD needs, in the plain pass too) and ``local_descriptors``
(vmap over jvp, chunked by the memory budget). Weights are random: timings depend on shapes, not on values.

Run where CUDA is available: .venv/bin/python bench/bench_gpu.py [--out results.json]  (a few minutes on one
H100/H200-class GPU). Without CUDA it prints that it was skipped and exits 0; ``--tiny`` runs scaled-down networks
on whatever device there is, to check the script itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

SD_UNET = {"sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
           "block_out_channels": (320, 640, 1280, 1280), "cross_attention_dim": 768, "attention_head_dim": 8,
           "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
           "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3}
SD_VAE = {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2, "sample_size": 512,
          "block_out_channels": (128, 256, 512, 512), "down_block_types": ("DownEncoderBlock2D",) * 4,
          "up_block_types": ("UpDecoderBlock2D",) * 4, "scaling_factor": 0.18215}
TINY_UNET = {**SD_UNET, "sample_size": 8, "block_out_channels": (16, 32, 32, 32), "norm_num_groups": 8,
             "cross_attention_dim": 16, "attention_head_dim": 4, "layers_per_block": 1}
TINY_VAE = {**SD_VAE, "sample_size": 64, "block_out_channels": (16, 32, 32, 32), "norm_num_groups": 8,
            "layers_per_block": 1}
PROMPT_TOKENS = 77


def build(tiny: bool, device: torch.device, dtype: torch.dtype, steps: int) -> dict:
    """{map name: (G, latent shape)} for the decoder and the UNet sampler, on ``device`` in ``dtype``."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    from explorer.models.ddim import DDIMChain, NoiseSchedule
    from explorer.models.pipelines.load import PINNED
    from explorer.models.pipelines.networks import Prediction, TextUNetEps, VAEDecode, prepare_for_forward_ad

    torch.manual_seed(0)
    unet_cfg, vae_cfg = (TINY_UNET, TINY_VAE) if tiny else (SD_UNET, SD_VAE)
    unet, vae = UNet2DConditionModel(**unet_cfg).eval(), AutoencoderKL(**vae_cfg).eval()
    prepare_for_forward_ad(unet, vae)
    for net in (unet, vae):
        torch.nn.Module.to(net, device=device, dtype=dtype).requires_grad_(False)
    sched = NoiseSchedule(DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                        **PINNED))
    emb = torch.randn(1, PROMPT_TOKENS, unet_cfg["cross_attention_dim"], device=device, dtype=dtype)
    eps = TextUNetEps(unet, Prediction("epsilon", sched.alphas_cumprod, 4, 4), emb, emb, 1.0)
    shape = (4, unet_cfg["sample_size"], unet_cfg["sample_size"])
    decoder = VAEDecode(vae, vae_cfg["scaling_factor"])
    sampler = DDIMChain(eps, sched.alphas_cumprod, sched.chain(steps))
    return {"decoder": (decoder, shape), f"UNet sampler ({steps} steps)": (sampler, shape)}


def _timed(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="scaled-down networks (checks the script on a CPU)")
    ap.add_argument("--steps", type=int, default=2, help="DDIM steps of the UNet sampler (default 2)")
    ap.add_argument("--P", default="8,16", help="sketch sizes (default 8,16)")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    args = ap.parse_args()
    if not torch.cuda.is_available() and not args.tiny:
        print("bench_gpu: skipped: no CUDA device here (torch.cuda.is_available() is False); run it on a GPU machine, "
              "or pass --tiny to check the script on this one")
        return 0
    from explorer.descriptors import local_descriptors

    device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}; {'tiny networks' if args.tiny else 'SD 1.x sizes'}, random "
          "weights, one latent per measurement")
    print()
    print("| map | dtype | P | one pass (s) | ψ (s) | ψ / pass | peak memory (GiB) |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for dtype_name in args.dtypes.split(","):
        dtype = getattr(torch, dtype_name)
        maps = build(args.tiny, device, dtype, args.steps)
        for map_name, (G, shape) in maps.items():
            z = torch.randn(1, *shape, generator=torch.Generator().manual_seed(0)).to(dtype)
            with torch.no_grad():
                G(z.to(device))  # warm-up
                t_pass = min(_timed(lambda G=G, z=z: G(z.to(device)), device) for _ in range(2))
            for P in (int(p) for p in args.P.split(",")):
                row = {"device": name, "map": map_name, "dtype": dtype_name, "P": P, "pass_s": t_pass}
                try:
                    if device.type == "cuda":
                        torch.cuda.reset_peak_memory_stats(device)
                    local_descriptors(G, z, n_directions=P)  # warm-up (and the kernels' first compile)
                    row["psi_s"] = _timed(lambda G=G, z=z, P=P: local_descriptors(G, z, n_directions=P), device)
                    row["ratio"] = row["psi_s"] / t_pass
                    if device.type == "cuda":
                        row["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
                except torch.cuda.OutOfMemoryError as err:
                    row["error"] = f"out of memory ({str(err).splitlines()[0][:80]})"
                rows.append(row)
                if "error" in row:
                    print(f"| {map_name} | {dtype_name} | {P} | {t_pass:.3f} | {row['error']} | | |", flush=True)
                else:
                    peak = f"{row['peak_gib']:.1f}" if "peak_gib" in row else "n/a"
                    print(f"| {map_name} | {dtype_name} | {P} | {t_pass:.3f} | {row['psi_s']:.2f} | "
                          f"{row['ratio']:.1f}× | {peak} |", flush=True)
        del maps
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
