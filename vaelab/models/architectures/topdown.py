"""What the top-down hierarchical decoders share: latent-scale checks, space-to-depth patches, Gaussian
densities and KLs, the residual block, and the temperature of their lower latents.

A single latent vector squeezes a whole image through a few dozen numbers, and such VAEs plateau near
4.5-5 bits/dim on CIFAR-10. Here, as in VDVAE (Child 2021) and NVAE (Vahdat & Kautz 2020), the decoder
is a ResNet that starts from the global latent ``z`` and adds latent maps on the way up, each drawn from a
prior conditioned on everything above it::

    p(x, z, z_1..z_L) = p(z) p(z_1 | z) ... p(z_L | z, z_<L) p(x | z, z_1..z_L)
    q(z, z_1..z_L | x) = q(z | x) q(z_1 | x, z) ... q(z_L | x, z, z_<L)

``z`` is the latent that users see (scatters, prompts, samplers): the encoder returns its mean and log
variance as any encoder of this project does. The lower latents live inside :class:`TopDownDecoder`, which
draws them (from the posterior when given the encoder's features, from the prior when given ``z`` alone)
and returns their KL, so the VAE's loss stays ``-log p(x|...) + KL_top + kl_lower``.

Shapes. The bottom-up path halves the image while both sides are even and the shorter one exceeds 4
(32 -> 16 -> 8 -> 4, 28 -> 14 -> 7, 92 -> 46 -> 23, 128 -> ... -> 4); the decoder mirrors it with
nearest-neighbour upsampling. ``latent_scales`` names, coarse to fine, the height in pixels of each lower
latent map, one stochastic layer per entry: ``"4,8,16"`` puts a 4x4, an 8x8 and a 16x16 latent map into a
32x32 model, ``"8,8,16,16"`` two layers at each of 8x8 and 16x16. Every entry must be one of the path's
heights. The width is ``filters`` at every resolution (as in VDVAE), the blocks are bottleneck residual
blocks (1x1, 3x3, 3x3, 1x1 convolutions at a quarter of the width), and the last convolution of every
residual branch starts small, so a deep stack starts close to the identity.

Each lower layer at a resolution (VDVAE's decoder block, with NVAE's residual posterior)::

    prior:      (mu_p, log sigma_p, dh) = block_p(h)                 dh joins h: h <- h + dh
    posterior:  (dmu, dlog sigma)       = block_q([h, features])     mu_q = mu_p + dmu, ... (NVAE)
    z_i = mu_q + sigma_q * eps;  h <- block(h + proj(z_i))

Log standard deviations pass through a soft clamp (``5 tanh(x / 5)``) so no step can make sigma overflow.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from vaelab.core.errors import UserError

MIN_SIDE = 4  # the bottom-up path stops halving at this side (or at an odd one)


BOTTLENECK = 4  # residual blocks compute at width // BOTTLENECK (at least MIN_MIDDLE channels)


MIN_MIDDLE = 8


HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
LOG_STD_BOUND = 5.0  # soft clamp of log sigma: sigma stays within [e^-5, e^5]


def parse_scales(scales) -> tuple[int, ...]:
    """``"4,8,16"`` (or a sequence of ints) -> ``(4, 8, 16)``; ``"none"`` (or ``""``) -> no lower latents
    (:func:`check_scales` gives ``""`` the :func:`default_scales` first)."""
    if isinstance(scales, str) and scales.strip().lower() == "none":
        return ()
    if isinstance(scales, str):
        parts = [p.strip() for p in scales.split(",") if p.strip()]
        try:
            values = tuple(int(p) for p in parts)
        except ValueError:
            raise UserError(f"latent_scales must be comma-separated integers such as \"4,8,16\", got {scales!r}")
    else:
        values = tuple(int(v) for v in scales)
    if list(values) != sorted(values):
        raise UserError(f"latent_scales go top-down, coarse to fine (non-decreasing), got {scales!r}")
    return values


def resolutions(image_shape, patch: int = 1) -> list[int]:
    """Heights of the bottom-up path, finest first: the image's divided by ``patch``, then halved while both
    sides are even and the shorter side exceeds :data:`MIN_SIDE`."""
    height, width = int(image_shape[0]), int(image_shape[1])
    if patch < 1 or height % patch or width % patch:
        raise UserError(f"patch {patch} must be >= 1 and divide the image's height and width "
                        f"({height}x{width})")
    height, width = height // patch, width // patch
    sides = [height]
    while height % 2 == 0 and width % 2 == 0 and min(height, width) > MIN_SIDE:
        height, width = height // 2, width // 2
        sides.append(height)
    return sides


def default_scales(image_shape, patch: int = 1) -> tuple[int, ...]:
    """The lower latents when ``latent_scales`` is empty: one map at every height of the path below the
    finest, up to 32 px (32x32 images: 4, 8, 16; 28x28: 7, 14; 92 px: 23; 128 px: 4, 8, 16, 32)."""
    return tuple(side for side in reversed(resolutions(image_shape, patch)[1:]) if side <= 32)


def check_scales(image_shape, scales, patch: int = 1) -> tuple[int, ...]:
    """The parsed ``latent_scales`` (empty: :func:`default_scales`), each a height the network passes through
    (else a one-line UserError)."""
    if isinstance(scales, str) and not scales.strip():
        return default_scales(image_shape, patch)
    values, sides = parse_scales(scales), resolutions(image_shape, patch)
    for value in values:
        if value not in sides:
            raise UserError(f"latent_scales: {value} is not a resolution of the {image_shape[0]}x{image_shape[1]} "
                            f"network; choose from {', '.join(map(str, reversed(sides)))}")
    return values


def space_to_depth(x, patch: int):
    """(B, H, W, C) -> (B, H/p, W/p, p*p*C): each p x p patch of pixels becomes one position's channels."""
    _, height, width, channels = x.shape
    x = ops.reshape(x, (-1, height // patch, patch, width // patch, patch, channels))
    return ops.reshape(ops.transpose(x, (0, 1, 3, 2, 4, 5)), (-1, height // patch, width // patch,
                                                               patch * patch * channels))


def depth_to_space(x, patch: int):
    """The inverse of :func:`space_to_depth`."""
    _, height, width, channels = x.shape
    channels //= patch * patch
    x = ops.reshape(x, (-1, height, width, patch, patch, channels))
    return ops.reshape(ops.transpose(x, (0, 1, 3, 2, 4, 5)), (-1, height * patch, width * patch, channels))


@keras.saving.register_keras_serializable(package="vaelab")
class SpaceToDepth(keras.layers.Layer):
    """:func:`space_to_depth` as a layer of the encoder."""

    def __init__(self, patch: int, **kwargs):
        super().__init__(**kwargs)
        self.patch = int(patch)

    def call(self, x):
        return space_to_depth(x, self.patch)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, h // self.patch, w // self.patch, c * self.patch**2)

    def get_config(self):
        return {**super().get_config(), "patch": self.patch}


def _middle(width: int) -> int:
    return max(MIN_MIDDLE, width // BOTTLENECK)


def _soft_clamp(log_std):
    return LOG_STD_BOUND * ops.tanh(log_std / LOG_STD_BOUND)


def gaussian_kl(mu_q, log_std_q, mu_p, log_std_p):
    """KL(N(mu_q, sigma_q^2) || N(mu_p, sigma_p^2)) elementwise, the diagonal Gaussians given by log sigmas."""
    ratio = ops.exp(2.0 * (log_std_q - log_std_p))
    return log_std_p - log_std_q + 0.5 * (ratio + ops.square((mu_q - mu_p) * ops.exp(-log_std_p))) - 0.5


def gaussian_log_density(z, mu, log_std):
    """log N(z; mu, sigma^2) elementwise."""
    return -HALF_LOG_2PI - log_std - 0.5 * ops.square((z - mu) * ops.exp(-log_std))


def _sum_per_example(values):
    return ops.sum(ops.reshape(values, (ops.shape(values)[0], -1)), axis=-1)


@keras.saving.register_keras_serializable(package="vaelab")
class ResidualBlock(keras.layers.Layer):
    """Bottleneck block ``silu -> 1x1 -> silu -> kxk -> silu -> kxk -> silu -> 1x1``, added to its input when
    ``residual``. ``last_scale`` sets the variance of the last convolution's initial weights relative to a
    fan-in initialisation: 1/(number of blocks) keeps a deep stack near the identity at first (VDVAE), 0
    makes the block output zeros at first (the priors, which so start as N(0, I))."""

    def __init__(self, out_channels: int, middle: int, residual: bool = True, last_scale: float = 1.0,
                 kernel_size: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.out_channels, self.middle = int(out_channels), int(middle)
        self.residual, self.last_scale, self.kernel_size = bool(residual), float(last_scale), int(kernel_size)
        last_init = ("zeros" if self.last_scale == 0 else
                     keras.initializers.VarianceScaling(self.last_scale, "fan_in", "truncated_normal"))
        self.convs = [
            layers.Conv2D(self.middle, 1, name="in"),
            layers.Conv2D(self.middle, self.kernel_size, padding="same", name="mid1"),
            layers.Conv2D(self.middle, self.kernel_size, padding="same", name="mid2"),
            layers.Conv2D(self.out_channels, 1, kernel_initializer=last_init, name="out"),
        ]

    def build(self, input_shape):
        if self.residual and input_shape[-1] != self.out_channels:
            raise ValueError(f"a residual block needs {self.out_channels} input channels, got {input_shape[-1]}")
        shape = tuple(input_shape)
        for conv in self.convs:
            conv.build(shape)
            shape = (*shape[:-1], conv.filters)

    def call(self, x):
        h = x
        for conv in self.convs:
            h = conv(ops.silu(h))
        return x + h if self.residual else h

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.out_channels)

    def get_config(self):
        return {**super().get_config(), "out_channels": self.out_channels, "middle": self.middle,
                "residual": self.residual, "last_scale": self.last_scale, "kernel_size": self.kernel_size}


class LowerLatents:
    """Marks a top-down decoder: it draws its lower latents at ``self.temperature`` when it decodes ``z`` alone."""

    temperature: float = 0.0


def set_temperature(model, temperature: float) -> bool:
    """Draw the lower latents of every top-down decoder inside ``model`` (a saved ``…_decoder`` included) at
    ``temperature`` from now on; whether ``model`` holds one (that is, is hierarchical)."""
    layers = list(model._flatten_layers(include_self=True, recursive=True))
    found = False
    for layer in layers:
        if isinstance(layer, LowerLatents):
            layer.temperature, found = float(temperature), True
    if found:  # a compiled predict function read the old temperature when it was traced: trace it again
        for layer in layers:
            if getattr(layer, "predict_function", None) is not None:
                layer.predict_function = None
    return found
