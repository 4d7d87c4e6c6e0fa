"""Gaussian mixtures in numpy: the EM fit, draws and log-densities behind the ``gmm`` and ``prior`` samplers
(:mod:`vaelab.models.samplers`)."""

from __future__ import annotations

import numpy as np

ROWS = 4096  # points per block: the (block, K) responsibilities stay small whatever N and K are


def _quadratic_terms(means: np.ndarray, covs: np.ndarray):
    """Per component: the precision (K, d*d), precision @ mean (K, d) and the constant of ``log N``."""
    d = means.shape[1]
    prec = np.linalg.inv(covs)
    _, logdet = np.linalg.slogdet(covs)
    prec_mean = np.einsum("kij,kj->ki", prec, means)
    const = -0.5 * (d * np.log(2 * np.pi) + logdet + np.einsum("ki,ki->k", means, prec_mean))
    return prec.reshape(len(means), d * d), prec_mean, const


def _outer(x: np.ndarray) -> np.ndarray:
    return (x[:, :, None] * x[:, None, :]).reshape(len(x), -1)


def log_gaussians(x: np.ndarray, means: np.ndarray, covs: np.ndarray) -> np.ndarray:
    """``log N(x_n; mean_k, cov_k)`` for every point and component: (N, K).

    The quadratic form is expanded (x'Px - 2 x'P mean + mean'P mean) so that all components cost three
    matrix products instead of a Python loop over them.
    """
    x = np.asarray(x, dtype=np.float64)
    terms = _quadratic_terms(np.asarray(means, np.float64), np.asarray(covs, np.float64))
    out = np.empty((len(x), len(means)))
    for a in range(0, len(x), ROWS):
        block = x[a:a + ROWS]
        out[a:a + ROWS] = _log_gaussians_block(block, _outer(block), terms)
    return out


def _log_gaussians_block(block: np.ndarray, outer: np.ndarray, terms) -> np.ndarray:
    prec, prec_mean, const = terms
    return const - 0.5 * (outer @ prec.T) + block @ prec_mean.T


def fit_gmm(x: np.ndarray, components: int, seed: int = 0, iterations: int = 300, tol: float = 1e-7,
            reg: float = 1e-6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights, means, covariances) of a full-covariance Gaussian mixture fitted to ``x`` (N, d) by EM.

    Means start at k-means++ seeds (seeded), covariances at the data's; ``reg`` is added to every covariance's
    diagonal (scaled by the data's variance) so components never collapse onto a point. The E- and M-steps
    run over blocks of points, accumulating each component's weight, sum and second moment.
    """
    from scipy.special import logsumexp

    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    k = min(int(components), n)
    rng = np.random.default_rng(seed)
    means = [x[rng.integers(n)]]
    dist = np.sum((x - means[0]) ** 2, axis=1)  # each point's squared distance to its nearest seed so far
    for _ in range(1, k):  # k-means++: later seeds far from the earlier ones
        means.append(x[rng.choice(n, p=dist / dist.sum())] if dist.sum() > 0 else x[rng.integers(n)])
        dist = np.minimum(dist, np.sum((x - means[-1]) ** 2, axis=1))
    means = np.array(means)
    floor = reg * max(float(np.mean(np.var(x, axis=0))), 1e-12) * np.eye(d)
    covs = np.array([np.cov(x, rowvar=False).reshape(d, d) + floor] * k)
    weights = np.full(k, 1.0 / k)
    previous = -np.inf
    for _ in range(iterations):
        log_weights = np.log(weights)
        terms = _quadratic_terms(means, covs)  # once per iteration, not per block
        counts, sums, squares, total = np.zeros(k), np.zeros((k, d)), np.zeros((k, d * d)), 0.0
        for a in range(0, n, ROWS):
            block = x[a:a + ROWS]
            outer = _outer(block)
            log_joint = _log_gaussians_block(block, outer, terms) + log_weights
            log_norm = logsumexp(log_joint, axis=1, keepdims=True)
            resp = np.exp(log_joint - log_norm)
            counts += resp.sum(axis=0)
            sums += resp.T @ block
            squares += resp.T @ outer
            total += float(log_norm.sum())
        counts += 1e-12
        weights = counts / n
        means = sums / counts[:, None]
        covs = squares.reshape(k, d, d) / counts[:, None, None] - means[:, :, None] * means[:, None, :] + floor
        covs = 0.5 * (covs + np.swapaxes(covs, 1, 2))
        mean_ll = total / n
        if mean_ll - previous < tol * max(1.0, abs(mean_ll)):
            break
        previous = mean_ll
    return weights, means, covs


def sample_gmm(weights, means, covs, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    which = rng.choice(len(weights), size=n, p=np.asarray(weights) / np.sum(weights))
    chol = np.linalg.cholesky(covs)
    eps = rng.standard_normal((n, means.shape[1]))
    return means[which] + np.einsum("nij,nj->ni", chol[which], eps)


def pad(weights, means, covs, k: int):
    """A mixture of fewer than ``k`` components (a class with fewer codes) padded with components of weight 0."""
    extra = k - len(weights)
    if extra <= 0:
        return weights, means, covs
    d = means.shape[1]
    return (np.concatenate([weights, np.zeros(extra)]), np.concatenate([means, np.zeros((extra, d))]),
            np.concatenate([covs, np.tile(np.eye(d), (extra, 1, 1))]))
