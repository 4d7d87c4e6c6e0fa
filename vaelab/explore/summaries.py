"""The pictures a training run shows in TensorBoard beside its curves: samples, reconstructions, the manifold.

:func:`run_pictures` makes the hook that :func:`vaelab.training.tensorboard.make_tensorboard` calls every
``tensorboard_images_every`` epochs. What it returns, each frame comparable with the one before:

- ``samples``: an 8x8 grid decoded from fixed latent vectors (:func:`fixed_latents`, from the params' seed, so a
  resumed run draws the same ones);
- ``reconstructions``: the first 32 validation images, each row of 8 above its reconstruction (decoded from
  ``z_mean``);
- ``manifold`` (latent_dim 2 only): the decoded 15x15 grid of :func:`vaelab.explore.latent.manifold_latents`;
- for a hierarchical model, ``kl_layer/global``, ``kl_layer/lower_1``, ...: each stochastic layer's KL in nats
  per image on the first 256 validation images (:func:`vaelab.evaluation.metrics.latent_layers`).

Drawing them leaves the model as it was: the random generators' states (which the per-layer KL reseeds) are put
back, so a run logs the same weights with images or without, and resumes exactly either way.
"""

from __future__ import annotations

import numpy as np

from vaelab.explore.latent import decode_small, manifold_latents, tile

SAMPLE_GRID = 8  # samples: an 8x8 grid
RECONSTRUCTION_ROWS, RECONSTRUCTION_COLS = 4, 8  # 4 rows of originals, each above its reconstructions
MANIFOLD_GRID = 15  # latent_dim 2: a 15x15 manifold
KL_IMAGES = 256  # validation images the per-layer KL is measured on


def fixed_latents(seed: int, latent_dim: int, n: int = SAMPLE_GRID ** 2) -> np.ndarray:
    """The ``n`` latent vectors of the sample grid: standard normal draws from ``seed`` alone."""
    return np.random.default_rng(seed).standard_normal((n, latent_dim)).astype(np.float32)


def reconstruction_grid(x: np.ndarray, x_hat: np.ndarray, cols: int = RECONSTRUCTION_COLS) -> np.ndarray:
    """Images ``x`` and their reconstructions ``x_hat`` (N, H, W, C) as one image: each row of ``cols``
    originals above the same images reconstructed."""
    rows = len(x) // cols
    pairs = np.stack([x[:rows * cols].reshape(rows, cols, *x.shape[1:]),
                      x_hat[:rows * cols].reshape(rows, cols, *x.shape[1:])], axis=1)
    return tile(pairs.reshape(2 * rows * cols, *x.shape[1:]), 2 * rows, cols)


def _rng_states(vae) -> list:
    """The model's non-trainable variables with their values (the generators' states among them)."""
    from keras import ops

    return [(v, ops.convert_to_numpy(v)) for v in vae.non_trainable_variables]


def run_pictures(x_val: np.ndarray, seed: int, image_shape: tuple[int, ...]):
    """The hook ``pictures(vae, step) -> {tag: image or number}`` for a run validating on ``x_val`` (model
    inputs, at least the first images; ``image_shape`` (H, W, C) of the pictures)."""
    from vaelab.evaluation.metrics import latent_layers
    from vaelab.models.vae import image_decoder

    shape = tuple(int(d) for d in image_shape)
    n_rec = RECONSTRUCTION_ROWS * RECONSTRUCTION_COLS
    x_rec = np.asarray(x_val[:n_rec])
    x_kl = np.asarray(x_val[:KL_IMAGES])
    cache: dict = {}

    def pictures(vae, step: int) -> dict:
        if getattr(vae, "discrete", False):  # a vq model: reconstructions (its samples need the PixelCNN)
            if len(x_rec) < RECONSTRUCTION_COLS:
                return {}
            x_hat = vae.reconstruct(x_rec, batch_size=n_rec).reshape(len(x_rec), *shape)
            return {"reconstructions": reconstruction_grid(x_rec.reshape(len(x_rec), *shape), x_hat)}
        if "decoder" not in cache:  # built once: the image decoder shares the VAE's layers, so it follows them
            cache["decoder"] = image_decoder(vae)
            cache["z"] = fixed_latents(seed, vae.latent_dim)
        decoder, kept = cache["decoder"], _rng_states(vae)
        # A conditional model: one class per row of samples (the inputs carry their labels; the manifold: class 0).
        rows = (np.arange(SAMPLE_GRID ** 2) // SAMPLE_GRID) % vae.n_classes if vae.conditional else None
        first = np.zeros(MANIFOLD_GRID ** 2, dtype=int) if vae.conditional else None
        try:
            out = {"samples": tile(decode_small(decoder, cache["z"], shape, labels=rows), SAMPLE_GRID, SAMPLE_GRID)}
            if len(x_rec) >= RECONSTRUCTION_COLS:
                x_hat = vae.reconstruct(x_rec, batch_size=n_rec).reshape(len(x_rec), *shape)
                shown = x_rec[..., :-1] if vae.conditional else x_rec
                out["reconstructions"] = reconstruction_grid(shown.reshape(len(x_rec), *shape), x_hat)
            if vae.latent_dim == 2:
                grid = decode_small(decoder, manifold_latents(MANIFOLD_GRID), shape, labels=first)
                out["manifold"] = tile(grid, MANIFOLD_GRID, MANIFOLD_GRID)
            if vae.hierarchical and len(x_kl):
                for layer in latent_layers(vae, x_kl, seed=seed):
                    out[f"kl_layer/{layer['layer'].replace(' ', '_')}"] = layer["kl_nats"]
        finally:
            for variable, value in kept:
                variable.assign(value)
        return out

    return pictures
