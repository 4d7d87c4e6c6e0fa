"""Working in the latent space: encode, decode, class means, grids, morphs and interpolations.

Everything here takes and returns numpy arrays; images are (N, H, W, C) floats in [0, 1].
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm


def _first_output(out):
    return out[0] if isinstance(out, (list, tuple)) else out


def _with(labels, first):
    return first if labels is None else [first, np.asarray(labels, dtype=np.int32).reshape(-1, 1)]


def encode(encoder, x: np.ndarray, batch_size: int = 1024, labels=None) -> np.ndarray:
    """z_mean of each input (an encoder with outputs ``[z_mean, z_log_var]`` works too); a conditional encoder
    takes each input's ``labels`` too."""
    return np.asarray(_first_output(encoder.predict(_with(labels, x), batch_size=batch_size, verbose=0)))


def decode(decoder, z: np.ndarray, image_shape: tuple[int, ...], batch_size: int = 1024, labels=None) -> np.ndarray:
    """Decoded images of the latent vectors ``z`` (with their ``labels`` for a conditional decoder), shaped
    (N, *image_shape)."""
    z = np.asarray(z, dtype=np.float32).reshape(-1, decoder.inputs[0].shape[-1])
    out = np.asarray(decoder.predict(_with(labels, z), batch_size=batch_size, verbose=0))
    return out.reshape((len(z), *image_shape))


def decode_small(decoder, z: np.ndarray, image_shape: tuple[int, ...], labels=None) -> np.ndarray:
    """:func:`decode` for a few vectors: a direct call of the decoder, without ``predict``'s per-call set-up
    (milliseconds instead of tens of them), for interactive use."""
    from keras import ops

    z = np.asarray(z, dtype=np.float32).reshape(-1, decoder.inputs[0].shape[-1])
    out = ops.convert_to_numpy(decoder(_with(labels, z), training=False))
    return np.asarray(out).reshape((len(z), *image_shape))


def class_means(z: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean latent vector of each class, shape (n_classes, latent_dim); NaN for an absent class."""
    z, y = np.asarray(z, dtype=np.float64), np.asarray(y).reshape(-1)
    means = np.full((n_classes, z.shape[1]), np.nan)
    for c in range(n_classes):
        if np.any(y == c):
            means[c] = z[y == c].mean(axis=0)
    return means


def normal_quantiles(n: int, scale: float = 1.0, lo: float = 0.05, hi: float = 0.95) -> np.ndarray:
    """``scale * norm.ppf(linspace(lo, hi, n))``: evenly spaced in probability under the prior."""
    return scale * norm.ppf(np.linspace(lo, hi, n))


def manifold_latents(n: int, scale: float = 1.0, fixed: tuple[float, ...] = ()) -> np.ndarray:
    """The n*n latent vectors of a 2-D manifold grid (row-major, top row = largest z2), plus ``fixed``."""
    q = normal_quantiles(n, scale)
    z1, z2 = np.meshgrid(q, q[::-1])
    grid = np.stack([z1.ravel(), z2.ravel()], axis=1)
    if fixed:
        grid = np.concatenate([grid, np.tile(np.asarray(fixed, dtype=float), (len(grid), 1))], axis=1)
    return grid


def tile(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Arrange ``rows*cols`` images (N, H, W, C) into one (rows*H, cols*W, C) image."""
    n, h, w, c = images.shape
    if n != rows * cols:
        raise ValueError(f"{n} images do not fill a {rows}x{cols} grid")
    return images.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)


def morph(mean_a: np.ndarray, mean_b: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """``mean_a + alpha * mean_b`` for each alpha: (len(alphas), latent_dim)."""
    alphas = np.asarray(alphas, dtype=float)[:, None]
    return np.asarray(mean_a)[None, :] + alphas * np.asarray(mean_b)[None, :]


def interpolate(a: np.ndarray, b: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """``(1 - alpha) * a + alpha * b`` for each alpha: (len(alphas), latent_dim)."""
    alphas = np.asarray(alphas, dtype=float)[:, None]
    return (1.0 - alphas) * np.asarray(a)[None, :] + alphas * np.asarray(b)[None, :]


def slerp(a: np.ndarray, b: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Spherical interpolation: along the great circle from ``a`` to ``b``, the norm interpolated linearly
    (White 2016: under a Gaussian prior the straight line passes through improbable low-norm codes).
    Falls back to the line when the two are (anti)parallel or one is zero."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    alphas = np.asarray(alphas, dtype=float)[:, None]
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return interpolate(a, b, alphas[:, 0])
    cos = np.clip(a @ b / (na * nb), -1.0, 1.0)
    omega = np.arccos(cos)
    if np.sin(omega) < 1e-6:
        return interpolate(a, b, alphas[:, 0])
    ua, ub = a / na, b / nb
    direction = (np.sin((1.0 - alphas) * omega) * ua + np.sin(alphas * omega) * ub) / np.sin(omega)
    return direction * ((1.0 - alphas) * na + alphas * nb)
