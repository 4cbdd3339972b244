"""Every view's "the same from the command line" command parses with the CLI's own parser."""

from __future__ import annotations

import shlex

import pytest

from explorer.cli import build_parser
from webui import commands

HINTS = [
    commands.local_geometry("digits/full", "from_t", 20, 170, [0, 1, 2], 16, 12.0, 64, 0.4),
    commands.local_geometry("toy2d/ring", "sampler", 50, None, [], 128, 3.0, 2, 0.0118),
    commands.geodesics("toy2d/ring", "model", 2000, 500, 10, 3, 0.0562, 1.0, 3, 7),
    commands.image_geodesics("digits/full", 1000, 10, 3, 1.0, 1.0, 0, 6, 10),
    commands.embedding("toy2d/moons", "kde", 1000, [0.05, 0.3, 1, 3, 10], 10, 3, 15),
    commands.memorization("digits/memorized", 512, 0, 20, 1 / 3),
    commands.guidance("toy2d/ring", [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0], 512, 0, 50, 2048, 1, "noised", None, 1000),
]


@pytest.mark.parametrize("hint", HINTS)
def test_hint_parses(hint):
    argv = shlex.split(hint)
    assert argv[:3] == ["python", "-m", "explorer"]
    args = build_parser(argv[3]).parse_args(argv[3:])
    assert args.command == argv[3] and str(args.out)


def test_hint_values_are_the_views():
    args = build_parser("descriptors").parse_args(shlex.split(HINTS[0])[3:])
    assert (args.map, args.t, args.grid, args.anchors, args.n_directions, args.radius) == (
        "from_t", 170, 16, "0,1,2", 64, 0.4)
    assert "--t" not in HINTS[1] and "--anchors" not in HINTS[1]
    g = build_parser("geodesics").parse_args(shlex.split(HINTS[2])[3:])
    assert g.relative and g.lam == 0.0562 and (g.source, g.target) == (3, 7)


def test_conditioned_hints_carry_the_views_condition():
    """A pipeline view's condition (canonical: DiT's class number, SD's prompts, the guidance scale) becomes the
    CLI's conditioning flags, quoted, and parses back to the same values."""
    sd = {"prompt": "a photo of a 'cat'", "negative_prompt": "blurry, dark", "guidance_scale": 7.5}
    lg = commands.local_geometry("path/to/sd", "sampler", 20, None, [0, 1, 2], 4, 3.0, 8, 0.01, sd)
    a = build_parser("descriptors").parse_args(shlex.split(lg)[3:])
    assert (a.prompt, a.negative_prompt, a.guidance_scale) == (sd["prompt"], sd["negative_prompt"], 7.5)
    g = commands.guidance("path/to/dit", [0.0, 1.0], 8, 0, 3, 16, 1, "noised", None, 10,
                          condition={"class_label": 3, "guidance_scale": 2.0})
    b = build_parser("guidance").parse_args(shlex.split(g)[3:])
    assert (b.class_label, b.guidance_scale, b.prompt) == ("3", 2.0, None)
    assert "--class-label" not in HINTS[0] and "--prompt" not in HINTS[-1]
