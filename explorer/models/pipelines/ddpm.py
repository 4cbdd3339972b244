"""``DDPMPipeline`` / ``DDIMPipeline``: an unconditional ``UNet2DModel`` in pixel space.

z = x_T and samples have the UNet's shape (in_channels, sample_size, sample_size); the likelihood is the
probability-flow ODE in pixel space (``PipelineModel.log_prob``), since the diffusion runs where the samples are. A
folder written by this project's own training (``explorer_record.json`` naming the digits data) gets its training
set, default steps and (when stored) log p_ref from that record.
"""

from __future__ import annotations

from explorer.models.base import Capabilities, TrainingSet
from explorer.models.pipelines.adapter import LIKELIHOOD, PipelineModel
from explorer.models.pipelines.folder import PipelineError
from explorer.models.pipelines.load import DEFAULT_STEPS, load_component
from explorer.models.pipelines.networks import Prediction, UNetEps, prepare_for_forward_ad

MAPS = ("sampler", "from_t", "denoiser")
__all__ = ["LIKELIHOOD", "MAPS", "PixelDDPM", "training_set_from_record"]


class PixelDDPM(PipelineModel):
    def __init__(self, folder, schedule, prediction: str, meta: dict):
        from diffusers import UNet2DModel

        self.unet = load_component(folder, "unet", UNet2DModel)
        cfg = self.unet.config
        if cfg.num_class_embeds is not None or cfg.class_embed_type is not None:
            raise PipelineError(f"the UNet of {folder.path} is class-conditional (num_class_embeds / class_embed_type "
                                f"set), which {folder.class_name} does not use; supported: unconditional UNet2DModel")
        size = cfg.sample_size
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        prepare_for_forward_ad(self.unet)
        self.schedule, self.prediction_type = schedule, prediction
        self._prediction = Prediction(prediction, schedule.alphas_cumprod, cfg.in_channels, cfg.out_channels)
        self.diffusion_shape = self.latent_shape = self.sample_shape = (int(cfg.in_channels), int(h), int(w))
        self.image_shape, self.channels = (int(h), int(w)), int(cfg.in_channels)
        record = meta.get("record") or {}
        self.default_steps = int(record.get("default_steps", DEFAULT_STEPS))
        self.training_set = training_set_from_record(record, self.sample_shape)
        self.meta = {**meta, "default_steps": self.default_steps}
        self._init_likelihood(record)
        self.capabilities = Capabilities(maps=MAPS, likelihoods=("ode",), piecewise_linear=False,
                                         training_set=self.training_set is not None, conditioning=(),
                                         step_jacobian=False, diffusion=True)

    def eps_model(self, **condition):
        self.check_condition(condition)
        return UNetEps(self.unet, self._prediction)

    def _convert_networks(self, device, dtype) -> None:
        self.unet = self.converted(self.unet, device, dtype)


def training_set_from_record(record: dict, sample_shape: tuple[int, ...]) -> TrainingSet | None:
    """The training set a record names, when the project can rebuild it exactly: the 8×8 digits of
    ``explorer.models.digits`` (``dataset`` sklearn.load_digits, a ``variant``, pixels x = v/8 − 1), as a lazy
    (N, 1, 8, 8) set with the digit labels. Any other record: None."""
    from explorer.models import digits

    if (record.get("dataset") != "sklearn.load_digits" or record.get("variant") not in digits.VARIANTS
            or record.get("pixel_scaling") != "x = v/8 - 1" or tuple(sample_shape) != (1, *digits.IMAGE_SHAPE)
            or record.get("train_indices_split_seed", digits.SPLIT_SEED) != digits.SPLIT_SEED):
        return None
    idx = digits.training_indices(record["variant"])
    if record.get("n_data") not in (None, len(idx)):
        return None

    def data():
        return digits.digit_images()[0][idx].reshape(len(idx), *sample_shape)

    def labels():
        return digits.digit_images()[1][idx]

    return TrainingSet(data, labels, size=len(idx), sample_shape=sample_shape)
