"""The two-stage sampler's second VAE (Dai & Wipf 2019), trained on a first VAE's codes by
:class:`vaelab.models.samplers.TwoStage`."""

from __future__ import annotations

import math

import keras
from keras import ops

from vaelab.models.gaussian import kl_divergence
from vaelab.models.layers import Sampling


@keras.saving.register_keras_serializable(package="vaelab")
class SecondStageVAE(keras.Model):
    """The two-stage sampler's second VAE (Dai & Wipf 2019): codes z -> u -> z with MLPs and a Gaussian decoder
    whose variance gamma is learned, so that it can match the codes' density instead of blurring it."""

    def __init__(self, latent_dim: int, hidden: int = 256, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim, self.hidden, self.seed = int(latent_dim), int(hidden), seed
        dense = keras.layers.Dense
        self.encoder_layers = [dense(hidden, activation="swish", name=f"encoder_hidden_{i}") for i in range(2)]
        self.z_mean_layer, self.z_log_var_layer = dense(latent_dim, name="u_mean"), dense(latent_dim, name="u_log_var")
        self.decoder_layers = [dense(hidden, activation="swish", name=f"decoder_hidden_{i}") for i in range(2)]
        self.out_layer = dense(latent_dim, name="z_hat")
        self.sampling = Sampling(seed=seed, name="sampling")
        self.log_gamma = self.add_weight(shape=(), initializer="zeros", name="log_gamma")
        # Built now, so that a saved file's weights load into a model made from its config.
        for layer, width in ((self.encoder_layers[0], latent_dim), (self.encoder_layers[1], hidden),
                             (self.z_mean_layer, hidden), (self.z_log_var_layer, hidden),
                             (self.decoder_layers[0], latent_dim), (self.decoder_layers[1], hidden),
                             (self.out_layer, hidden)):
            layer.build((None, width))
        self.built = True

    def decode(self, u):
        h = u
        for layer in self.decoder_layers:
            h = layer(h)
        return self.out_layer(h)

    def call(self, z, training=False):
        h = z
        for layer in self.encoder_layers:
            h = layer(h)
        u_mean, u_log_var = self.z_mean_layer(h), self.z_log_var_layer(h)
        return {"z_hat": self.decode(self.sampling([u_mean, u_log_var])), "u_mean": u_mean, "u_log_var": u_log_var}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        gamma = ops.exp(self.log_gamma)
        sq = ops.square(x - y_pred["z_hat"])
        nll = ops.sum(sq / (2.0 * gamma) + 0.5 * self.log_gamma + 0.5 * math.log(2 * math.pi), axis=-1)
        return ops.mean(nll + kl_divergence(y_pred["u_mean"], y_pred["u_log_var"]))

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "hidden": self.hidden, "seed": self.seed}
