"""The ``hierarchical`` architecture's models: a bottom-up ResNet encoder and the :class:`TopDownDecoder`, which
adds spatial latent maps on its way up from the global latent (VDVAE, NVAE).
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from vaelab.models.architectures.topdown import (LowerLatents, ResidualBlock, SpaceToDepth, _middle, _soft_clamp,
                                                _sum_per_example, check_scales, depth_to_space, gaussian_kl,
                                                gaussian_log_density, resolutions)
from vaelab.models.layers import normal_noise

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
class TopDownDecoder(LowerLatents, keras.Model):
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
