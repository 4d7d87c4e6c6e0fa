"""Gaussian mixtures in numpy: the EM fit, draws and log-densities behind the ``gmm`` and ``prior`` samplers
(:mod:`vaelab.models.samplers`)."""

from __future__ import annotations

import numpy as np

def log_gaussians(x: np.ndarray, means: np.ndarray, covs: np.ndarray) -> np.ndarray:
    """``log N(x_n; mean_k, cov_k)`` for every point and component: (N, K)."""
    n, d = x.shape
    out = np.empty((n, len(means)))
    for k, (mean, cov) in enumerate(zip(means, covs)):
        chol = np.linalg.cholesky(cov)
        solved = np.linalg.solve(chol, (x - mean).T)
        out[:, k] = -0.5 * (d * np.log(2 * np.pi) + np.sum(solved ** 2, axis=0)) - np.sum(np.log(np.diag(chol)))
    return out


def fit_gmm(x: np.ndarray, components: int, seed: int = 0, iterations: int = 300, tol: float = 1e-7,
            reg: float = 1e-6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights, means, covariances) of a full-covariance Gaussian mixture fitted to ``x`` (N, d) by EM.

    Means start at k-means++ seeds (seeded), covariances at the data's; ``reg`` is added to every covariance's
    diagonal (scaled by the data's variance) so components never collapse onto a point.
    """
    from scipy.special import logsumexp

    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    k = min(int(components), n)
    rng = np.random.default_rng(seed)
    means = [x[rng.integers(n)]]
    for _ in range(1, k):  # k-means++: later seeds far from the earlier ones
        dist = np.min([np.sum((x - m) ** 2, axis=1) for m in means], axis=0)
        means.append(x[rng.choice(n, p=dist / dist.sum())] if dist.sum() > 0 else x[rng.integers(n)])
    means = np.array(means)
    floor = reg * max(float(np.mean(np.var(x, axis=0))), 1e-12) * np.eye(d)
    covs = np.array([np.cov(x, rowvar=False).reshape(d, d) + floor] * k)
    weights = np.full(k, 1.0 / k)
    previous = -np.inf
    for _ in range(iterations):
        log_joint = log_gaussians(x, means, covs) + np.log(weights)
        log_norm = logsumexp(log_joint, axis=1, keepdims=True)
        resp = np.exp(log_joint - log_norm)
        counts = resp.sum(axis=0) + 1e-12
        weights = counts / n
        means = (resp.T @ x) / counts[:, None]
        for j in range(k):
            diff = x - means[j]
            covs[j] = (resp[:, j, None] * diff).T @ diff / counts[j] + floor
        mean_ll = float(log_norm.mean())
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
