"""The convolutional architectures: ``conv`` (the original CIFAR-10/Caltech101 conv/deconv stack) and ``conv_bn``
(the Fashion-MNIST design, Conv-BatchNorm-ReLU).
"""

from __future__ import annotations

from vaelab.core.errors import UserError
from vaelab.models.architectures.base import Architecture, _latent_heads, _mixtures, parse_ints

def conv_kernels(params) -> tuple[int, ...]:
    return (params.first_kernel, params.first_kernel, params.num_conv, params.num_conv)


def conv_strides(params) -> tuple[int, ...]:
    values = parse_ints(params.strides, "strides", 1, 4)
    if len(values) != 4:
        raise UserError(f"strides must be 4 numbers from 1 to 4 separated by commas (e.g. 1,2,2,2), got "
                        f"{params.strides!r}")
    if values[0] != 1:
        raise UserError(f"the first stride must be 1 (the decoder's last layer is a stride-1 Conv2D), got "
                        f"{params.strides!r}")
    return values


def conv_feature_sizes(params, image_shape) -> list[tuple[int, int]]:
    """(H, W) of the input and after each encoder convolution ("same" padding: ceil(size / stride))."""
    sizes = [tuple(image_shape[:2])]
    for s in conv_strides(params):
        h, w = sizes[-1]
        sizes.append((-(-h // s), -(-w // s)))
    return sizes


def conv_output_padding(params, image_shape) -> list[tuple[int, int] | None]:
    """``output_padding`` of the transposed convolutions mirroring convs 4, 3, 2 (in decoder order), so that
    each returns exactly the size its encoder twin received.

    A "same" Conv2DTranspose returns ``in * stride`` without output_padding, and
    ``(in - 1) * stride + kernel % 2 + output_padding`` with it (Keras requires output_padding < stride).
    """
    sizes, strides, kernels = conv_feature_sizes(params, image_shape), conv_strides(params), conv_kernels(params)
    out = []
    for i in (3, 2, 1):
        (th, tw), (ih, iw), s, k = sizes[i], sizes[i + 1], strides[i], kernels[i]
        if (th, tw) == (ih * s, iw * s):
            out.append(None)
            continue
        pad = (th - (ih - 1) * s - k % 2, tw - (iw - 1) * s - k % 2)
        if not all(0 <= p < s for p in pad):
            raise UserError(f"conv cannot reproduce a {image_shape[0]}x{image_shape[1]} image exactly with kernel "
                            f"{k} and stride {s} (convolution {i + 1}); use an odd kernel or a size divisible by "
                            "the strides")
        out.append(pad)
    return out


def build_conv(params, image_shape, out_channels):
    """Four "same" Conv2D (relu; the first with as many filters as the image has channels, as the original
    design) -> Flatten -> Dense(intermediate, relu) -> (z_mean, z_log_var); the decoder mirrors it:
    Dense(intermediate) -> Dense(filters * h * w) -> Reshape -> three Conv2DTranspose (with the output padding
    of :func:`conv_output_padding`) -> Conv2D(out_channels)."""
    import keras
    from keras import layers

    kernels, strides = conv_kernels(params), conv_strides(params)
    padding, sizes = conv_output_padding(params, image_shape), conv_feature_sizes(params, image_shape)
    channels = image_shape[-1]
    x = keras.Input(shape=tuple(image_shape), name="x")
    h = x
    for i, (k, s) in enumerate(zip(kernels, strides)):
        h = layers.Conv2D(channels if i == 0 else params.filters, k, strides=s, padding="same", activation="relu",
                          name=f"conv_{i + 1}")(h)
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dense(params.intermediate_dim, activation="relu", name="encoder_hidden")(h)
    encoder = keras.Model(x, list(_latent_heads(h, params.latent_dim)), name="encoder")

    h_b, w_b = sizes[-1]
    z = keras.Input(shape=(params.latent_dim,), name="z")
    h = layers.Dense(params.intermediate_dim, activation="relu", name="decoder_hidden")(z)
    h = layers.Dense(params.filters * h_b * w_b, activation="relu", name="decoder_upsample")(h)
    h = layers.Reshape((h_b, w_b, params.filters), name="decoder_reshape")(h)
    for i, pad in zip((3, 2, 1), padding):
        h = layers.Conv2DTranspose(params.filters, kernels[i], strides=strides[i], padding="same",
                                   output_padding=pad, activation="relu", name=f"deconv_{4 - i}")(h)
    out = layers.Conv2D(out_channels, kernels[0], padding="same", name="x_hat", dtype="float32")(h)
    return encoder, keras.Model(z, out, name="decoder")


def infer_conv(params, decoder, encoder) -> dict:
    """Entries a conv model's files show: widths, filters, kernel sizes, strides, the output's likelihood."""
    dense = [k for k in decoder.kernels if len(k) == 2]
    conv = [k for k in decoder.kernels if len(k) == 4]  # ConvTranspose (h, w, out, in) ..., Conv2D (h, w, in, out)
    if len(conv) < 2 or not dense:
        return {}
    found = {"intermediate_dim": dense[0][1], "filters": conv[0][2], "num_conv": conv[0][0],
             "first_kernel": conv[-1][0], **_mixtures(params, conv[-1][3], params.IMAGE_SHAPE[-1])}
    strides = _strides(encoder.configs, "Conv2D") or _strides(decoder.configs, "Conv2DTranspose")
    return {**found, "strides": strides} if strides else found


def _strides(configs: list[dict], kind: str) -> str | None:
    """``"1,2,1,1"`` from the encoder's four Conv2D, or from the decoder's three Conv2DTranspose (which mirror
    convolutions 4, 3, 2; the first stride is always 1)."""
    strides = [layer["config"].get("strides") for layer in configs if layer.get("class_name") == kind]
    strides = [s[0] if isinstance(s, (list, tuple)) else s for s in strides]
    if kind == "Conv2D" and len(strides) == 4 and all(isinstance(s, int) for s in strides):
        return ",".join(map(str, strides))
    if kind == "Conv2DTranspose" and len(strides) == 3 and all(isinstance(s, int) for s in strides):
        return ",".join(map(str, [1, *reversed(strides)]))
    return None


def check_conv(params, image_shape) -> None:
    conv_output_padding(params, image_shape)


def _conv_bn_relu(h, conv, name: str):
    """``conv -> BatchNorm -> ReLU``; the conv has no bias because BatchNorm's beta replaces it."""
    from keras import layers

    from vaelab.models.layers import BatchNormalization

    h = conv(h)
    h = BatchNormalization(name=f"{name}_bn")(h)
    return layers.ReLU(name=f"{name}_relu")(h)


def build_conv_bn(params, image_shape, out_channels):
    """``x -> [Conv3x3-BN-ReLU] * conv_layers -> Flatten -> (z_mean, z_log_var)``, the first conv with stride 2
    and ``filters`` channels, the others ``2 * filters``; the decoder ``z -> Dense(H/4 * W/4 * 2f) -> BN-ReLU ->
    ConvT(2f, s2) -> ConvT(f, s2) -> ConvT(out_channels)``, bringing H/4 back to H."""
    import keras
    from keras import layers

    from vaelab.models.layers import BatchNormalization

    height, width, _ = image_shape
    f = params.filters
    x = keras.Input(shape=tuple(image_shape), name="x")
    h = x
    for i in range(params.conv_layers):
        conv = layers.Conv2D(f if i == 0 else 2 * f, 3, strides=2 if i == 0 else 1, padding="same", use_bias=False,
                             name=f"encoder_conv{i + 1}")
        h = _conv_bn_relu(h, conv, f"encoder_conv{i + 1}")
    h = layers.Flatten(name="encoder_flatten")(h)
    encoder = keras.Model(x, list(_latent_heads(h, params.latent_dim)), name="encoder")

    h0, w0 = height // 4, width // 4
    z = keras.Input(shape=(params.latent_dim,), name="z")
    h = layers.Dense(h0 * w0 * 2 * f, use_bias=False, name="decoder_dense")(z)
    h = BatchNormalization(name="decoder_dense_bn")(h)
    h = layers.ReLU(name="decoder_dense_relu")(h)
    h = layers.Reshape((h0, w0, 2 * f), name="decoder_reshape")(h)
    for i, filters in enumerate((2 * f, f)):
        conv = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=False,
                                      name=f"decoder_deconv{i + 1}")
        h = _conv_bn_relu(h, conv, f"decoder_deconv{i + 1}")
    out = layers.Conv2DTranspose(out_channels, 3, padding="same", name="x_hat", dtype="float32")(h)
    return encoder, keras.Model(z, out, name="decoder")


def infer_conv_bn(params, decoder, encoder) -> dict:
    """Entries a conv_bn model's files show: the filters (every decoder conv is a transposed one) and, from the
    encoder, the number of conv layers."""
    conv = [k for k in decoder.kernels if len(k) == 4]
    if not conv:
        return {}
    found = {"filters": conv[-1][3], **_mixtures(params, conv[-1][2], params.IMAGE_SHAPE[-1])}
    if encoder.kernels:
        found["conv_layers"] = sum(len(k) == 4 for k in encoder.kernels)
    return found


def check_conv_bn(params, image_shape) -> None:
    if image_shape[0] % 4 or image_shape[1] % 4:
        raise UserError(f"conv_bn needs a height and width divisible by 4 (two stride-2 upsamplings), got "
                        f"{image_shape[0]}x{image_shape[1]}")


def _original_names(params, defaults) -> bool:
    """The original designs keep their file names at any size (their sizes are in the name template or never were)."""
    return False


CONV = Architecture("conv", "the original conv/deconv stack: four convolutions (first_kernel, num_conv, strides, "
                            "filters), a Dense layer of intermediate_dim", build_conv, check_conv,
                    token=lambda p, d: f"conv{p.filters}", infer=infer_conv, resized=_original_names)


CONV_BN = Architecture("conv_bn", "the Fashion-MNIST design: conv_layers 3x3 Conv-BatchNorm-ReLU (filters), "
                                  "two stride-2 transposed convolutions back", build_conv_bn, check_conv_bn,
                       token=lambda p, d: f"convbn{p.filters}", infer=infer_conv_bn, resized=_original_names)
