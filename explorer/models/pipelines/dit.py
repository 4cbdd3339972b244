"""``DiTPipeline``: a class-conditional ``DiTTransformer2DModel`` on the latent of an ``AutoencoderKL``.

Conditioning: ``class_label`` (a class number, or a name from the labels) and ``guidance_scale`` (default 1: the
class-conditional ε itself; above 1, classifier-free guidance against the null class, as ``DiTPipeline`` does with
its default 4). Without ``class_label`` the ε is the unconditional one (the null class). The null class is
``num_embeds_ada_norm`` (1000 for the ImageNet DiTs, what ``DiTPipeline`` hard-codes). The learned-σ channels are
dropped (``out_channels == 2 · in_channels``).

Labels: ``id2label`` in model_index.json when present; else ``labels.json`` (an object {"0": "tench, Tinca tinca",
…} or a list) or ``labels.txt`` (one label a line) in the folder, since ``save_pretrained`` does not keep
``id2label``; else class numbers. A label may hold several comma-separated names (ImageNet's), each of which
names the class.
"""

from __future__ import annotations

import json

from explorer.models.base import Capabilities
from explorer.models.pipelines.adapter import LatentPipelineModel
from explorer.models.pipelines.adapter import guidance_scale as check_scale
from explorer.models.pipelines.folder import PipelineError
from explorer.models.pipelines.load import DEFAULT_STEPS, load_component
from explorer.models.pipelines.networks import DiTEps, Prediction, prepare_for_forward_ad

MAPS = ("sampler", "from_t", "denoiser", "decoder")
CONDITIONING = ("class_label", "guidance_scale")


class DiTModel(LatentPipelineModel):
    def __init__(self, folder, schedule, prediction: str, meta: dict):
        from diffusers import AutoencoderKL, DiTTransformer2DModel

        self.transformer = load_component(folder, "transformer", DiTTransformer2DModel)
        vae = load_component(folder, "vae", AutoencoderKL)
        cfg = self.transformer.config
        prepare_for_forward_ad(self.transformer)
        self._init_vae(vae, (cfg.in_channels, cfg.sample_size, cfg.sample_size))
        self.schedule, self.prediction_type = schedule, prediction
        self._prediction = Prediction(prediction, schedule.alphas_cumprod, cfg.in_channels,
                                      self.transformer.out_channels)
        self.null_class = int(cfg.num_embeds_ada_norm)
        self.labels = read_labels(folder, self.null_class)
        self._names = {}
        for i, label in (self.labels or {}).items():
            for name in str(label).split(","):
                self._names.setdefault(name.strip().lower(), i)
        record = meta.get("record") or {}
        self.default_steps = int(record.get("default_steps", DEFAULT_STEPS))
        self.training_set = None
        self.meta = {**meta, "n_classes": self.null_class, "null_class": self.null_class,
                     "labels": None if self.labels is None else {str(k): v for k, v in self.labels.items()},
                     "default_steps": self.default_steps}
        self._init_likelihood(record)
        self.capabilities = Capabilities(maps=MAPS, likelihoods=("ode",), piecewise_linear=False, training_set=False,
                                         conditioning=CONDITIONING, step_jacobian=False, diffusion=True)

    @property
    def n_classes(self) -> int:
        """Classes 0 … n_classes − 1 (n_classes itself is the null class)."""
        return self.null_class

    @property
    def class_names(self) -> list[str]:
        """A name per class, indexed by class number (a class picker's options): the folder's label where it has
        one (ImageNet's hold several comma-separated names), else the number itself."""
        labels = self.labels or {}
        return [str(labels.get(i, i)) for i in range(self.null_class)]

    def canonical_condition(self, condition: dict | None = None) -> dict:
        """As ``GenerativeModel.canonical_condition``, with ``class_label`` as its class number."""
        out = super().canonical_condition(condition)
        if out.get("class_label") is not None:
            out["class_label"] = self.class_id(out["class_label"])
        return out

    def class_id(self, class_label) -> int:
        """A class number in [0, n_classes] (n_classes: the null class) from a number or a label's name."""
        if isinstance(class_label, str) and not class_label.strip().lstrip("-").isdigit():
            key = class_label.strip().lower()
            if key not in self._names:
                known = ", ".join(sorted(self._names)[:5]) if self._names else "none (this folder has no labels)"
                raise ValueError(f"class_label {class_label!r} is not a label of {self.name!r}; give a class number "
                                 f"in [0, {self.null_class}) or a label name (e.g. {known})")
            return self._names[key]
        try:
            cid = int(class_label)
        except (TypeError, ValueError):
            raise ValueError(f"class_label must be a class number or a label name, got {class_label!r}") from None
        if cid != class_label and not isinstance(class_label, str):
            raise ValueError(f"class_label must be a whole class number, got {class_label!r}")
        if not 0 <= cid <= self.null_class:
            raise ValueError(f"class_label must be in [0, {self.null_class}) ({self.null_class}: the null class), "
                             f"got {class_label!r}")
        return cid

    def eps_model(self, class_label=None, guidance_scale: float = 1.0, **condition):
        """ε for ``class_label`` (None: unconditional), guided against the null class when guidance_scale > 1."""
        self.check_condition(condition)
        scale = check_scale(guidance_scale)
        cid = self.null_class if class_label is None else self.class_id(class_label)
        if scale > 1 and cid == self.null_class:
            raise ValueError("guidance_scale above 1 needs a class_label (guidance pushes away from the null class)")
        return DiTEps(self.transformer, self._prediction, cid, self.null_class, scale)

    def _convert_networks(self, device, dtype) -> None:
        super()._convert_networks(device, dtype)
        self.transformer = self.converted(self.transformer, device, dtype)


def read_labels(folder, n_classes: int) -> dict[int, str] | None:
    """{class id: label} from model_index.json's ``id2label``, else ``labels.json`` / ``labels.txt`` in the folder,
    else None (class numbers)."""
    source = folder.index.get("id2label")
    where = folder.path / "model_index.json"
    if source is None and (folder.path / "labels.json").is_file():
        where = folder.path / "labels.json"
        try:
            source = json.loads(where.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise PipelineError(f"{where} is not readable JSON ({err}); write it as {{\"0\": \"label\", …}}") from None
    elif source is None and (folder.path / "labels.txt").is_file():
        where = folder.path / "labels.txt"
        source = [line.strip() for line in where.read_text().splitlines() if line.strip()]
    if source is None:
        return None
    items = enumerate(source) if isinstance(source, list) else source.items() if isinstance(source, dict) else None
    try:
        labels = {int(k): str(v) for k, v in items}
    except (TypeError, ValueError):
        labels = None
    if not labels or not all(0 <= k < n_classes for k in labels):
        raise PipelineError(f"the labels in {where} must map class numbers in [0, {n_classes}) to names")
    return labels
