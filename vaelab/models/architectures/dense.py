"""The ``dense`` architecture: the original MNIST design's MLP encoder and decoder, on flattened images.
"""

from __future__ import annotations

from vaelab.models.architectures.base import Architecture, _latent_heads, _mixtures, _named, hidden_layers

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


DENSE = Architecture("dense", "MLP encoder and decoder: hidden_dims (or one layer of intermediate_dim)",
                     build_dense, token=dense_token, infer=infer_dense, flat_input=True, backend="jax",
                     resized=lambda p, d: p.hidden_dims != d.hidden_dims)  # intermediate_dim: in the name already
