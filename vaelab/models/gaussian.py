"""Diagonal Gaussian posteriors against the standard normal prior: the KL and ``log q - log p`` the VAE's terms
are made of (the lower layers of hierarchical models have theirs in :mod:`vaelab.models.architectures.topdown`)."""

from __future__ import annotations

from keras import ops


def kl_divergence(z_mean, z_log_var):
    """KL(N(mu, sigma^2) || N(0, I)) per example, summed over latent dimensions."""
    return ops.sum(kl_per_dimension(z_mean, z_log_var), axis=-1)


def kl_per_dimension(z_mean, z_log_var):
    z_mean, z_log_var = ops.convert_to_tensor(z_mean), ops.convert_to_tensor(z_log_var)
    return -0.5 * (1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))


def log_q_minus_log_p(z, z_mean, z_log_var):
    """``log N(z; mean, exp(log_var)) - log N(z; 0, I)`` per example (the 2 pi terms cancel)."""
    z, z_mean, z_log_var = (ops.convert_to_tensor(t) for t in (z, z_mean, z_log_var))
    eps = (z - z_mean) * ops.exp(-0.5 * z_log_var)
    return ops.sum(-0.5 * z_log_var - 0.5 * ops.square(eps) + 0.5 * ops.square(z), axis=-1)
