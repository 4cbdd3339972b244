"""Property test of the CLI (issue 11): random bad arguments never end in a traceback.

In process through ``explorer.cli.main`` with EXPLORER_DEBUG=1, so that an unexpected exception (a bug)
escapes and fails the test instead of becoming an ``internal error`` line. Every example holds at least one
bad value, after a fixed prefix of cheap sizes, so that even a bad value that slipped through costs little.
"""

from __future__ import annotations

import contextlib
import io
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer import files
from explorer.cli import main

# not "--": CPython 3.11's argparse turns --k=-- into an empty list before any type check
INT_WORDS = ["abc", "", "1.5", "nan", "1e3", "0x10", "-", "٣x"]
FLOAT_WORDS = ["abc", "", "nan", "inf", "-inf", "1e309", "-1e309", "NaN", "0x1p3"]


def bad_positive_int():
    return st.one_of(st.sampled_from(INT_WORDS), st.integers(max_value=0).map(str))


def bad_nonnegative_int():
    return st.one_of(st.sampled_from(INT_WORDS), st.integers(max_value=-1).map(str))


def bad_seed():
    return st.one_of(bad_nonnegative_int(), st.integers(min_value=2**32, max_value=2**80).map(str))


def bad_positive_float():
    floats = st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not (math.isfinite(x) and x > 0))
    return st.one_of(st.sampled_from(FLOAT_WORDS), floats.map(repr))


def bad_fraction():
    return st.one_of(bad_positive_float(), st.floats(min_value=1.0001, max_value=1e300).map(repr))


def bad_model(paths):
    return st.one_of(st.sampled_from(["nope", "toy2d/nope", "../../etc/passwd", "/dev/null", "x.safetensors", "",
                                      "toy2d/ring.safetensors", *paths["models"]]),
                     st.text(max_size=12).filter(lambda s: s not in ("toy2d/ring", "toy2d/moons", "toy2d/circles",
                                                                    "toy2d/spiral", "digits/full",
                                                                    "digits/memorized")))


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    """Bad model files and CSVs, a writable output folder, and private EXPLORER_HOME / EXPLORER_CACHE_DIR."""
    import shutil

    from explorer.models import ASSETS

    root = tmp_path_factory.mktemp("cli-property")
    models = []
    for name, damage in (("trunc", lambda p: p.write_bytes(p.read_bytes()[:100])),
                         ("noise", lambda p: p.write_bytes(np.random.default_rng(1).bytes(3000))),
                         ("fifo", lambda p: (p.unlink(), os.mkfifo(p)))):
        st_path = root / f"{name}.safetensors"
        shutil.copy(ASSETS / "toy2d/ring.safetensors", st_path)
        shutil.copy(ASSETS / "toy2d/ring.json", st_path.with_suffix(".json"))
        damage(st_path)
        models.append(str(st_path))
    csvs = {"same": "x,y\n" + "1,2\n" * 30, "nanfirst": "nan,1\n" + "".join(f"{i},{i}\n" for i in range(30)),
            "three": "1,2,3\n" * 30, "empty": "", "text": "hello\nworld\n"}
    for name, text in csvs.items():
        (root / f"{name}.csv").write_text(text)
    (root / "binary.csv").write_bytes(b"\xff\xfe\x00" * 50)
    (root / "folder.csv").mkdir()
    (root / "a-file").write_text("")
    out = root / "out"
    out.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLORER_HOME", str(root / "home"))
        mp.setenv("EXPLORER_CACHE_DIR", str(root / "cache"))
        mp.setenv("EXPLORER_DEBUG", "1")
        yield {"root": root, "out": out, "models": models,
               "csvs": [str(root / f"{n}.csv") for n in [*csvs, "binary", "folder", "missing"]]}


def bad_options(paths) -> dict[str, dict[str, st.SearchStrategy]]:
    out = str(paths["out"])
    bad_out = st.sampled_from(["", "/", out + "/", out])
    density = {"--model": bad_model(paths), "--n": st.sampled_from(["1", "0", "-3", *INT_WORDS]),
               "--density": st.sampled_from(["ode", "", "KDE"]), "--bandwidth": bad_positive_float(),
               "--lam": bad_positive_float(), "--p0": bad_positive_float(), "--k": bad_positive_int(),
               "--n-quad": st.one_of(bad_positive_int(), st.just("1000000")), "--seed": bad_seed(), "--out": bad_out}
    return {
        "descriptors": {"--model": bad_model(paths), "--map": st.sampled_from(["x", "", "Sampler"]),
                        "--steps": st.one_of(bad_positive_int(), st.just("100000")),
                        "--t": bad_nonnegative_int(),  # a t >= T is an error only for the maps that use t
                        "--grid": st.one_of(st.sampled_from(["1", "0", "-2", "1000000", *INT_WORDS])),
                        "--extent": bad_positive_float(), "--radius": bad_positive_float(),
                        "--anchors": st.one_of(st.sampled_from(["1,2", "a,b,c", "1,2,3,4", "-1,0,1", "", ",,",
                                                                "99999999999999999999,0,1"]), st.text(max_size=10)),
                        "--n-directions": st.one_of(bad_positive_int(), st.just("3")), "--seed": bad_seed(),
                        "--dtype": st.sampled_from(["float16", "int", ""]), "--out": bad_out},
        "geodesics": {**density, "--source": st.one_of(bad_nonnegative_int(), st.just("100000")),
                      "--target": st.one_of(bad_nonnegative_int(), st.just("100000")),
                      "--background": bad_nonnegative_int(), "--refine": st.one_of(bad_nonnegative_int(), st.just("1")),
                      "--compare": bad_nonnegative_int()},
        "cluster": {**density, "--n-clusters": bad_positive_int(), "--sigma": bad_positive_float()},
        "convergence": {"--sizes": st.sampled_from(["1", "0", *INT_WORDS]), "--lams": bad_positive_float(),
                        "--p0": bad_positive_float(), "--k": bad_positive_int(), "--n-quad": bad_positive_int(),
                        "--ref-grid": st.sampled_from(["20", "0", *INT_WORDS]), "--repeats": bad_positive_int(),
                        "--seed": bad_seed(), "--out": bad_out},
        "memorization": {"--model": bad_model(paths), "--n": bad_positive_int(), "--seed": bad_seed(),
                         "--steps": st.one_of(bad_positive_int(), st.just("5000")),
                         "--n-directions": st.one_of(bad_positive_int(), st.just("3")),
                         "--radius": bad_positive_float(), "--threshold": bad_fraction(),
                         "--duplicate-tol": st.sampled_from(["-1", *FLOAT_WORDS]),
                         "--batch-size": bad_positive_int(), "--out": bad_out},
        "train": {"--csv": st.sampled_from(paths["csvs"]), "--iterations": bad_positive_int(), "--seed": bad_seed(),
                  "--dataset": st.sampled_from(["nope", ""]), "--variant": st.sampled_from(["half", ""]),
                  "--out": st.sampled_from([str(paths["root"] / "a-file"), str(files.ASSETS)])},
    }


#: Cheap sizes put before the drawn arguments (argparse keeps the last value of an option).
PREFIX = {
    "descriptors": ["--grid", "4", "--steps", "2"],
    "geodesics": ["--density", "kde", "--n", "40", "--background", "0"],
    "cluster": ["--density", "kde", "--n", "40"],
    "convergence": ["--sizes", "20", "--ref-grid", "41", "--repeats", "1", "--lams", "1"],
    "memorization": ["--n", "4", "--steps", "2", "--no-likelihood"],
    "train": ["toy2d", "--iterations", "1"],
}


@st.composite
def bad_command_line(draw, paths):
    options = bad_options(paths)
    command = draw(st.sampled_from(sorted(options)))
    names = draw(st.lists(st.sampled_from(sorted(options[command])), min_size=1, max_size=3, unique=True))
    argv = [command, *PREFIX[command]]
    if "--out" not in names and command != "train":
        argv += ["--out", str(paths["out"] / "result")]
    for name in names:
        argv += [f"{name}={draw(options[command][name])}"]  # '=' keeps values such as '-1' or '' attached
    return argv


def late_failures(paths) -> dict[str, list[list[str]]]:
    """Values that pass argparse and must be refused by the command: bad files, sizes too large for memory or
    for the model, indices out of range, outputs that cannot be written."""
    blocked = str(paths["root"] / "trunc.safetensors" / "x")  # its parent is a file
    models = [["--model", m] for m in [*paths["models"], "toy2d/nope", "/dev/null", "x.safetensors"]]
    return {
        "descriptors": [*models, ["--steps", "100000"], ["--grid", "1000000"], ["--n-directions", "3"],
                        ["--map", "from_t", "--t", "1000"], ["--map", "denoiser"], ["--out", blocked]],
        "geodesics": [*models, ["--n-quad", "1000000"], ["--source", "100000"], ["--target", "100000"],
                      ["--bandwidth", "1e-300"], ["--refine", "1"], ["--out", blocked]],
        "cluster": [*models, ["--bandwidth", "1e-300"], ["--n-quad", "1000000"], ["--out", blocked]],
        "memorization": [*models, ["--steps", "5000"], ["--n-directions", "3"], ["--out", blocked]],
        "train": [*[["--csv", c] for c in paths["csvs"]], ["--dataset", "ring", "--out", str(files.ASSETS)],
                  ["--dataset", "ring", "--out", str(paths["root"] / "a-file" / "sub")],
                  ["--variant", "full"], ["--csv", paths["csvs"][0], "--replace-builtin"]],
        "convergence": [["--out", blocked]],
    }


@st.composite
def late_bad_command_line(draw, paths):
    pools = late_failures(paths)
    command = draw(st.sampled_from(sorted(pools)))
    argv = [command, *PREFIX[command]]
    if command != "train":
        argv += ["--out", str(paths["out"] / "result")]
    for extra in draw(st.lists(st.sampled_from(pools[command]), min_size=1, max_size=2)):
        argv += extra
    return argv


def check_one(argv) -> None:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse: usage and an error line
            rc = exc.code
    text = err.getvalue()
    assert isinstance(rc, int) and rc != 0, (argv, rc, text)
    assert "Traceback" not in text, (argv, text)
    lines = [line for line in text.splitlines() if line.startswith("error:") or ": error:" in line]
    assert lines, (argv, text)


SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow], "database": None,
            "derandomize": True}


def test_bad_arguments_never_give_a_traceback(paths):
    given(bad_command_line(paths))(settings(max_examples=60, **SETTINGS)(lambda argv: check_one(argv)))()


def test_bad_files_and_sizes_never_give_a_traceback(paths):
    given(late_bad_command_line(paths))(settings(max_examples=30, **SETTINGS)(lambda argv: check_one(argv)))()
