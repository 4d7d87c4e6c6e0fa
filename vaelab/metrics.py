"""Model quality in the field's units: the ELBO split into reconstruction and KL, the importance-weighted
log-likelihood bound (IWAE), bits per dimension, and the Fréchet distance between two sets of features.

Conventions, shared by every function here:

- log densities are in nats; ``encoder(x) -> (z_mean, z_log_var)`` is a diagonal Gaussian q(z|x), the prior is
  N(0, I), and a *log-likelihood function* ``log_likelihood(x, out) -> log p(x|z)`` scores the decoder's output
  ``out``. It gets ``x`` shaped (N, 1, *event) and ``out`` shaped (N, S, *event) (S latent samples per example)
  and sums over the event axes, returning (N, S). :func:`bernoulli_log_likelihood` and
  :func:`gaussian_log_likelihood` are the ones the VAE's losses correspond to (:func:`log_likelihood_for`),
  with :func:`discretized_logistic_log_likelihood` for the decoder that gives CIFAR-10 bits/dim.
- the densities are computed in float64 numpy from the decoder's float32 outputs, so sums over thousands of
  pixels and the log-sum-exp over thousands of samples lose nothing; memory is bounded by ``max_rows``, the
  number of latent samples scored at once (by default :func:`rows_for` the image size: 8192 for MNIST).
- results depend on ``seed`` (and, for the IWAE noise draw order, on ``max_rows``), so a run repeats exactly.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import linalg
from scipy.special import logsumexp

LOG_2PI = math.log(2.0 * math.pi)
BCE_EPSILON = 1e-7  # keras.config.epsilon(): the clipping of ops.binary_crossentropy, which training used


# --- log-likelihood functions ---------------------------------------------------------------------


def _event_sum(a: np.ndarray) -> np.ndarray:
    return a.sum(axis=tuple(range(2, a.ndim))) if a.ndim > 2 else a


def bernoulli_log_likelihood(x: np.ndarray, probs: np.ndarray, epsilon: float = BCE_EPSILON) -> np.ndarray:
    """``sum x log p + (1 - x) log(1 - p)``: minus the summed binary cross-entropy the ``"bce"`` VAE trains on.

    Probabilities are clipped to ``[epsilon, 1 - epsilon]`` as Keras does in training; the clipping adds at most
    ``D * epsilon`` (8e-5 nats on MNIST) of probability mass. A density only for binary ``x``. Per-pixel terms are
    float32 (as the model computes them, error ~1e-4 nats over 784 pixels), summed in float64.
    """
    p = np.clip(np.asarray(probs, dtype=np.float32), epsilon, 1.0 - epsilon)
    x = np.asarray(x)
    if np.all((x == 0) | (x == 1)):  # binary data: one log per pixel instead of two (the IWAE's hot loop)
        per_pixel = np.log(np.where(x > 0.5, p, 1.0 - p))
    else:
        per_pixel = x * np.log(p) + (1.0 - x) * np.log1p(-p)
    return per_pixel.sum(axis=tuple(range(2, per_pixel.ndim)), dtype=np.float64) if per_pixel.ndim > 2 else per_pixel


def gaussian_log_likelihood(sigma: float):
    """The log-likelihood function of ``N(x; out, sigma^2 I)`` (the ``"mse"`` VAE's decoder, see
    :func:`log_likelihood_for`)."""
    log_var = 2.0 * math.log(sigma)

    def log_likelihood(x, mean):
        d = np.asarray(x, dtype=np.float64) - np.asarray(mean, dtype=np.float64)
        return _event_sum(-0.5 * (LOG_2PI + log_var + d * d / sigma ** 2))

    log_likelihood.__name__ = f"gaussian_log_likelihood(sigma={sigma:g})"
    return log_likelihood


def discretized_logistic_log_likelihood(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Log-probability of 8-bit pixels under the decoder's discretized mixture of logistics
    (:mod:`vaelab.discretized`, PixelCNN++ with channel coupling): the 256 levels of each sub-pixel sum to 1,
    so ``-log P / (D ln 2)`` is bits/dim as CIFAR-10 results are reported.

    ``x``: (N, 1, *event) in [0, 1] on the grid ``k / 255``; ``out``: (N, S, *event[:-1], W), the decoder's
    parameters (W = :func:`vaelab.discretized.param_channels` of the event's channels).
    """
    from vaelab import discretized

    return _event_sum(discretized.log_prob_numpy(x, out))


def log_likelihood_for(vae):
    """The log-likelihood function whose negative the VAE's reconstruction loss is (up to a constant).

    ``"bce"``: Bernoulli. ``"mse"`` with weight w over D pixels trains ``(w / D) * sum (x - out)^2``, which is the
    Gaussian NLL with ``sigma^2 = D / (2 w)`` minus its constant; the constant is included here, so the numbers
    are densities.
    """
    if vae.reconstruction == "bce":
        return bernoulli_log_likelihood
    from vaelab import discretized

    if vae.reconstruction == discretized.NAME:
        return discretized_logistic_log_likelihood
    pixels = math.prod(vae.encoder.inputs[0].shape[1:])
    return gaussian_log_likelihood(math.sqrt(pixels / (2.0 * vae.reconstruction_weight)))


def log_normal_diag(z: np.ndarray, mean: np.ndarray, log_var: np.ndarray) -> np.ndarray:
    """``log N(z; mean, diag(exp(log_var)))`` summed over the last axis."""
    return -0.5 * np.sum(LOG_2PI + log_var + (z - mean) ** 2 / np.exp(log_var), axis=-1)


def kl_to_standard_normal(mean: np.ndarray, log_var: np.ndarray) -> np.ndarray:
    """KL(N(mean, exp(log_var)) || N(0, I)) per example, in closed form (the VAE's training KL)."""
    return -0.5 * np.sum(1.0 + log_var - mean ** 2 - np.exp(log_var), axis=-1)


# --- model plumbing -------------------------------------------------------------------------------


def _numpy(value) -> np.ndarray:
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        try:
            return np.asarray(value.numpy())
        except (AttributeError, TypeError, RuntimeError):  # torch tensors needing .detach(), etc.
            pass
    from keras import ops

    return np.asarray(ops.convert_to_numpy(value))


def encode_gaussian(encoder, x: np.ndarray, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(z_mean, z_log_var) of q(z|x) for every example, float64."""
    means, log_vars = [], []
    for start in range(0, len(x), batch_size):
        mean, log_var = encoder(np.asarray(x[start:start + batch_size]), training=False)
        means.append(_numpy(mean))
        log_vars.append(_numpy(log_var))
    return np.concatenate(means).astype(np.float64), np.concatenate(log_vars).astype(np.float64)


DECODE_FLOATS = 2 ** 22  # decoder output values per call (16 MB): its activations stay small at any image size


def decode_samples(decoder, z: np.ndarray) -> np.ndarray:
    """Decoder output for z of shape (N, S, d): (N, S, *event), float32 as the model computes it; decoded in
    calls of at most :data:`DECODE_FLOATS` output values (8192 Caltech101 latents at once would need tens of GB
    of convolution activations)."""
    n, s, d = z.shape
    flat = z.reshape(n * s, d).astype(np.float32)
    shape = getattr(decoder, "output_shape", None)  # a Keras model; a plain function is called once
    rows = max(1, DECODE_FLOATS // math.prod(shape[1:])) if shape else len(flat)
    out = np.concatenate([_numpy(decoder(flat[i:i + rows], training=False)) for i in range(0, len(flat), rows)])
    return out.reshape((n, s, *out.shape[1:]))


def rows_for(dims: int, most: int = 8192) -> int:
    """``max_rows`` for images of ``dims`` values: 8192 for MNIST's 784, proportionally fewer for larger images,
    so the float64 likelihood arrays of one chunk stay near 50 MB."""
    return max(16, min(most, most * 784 // dims))


def log_importance_weights(decoder, x: np.ndarray, mean: np.ndarray, log_var: np.ndarray, eps: np.ndarray,
                           log_likelihood=bernoulli_log_likelihood) -> np.ndarray:
    """``log w = log p(x|z) + log p(z) - log q(z|x)`` at ``z = mean + exp(log_var / 2) * eps``.

    ``x`` (N, *event), ``mean`` and ``log_var`` (N, d), ``eps`` (N, S, d) -> (N, S). ``E_q[w] = p(x)``, which is
    what both the ELBO (``E log w``) and the IWAE bound (``E log mean_k w``) rest on.
    """
    z = mean[:, None, :] + np.exp(0.5 * log_var)[:, None, :] * eps
    log_q = -0.5 * np.sum(LOG_2PI + log_var[:, None, :] + eps ** 2, axis=-1)  # log N(z; mean, var), exactly
    log_prior = -0.5 * np.sum(LOG_2PI + z ** 2, axis=-1)
    log_px_z = log_likelihood(np.asarray(x)[:, None], decode_samples(decoder, z))
    return log_px_z + log_prior - log_q


# --- ELBO -----------------------------------------------------------------------------------------


def elbo(encoder, decoder, x: np.ndarray, log_likelihood=bernoulli_log_likelihood, samples: int = 1,
         seed: int = 0, max_rows: int | None = None) -> dict[str, np.ndarray]:
    """Per-example ELBO terms in nats: ``reconstruction = -E_q log p(x|z)`` (Monte Carlo, ``samples`` draws of
    z each), ``kl`` (closed form) and ``elbo = -(reconstruction + kl)``, each shaped (N,).

    This is the training loss with kl_weight 1 (the VAE's loss when its weights give the true ELBO), so
    ``-mean(elbo)`` is an upper bound on the test NLL.
    """
    x = np.asarray(x)
    mean, log_var = encode_gaussian(encoder, x)
    rng = np.random.default_rng(seed)
    max_rows = max_rows or rows_for(math.prod(x.shape[1:]))
    per_chunk = max(1, max_rows // samples)
    recon = np.empty(len(x))
    for start in range(0, len(x), per_chunk):
        sl = slice(start, start + per_chunk)
        eps = rng.standard_normal((len(x[sl]), samples, mean.shape[1]))
        z = mean[sl, None, :] + np.exp(0.5 * log_var[sl])[:, None, :] * eps
        recon[sl] = -log_likelihood(x[sl][:, None], decode_samples(decoder, z)).mean(axis=1)
    kl = kl_to_standard_normal(mean, log_var)
    return {"reconstruction": recon, "kl": kl, "elbo": -(recon + kl)}


# --- importance-weighted bound --------------------------------------------------------------------


def iwae_log_likelihood(encoder, decoder, x: np.ndarray, k: int = 1000, log_likelihood=bernoulli_log_likelihood,
                        seed: int = 0, max_rows: int | None = None, verbose: int = 1) -> np.ndarray:
    """Importance-weighted estimate of ``log p(x)`` per example (Burda et al. 2015), shaped (N,):

        L_k(x) = log (1/k) sum_{j=1..k} w_j,   w_j = p(x|z_j) p(z_j) / q(z_j|x),   z_j ~ q(z|x)

    ``E[L_k] <= log p(x)`` for every k, ``E[L_k]`` grows with k and tends to ``log p(x)``; ``L_1`` is the
    one-sample ELBO estimate ``log w(z)`` (the same number for the same noise), so ``E[L_1]`` is the ELBO.

    Memory stays bounded: at most ``max_rows`` latent samples are decoded at once (several examples per chunk
    when k is small, several chunks per example when k is large), and the chunks' sums are combined with
    log-sum-exp, never exponentiated. ``verbose`` shows a progress bar over the N * k samples.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    x = np.asarray(x)
    mean, log_var = encode_gaussian(encoder, x)
    rng = np.random.default_rng(seed)
    max_rows = max_rows or rows_for(math.prod(x.shape[1:]))
    per_chunk = min(k, max_rows)  # samples of one example per decoder call
    examples = max(1, max_rows // per_chunk)  # examples per decoder call
    bar = None
    if verbose:
        import keras

        bar = keras.utils.Progbar(len(x) * k, unit_name="sample")
    out = np.empty(len(x))
    for start in range(0, len(x), examples):
        sl = slice(start, start + examples)
        n = len(x[sl])
        total = np.full(n, -np.inf)
        for done in range(0, k, per_chunk):
            s = min(per_chunk, k - done)
            eps = rng.standard_normal((n, s, mean.shape[1]))
            log_w = log_importance_weights(decoder, x[sl], mean[sl], log_var[sl], eps, log_likelihood)
            total = np.logaddexp(total, logsumexp(log_w, axis=1))
            if bar is not None:
                bar.add(n * s)
        out[sl] = total - math.log(k)
    return out


def bits_per_dim(nll_nats: float, dims: int) -> float:
    """A negative log-likelihood per example in nats as bits per dimension: ``nll / (dims * ln 2)``.

    Meaningful for discrete data (e.g. 8-bit pixels under a discretized likelihood); for binarized MNIST it is
    the per-pixel code length.
    """
    return float(nll_nats) / (dims * math.log(2.0))


# --- Fréchet distance -----------------------------------------------------------------------------


def frechet_distance_from_moments(mu_a, cov_a, mu_b, cov_b) -> float:
    """``|mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2))``: the squared 2-Wasserstein distance between
    two Gaussians, as in the FID (Heusel et al. 2017)."""
    mu_a, mu_b = np.atleast_1d(np.asarray(mu_a, np.float64)), np.atleast_1d(np.asarray(mu_b, np.float64))
    cov_a, cov_b = np.atleast_2d(np.asarray(cov_a, np.float64)), np.atleast_2d(np.asarray(cov_b, np.float64))
    with warnings.catch_warnings():  # fewer samples than features make C_a C_b singular; sqrtm still copes
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(cov_a @ cov_b)
        if not np.all(np.isfinite(covmean)):  # regularise as pytorch-fid does
            offset = np.eye(len(cov_a)) * 1e-6
            covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = np.real(covmean)  # sqrtm leaves ~1e-10 imaginary parts from rounding
    diff = mu_a - mu_b
    return float(max(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean), 0.0))


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets (N_a, F) and (N_b, F).

    Biased by the sample count (smaller sets give larger distances), so compare numbers only at equal counts;
    with fewer samples than features the covariances are singular and the number is rougher still.
    """
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need two (N, F) feature arrays with the same F, got {a.shape} and {b.shape}")
    return frechet_distance_from_moments(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
