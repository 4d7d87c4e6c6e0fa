"""The class-conditional VAE (``conditional = True``): ``q(z | x, y)`` and ``p(x | z, y)`` with the label ``y``.

Every architecture works unchanged underneath: the label, one-hot (``label_embedding = 0``) or a learned
embedding, enters the encoder as extra input channels (a constant map per class; flat encoders get it as extra
inputs) and the decoder beside ``z``. The prior stays ``N(0, I)``, so ``z`` holds what the label does not: the
style. The loss is the ELBO of ``log p(x | y)``.

While training, the label travels inside the input array (:func:`pack`): one more channel (flat models: one
more column) holding the class index over 255, as uint8 images hold a grey level. Batches, the fast path,
checkpoints and the evaluation's bounds then carry it with the images, and
:class:`vaelab.models.vae.ConditionalVAE` takes it off again (:func:`unpack`). The saved files take it as a second input: the encoder ``[x, label] -> z_mean`` and
the decoder ``[z, label] -> image``, with ``label`` an int of shape (N, 1). They are built from Keras' own
layers (for the dense, conv and resnet architectures they load in plain Keras); the hierarchical decoder's
wrapper (:class:`LabelConditioned`) loads after ``import vaelab``.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import layers, ops

LABEL_SCALE = 255.0  # the packed label is its index over this, as a uint8 grey level is over 255
MAX_CLASSES = 256


def pack(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Images (N, H, W, C) or flat rows (N, P), uint8 or float in [0, 1], with their labels as one more channel
    (column): the label itself in a uint8 array, ``label / 255`` in a float one."""
    x, y = np.asarray(x), np.asarray(y).reshape(-1)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    if y.size and (y.min() < 0 or y.max() >= MAX_CLASSES):
        raise ValueError(f"labels must lie in 0..{MAX_CLASSES - 1}")
    value = y.astype(np.uint8) if x.dtype == np.uint8 else (y / LABEL_SCALE).astype(x.dtype)
    shape = (len(x), *x.shape[1:-1], 1)
    channel = np.broadcast_to(value.reshape(-1, *([1] * (x.ndim - 1))), shape)
    return np.concatenate([x, channel], axis=-1)


def unpack(x):
    """``(image part, labels as int32 of shape (N, 1))`` of a packed batch (a tensor)."""
    image = x[..., :-1]
    value = x[:, -1:] if len(x.shape) == 2 else ops.reshape(x[:, 0, 0, -1], (-1, 1))
    return image, ops.cast(ops.round(ops.cast(value, "float32") * LABEL_SCALE), "int32")


def label_features(n_classes: int, embedding: int, name: str):
    """The layer mapping an int label (N, 1) to its features (N, n): one-hot, or an ``embedding``-wide learned
    vector."""
    if embedding:
        return keras.Sequential([layers.Embedding(n_classes, embedding), layers.Flatten()], name=name)
    return layers.CategoryEncoding(num_tokens=n_classes, output_mode="one_hot", name=name)


def label_width(n_classes: int, embedding: int) -> int:
    return embedding or n_classes


def conditional_encoder(base, image_shape, flat: bool, n_classes: int, embedding: int) -> keras.Model:
    """``[x, label] -> base's outputs``: the label's features joined to the image (``base`` was built for the
    image with :func:`label_width` more channels, or inputs when ``flat``)."""
    width = label_width(n_classes, embedding)
    x = keras.Input(shape=(int(np.prod(image_shape)),) if flat else tuple(image_shape), name="x")
    label = keras.Input(shape=(1,), dtype="int32", name="label")
    e = label_features(n_classes, embedding, "encoder_label")(label)
    if not flat:
        e = layers.Reshape((1, 1, width))(e)
        e = layers.UpSampling2D(size=tuple(image_shape[:2]), name="label_map")(e)
    joined = layers.Concatenate(axis=-1, name="x_and_label")([x, e])
    return keras.Model([x, label], base(joined), name="encoder")


@keras.saving.register_keras_serializable(package="vaelab")
class LabelConditioned(keras.Model):
    """A decoder taking ``[z, label, *rest]``: ``base([z ++ label features, *rest])`` (the hierarchical
    decoders, which take the encoder's features as well while training and ``z`` alone when sampling)."""

    def __init__(self, base, n_classes: int, embedding: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.base, self.n_classes, self.embedding = base, int(n_classes), int(embedding)
        self.label = label_features(self.n_classes, self.embedding, "decoder_label")

    def _joined(self, inputs):
        z, label, *rest = inputs
        zc = ops.concatenate([z, ops.cast(self.label(label), z.dtype)], axis=-1)
        return [zc, *rest] if rest else zc

    def call(self, inputs, training=False):
        return self.base(self._joined(inputs), training=training)

    def latent_distributions(self, inputs):
        """The base decoder's per-layer posteriors and priors (evaluation's per-layer KL)."""
        joined = self._joined(inputs)
        return self.base.latent_distributions(joined if isinstance(joined, list) else [joined])

    def compute_output_spec(self, inputs, training=False):
        z = inputs[0]
        zc = keras.KerasTensor((z.shape[0], z.shape[1] + label_width(self.n_classes, self.embedding)))
        return self.base.compute_output_spec(zc)

    def get_config(self):
        return {**super().get_config(), "base": keras.saving.serialize_keras_object(self.base),
                "n_classes": self.n_classes, "embedding": self.embedding}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["base"] = keras.saving.deserialize_keras_object(config["base"], custom_objects=custom_objects)
        return cls(**config)


def conditional_decoder(base, latent_dim: int, n_classes: int, embedding: int, hierarchical: bool):
    """``[z, label] -> base's outputs``, ``base`` built for :func:`label_width` more latent inputs."""
    if hierarchical:
        return LabelConditioned(base, n_classes, embedding, name="decoder")
    z = keras.Input(shape=(latent_dim,), name="z")
    label = keras.Input(shape=(1,), dtype="int32", name="label")
    e = label_features(n_classes, embedding, "decoder_label")(label)
    joined = layers.Concatenate(axis=-1, name="z_and_label")([z, e])
    return keras.Model([z, label], base(joined), name="decoder")


def build_parts(arch, params, image_shape, out_channels: int, n_classes: int):
    """The conditional encoder and decoder of ``arch`` for ``image_shape``: the architecture built twice, for
    the image with the label's channels (its encoder) and for ``z`` with the label's features (its decoder)."""
    width = label_width(n_classes, params.label_embedding)
    h, w, c = image_shape
    wide = (int(h * w * c) + width, 1, 1) if arch.flat_input else (h, w, c + width)
    base_encoder, _ = arch.build(params, wide, out_channels)
    _, base_decoder = arch.build(dataclasses.replace(params, latent_dim=params.latent_dim + width), tuple(image_shape),
                                 out_channels)
    hierarchical = len(base_encoder.outputs) > 2
    encoder = conditional_encoder(base_encoder, image_shape, arch.flat_input, n_classes, params.label_embedding)
    decoder = conditional_decoder(base_decoder, params.latent_dim, n_classes, params.label_embedding, hierarchical)
    return encoder, decoder
