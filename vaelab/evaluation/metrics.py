"""Model quality in the field's units: the ELBO split into reconstruction and KL, the importance-weighted
log-likelihood bound (IWAE), bits per dimension, what each stochastic layer holds (its KL and active units),
and the Fréchet distance between two sets of features.

Every number comes from the model's own terms (:meth:`vaelab.models.vae.VAE.importance_terms`): ``log p(x|z)`` from
its likelihood and ``log q(z|x) - log p(z)`` from its stochastic layers, whatever the architecture. Per-sample
terms are float32 as the model computes them; sums over samples (the IWAE's log-sum-exp over thousands) are
float64. Results depend on ``seed`` (and, for the noise draw order, on ``max_rows``), so a run repeats exactly.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import linalg
from scipy.special import logsumexp


# --- model plumbing -------------------------------------------------------------------------------


def to_numpy(value) -> np.ndarray:
    """A backend tensor (or array) as a numpy array."""
    from keras import ops

    return np.asarray(ops.convert_to_numpy(value))


def encode_gaussian(encoder, x: np.ndarray, batch_size: int = 1024, labels=None) -> tuple[np.ndarray, np.ndarray]:
    """(z_mean, z_log_var) of q(z|x) for every example, float64 (a conditional encoder's q(z|x, label) given
    each example's ``labels``)."""
    means, log_vars = [], []
    for start in range(0, len(x), batch_size):
        batch = np.asarray(x[start:start + batch_size])
        if labels is not None:
            batch = [batch, np.asarray(labels[start:start + batch_size], dtype=np.int32).reshape(-1, 1)]
        out = encoder(batch, training=False)
        means.append(to_numpy(out[0]))
        log_vars.append(to_numpy(out[1]))
    return np.concatenate(means).astype(np.float64), np.concatenate(log_vars).astype(np.float64)


def rows_for(dims: int, most: int = 8192) -> int:
    """Latent samples decoded at once for images of ``dims`` values: 8192 for MNIST's 784, proportionally fewer
    for larger images, so one chunk's activations stay near tens of MB."""
    return max(16, min(most, most * 784 // dims))


def _chunks(n: int, samples: int, max_rows: int):
    """Slices of examples and the samples per call for ``samples`` draws each: several examples per call when
    ``samples`` is small, several calls per example when it is large."""
    per_call = min(samples, max_rows)
    examples = max(1, max_rows // per_call)
    for start in range(0, n, examples):
        yield slice(start, min(n, start + examples)), per_call


def _seeded(vae, seed: int):
    """A SeedGenerator for the evaluation noise; a hierarchical decoder's own generator is reset from ``seed``
    too, so the whole evaluation repeats exactly."""
    import keras

    own = getattr(vae.decoder, "seed_generator", None)
    if own is not None:
        own.state.assign(keras.random.SeedGenerator(seed + 1).state.value)
    return keras.random.SeedGenerator(seed)


# --- ELBO -----------------------------------------------------------------------------------------


def elbo(vae, x: np.ndarray, samples: int = 1, seed: int = 0, max_rows: int | None = None) -> dict[str, np.ndarray]:
    """Per-example ELBO terms in nats: ``reconstruction = -E_q log p(x|z)`` (Monte Carlo, ``samples`` draws of
    z each), ``kl`` (closed form; of a hierarchical model's lower layers, averaged over the same draws) and
    ``elbo = -(reconstruction + kl)``, each shaped (N,).

    The training loss with kl_weight 1 and the ELBO objective, so ``-mean(elbo)`` is an upper bound on the
    test NLL; the likelihood's constant is included (a Gaussian decoder's numbers are densities).
    """
    x = np.asarray(x)
    generator = _seeded(vae, seed)
    recon, kl = np.empty(len(x)), np.empty(len(x))
    for sl, per_call in _chunks(len(x), samples, max_rows or rows_for(math.prod(x.shape[1:]))):
        n = len(x[sl])
        log_px, kls = [], []
        for done in range(0, samples, per_call):
            s = min(per_call, samples - done)
            terms = vae.importance_terms(x[sl], s, generator)
            log_px.append(terms["log_px"].reshape(n, s))
            kls.append(terms["kl"].reshape(n, s))
        recon[sl] = -np.concatenate(log_px, axis=1).mean(axis=1)
        kl[sl] = np.concatenate(kls, axis=1).mean(axis=1)
    return {"reconstruction": recon, "kl": kl, "elbo": -(recon + kl)}


# --- what each stochastic layer holds -------------------------------------------------------------

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2015: a unit is active when Cov_x(E_q[u]) > 0.01


def latent_layers(vae, x: np.ndarray, seed: int = 0, batch_size: int = 500,
                  threshold: float = ACTIVE_UNIT_THRESHOLD, transform=None) -> list[dict]:
    """What each stochastic layer holds: the global latent, then a hierarchical model's lower layers top-down,
    each ``{"layer", "shape", "units", "kl_nats", "active_units"}``. ``kl_nats`` is the mean over ``x`` of the
    layer's KL(q || p); ``active_units`` counts the units whose posterior mean varies over ``x`` (variance above
    ``threshold``): Burda et al.'s count of the units a model uses, so a collapsed layer shows as 0 of its units.

    A lower layer's q and p depend on the layers above: they are taken along one posterior draw per image (from
    ``seed``), as in the ELBO, so the layers' KLs add up to the ELBO's KL term up to the draw. The global
    latent's KL is closed form from N(0, I); from a learned prior it is the ELBO's one-sample estimate
    ``log q(z|x) - log p(z)`` along the same draw (:func:`_global_kl`). ``transform``
    turns each batch of ``x`` into model inputs (uint8 images stay uint8 in memory).
    """
    from keras import ops

    from vaelab.models.architectures.topdown import gaussian_kl

    x = np.asarray(x)
    generator = _seeded(vae, seed)
    sums = None  # per layer: [sum of KLs, sum of posterior means, sum of their squares] over the images
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        batch = transform(batch) if transform is not None else batch
        features = vae.encode_batch(ops.convert_to_tensor(batch, dtype="float32"))[0]
        z = vae.posterior_draw(features, generator) if vae.hierarchical or vae.prior is not None else None
        layers = [(features[0], _global_kl(vae, features, z))]
        if vae.hierarchical:
            for dist in vae.decoder.latent_distributions(vae.decoder_inputs(z, features))[3]:
                q_p = [dist[k] for k in ("mu_q", "log_std_q", "mu_p", "log_std_p")]
                layers.append((q_p[0], gaussian_kl(*q_p)))
        batch_sums = []
        for m, kl in layers:
            m = to_numpy(m).astype(np.float64)
            batch_sums.append([to_numpy(kl).astype(np.float64).sum(), m.sum(axis=0), (m ** 2).sum(axis=0)])
        sums = batch_sums if sums is None else [[a + b for a, b in zip(*pair)] for pair in zip(sums, batch_sums)]
    out = []
    for i, (total, s, sq) in enumerate(sums):
        variance = sq / len(x) - (s / len(x)) ** 2
        out.append({"layer": "global" if i == 0 else f"lower {i}", "shape": [int(d) for d in np.shape(s)],
                    "units": int(np.size(s)), "kl_nats": float(total / len(x)),
                    "active_units": int(np.sum(variance > threshold))})
    return out


def _global_kl(vae, features, z):
    """The global latent's KL(q || p) per image: closed form from N(0, I); from a learned prior (no closed form)
    the one-sample estimate ``log q(z|x) - log p(z)`` at the posterior draw ``z``, the ELBO's own KL term."""
    from vaelab.models.vae import kl_per_dimension

    if vae.prior is None:
        return kl_per_dimension(features[0], features[1])
    from vaelab.models.priors import gaussian_log_density

    return gaussian_log_density(z, features[0], features[1]) - vae.prior.log_prob(z, vae.encoder)


def layer_summary(layer: dict) -> str:
    """One :func:`latent_layers` entry in words: ``1.81 nats (50), 2 of 50 units active``."""
    shape = "x".join(map(str, layer["shape"]))
    return f"{layer['kl_nats']:.2f} nats ({shape}), {layer['active_units']} of {layer['units']} units active"


# --- importance-weighted bound --------------------------------------------------------------------


def iwae_log_likelihood(vae, x: np.ndarray, k: int = 1000, seed: int = 0, max_rows: int | None = None,
                        verbose: int = 1) -> np.ndarray:
    """Importance-weighted estimate of ``log p(x)`` per example (Burda et al. 2015), shaped (N,):

        L_k(x) = log (1/k) sum_{j=1..k} w_j,   w_j = p(x|z_j) p(z_j) / q(z_j|x),   z_j ~ q(z|x)

    (z_j all the stochastic layers' draws). ``E[L_k] <= log p(x)`` for every k, ``E[L_k]`` grows with k and
    tends to ``log p(x)``; ``E[L_1]`` is the ELBO.

    Memory stays bounded: at most ``max_rows`` latent samples are decoded at once, and the chunks' sums are
    combined with log-sum-exp in float64, never exponentiated. ``verbose`` shows a progress bar over the
    N * k samples.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    x = np.asarray(x)
    generator = _seeded(vae, seed)
    bar = None
    if verbose:
        import keras

        bar = keras.utils.Progbar(len(x) * k, unit_name="sample")
    out = np.empty(len(x))
    for sl, per_call in _chunks(len(x), k, max_rows or rows_for(math.prod(x.shape[1:]))):
        n = len(x[sl])
        total = np.full(n, -np.inf)
        for done in range(0, k, per_call):
            s = min(per_call, k - done)
            terms = vae.importance_terms(x[sl], s, generator)
            log_w = (terms["log_px"].astype(np.float64) - terms["log_qp"]).reshape(n, s)
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
