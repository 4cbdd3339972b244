"""Conditioning flags shared by commands that build a generator: ``--class-label`` (DiT), ``--prompt`` and
``--negative-prompt`` (Stable Diffusion), ``--guidance-scale`` (both). Only the flags given reach the model, which
refuses conditioning it does not take."""

from __future__ import annotations


def add_condition_arguments(p) -> None:
    g = p.add_argument_group("conditioning (diffusers pipelines)")
    g.add_argument("--class-label", default=None,
                   help="class number or label name of a class-conditional pipeline (DiT; default: unconditional)")
    g.add_argument("--prompt", default=None, help="text prompt of a text-to-image pipeline (default: empty)")
    g.add_argument("--negative-prompt", default=None,
                   help="prompt whose embedding guidance pushes away from (default: empty)")
    g.add_argument("--guidance-scale", type=float, default=None,
                   help="classifier-free guidance scale s ≥ 1 (default 1: no guidance)")


def condition_from_args(args) -> dict:
    """The conditioning keywords of the flags that were given (a class label stays a string: the model reads a
    number or a name)."""
    names = ("class_label", "prompt", "negative_prompt", "guidance_scale")
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}
