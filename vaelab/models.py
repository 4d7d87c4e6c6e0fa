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

from vaelab import discretized
from vaelab.layers import DiscretizedLogisticMean, Sampling

RECONSTRUCTIONS = ("bce", "mse", discretized.NAME)


def kl_divergence(z_mean, z_log_var):
    """KL(N(mu, sigma^2) || N(0, I)) per example, summed over latent dimensions."""
    return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


def reconstruction_error(x, x_hat, kind: str = "bce"):
    """Per-example error averaged over every pixel and channel: binary cross-entropy, squared error, or
    (``"discretized_logistic"``, where ``x_hat`` holds the decoder's mixture parameters) the negative
    log-probability of the 8-bit pixels, so that the default weight (the pixel count) makes it the summed NLL."""
    if kind == "bce":
        err = ops.binary_crossentropy(x, x_hat)
    elif kind == discretized.NAME:
        err = -discretized.log_prob(x, x_hat) / x.shape[-1]
    elif kind == "mse":
        err = ops.square(x - x_hat)
    else:
        raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, got {kind!r}")
    return ops.mean(err, axis=tuple(range(1, len(err.shape))))


def _scale_for_replicas(loss):
    """Divide by the replica count under ``tf.distribute``.

    Keras scales its own compiled losses this way, but not a ``compute_loss`` override: without this a
    2-replica run reports and applies twice the loss (tested in tests/test_distribute.py). Exact because
    :mod:`vaelab.distribute` gives every replica an equal share of each batch. JAX's ``DataParallel``
    computes on the global batch, so there is nothing to divide.
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
        """(weighted reconstruction, KL) per example, both in the loss's units, computed in float32 (also
        under a mixed-precision policy, where float16 would round the summed log-likelihood)."""
        x = ops.cast(x, "float32")
        outputs = {k: ops.cast(v, "float32") for k, v in outputs.items()}
        recon = self.reconstruction_weight * reconstruction_error(x, outputs["reconstruction"], self.reconstruction)
        return recon, kl_divergence(outputs["z_mean"], outputs["z_log_var"])

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        recon, kl = self.per_example_losses(x, y_pred)
        recon, kl = ops.mean(recon), ops.mean(kl)
        # Weight each batch by its size, as Keras weights its own "loss" tracker: otherwise a short last
        # batch counts as much as a full one and the reported loss is not reconstruction + weight * KL.
        batch = ops.cast(ops.shape(x)[0], recon.dtype)
        self.reconstruction_tracker.update_state(recon, sample_weight=batch)
        self.kl_tracker.update_state(kl, sample_weight=batch)
        total = recon + self.kl_weight * kl
        for extra in self.losses:  # regularisers, if a builder adds any
            total = total + ops.cast(ops.sum(extra), "float32")
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


def image_decoder(vae: VAE) -> keras.Model:
    """z -> image in [0, 1]: the saved ``…_decoder`` model and what samples and reconstructions are drawn with.

    The VAE's own decoder, except under the discretized logistic likelihood, whose decoder outputs mixture
    parameters: there a :class:`~vaelab.layers.DiscretizedLogisticMean` turns them into the mean image.
    """
    if vae.reconstruction != discretized.NAME:
        return vae.decoder
    z = keras.Input(shape=(vae.latent_dim,), name="z")
    channels = int(vae.encoder.inputs[0].shape[-1])
    x_hat = DiscretizedLogisticMean(channels, name="x_hat_mean")(vae.decoder(z))
    return keras.Model(z, x_hat, name="decoder")


SUMMARY_WIDTH = 100  # characters per line of the architecture text


def architecture_text(vae: VAE) -> str:
    """The encoder's and the saved decoder's ``summary()`` (layers, output shapes, parameter counts) as text:
    the ``…_architecture.txt`` beside every trained model, and what ``--summary`` prints."""
    import os

    texts: list[str] = []
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(SUMMARY_WIDTH)  # Keras draws the tables with rich, which wraps at this width
    try:
        for model in (vae.encoder, image_decoder(vae)):
            model.summary(line_length=SUMMARY_WIDTH, print_fn=lambda text, line_break=True: texts.append(text))
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return "\n".join(text.rstrip() + "\n" for text in texts)


# --- builders -------------------------------------------------------------------------------------
# The layers whose outputs enter the loss (z_mean, z_log_var, x_hat) compute in float32 under any dtype
# policy, as the Keras mixed-precision guide advises for a model's last layers; under the default float32
# policy this changes nothing.


def build_dense_encoder(original_dim: int, intermediate_dim: int, latent_dim: int) -> keras.Model:
    """``original_dim -> Dense(intermediate, relu) -> (z_mean, z_log_var)``."""
    x = keras.Input(shape=(original_dim,), name="x")
    h = layers.Dense(intermediate_dim, activation="relu", name="encoder_hidden")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean", dtype="float32")(h)
    z_log_var = layers.Dense(latent_dim, name="z_log_var", dtype="float32")(h)
    return keras.Model(x, [z_mean, z_log_var], name="encoder")


def build_dense_decoder(latent_dim: int, intermediate_dim: int, original_dim: int) -> keras.Model:
    """``latent_dim -> Dense(intermediate, relu) -> Dense(original_dim, sigmoid)``."""
    z = keras.Input(shape=(latent_dim,), name="z")
    h = layers.Dense(intermediate_dim, activation="relu", name="decoder_hidden")(z)
    x_hat = layers.Dense(original_dim, activation="sigmoid", name="x_hat", dtype="float32")(h)
    return keras.Model(z, x_hat, name="decoder")


def build_dense_vae(params) -> VAE:
    """The MNIST dense VAE from :class:`~vaelab.params.MnistParams`."""
    encoder = build_dense_encoder(params.original_dim, params.intermediate_dim, params.latent_dim)
    decoder = build_dense_decoder(params.latent_dim, params.intermediate_dim, params.original_dim)
    return VAE(encoder, decoder, reconstruction="bce", kl_weight=params.kl_weight,
               epsilon_std=params.epsilon_std, seed=params.seed, name="vae")


def build_mlp_encoder(original_dim: int, hidden_dims: tuple[int, ...], latent_dim: int,
                      activation: str = "relu") -> keras.Model:
    """``original_dim -> Dense(h1) -> … -> Dense(hn) -> (z_mean, z_log_var)``: the deeper dense encoder of the
    likelihood experiments (e.g. 784-500-500-50); :func:`build_dense_encoder` stays the one-layer original."""
    x = keras.Input(shape=(original_dim,), name="x")
    h = x
    for i, units in enumerate(hidden_dims):
        h = layers.Dense(units, activation=activation, name=f"encoder_hidden_{i}")(h)
    z_mean = layers.Dense(latent_dim, dtype="float32", name="z_mean")(h)
    z_log_var = layers.Dense(latent_dim, dtype="float32", name="z_log_var")(h)
    return keras.Model(x, [z_mean, z_log_var], name="encoder")


def build_mlp_decoder(latent_dim: int, hidden_dims: tuple[int, ...], original_dim: int,
                      activation: str = "relu") -> keras.Model:
    """``latent_dim -> Dense(hn) -> … -> Dense(h1) -> Dense(original_dim, sigmoid)``, mirroring the encoder."""
    z = keras.Input(shape=(latent_dim,), name="z")
    h = z
    for i, units in enumerate(reversed(hidden_dims)):
        h = layers.Dense(units, activation=activation, name=f"decoder_hidden_{i}")(h)
    x_hat = layers.Dense(original_dim, activation="sigmoid", dtype="float32", name="x_hat")(h)
    return keras.Model(z, x_hat, name="decoder")


def _conv_block(h, conv, name: str):
    """``conv -> BatchNorm -> ReLU``; the conv has no bias because BatchNorm's beta replaces it."""
    h = conv(h)
    h = layers.BatchNormalization(name=f"{name}_bn")(h)
    return layers.ReLU(name=f"{name}_relu")(h)


def build_fashion_encoder(image_shape: tuple[int, int, int], latent_dim: int, filters: int = 32,
                       conv_layers: int = 3) -> keras.Model:
    """``x -> [Conv3x3-BN-ReLU] * conv_layers -> Flatten -> (z_mean, z_log_var)``.

    The first conv has stride 2 (28 -> 14) and ``filters`` channels, the others stride 1 and
    ``2 * filters``. Each layer feeds the next: the original design wired several convs to the input,
    which left all but the last unused by the outputs.
    """
    x = keras.Input(shape=tuple(image_shape), name="x")
    h = x
    for i in range(conv_layers):
        conv = layers.Conv2D(filters if i == 0 else 2 * filters, 3, strides=2 if i == 0 else 1, padding="same",
                             use_bias=False, name=f"encoder_conv{i + 1}")
        h = _conv_block(h, conv, f"encoder_conv{i + 1}")
    h = layers.Flatten(name="encoder_flatten")(h)
    z_mean = layers.Dense(latent_dim, name="z_mean", dtype="float32")(h)
    z_log_var = layers.Dense(latent_dim, name="z_log_var", dtype="float32")(h)
    return keras.Model(x, [z_mean, z_log_var], name="encoder")


def build_fashion_decoder(latent_dim: int, image_shape: tuple[int, int, int], filters: int = 32) -> keras.Model:
    """``z -> Dense(7*7*2f) -> Reshape(7, 7, 2f) -> ConvT(2f, s2) -> ConvT(f, s2) -> ConvT(C, sigmoid)``.

    The two stride-2 transposed convs (with BatchNorm and ReLU) bring 7x7 up to 28x28; the last one maps
    to the image's channels with a sigmoid, so pixels lie in [0, 1] like the data.
    """
    height, width, channels = image_shape
    if height % 4 or width % 4:
        raise ValueError(f"the conv decoder needs a height and width divisible by 4, got {height}x{width}")
    h0, w0, c0 = height // 4, width // 4, 2 * filters
    z = keras.Input(shape=(latent_dim,), name="z")
    h = layers.Dense(h0 * w0 * c0, use_bias=False, name="decoder_dense")(z)
    h = layers.BatchNormalization(name="decoder_dense_bn")(h)
    h = layers.ReLU(name="decoder_dense_relu")(h)
    h = layers.Reshape((h0, w0, c0), name="decoder_reshape")(h)
    for i, f in enumerate((2 * filters, filters)):
        conv = layers.Conv2DTranspose(f, 3, strides=2, padding="same", use_bias=False,
                                      name=f"decoder_deconv{i + 1}")
        h = _conv_block(h, conv, f"decoder_deconv{i + 1}")
    x_hat = layers.Conv2DTranspose(channels, 3, padding="same", activation="sigmoid", name="x_hat",
                                   dtype="float32")(h)
    return keras.Model(z, x_hat, name="decoder")


def build_fashion_vae(params) -> VAE:
    """The Fashion-MNIST conv VAE from :class:`~vaelab.params.FashionMnistParams`.

    Loss: ``rmse_multiplier * mean squared error over pixels + kl_multiplier * KL``.
    """
    shape = (params.img_height, params.img_width, 1)
    encoder = build_fashion_encoder(shape, params.latent_dim, params.filters, params.conv_layers)
    decoder = build_fashion_decoder(params.latent_dim, shape, params.filters)
    return VAE(encoder, decoder, reconstruction="mse", reconstruction_weight=params.rmse_multiplier,
               kl_weight=params.kl_multiplier, epsilon_std=params.epsilon_std, seed=params.seed, name="vae")


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
    z_mean = layers.Dense(params.latent_dim, name="z_mean", dtype="float32")(h)
    z_log_var = layers.Dense(params.latent_dim, name="z_log_var", dtype="float32")(h)
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
    if params.reconstruction == discretized.NAME:  # mixture parameters per pixel, see vaelab.discretized
        x_hat = layers.Conv2D(discretized.param_channels(params.img_chns, params.mixtures), kernels[0],
                              padding="same", name="x_hat_params", dtype="float32")(h)
    else:
        x_hat = layers.Conv2D(params.img_chns, kernels[0], padding="same", activation="sigmoid", name="x_hat",
                              dtype="float32")(h)
    return keras.Model(z, x_hat, name="decoder")


def build_conv_vae(params) -> VAE:
    """The convolutional VAE of :class:`~vaelab.params.ConvParams`; its loss is the summed BCE (or, with
    ``reconstruction="discretized_logistic"``, the summed NLL of the 8-bit pixels) over every pixel and channel
    plus the KL summed over latent dimensions (nats per image)."""
    return VAE(build_conv_encoder(params), build_conv_decoder(params), reconstruction=params.reconstruction,
               kl_weight=params.kl_weight, epsilon_std=params.epsilon_std, seed=params.seed, name="vae")
