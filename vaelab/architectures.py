"""Encoder/decoder architectures, each usable on every dataset's image size.

An :class:`Architecture` is a name, a ``check`` that says in one line why it cannot produce an image size, a
file-name ``token`` and a ``build(params, image_shape, out_channels) -> (encoder, decoder)``:

- ``encoder``: a functional ``keras.Model`` ``x -> [z_mean, z_log_var]`` (the hierarchical one adds the
  bottom-up features its posteriors need);
- ``decoder``: ``z -> out`` with ``out_channels`` numbers per pixel that the likelihood reads (Bernoulli
  logits, mixture parameters, ...); the hierarchical decoder also returns its lower layers' KL terms.

Every layer whose output enters the loss computes in float32, also under a mixed-precision policy.
Keras is imported inside the builders, so that naming an architecture on the command line loads no backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from vaelab.errors import UserError


def parse_ints(text: str, what: str, low: int = 1, high: int = 65536) -> tuple[int, ...]:
    """``"500,500"`` -> ``(500, 500)``; one-line error naming ``what`` otherwise."""
    try:
        values = tuple(int(t) for t in str(text).replace(" ", "").split(",") if t)
    except ValueError:
        values = ()
    if not values or any(v < low or v > high for v in values):
        raise UserError(f"{what} must be comma-separated whole numbers in {low}..{high} like '500,500', "
                        f"got {text!r}")
    return values


# --- dense ----------------------------------------------------------------------------------------


def hidden_layers(params) -> tuple[int, ...]:
    """The dense MLP's hidden widths: ``hidden_dims`` when given, else one layer of ``intermediate_dim``."""
    return parse_ints(params.hidden_dims, "hidden_dims") if params.hidden_dims else (params.intermediate_dim,)


def _latent_heads(h, latent_dim: int):
    from keras import layers

    return (layers.Dense(latent_dim, name="z_mean", dtype="float32")(h),
            layers.Dense(latent_dim, name="z_log_var", dtype="float32")(h))


def _named(base: str, i: int, n: int) -> str:
    """``encoder_hidden`` for a single layer (the original scripts' names), ``encoder_hidden_0``… for several."""
    return base if n == 1 else f"{base}_{i}"


def build_dense(params, image_shape, out_channels):
    """``D -> Dense(h1) -> … -> (z_mean, z_log_var)`` and its mirror ``z -> … -> Dense(H * W * out_channels)``.

    Inputs are flattened images (the original MNIST design); the output stays flat when there is one number
    per pixel and channel, else it is shaped (H, W, out_channels).
    """
    import keras
    from keras import layers

    h_px, w_px, c = image_shape
    hidden = hidden_layers(params)
    x = keras.Input(shape=(h_px * w_px * c,), name="x")
    h = x
    for i, units in enumerate(hidden):
        h = layers.Dense(units, activation="relu", name=_named("encoder_hidden", i, len(hidden)))(h)
    encoder = keras.Model(x, list(_latent_heads(h, params.latent_dim)), name="encoder")
    z = keras.Input(shape=(params.latent_dim,), name="z")
    h = z
    for i, units in enumerate(reversed(hidden)):
        h = layers.Dense(units, activation="relu", name=_named("decoder_hidden", i, len(hidden)))(h)
    out = layers.Dense(h_px * w_px * out_channels, name="x_hat", dtype="float32")(h)
    if out_channels != c:
        out = layers.Reshape((h_px, w_px, out_channels), name="x_hat_params")(out)
    return encoder, keras.Model(z, out, name="decoder")


def _mixtures(params, channels_out: int, image_channels: int) -> dict:
    """The likelihood entries a decoder's output width shows: more numbers per pixel than colour channels are the
    discretized logistic's mixture parameters."""
    if channels_out == image_channels:
        return {}
    from vaelab import discretized

    try:
        return {"likelihood": discretized.NAME, "mixtures": discretized.mixtures_from(channels_out, image_channels)}
    except ValueError:
        return {}  # no model of this project; loading it says so


def infer_dense(params, decoder, encoder) -> dict:
    """Entries a dense model's files show: the hidden widths (decoder ``z -> h_n -> ... -> h_1 -> pixels``)."""
    dense = [k for k in decoder.kernels if len(k) == 2]
    hidden = [k[1] for k in reversed(dense[:-1])]
    if not hidden:
        return {}
    found = ({"intermediate_dim": hidden[0]} if len(hidden) == 1 and not params.hidden_dims
             else {"hidden_dims": ",".join(map(str, hidden))})
    h, w, c = params.IMAGE_SHAPE
    return {**found, **_mixtures(params, dense[-1][1] // (h * w), c)}


def dense_token(params, defaults) -> str:
    return f"dense_h_{'-'.join(map(str, hidden_layers(params)))}"


# --- conv: the original CIFAR-10 / Caltech101 design ---------------------------------------------


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


# --- conv_bn: the Fashion-MNIST design ------------------------------------------------------------


def _conv_bn_relu(h, conv, name: str):
    """``conv -> BatchNorm -> ReLU``; the conv has no bias because BatchNorm's beta replaces it."""
    from keras import layers

    from vaelab.layers import BatchNormalization

    h = conv(h)
    h = BatchNormalization(name=f"{name}_bn")(h)
    return layers.ReLU(name=f"{name}_relu")(h)


def build_conv_bn(params, image_shape, out_channels):
    """``x -> [Conv3x3-BN-ReLU] * conv_layers -> Flatten -> (z_mean, z_log_var)``, the first conv with stride 2
    and ``filters`` channels, the others ``2 * filters``; the decoder ``z -> Dense(H/4 * W/4 * 2f) -> BN-ReLU ->
    ConvT(2f, s2) -> ConvT(f, s2) -> ConvT(out_channels)``, bringing H/4 back to H."""
    import keras
    from keras import layers

    from vaelab.layers import BatchNormalization

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


# --- resnet: residual encoder/decoder with one global latent vector -------------------------------

RESNET_MIN_SIZE = 8  # downsample by 2 while the feature map is even and larger than this


def resnet_stages(image_shape) -> list[tuple[int, int]]:
    """(H, W) at each resolution, from the image down: halved while both are even and above 8 px
    (28 -> 14 -> 7, 32 -> 16 -> 8, 92 -> 46 -> 23, 128 -> 64 -> 32 -> 16 -> 8)."""
    sizes = [tuple(image_shape[:2])]
    while all(s % 2 == 0 and s > RESNET_MIN_SIZE for s in sizes[-1]):
        sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
    return sizes


def resnet_widths(params, stages: int) -> list[int]:
    """Channels per resolution: ``filters`` doubling at each halving, at most ``4 * filters``."""
    return [params.filters * min(2 ** i, 4) for i in range(stages)]


def _res_block(h, channels: int, name: str):
    """``h + Conv3x3(swish(Conv3x3(swish(h))))``, the second conv initialised small so each block starts near
    the identity (as VDVAE scales its residual branches)."""
    from keras import initializers, layers

    y = layers.Activation("swish", name=f"{name}_act1")(h)
    y = layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv1")(y)
    y = layers.Activation("swish", name=f"{name}_act2")(y)
    y = layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv2",
                      kernel_initializer=initializers.VarianceScaling(0.1))(y)
    return layers.Add(name=f"{name}_add")([h, y])


def build_resnet(params, image_shape, out_channels):
    """Encoder: Conv3x3(filters), then at each resolution of :func:`resnet_stages` ``blocks`` residual blocks
    and a stride-2 conv to the next -> Flatten -> Dense(intermediate, swish) -> (z_mean, z_log_var).
    Decoder, the mirror: Dense(intermediate) -> Dense(h * w * c) -> Reshape -> blocks and stride-2 transposed
    convs back up -> Conv3x3(out_channels)."""
    import keras
    from keras import layers

    stages = resnet_stages(image_shape)
    widths = resnet_widths(params, len(stages))
    x = keras.Input(shape=tuple(image_shape), name="x")
    h = layers.Conv2D(widths[0], 3, padding="same", name="encoder_in")(x)
    for i, width in enumerate(widths):
        for b in range(params.blocks):
            h = _res_block(h, width, f"encoder_s{i}_b{b}")
        if i + 1 < len(widths):
            h = layers.Conv2D(widths[i + 1], 3, strides=2, padding="same", name=f"encoder_down{i}")(h)
    h = layers.Activation("swish", name="encoder_out_act")(h)
    h = layers.Flatten(name="encoder_flatten")(h)
    h = layers.Dense(params.intermediate_dim, activation="swish", name="encoder_hidden")(h)
    encoder = keras.Model(x, list(_latent_heads(h, params.latent_dim)), name="encoder")

    (h_b, w_b), c_b = stages[-1], widths[-1]
    z = keras.Input(shape=(params.latent_dim,), name="z")
    h = layers.Dense(params.intermediate_dim, activation="swish", name="decoder_hidden")(z)
    h = layers.Dense(h_b * w_b * c_b, name="decoder_upsample")(h)
    h = layers.Reshape((h_b, w_b, c_b), name="decoder_reshape")(h)
    for i in reversed(range(len(widths))):
        for b in range(params.blocks):
            h = _res_block(h, widths[i], f"decoder_s{i}_b{b}")
        if i > 0:
            h = layers.Conv2DTranspose(widths[i - 1], 3, strides=2, padding="same", name=f"decoder_up{i}")(h)
    h = layers.Activation("swish", name="decoder_out_act")(h)
    out = layers.Conv2D(out_channels, 3, padding="same", name="x_hat", dtype="float32")(h)
    return encoder, keras.Model(z, out, name="decoder")


def check_resnet(params, image_shape) -> None:
    if len(resnet_stages(image_shape)) < 2:
        raise UserError(f"resnet needs an image it can halve at least once (even sides above "
                        f"{RESNET_MIN_SIZE} px), got {image_shape[0]}x{image_shape[1]}")


# --- hierarchical: top-down inference with spatial latents (vaelab.hierarchical) --------------------


def build_hierarchical(params, image_shape, out_channels):
    from vaelab import hierarchical

    return hierarchical.build(params, image_shape, out_channels)


def check_hierarchical(params, image_shape) -> None:
    from vaelab import hierarchical

    hierarchical.check(params, image_shape)


def _hierarchical_token(p, d) -> str:
    return f"hier{p.filters}x{p.blocks}_z{p.latent_channels}" + (f"_p{p.patch}" if p.patch > 1 else "")


# --- dense_hierarchical: a stack of latent vectors (vaelab.hierarchical) ---------------------------


def build_dense_hierarchical(params, image_shape, out_channels):
    from vaelab import hierarchical

    return hierarchical.build_dense(params, image_shape, out_channels)


def lower_latent_layers(params) -> tuple[int, ...]:
    """The widths of the dense hierarchical model's lower stochastic layers, top-down (``lower_latent_dims``)."""
    return parse_ints(params.lower_latent_dims, "lower_latent_dims", 1, 4096)


def check_dense_hierarchical(params, image_shape) -> None:
    lower_latent_layers(params)


def _dense_hierarchical_token(p, d) -> str:
    lower = "-".join(map(str, lower_latent_layers(p)))
    return f"dhier_h_{'-'.join(map(str, hidden_layers(p)))}_z{lower}"


# --- the parts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Architecture:
    name: str
    help: str
    build: Callable  # (params, image_shape, out_channels) -> (encoder, decoder)
    check: Callable = lambda params, image_shape: None  # raises UserError when it cannot do the image size
    token: Callable | None = None  # (params, defaults) -> file-name token; default: the name
    # (params, decoder shapes, encoder shapes) -> the entries a saved model's files show (vaelab.modelfile)
    infer: Callable | None = None
    flat_input: bool = False  # the encoder takes flattened images
    # The backend it trains fastest on, used when KERAS_BACKEND is unset (vaelab.train.choose_backend):
    # benchmarks/versus.py measured the dense MLPs faster on JAX; TensorFlow's oneDNN convolutions beat JAX's.
    backend: str | None = None
    hierarchical: bool = False  # the decoder takes [z, *features] and returns (out, kl, log_qp)

    def file_token(self, params, defaults) -> str:
        return self.token(params, defaults) if self.token else self.name


DENSE = Architecture("dense", "MLP encoder and decoder: hidden_dims (or one layer of intermediate_dim)",
                     build_dense, token=dense_token, infer=infer_dense, flat_input=True, backend="jax")
CONV = Architecture("conv", "the original conv/deconv stack: four convolutions (first_kernel, num_conv, strides, "
                            "filters), a Dense layer of intermediate_dim", build_conv, check_conv,
                    token=lambda p, d: f"conv{p.filters}", infer=infer_conv)
CONV_BN = Architecture("conv_bn", "the Fashion-MNIST design: conv_layers 3x3 Conv-BatchNorm-ReLU (filters), "
                                  "two stride-2 transposed convolutions back", build_conv_bn, check_conv_bn,
                       token=lambda p, d: f"convbn{p.filters}", infer=infer_conv_bn)
RESNET = Architecture("resnet", "residual conv encoder/decoder (filters, blocks per resolution) with one global "
                                "latent vector", build_resnet, check_resnet,
                      token=lambda p, d: f"resnet{p.filters}x{p.blocks}")
HIERARCHICAL = Architecture("hierarchical", "top-down hierarchical VAE: the global latent plus spatial latents "
                                            "(latent_channels at latent_scales), ResNet blocks (filters, blocks)",
                            build_hierarchical, check_hierarchical,
                            token=_hierarchical_token, hierarchical=True)
DENSE_HIERARCHICAL = Architecture("dense_hierarchical", "MLPs with stochastic layers of lower_latent_dims below the "
                                                        "global latent, inferred top-down (hidden_dims between "
                                                        "each pair of layers)", build_dense_hierarchical,
                                  check_dense_hierarchical, token=_dense_hierarchical_token, flat_input=True,
                                  backend="jax", hierarchical=True)
