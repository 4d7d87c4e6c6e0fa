"""The files a trained VAE is saved as, beside the whole model: the encoder ``x -> z_mean``, the decoder
``z -> image`` (the likelihood's mean as its last layer) and the architecture text.
"""

from __future__ import annotations

import keras

from vaelab.models import registry as parts


@keras.saving.register_keras_serializable(package="vaelab")
class LikelihoodMean(keras.layers.Layer):
    """Decoder output -> the image in [0, 1] that a likelihood of :mod:`vaelab.models.registry` has as its mean: the last
    layer of every saved ``…_decoder.h5``."""

    def __init__(self, likelihood: str, channels: int, options: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.likelihood_name, self.channels, self.options = likelihood, int(channels), dict(options or {})
        self.likelihood = parts.lookup("likelihood", likelihood)(self.channels, **self.options)

    def call(self, out):
        return self.likelihood.mean(out)

    def compute_output_shape(self, input_shape):
        if len(input_shape) == 2:  # flat decoder outputs, one number per pixel and channel
            return input_shape
        return (*input_shape[:-1], self.channels)

    def get_config(self):
        return {**super().get_config(), "likelihood": self.likelihood_name, "channels": self.channels,
                "options": self.options}


def mean_encoder(encoder: keras.Model) -> keras.Model:
    """The saved ``…_encoder`` model: x -> z_mean, sharing the VAE encoder's layers (as the original)."""
    return keras.Model(encoder.inputs, encoder.outputs[0], name="encoder_mean")


def image_decoder(vae) -> keras.Model:
    """z -> image in [0, 1]: the saved ``…_decoder`` model and what samples and reconstructions are drawn with.

    The decoder followed by the likelihood's mean: Keras' own ``Activation`` where the mean is one (a sigmoid of
    logits), so the file loads in plain Keras; else the registered :class:`LikelihoodMean` (a mixture's mean
    image, the continuous Bernoulli's mean), which loads after ``import vaelab``. A hierarchical
    decoder draws its lower latents at their prior means unless :func:`vaelab.models.architectures.topdown.set_temperature`
    says otherwise. Models whose decoder already ends in the image (saved
    before likelihoods were parts) keep their decoder as it is.
    """
    lik = vae.likelihood
    if getattr(lik, "from_logits", True) is False:
        return vae.decoder
    z = keras.Input(shape=(vae.latent_dim,), name="z")
    inputs = [z, keras.Input(shape=(1,), dtype="int32", name="label")] if vae.conditional else z
    out = vae.decoder(inputs)
    if vae.hierarchical:
        out = out[0]
    if lik.mean_activation():
        mean = keras.layers.Activation(lik.mean_activation(), name="x_hat_mean", dtype="float32")(out)
    else:
        mean = LikelihoodMean(lik.name, lik.channels, lik.options(), name="x_hat_mean", dtype="float32")(out)
    return keras.Model(inputs, mean, name="decoder")


SUMMARY_WIDTH = 100  # characters per line of the architecture text


def architecture_text(vae) -> str:
    """The encoder's and the saved decoder's ``summary()`` (layers, output shapes, parameter counts) as text:
    the ``…_architecture.txt`` beside every trained model, and what ``--summary`` prints."""
    import os

    texts: list[str] = []
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(SUMMARY_WIDTH)  # Keras draws the tables with rich, which wraps at this width
    try:
        for model in (vae.encoder, vae.decoder):
            model.summary(line_length=SUMMARY_WIDTH, print_fn=lambda text, line_break=True: texts.append(text))
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return "\n".join(text.rstrip() + "\n" for text in texts)


