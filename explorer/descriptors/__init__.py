"""Local descriptors of a generator G: ψ (local scaling), ν / ν_eff (local rank), δ (local complexity)."""

from explorer.descriptors.complexity import LocalComplexity, activation_modules, local_complexity
from explorer.descriptors.directions import check_latents, random_directions
from explorer.descriptors.jacobian import jacobian_sketch
from explorer.descriptors.local import LocalDescriptors, descriptors_from_singular_values, local_descriptors
from explorer.descriptors.planes import DescriptorMaps, LatentPlane, descriptor_maps, latent_plane

__all__ = [
    "DescriptorMaps", "LatentPlane", "LocalComplexity", "LocalDescriptors", "activation_modules",
    "check_latents", "descriptor_maps", "descriptors_from_singular_values", "jacobian_sketch",
    "latent_plane", "local_complexity", "local_descriptors", "random_directions",
]
