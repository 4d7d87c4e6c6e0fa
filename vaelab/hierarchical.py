"""The ``hierarchical`` architecture: a global latent vector on top of a top-down stack of spatial latents.

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

from vaelab.errors import UserError
from vaelab.layers import normal_noise

MIN_SIDE = 4  # the bottom-up path stops halving at this side (or at an odd one)
BOTTLENECK = 4  # residual blocks compute at width // BOTTLENECK (at least MIN_MIDDLE channels)
MIN_MIDDLE = 8
LOG_STD_BOUND = 5.0  # soft clamp of log sigma: sigma stays within [e^-5, e^5]
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


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


def _block_counts(sides: int, blocks: int, lower: int) -> int:
    """Residual blocks of the decoder that add to the residual stream: the stage blocks and one per lower
    latent layer (the scale of their initial last layers)."""
    return max(1, sides * blocks + lower)


def build_encoder(image_shape, latent_dim: int, filters: int, blocks: int, latent_scales,
                  patch: int = 1) -> keras.Model:
    """Bottom-up ResNet ``x -> [z_mean, z_log_var, *features]``: ``features`` holds the activations at each
    distinct height of ``latent_scales``, coarse to fine (the decoder's order)."""
    scales = check_scales(image_shape, latent_scales, patch)
    sides = resolutions(image_shape, patch)
    n_blocks = max(1, len(sides) * blocks)
    x = keras.Input(shape=tuple(image_shape), name="x")
    h = layers.Rescaling(2.0, offset=-1.0, name="centre")(x)
    if patch > 1:
        h = SpaceToDepth(patch, name="patches")(h)
    h = layers.Conv2D(filters, 3, padding="same", name="stem")(h)
    features = {}
    for i, side in enumerate(sides):
        if i:
            h = layers.AveragePooling2D(2, name=f"down_{side}")(h)
        for b in range(blocks):
            h = ResidualBlock(filters, _middle(filters), last_scale=1.0 / n_blocks, name=f"enc_{side}_{b}")(h)
        if side in scales:
            features[side] = h
    h = layers.Flatten(name="flatten")(layers.Activation("silu", name="top_act")(h))
    z_mean = layers.Dense(latent_dim, name="z_mean", dtype="float32")(h)
    z_log_var = layers.Dense(latent_dim, name="z_log_var", dtype="float32")(h)
    return keras.Model(x, [z_mean, z_log_var, *(features[s] for s in sorted(features))], name="encoder")


@keras.saving.register_keras_serializable(package="vaelab")
class TopDownDecoder(keras.Model):
    """``z`` or ``[z, *features]`` -> ``(params, kl, log_qp)``; see the module docstring.

    With features (training, evaluation) every lower latent is drawn from its posterior; ``kl`` (B,) is the
    analytic KL(q || p) of all lower layers summed over their dimensions and ``log_qp`` (B,) is
    ``log q - log p`` at the drawn values, the lower layers' share of an importance weight. With ``z`` alone
    (generation) each lower latent is ``mu_p + temperature * sigma_p * eps``; the default temperature 0 takes
    the prior means, so a saved decoder is deterministic (the generate scripts set ``temperature``, see
    :func:`set_temperature`). ``kl`` and ``log_qp`` are then zeros.
    All sub-layers are built in ``__init__``, so a model made from its config holds its weights at once (which
    loading an ``.h5`` file needs).
    """

    def __init__(self, latent_dim: int, image_shape, out_channels: int, filters: int = 64, blocks: int = 2,
                 latent_channels: int = 8, latent_scales=(), temperature: float = 0.0, seed: int | None = None,
                 residual_posterior: bool = True, patch: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim, self.out_channels = int(latent_dim), int(out_channels)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.filters, self.blocks, self.latent_channels = int(filters), int(blocks), int(latent_channels)
        self.patch = int(patch)
        self.latent_scales = check_scales(self.image_shape, latent_scales, self.patch)
        self.temperature, self.seed = float(temperature), seed
        self.residual_posterior = bool(residual_posterior)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.sides = resolutions(self.image_shape, self.patch)[::-1]  # coarse to fine
        top_h, top_w = self.sides[0], self.image_shape[1] * self.sides[0] // self.image_shape[0]
        self.top_shape = (top_h, top_w, self.filters)

        f, mid, lc = self.filters, _middle(self.filters), self.latent_channels
        last = 1.0 / _block_counts(len(self.sides), self.blocks, len(self.latent_scales))
        self.top = layers.Dense(math.prod(self.top_shape), name="top")
        self.priors = [ResidualBlock(2 * lc + f, mid, residual=False, last_scale=0.0, name=f"prior_{i}")
                       for i in range(len(self.latent_scales))]
        self.posteriors = [ResidualBlock(2 * lc, mid, residual=False, name=f"posterior_{i}")
                           for i in range(len(self.latent_scales))]
        self.projections = [layers.Conv2D(f, 1, name=f"z_proj_{i}", kernel_initializer=keras.initializers.
                                          VarianceScaling(last, "fan_in", "truncated_normal"))
                            for i in range(len(self.latent_scales))]
        self.latent_blocks = [ResidualBlock(f, mid, last_scale=last, name=f"latent_block_{i}")
                              for i in range(len(self.latent_scales))]
        self.stage_blocks = [ResidualBlock(f, mid, last_scale=last, name=f"dec_{side}_{b}")
                             for side in self.sides for b in range(self.blocks)]
        self.out = layers.Conv2D(self.out_channels * self.patch**2, 1, name="out", dtype="float32")
        self.build()

    def build(self, input_shape=None):
        self.top.build((None, self.latent_dim))
        f, lc = self.filters, self.latent_channels
        for i, side in enumerate(self.latent_scales):
            shape = (None, side, self.image_shape[1] * side // self.image_shape[0])
            self.priors[i].build((*shape, f))
            self.posteriors[i].build((*shape, 2 * f))
            self.projections[i].build((*shape, lc))
            self.latent_blocks[i].build((*shape, f))
        for i, side in enumerate(self.sides):
            for b in range(self.blocks):
                self.stage_blocks[i * self.blocks + b].build((None, side, None, f))
        self.out.build((None, None, None, f))
        self.built = True

    def _lower_layer(self, i, h, feature):
        """One stochastic layer: (h, its distributions) with ``z`` drawn from q when ``feature`` is given."""
        lc = self.latent_channels
        prior = ops.cast(self.priors[i](h), "float32")
        dist = {"mu_p": prior[..., :lc], "log_std_p": _soft_clamp(prior[..., lc:2 * lc])}
        h = h + ops.cast(prior[..., 2 * lc:], h.dtype)
        if feature is None:
            z = dist["mu_p"]
            if self.temperature > 0:
                eps = normal_noise(ops.shape(z), 1.0, "float32", self.seed_generator)
                z = z + self.temperature * ops.exp(dist["log_std_p"]) * eps
        else:
            post = ops.cast(self.posteriors[i](ops.concatenate([h, ops.cast(feature, h.dtype)], axis=-1)), "float32")
            mu_q, log_std_q = post[..., :lc], post[..., lc:]
            if self.residual_posterior:
                mu_q, log_std_q = mu_q + dist["mu_p"], log_std_q + dist["log_std_p"]
            dist["mu_q"], dist["log_std_q"] = mu_q, _soft_clamp(log_std_q)
            eps = normal_noise(ops.shape(mu_q), 1.0, "float32", self.seed_generator)
            z = dist["mu_q"] + ops.exp(dist["log_std_q"]) * eps
        dist["z"] = z
        h = h + self.projections[i](ops.cast(z, h.dtype))
        return self.latent_blocks[i](h), dist

    def latent_distributions(self, inputs):
        """``(params, kl, log_qp, layers)``: :meth:`call`'s outputs and, per lower layer (top-down), a dict of
        its prior's ``mu_p``, ``log_std_p``, the posterior's ``mu_q``, ``log_std_q`` (when features are
        given) and the drawn ``z``, each ``(B, h, w, latent_channels)`` float32; for per-layer KL plots,
        free bits per layer, and tests."""
        if isinstance(inputs, (list, tuple)):
            z, features = inputs[0], list(inputs[1:])
        else:
            z, features = inputs, []
        distinct = sorted(set(self.latent_scales))
        if features and len(features) != len(distinct):
            raise ValueError(f"the decoder needs {len(distinct)} feature maps (heights {distinct}), "
                             f"got {len(features)}")
        by_side = dict(zip(distinct, features))
        h = ops.reshape(self.top(z), (-1, *self.top_shape))
        kl = log_qp = ops.zeros_like(ops.cast(z[:, 0], "float32"))
        dists = []
        for i, side in enumerate(self.sides):
            if i:
                h = ops.repeat(ops.repeat(h, 2, axis=1), 2, axis=2)  # nearest-neighbour upsampling
            while len(dists) < len(self.latent_scales) and self.latent_scales[len(dists)] == side:
                h, dist = self._lower_layer(len(dists), h, by_side.get(side))
                dists.append(dist)
                if "mu_q" in dist:
                    q_p = (dist["mu_q"], dist["log_std_q"], dist["mu_p"], dist["log_std_p"])
                    kl = kl + _sum_per_example(gaussian_kl(*q_p))
                    log_qp = log_qp + _sum_per_example(
                        gaussian_log_density(dist["z"], *q_p[:2]) - gaussian_log_density(dist["z"], *q_p[2:]))
            for b in range(self.blocks):
                h = self.stage_blocks[i * self.blocks + b](h)
        out = self.out(ops.silu(h))
        return (depth_to_space(out, self.patch) if self.patch > 1 else out), kl, log_qp, dists

    def call(self, inputs, training=False):
        return self.latent_distributions(inputs)[:3]

    def compute_output_spec(self, inputs, training=False):
        z = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        batch = z.shape[0]
        return (keras.KerasTensor((batch, *self.image_shape[:2], self.out_channels), dtype="float32"),
                keras.KerasTensor((batch,), dtype="float32"), keras.KerasTensor((batch,), dtype="float32"))

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "image_shape": list(self.image_shape),
                "out_channels": self.out_channels, "filters": self.filters, "blocks": self.blocks,
                "latent_channels": self.latent_channels, "latent_scales": list(self.latent_scales),
                "temperature": self.temperature, "seed": self.seed,
                "residual_posterior": self.residual_posterior, "patch": self.patch}


def check(params, image_shape) -> None:
    """A one-line UserError when ``params`` cannot build this architecture for ``image_shape``."""
    check_scales(tuple(int(s) for s in image_shape), params.latent_scales, params.patch)


def build(params, image_shape, out_channels: int) -> tuple[keras.Model, TopDownDecoder]:
    """(encoder, decoder) of the hierarchical VAE for ``image_shape`` (H, W, C) and ``out_channels`` decoder
    outputs per pixel, from ``params.latent_dim``, ``filters``, ``blocks``, ``latent_channels``,
    ``latent_scales`` and ``seed``."""
    image_shape = tuple(int(s) for s in image_shape)
    patch = params.patch
    scales = check_scales(image_shape, params.latent_scales, patch)
    encoder = build_encoder(image_shape, params.latent_dim, params.filters, params.blocks, scales, patch)
    decoder = TopDownDecoder(params.latent_dim, image_shape, out_channels, filters=params.filters,
                             blocks=params.blocks, latent_channels=params.latent_channels, latent_scales=scales,
                             seed=params.seed, patch=patch, name="decoder")
    return encoder, decoder


# --- dense_hierarchical: stochastic layers of vectors (Burda et al.'s two-layer model, inferred top-down) ----


def _mlp(widths, prefix: str) -> list:
    return [layers.Dense(w, activation="relu", name=f"{prefix}_{i}") for i, w in enumerate(widths)]


def _apply(stack, h):
    for layer in stack:
        h = layer(h)
    return h


def build_dense_encoder(input_dim: int, latent_dim: int, hidden, lower_dims) -> keras.Model:
    """Bottom-up MLPs ``x -> d_0 -> d_1 -> ... -> d_L -> (z_mean, z_log_var)``, each arrow ``hidden`` ReLU
    layers; returns ``[z_mean, z_log_var, d_{L-1}, ..., d_0]``, the features of the lower layers top-down."""
    x = keras.Input(shape=(int(input_dim),), name="x")
    h, features = x, []
    for level in range(len(lower_dims) + 1):
        h = _apply(_mlp(hidden, f"encoder_{level}"), h)
        features.append(h)
    z_mean = layers.Dense(latent_dim, name="z_mean", dtype="float32")(h)
    z_log_var = layers.Dense(latent_dim, name="z_log_var", dtype="float32")(h)
    return keras.Model(x, [z_mean, z_log_var, *reversed(features[:-1])], name="encoder")


@keras.saving.register_keras_serializable(package="vaelab")
class DenseTopDownDecoder(keras.Model):
    """``z`` or ``[z, *features]`` -> ``(params, kl, log_qp)`` as :class:`TopDownDecoder`, with latent vectors::

        h_0 = z;  for each lower layer i (top-down, widths lower_dims):
            g = MLP_i(h)                          (hidden ReLU layers)
            (mu_p, log sigma_p) = Dense(g)        starts at N(0, I)
            (dmu, dlog sigma) = Dense([g, d_i])   the posterior as a change of the prior (NVAE), d_i from the encoder
            h = [g, z_i]
        logits = Dense(MLP_out(h))

    The lower layers see the global latent through ``g`` and the one above through ``z_i``, so two layers are
    Burda et al.'s ``p(z) p(z_1 | z) p(x | z_1)`` with a skip from ``z``; inference runs top-down as in the
    Ladder VAE (Sønderby et al. 2016), which shares the encoder's bottom-up pass with every layer.
    """

    def __init__(self, latent_dim: int, image_shape, out_channels: int, hidden=(200, 200), lower_dims=(100,),
                 temperature: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim, self.out_channels = int(latent_dim), int(out_channels)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.hidden, self.lower_dims = tuple(int(w) for w in hidden), tuple(int(w) for w in lower_dims)
        self.temperature, self.seed = float(temperature), seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.stacks = [_mlp(self.hidden, f"decoder_{i}") for i in range(len(self.lower_dims))]
        self.priors = [layers.Dense(2 * w, kernel_initializer="zeros", name=f"prior_{i}")
                       for i, w in enumerate(self.lower_dims)]
        self.posteriors = [layers.Dense(2 * w, name=f"posterior_{i}") for i, w in enumerate(self.lower_dims)]
        self.out_stack = _mlp(self.hidden[::-1], "decoder_out")
        self.out = layers.Dense(math.prod(self.image_shape[:2]) * self.out_channels, name="x_hat", dtype="float32")
        self.build()

    def build(self, input_shape=None):
        width, feature = self.latent_dim, self.hidden[-1]
        for i, lower in enumerate(self.lower_dims):
            for layer in self.stacks[i]:
                layer.build((None, width))
                width = layer.units
            self.priors[i].build((None, width))
            self.posteriors[i].build((None, width + feature))
            width += lower
        for layer in self.out_stack:
            layer.build((None, width))
            width = layer.units
        self.out.build((None, width))
        self.built = True

    def latent_distributions(self, inputs):
        """``(params, kl, log_qp, layers)`` as :meth:`TopDownDecoder.latent_distributions`, each layer's
        tensors ``(B, width)``."""
        if isinstance(inputs, (list, tuple)):
            z, features = inputs[0], list(inputs[1:])
        else:
            z, features = inputs, []
        if features and len(features) != len(self.lower_dims):
            raise ValueError(f"the decoder needs {len(self.lower_dims)} feature vectors, got {len(features)}")
        h = z
        kl = log_qp = ops.zeros_like(ops.cast(z[:, 0], "float32"))
        dists = []
        for i, width in enumerate(self.lower_dims):
            g = _apply(self.stacks[i], h)
            prior = ops.cast(self.priors[i](g), "float32")
            dist = {"mu_p": prior[:, :width], "log_std_p": _soft_clamp(prior[:, width:])}
            if features:
                post = ops.cast(self.posteriors[i](ops.concatenate([g, ops.cast(features[i], g.dtype)], axis=-1)),
                                "float32")
                dist["mu_q"] = dist["mu_p"] + post[:, :width]
                dist["log_std_q"] = _soft_clamp(dist["log_std_p"] + post[:, width:])
                eps = normal_noise(ops.shape(dist["mu_q"]), 1.0, "float32", self.seed_generator)
                z_i = dist["mu_q"] + ops.exp(dist["log_std_q"]) * eps
                q_p = (dist["mu_q"], dist["log_std_q"], dist["mu_p"], dist["log_std_p"])
                kl = kl + ops.sum(gaussian_kl(*q_p), axis=-1)
                log_qp = log_qp + ops.sum(gaussian_log_density(z_i, *q_p[:2]) - gaussian_log_density(z_i, *q_p[2:]),
                                          axis=-1)
            else:
                z_i = dist["mu_p"]
                if self.temperature > 0:
                    eps = normal_noise(ops.shape(z_i), 1.0, "float32", self.seed_generator)
                    z_i = z_i + self.temperature * ops.exp(dist["log_std_p"]) * eps
            dist["z"] = z_i
            dists.append(dist)
            h = ops.concatenate([g, ops.cast(z_i, g.dtype)], axis=-1)
        out = self.out(_apply(self.out_stack, h))
        if self.out_channels != self.image_shape[-1]:
            out = ops.reshape(out, (-1, *self.image_shape[:2], self.out_channels))
        return out, kl, log_qp, dists

    def call(self, inputs, training=False):
        return self.latent_distributions(inputs)[:3]

    def compute_output_spec(self, inputs, training=False):
        z = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        batch = z.shape[0]
        flat = math.prod(self.image_shape[:2]) * self.out_channels
        shape = (batch, flat) if self.out_channels == self.image_shape[-1] else (batch, *self.image_shape[:2],
                                                                                  self.out_channels)
        return (keras.KerasTensor(shape, dtype="float32"), keras.KerasTensor((batch,), dtype="float32"),
                keras.KerasTensor((batch,), dtype="float32"))

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "image_shape": list(self.image_shape),
                "out_channels": self.out_channels, "hidden": list(self.hidden), "lower_dims": list(self.lower_dims),
                "temperature": self.temperature, "seed": self.seed}


def build_dense(params, image_shape, out_channels: int) -> tuple[keras.Model, DenseTopDownDecoder]:
    """(encoder, decoder) of the dense hierarchical VAE for flattened images of ``image_shape``: ``hidden_dims``
    ReLU layers between consecutive stochastic layers, the lower layers' widths ``lower_latent_dims``."""
    from vaelab.architectures import hidden_layers, lower_latent_layers

    image_shape = tuple(int(s) for s in image_shape)
    hidden, lower = hidden_layers(params), lower_latent_layers(params)
    encoder = build_dense_encoder(math.prod(image_shape), params.latent_dim, hidden, lower)
    decoder = DenseTopDownDecoder(params.latent_dim, image_shape, out_channels, hidden=hidden, lower_dims=lower,
                                  seed=params.seed, name="decoder")
    return encoder, decoder


def set_temperature(model, temperature: float) -> bool:
    """Draw the lower latents of every top-down decoder inside ``model`` (a saved ``…_decoder`` included) at
    ``temperature`` from now on; whether ``model`` holds one (that is, is hierarchical)."""
    found = False
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, (TopDownDecoder, DenseTopDownDecoder)):
            layer.temperature, found = float(temperature), True
    return found
