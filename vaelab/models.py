"""The VAE model, its loss, and the encoder/decoder builders.

:class:`VAE` wires an encoder ``x -> (z_mean, z_log_var)``, the :class:`~vaelab.layers.Sampling` layer
and a decoder ``z -> x_hat``. Its loss is overridden in :meth:`VAE.compute_loss` rather than in a
``train_step`` with ``tf.GradientTape``, so the same model trains on TensorFlow, JAX and PyTorch::

    loss = reconstruction_weight * mean_pixels(recon(x, x_hat)) + kl_weight * KL(q(z|x) || N(0, I))

With the default ``reconstruction_weight`` (the number of pixels) and ``"bce"`` the first term is the
summed Bernoulli negative log-likelihood, so ``loss`` is the negative ELBO in nats per image.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from vaelab.layers import Sampling

RECONSTRUCTIONS = ("bce", "mse")


def kl_divergence(z_mean, z_log_var):
    """KL(N(mu, sigma^2) || N(0, I)) per example, summed over latent dimensions."""
    return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


def reconstruction_error(x, x_hat, kind: str = "bce"):
    """Per-example error averaged over every pixel and channel: binary cross-entropy or squared error."""
    if kind == "bce":
        err = ops.binary_crossentropy(x, x_hat)
    elif kind == "mse":
        err = ops.square(x - x_hat)
    else:
        raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, got {kind!r}")
    return ops.mean(err, axis=tuple(range(1, len(err.shape))))


def _scale_for_replicas(loss):
    """Divide by the replica count under ``tf.distribute``.

    Keras scales its own compiled losses this way, but not a ``compute_loss`` override: without this a
    2-replica run reports and applies twice the loss (tested in tests/test_models.py).
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            loss = loss / replicas
    return loss


@keras.saving.register_keras_serializable(package="vaelab")
class VAE(keras.Model):
    """Variational autoencoder; ``call`` returns ``{"reconstruction", "z_mean", "z_log_var"}``."""

    def __init__(self, encoder: keras.Model, decoder: keras.Model, reconstruction: str = "bce",
                 reconstruction_weight: float | None = None, kl_weight: float = 1.0,
                 epsilon_std: float = 1.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, got {reconstruction!r}")
        self.encoder = encoder
        self.decoder = decoder
        self.reconstruction = reconstruction
        pixels = math.prod(encoder.inputs[0].shape[1:])
        self.reconstruction_weight = float(pixels if reconstruction_weight is None else reconstruction_weight)
        self.kl_weight = float(kl_weight)
        self.sampling = Sampling(epsilon_std=epsilon_std, seed=seed, name="sampling")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def latent_dim(self) -> int:
        return int(self.decoder.inputs[0].shape[-1])

    def call(self, x, training=False):
        z_mean, z_log_var = self.encoder(x, training=training)
        z = self.sampling([z_mean, z_log_var])
        return {"reconstruction": self.decoder(z, training=training), "z_mean": z_mean, "z_log_var": z_log_var}

    def per_example_losses(self, x, outputs):
        """(weighted reconstruction, KL) per example, both in the loss's units."""
        recon = self.reconstruction_weight * reconstruction_error(x, outputs["reconstruction"], self.reconstruction)
        return recon, kl_divergence(outputs["z_mean"], outputs["z_log_var"])

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        recon, kl = self.per_example_losses(x, y_pred)
        recon, kl = ops.mean(recon), ops.mean(kl)
        # Weighted by the batch size, as Keras weights its own loss tracker: otherwise a short last batch
        # counts as much as a full one and the reported reconstruction + KL do not add up to the loss.
        batch = ops.cast(ops.shape(y_pred["z_mean"])[0], recon.dtype)
        self.reconstruction_tracker.update_state(recon, sample_weight=batch)
        self.kl_tracker.update_state(kl, sample_weight=batch)
        total = recon + self.kl_weight * kl
        for extra in self.losses:  # regularisers, if a builder adds any
            total = total + ops.sum(extra)
        return _scale_for_replicas(total)

    @property
    def metrics(self):
        return [m for m in super().metrics if m is not self.reconstruction_tracker and m is not self.kl_tracker] + [
            self.reconstruction_tracker, self.kl_tracker]

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "reconstruction": self.reconstruction,
            "reconstruction_weight": self.reconstruction_weight,
            "kl_weight": self.kl_weight,
            "epsilon_std": self.sampling.epsilon_std,
            "seed": self.sampling.seed,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"], custom_objects=custom_objects)
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"], custom_objects=custom_objects)
        return cls(**config)


def mean_encoder(encoder: keras.Model) -> keras.Model:
    """The saved ``…_encoder`` model: x -> z_mean, sharing the VAE encoder's layers (as the original)."""
    return keras.Model(encoder.inputs, encoder.outputs[0], name="encoder_mean")


# --- builders -------------------------------------------------------------------------------------


def build_dense_encoder(original_dim: int, intermediate_dim: int, latent_dim: int) -> keras.Model:
    """``original_dim -> Dense(intermediate, relu) -> (z_mean, z_log_var)``."""
    x = keras.Input(shape=(original_dim,), name="x")
    h = layers.Dense(intermediate_dim, activation="relu", name="encoder_hidden")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(h)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(h)
    return keras.Model(x, [z_mean, z_log_var], name="encoder")


def build_dense_decoder(latent_dim: int, intermediate_dim: int, original_dim: int) -> keras.Model:
    """``latent_dim -> Dense(intermediate, relu) -> Dense(original_dim, sigmoid)``."""
    z = keras.Input(shape=(latent_dim,), name="z")
    h = layers.Dense(intermediate_dim, activation="relu", name="decoder_hidden")(z)
    x_hat = layers.Dense(original_dim, activation="sigmoid", name="x_hat")(h)
    return keras.Model(z, x_hat, name="decoder")


def build_dense_vae(params) -> VAE:
    """The MNIST dense VAE from :class:`~vaelab.params.MnistParams`."""
    encoder = build_dense_encoder(params.original_dim, params.intermediate_dim, params.latent_dim)
    decoder = build_dense_decoder(params.latent_dim, params.intermediate_dim, params.original_dim)
    return VAE(encoder, decoder, reconstruction="bce", kl_weight=params.kl_weight,
               epsilon_std=params.epsilon_std, seed=params.seed, name="vae")


def build_conv_encoder(params) -> keras.Model:
    """Four "same" Conv2D (relu) -> Flatten -> Dense(intermediate, relu) -> (z_mean, z_log_var).

    The first convolution has ``img_chns`` filters, as in the original design; the others ``filters``.
    """
    x = keras.Input(shape=(params.img_rows, params.img_cols, params.img_chns), name="x")
    h = x
    for i, (k, s) in enumerate(zip(params.kernel_list(), params.stride_list())):
        h = layers.Conv2D(params.img_chns if i == 0 else params.filters, k, strides=s, padding="same",
                          activation="relu", name=f"conv_{i + 1}")(h)
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dense(params.intermediate_dim, activation="relu", name="encoder_hidden")(h)
    z_mean = layers.Dense(params.latent_dim, name="z_mean")(h)
    z_log_var = layers.Dense(params.latent_dim, name="z_log_var")(h)
    return keras.Model(x, [z_mean, z_log_var], name="encoder")


def build_conv_decoder(params) -> keras.Model:
    """The encoder's mirror; returns exactly (img_rows, img_cols, img_chns) in [0, 1].

    Dense(intermediate) -> Dense(filters * h * w) -> Reshape(h, w, filters) -> Conv2DTranspose mirroring
    convs 4, 3, 2 (their kernels, strides and the output_padding from
    :meth:`~vaelab.params.ConvParams.decoder_output_padding`) -> Conv2D(img_chns, sigmoid).
    """
    sizes, kernels, strides = params.feature_sizes(), params.kernel_list(), params.stride_list()
    h_b, w_b = sizes[-1]
    z = keras.Input(shape=(params.latent_dim,), name="z")
    h = layers.Dense(params.intermediate_dim, activation="relu", name="decoder_hidden")(z)
    h = layers.Dense(params.filters * h_b * w_b, activation="relu", name="decoder_upsample")(h)
    h = layers.Reshape((h_b, w_b, params.filters), name="decoder_reshape")(h)
    for i, pad in zip((3, 2, 1), params.decoder_output_padding()):
        h = layers.Conv2DTranspose(params.filters, kernels[i], strides=strides[i], padding="same",
                                   output_padding=pad, activation="relu", name=f"deconv_{4 - i}")(h)
    x_hat = layers.Conv2D(params.img_chns, kernels[0], padding="same", activation="sigmoid", name="x_hat")(h)
    return keras.Model(z, x_hat, name="decoder")


def build_conv_vae(params) -> VAE:
    """The convolutional VAE of :class:`~vaelab.params.ConvParams`; its loss is the summed BCE over every
    pixel and channel plus the KL summed over latent dimensions (nats per image)."""
    return VAE(build_conv_encoder(params), build_conv_decoder(params), reconstruction="bce",
               kl_weight=params.kl_weight, epsilon_std=params.epsilon_std, seed=params.seed, name="vae")
