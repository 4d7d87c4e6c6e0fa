"""The ``resnet`` architecture: residual conv encoder and decoder around one global latent vector.
"""

from __future__ import annotations

from vaelab.core.errors import UserError
from vaelab.models.architectures.base import Architecture, _latent_heads

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


RESNET = Architecture("resnet", "residual conv encoder/decoder (filters, blocks per resolution) with one global "
                                "latent vector", build_resnet, check_resnet,
                      token=lambda p, d: f"resnet{p.filters}x{p.blocks}")
