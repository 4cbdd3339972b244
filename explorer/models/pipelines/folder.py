"""Where a pipeline is and whether we may open it: folders, the local Hugging Face cache, and every refusal.

Nothing here imports diffusers or transformers: a folder is checked from its files alone (``model_index.json``,
each component's config and weights), so that an unsupported class, a custom pipeline or pickled weights are
refused by name before any component is loaded. Each error is one sentence: what was expected, what was found,
what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

#: Pipeline class → {component: accepted classes}. The scheduler of any class is read for its noise schedule only.
SUPPORTED_PIPELINES: dict[str, dict[str, tuple[str, ...]]] = {
    "DDPMPipeline": {"unet": ("UNet2DModel",)},
    "DDIMPipeline": {"unet": ("UNet2DModel",)},
    # the original DiT-XL-2 configs name their transformer Transformer2DModel; DiTPipeline loads it as a DiT
    "DiTPipeline": {"transformer": ("DiTTransformer2DModel", "Transformer2DModel"), "vae": ("AutoencoderKL",)},
    "StableDiffusionPipeline": {"unet": ("UNet2DConditionModel",), "vae": ("AutoencoderKL",),
                                "text_encoder": ("CLIPTextModel",),
                                "tokenizer": ("CLIPTokenizer", "CLIPTokenizerFast")},
}
#: Libraries whose classes a component may name; any other names code that would have to be imported from the folder.
KNOWN_LIBRARIES = ("diffusers", "transformers")
#: Weight files, in the order tried: diffusers models, then transformers models.
WEIGHT_NAMES = ("diffusion_pytorch_model", "model")
PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")
#: Files above this size are fingerprinted (size, header and sampled blocks), not hashed whole.
FULL_HASH_BYTES = 512 * 2 ** 20

_CACHE_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


class PipelineError(ValueError):
    """A folder or cache id that cannot be opened as a supported pipeline (the message says why and what to do)."""


@dataclass
class PipelineFolder:
    """A checked pipeline folder: its class, its ``model_index.json``, and each model component's weights
    (``weights[name]``: the ``variant`` to load, "" for the plain file, and the files)."""

    path: Path
    class_name: str
    index: dict
    spec: str
    weights: dict[str, tuple[str, list[Path]]] = field(default_factory=dict)

    def component_class(self, name: str) -> str | None:
        entry = self.index.get(name)
        return entry[1] if isinstance(entry, list | tuple) and len(entry) == 2 else None

    def config(self, name: str, file: str = "config.json") -> dict:
        return read_json(self.path / name / file, f"the {name} config")


def read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise PipelineError(f"{what} is missing: expected {path}; save the pipeline again with "
                            "pipeline.save_pretrained(folder)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PipelineError(f"{what} {path} is not readable JSON ({err}); save the pipeline again") from None
    if not isinstance(data, dict):
        raise PipelineError(f"{what} {path} holds a {type(data).__name__}, not a JSON object; save the pipeline again")
    return data


# ---------------------------------------------------------------------------- which specs are ours
def looks_like_path(spec: str) -> bool:
    """A spec written as a path: absolute, home- or dot-relative, or with more than one separator."""
    return spec.startswith(("/", "~", "./", "../", ".\\")) or spec.count("/") > 1 or "\\" in spec


def claims_folder(spec: str) -> bool:
    """The folder kind takes an existing folder, and a path-like spec that names nothing (to say so)."""
    if spec.endswith((".safetensors", ".json")) or re.match(r"^[\w.]+:\w+$", spec):
        return False
    path = Path(spec).expanduser()
    return path.is_dir() or (not path.exists() and looks_like_path(spec))


def claims_cache_id(spec: str) -> bool:
    """``org/name`` that is not an existing path (tried last, after built-in names, paths and modules)."""
    return bool(_CACHE_ID.match(spec)) and not Path(spec).expanduser().exists()


# ---------------------------------------------------------------------------- the Hugging Face cache
def hf_cache_dir() -> Path:
    """The hub cache folder, read from the environment at each call: ``HF_HUB_CACHE``, else ``HF_HOME``/hub, else
    ``XDG_CACHE_HOME``/huggingface/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def cache_snapshot(repo_id: str, cache: Path | None = None, revision: str = "main") -> Path:
    """The snapshot folder of ``repo_id`` in the local cache (``models--org--name/snapshots/REV``, REV from
    ``refs/<revision>``); never the network."""
    cache = hf_cache_dir() if cache is None else Path(cache)
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    if not repo.is_dir():
        from explorer.models.registry import BUILTIN_MODELS

        raise PipelineError(f"{repo_id!r} is neither a built-in model (valid: {', '.join(BUILTIN_MODELS)}) nor a "
                            f"pipeline in the local Hugging Face cache {cache} (no {repo.name} there); download it "
                            "once where there is a network, or set HF_HUB_CACHE / HF_HOME to the cache that holds it")
    ref = repo / "refs" / revision
    snapshots = repo / "snapshots"
    if ref.is_file():
        rev = ref.read_text().strip()
    else:
        found = sorted(p.name for p in snapshots.iterdir()) if snapshots.is_dir() else []
        if len(found) != 1:
            raise PipelineError(f"{repo} has no refs/{revision} and {len(found)} snapshots; expected one of them; "
                                "download the pipeline again")
        rev = found[0]
    snap = snapshots / rev
    if not snap.is_dir():
        raise PipelineError(f"{repo} names snapshot {rev} in refs/{revision}, but {snap} is missing; download the "
                            "pipeline again")
    return snap


def cached_pipelines(cache: Path | None = None) -> list[str]:
    """The ``org/name`` ids of the supported pipelines in the local Hugging Face cache (``hf_cache_dir()``, read at
    each call), sorted; a repository whose snapshot fails ``inspect_folder`` (another kind of model, a custom
    pipeline, pickled weights, a partial download) is left out. Reads files only, never the network."""
    cache = hf_cache_dir() if cache is None else Path(cache)
    if not cache.is_dir():
        return []
    found = []
    for repo in sorted(cache.glob("models--*--*")):
        repo_id = repo.name[len("models--"):].replace("--", "/", 1)
        if not repo.is_dir() or not _CACHE_ID.match(repo_id):
            continue
        try:
            inspect_folder(cache_snapshot(repo_id, cache), repo_id)
        except (PipelineError, OSError, ValueError):
            continue
        found.append(repo_id)
    return found


# ---------------------------------------------------------------------------- checking a folder
def inspect_folder(path, spec: str | None = None) -> PipelineFolder:
    """Check ``path`` as a supported diffusers pipeline folder from its files alone, in this order: it exists, it
    has ``model_index.json``, it needs no remote code, its class is supported, its components are the expected
    classes, each model component has ``.safetensors`` weights. Raises ``PipelineError`` at the first problem."""
    path = Path(path).expanduser()
    spec = str(path) if spec is None else spec
    if not path.exists():
        raise PipelineError(f"no such folder {path}: expected a diffusers pipeline folder written by "
                            "pipeline.save_pretrained(folder), or an org/name in the local Hugging Face cache")
    if not path.is_dir():
        raise PipelineError(f"{path} is a file, not a diffusers pipeline folder; give the folder that holds "
                            "model_index.json")
    if not (path / "model_index.json").is_file():
        raise PipelineError(f"{path} is a folder but not a diffusers pipeline: it has no model_index.json; write one "
                            "with pipeline.save_pretrained(folder)")
    index = read_json(path / "model_index.json", "model_index.json")
    cls = index.get("_class_name")
    _refuse_remote_code(path, index, cls)
    if cls not in SUPPORTED_PIPELINES:
        raise PipelineError(f"unsupported pipeline class {cls!r} in {path / 'model_index.json'}; supported: "
                            f"{', '.join(SUPPORTED_PIPELINES)}")
    folder = PipelineFolder(path, cls, index, spec)
    for name, accepted in SUPPORTED_PIPELINES[cls].items():
        found = folder.component_class(name)
        if found not in accepted:
            raise PipelineError(f"{cls} in {path} needs component {name!r} of class {' or '.join(accepted)}, but "
                                f"model_index.json names {found!r}; this pipeline is not a standard {cls}")
        if name != "tokenizer":
            folder.weights[name] = find_weights(path / name, name)
    if "scheduler" not in index:
        raise PipelineError(f"{cls} in {path} has no scheduler in model_index.json; its noise schedule is read from "
                            "scheduler/scheduler_config.json")
    return folder


def _refuse_remote_code(path: Path, index: dict, cls) -> None:
    """Custom pipelines and components import code from the folder or the hub: refused (no trust_remote_code)."""
    what = None
    if isinstance(cls, list | tuple):
        what = f"a custom pipeline class {cls!r}"
    elif not isinstance(cls, str):
        raise PipelineError(f"{path / 'model_index.json'} has no _class_name string; it is not a diffusers "
                            "model_index.json")
    else:
        code = sorted(str(p.relative_to(path)) for p in (*path.glob("*.py"), *path.glob("*/*.py")))
        if code:
            what = f"Python code ({', '.join(code[:3])})"
        for name, entry in index.items():
            if what or name.startswith("_") or not isinstance(entry, list | tuple) or len(entry) != 2:
                continue
            library = entry[0]
            if library is not None and library not in KNOWN_LIBRARIES:
                what = f"component {name!r} from {library!r}, not diffusers or transformers"
            elif (path / name / "config.json").is_file():
                try:
                    config = json.loads((path / name / "config.json").read_text())
                except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                    config = {}
                if isinstance(config, dict) and config.get("auto_map"):
                    what = f"component {name!r} with an auto_map to custom code"
    if what:
        raise PipelineError(f"{path} is a custom pipeline that needs remote code ({what}); it is refused because "
                            "trust_remote_code stays off: use a standard pipeline class saved by save_pretrained")


def find_weights(component: Path, name: str) -> tuple[str, list[Path]]:
    """(variant, files) of a component's safetensors weights: the plain file, a sharded index, or one variant
    (``.fp16.safetensors``). Pickled weights alone (``.bin``) are refused; none at all is a missing-weights error."""
    if not component.is_dir():
        raise PipelineError(f"component {name!r} is missing: expected the folder {component}; save the pipeline "
                            "again with save_pretrained")
    for stem in WEIGHT_NAMES:
        single = component / f"{stem}.safetensors"
        if single.is_file():
            return "", [single]
        index = component / f"{stem}.safetensors.index.json"
        if index.is_file():
            shards = sorted(set(read_json(index, f"the {name} shard index").get("weight_map", {}).values()))
            missing = [s for s in shards if not (component / s).is_file()]
            if not shards or missing:
                raise PipelineError(f"the weights of {name!r} are incomplete: {index.name} lists "
                                    f"{', '.join(missing) or 'no shards'} that {component} does not hold; download or "
                                    "save the pipeline again")
            return "", [component / s for s in shards]
    variants = sorted(component.glob("*.*.safetensors"))
    if variants:
        variant = variants[0].name.split(".")[-2]
        return variant, [v for v in variants if v.name.split(".")[-2] == variant]
    pickled = sorted(p.name for p in component.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickled:
        raise PipelineError(f"the weights of {name!r} in {component} are pickled ({', '.join(pickled)}), which can run "
                            "arbitrary code when loaded; only .safetensors is accepted: convert them with "
                            "save_pretrained(folder, safe_serialization=True)")
    raise PipelineError(f"the weights of {name!r} are missing: {component} holds no .safetensors file; download or "
                        "save the pipeline again")


# ---------------------------------------------------------------------------- identity
def _file_digest(path: Path) -> str:
    """A file's identity: in the Hugging Face cache a blob's name (the SHA-256 of LFS files), else the SHA-256 of
    its bytes, or for files above FULL_HASH_BYTES a fingerprint (size, first MiB, 64 evenly spaced 64 KiB blocks,
    last MiB) that any re-save or re-download changes."""
    real = path.resolve()
    if real != path.absolute() and real.parent.name == "blobs" and len(real.name) >= 40:
        return "blob:" + real.name
    size = real.stat().st_size
    h = hashlib.sha256()
    with open(real, "rb") as f:
        if size <= FULL_HASH_BYTES:
            for block in iter(lambda: f.read(2 ** 20), b""):
                h.update(block)
        else:
            h.update(str(size).encode())
            offsets = [0, size - 2 ** 20] + [int(size * k / 64) for k in range(64)]
            for off in offsets:
                f.seek(off)
                h.update(f.read(2 ** 20 if off in (0, size - 2 ** 20) else 2 ** 16))
    return h.hexdigest()


def folder_hash(folder: PipelineFolder) -> str:
    """16 hex digits over everything that defines the model: model_index.json, every component's config and
    tokenizer files, the weights that will be loaded, and an ``explorer_record.json`` beside them."""
    h = hashlib.sha256()
    files = [folder.path / "model_index.json", folder.path / "explorer_record.json"]
    for name in folder.index:
        comp = folder.path / name
        if name.startswith("_") or not comp.is_dir():
            continue
        files += sorted(p for p in comp.iterdir() if p.is_file() and p.suffix in (".json", ".txt", ".model"))
    files += [p for _, (_, ws) in sorted(folder.weights.items()) for p in ws]
    for p in files:
        if p.is_file():
            h.update(str(p.relative_to(folder.path)).encode() + b"\0" + _file_digest(p).encode() + b"\0")
    return h.hexdigest()[:16]
