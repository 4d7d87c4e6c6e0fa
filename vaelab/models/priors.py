"""Learned priors over the global latent (``prior = standard | mog | vamp``).

- ``standard``: N(0, I), the VAE of Kingma & Welling; its KL is analytic (no layer here).
- ``mog``: a learned mixture of ``prior_components`` diagonal Gaussians (means, variances and weights trained
  with the model).
- ``vamp``: the VampPrior (Tomczak & Welling 2018): ``p(z) = 1/K sum_k q(z | u_k)``, the encoder's posteriors
  of ``K`` learned pseudo-inputs ``u_k`` (images in [0, 1], started at grey 0.5 with a little noise).

With a learned prior the KL of q(z|x) from p(z) has no closed form: the model uses the one-sample estimate
``log q(z|x) - log p(z)`` at the drawn z (the IWAE bound uses the same terms, as it always did). Both priors are
mixtures of diagonal Gaussians, so after training the prior is written beside the model as one
(``<prefix>_prior.npz``: weights, means, variances), and the generate scripts sample it with the ``prior``
sampler (:class:`vaelab.models.samplers.LearnedPrior`), the default for such a model.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

PRIORS = ("standard", "mog", "vamp")
LOG_2PI = math.log(2.0 * math.pi)


def mixture_log_prob(z, means, log_vars, log_weights):
    """``log sum_k w_k N(z; mean_k, exp(log_var_k))`` per row of ``z`` (B, d), for K components (K, d)."""
    z = ops.cast(z, "float32")[:, None, :]
    log_n = -0.5 * ops.sum(LOG_2PI + log_vars[None] + ops.square(z - means[None]) * ops.exp(-log_vars[None]),
                           axis=-1)
    return ops.logsumexp(log_n + log_weights[None], axis=1)


def gaussian_log_density(z, z_mean, z_log_var):
    """``log N(z; mean, exp(log_var))`` per example, summed over dimensions."""
    z, z_mean, z_log_var = (ops.cast(t, "float32") for t in (z, z_mean, z_log_var))
    return -0.5 * ops.sum(LOG_2PI + z_log_var + ops.square(z - z_mean) * ops.exp(-z_log_var), axis=-1)


@keras.saving.register_keras_serializable(package="vaelab")
class MixturePrior(keras.layers.Layer):
    """A learned mixture of ``components`` diagonal Gaussians over a ``latent_dim``-d latent."""

    kind = "mog"

    def __init__(self, latent_dim: int, components: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim, self.components, self.seed = int(latent_dim), int(components), int(seed)
        self.means = self.add_weight(shape=(self.components, self.latent_dim), name="means",
                                     initializer=keras.initializers.RandomNormal(stddev=1.0, seed=self.seed))
        self.log_vars = self.add_weight(shape=(self.components, self.latent_dim), name="log_vars",
                                        initializer="zeros")
        self.logits = self.add_weight(shape=(self.components,), name="logits", initializer="zeros")
        self.built = True  # its weights are made here, not by a call

    def log_prob(self, z, encoder=None):
        return mixture_log_prob(z, self.means, self.log_vars, ops.log_softmax(self.logits))

    def mixture(self, encoder=None) -> dict:
        """The prior as numpy arrays: ``weights`` (K,), ``means`` and ``variances`` (K, d)."""
        return {"weights": ops.convert_to_numpy(ops.softmax(self.logits)).astype(np.float64),
                "means": ops.convert_to_numpy(self.means).astype(np.float64),
                "variances": np.exp(ops.convert_to_numpy(self.log_vars).astype(np.float64))}

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "components": self.components,
                "seed": self.seed}


@keras.saving.register_keras_serializable(package="vaelab")
class VampPrior(keras.layers.Layer):
    """The VampPrior: the mixture of the encoder's posteriors of ``components`` learned pseudo-inputs."""

    kind = "vamp"

    def __init__(self, input_shape_: tuple, components: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.input_shape_, self.components, self.seed = tuple(int(s) for s in input_shape_), int(components), int(seed)
        init = keras.initializers.RandomNormal(mean=0.5, stddev=0.01, seed=self.seed)
        self.pseudo_inputs = self.add_weight(shape=(self.components, *self.input_shape_), name="pseudo_inputs",
                                             initializer=init)
        self.built = True

    def posteriors(self, encoder):
        """``(means, log_vars)`` (K, d) of the encoder's posteriors of the pseudo-inputs (kept in [0, 1])."""
        features = encoder(ops.clip(self.pseudo_inputs, 0.0, 1.0), training=False)
        return ops.cast(features[0], "float32"), ops.cast(features[1], "float32")

    def log_prob(self, z, encoder):
        means, log_vars = self.posteriors(encoder)
        log_weights = ops.full((self.components,), -math.log(self.components))
        return mixture_log_prob(z, means, log_vars, log_weights)

    def mixture(self, encoder) -> dict:
        means, log_vars = (ops.convert_to_numpy(t).astype(np.float64) for t in self.posteriors(encoder))
        return {"weights": np.full(self.components, 1.0 / self.components), "means": means,
                "variances": np.exp(log_vars)}

    def get_config(self):
        return {**super().get_config(), "input_shape_": list(self.input_shape_), "components": self.components,
                "seed": self.seed}


def build(params, encoder):
    """The learned prior the params ask for (None for the standard normal)."""
    if params.prior == "standard":
        return None
    if params.prior == "mog":
        return MixturePrior(params.latent_dim, params.prior_components, seed=params.seed, name="prior")
    return VampPrior(tuple(encoder.inputs[0].shape[1:]), params.prior_components, seed=params.seed, name="prior")
