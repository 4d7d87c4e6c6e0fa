"""The ``vq`` architecture: the convolutional encoder and decoder of a VQ-VAE (van den Oord et al. 2017).

The encoder ``x -> z_e`` halves the image side ``vq_downsample`` times with stride-2 4x4 convolutions (``filters``
then ``2 * filters`` channels), adds ``blocks`` residual blocks (ReLU, 3x3, ReLU, 1x1) and ends in a 1x1
convolution to ``codebook_dim`` channels: a code map of ``H / 2^n x W / 2^n`` vectors, each of which the
quantiser (:class:`vaelab.models.vq.VectorQuantizer`) replaces by its nearest codebook entry. The decoder mirrors
it, ``z_q -> out_channels`` numbers per pixel that any likelihood of the registry reads. Only Keras' own layers,
so the saved encoder and decoder files load in plain Keras.
"""

from __future__ import annotations

from vaelab.models.architectures.base import Architecture, _mixtures


def _residual(h, channels: int, name: str):
    from keras import layers

    r = layers.ReLU(name=f"{name}_relu1")(h)
    r = layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv3")(r)
    r = layers.ReLU(name=f"{name}_relu2")(r)
    r = layers.Conv2D(channels, 1, name=f"{name}_conv1")(r)
    return layers.Add(name=f"{name}_add")([h, r])


def code_map_shape(params, image_shape) -> tuple[int, int]:
    side = 2 ** params.vq_downsample
    return image_shape[0] // side, image_shape[1] // side


def build_vq(params, image_shape, out_channels):
    """``(encoder x -> z_e (h, w, codebook_dim), decoder z_q (h, w, codebook_dim) -> out)``."""
    import keras
    from keras import layers

    f, n = params.filters, params.vq_downsample
    x = keras.Input(shape=tuple(image_shape), name="x")
    h = x
    for i in range(n):
        h = layers.Conv2D(f if i < n - 1 else 2 * f, 4, strides=2, padding="same", activation="relu",
                          name=f"encoder_down{i + 1}")(h)
    h = layers.Conv2D(2 * f, 3, padding="same", name="encoder_conv")(h)
    for b in range(params.blocks):
        h = _residual(h, 2 * f, f"encoder_res{b + 1}")
    h = layers.ReLU(name="encoder_relu")(h)
    z_e = layers.Conv2D(params.codebook_dim, 1, name="z_e", dtype="float32")(h)
    encoder = keras.Model(x, z_e, name="encoder")

    hh, ww = code_map_shape(params, image_shape)
    z = keras.Input(shape=(hh, ww, params.codebook_dim), name="z_q")
    h = layers.Conv2D(2 * f, 3, padding="same", name="decoder_conv")(z)
    for b in range(params.blocks):
        h = _residual(h, 2 * f, f"decoder_res{b + 1}")
    h = layers.ReLU(name="decoder_relu")(h)
    for i in range(n - 1):
        h = layers.Conv2DTranspose(2 * f if i < n - 2 else f, 4, strides=2, padding="same", activation="relu",
                                   name=f"decoder_up{i + 1}")(h)
    out = layers.Conv2DTranspose(out_channels, 4, strides=2, padding="same", name="x_hat", dtype="float32")(h)
    return encoder, keras.Model(z, out, name="decoder")


def infer_vq(params, decoder, encoder) -> dict:
    conv = [k for k in decoder.kernels if len(k) == 4]
    return _mixtures(params, conv[-1][2], params.IMAGE_SHAPE[-1]) if conv else {}


def vq_token(params, defaults) -> str:
    return f"vq{params.codebook_size}x{params.codebook_dim}" + ("" if params.codebook_ema else "_noema")


VQ = Architecture("vq", "VQ-VAE: a conv encoder to a map of codebook_size discrete codes (codebook_dim each, "
                        "1/2^vq_downsample of the image side), a mirrored decoder; sampled by a gated PixelCNN",
                  build_vq, token=vq_token, infer=infer_vq)
