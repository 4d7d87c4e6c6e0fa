"""The ``dense_hierarchical`` architecture's models: bottom-up MLPs and the :class:`DenseTopDownDecoder`, latent
vectors below the global one inferred top-down (Burda et al.'s two-layer model, NVAE's residual posterior).
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from vaelab.models.architectures.base import hidden_layers, lower_latent_layers
from vaelab.models.architectures.topdown import LowerLatents, _soft_clamp, gaussian_kl, gaussian_log_density
from vaelab.models.layers import normal_noise

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
class DenseTopDownDecoder(LowerLatents, keras.Model):
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


def build(params, image_shape, out_channels: int) -> tuple[keras.Model, DenseTopDownDecoder]:
    """(encoder, decoder) of the dense hierarchical VAE for flattened images of ``image_shape``: ``hidden_dims``
    ReLU layers between consecutive stochastic layers, the lower layers' widths ``lower_latent_dims``."""
    image_shape = tuple(int(s) for s in image_shape)
    hidden, lower = hidden_layers(params), lower_latent_layers(params)
    encoder = build_dense_encoder(math.prod(image_shape), params.latent_dim, hidden, lower)
    decoder = DenseTopDownDecoder(params.latent_dim, image_shape, out_channels, hidden=hidden, lower_dims=lower,
                                  seed=params.seed, name="decoder")
    return encoder, decoder
