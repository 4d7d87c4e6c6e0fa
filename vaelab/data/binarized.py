"""Binarized MNIST, the likelihood benchmark of the VAE literature (Burda et al. 2015, Kingma & Welling 2014).

Grey-level MNIST under a Bernoulli decoder is not a density: its "NLL" is a cross-entropy, not comparable
with published numbers. The literature's setup, reproduced here:

- **training**: dynamic binarization. Every time an image is seen each pixel is redrawn as
  ``Bernoulli(grey level)``; the VAE does it itself (``binarize=True``, see
  :data:`vaelab.config.experiments.MNIST_BINARIZED`), with a seeded generator, on every backend;
- **evaluation**: one static binarization of the test set, drawn with the fixed :data:`TEST_BINARIZATION_SEED`
  so every model and every run is scored on the same 10,000 binary images.
"""

from __future__ import annotations

import numpy as np

TEST_BINARIZATION_SEED = 2015  # fixed: every model is scored on the same binary test images
VALIDATION_BINARIZATION_SEED = 2016  # the validation images held out of the training set, drawn once likewise


def static_binarization(x: np.ndarray, seed: int = TEST_BINARIZATION_SEED) -> np.ndarray:
    """One Bernoulli draw per pixel with probability the grey level, from a seeded generator (float32 0/1)."""
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / np.float32(255.0)
    rng = np.random.default_rng(seed)
    return (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)


def load_binarized_mnist(data_dir=None, limit: int | None = None):
    """MNIST with grey-level training images (binarized dynamically by the model) and the statically
    binarized test set (seed :data:`TEST_BINARIZATION_SEED`, drawn over all 10,000 before ``limit``)."""
    from vaelab.data.datasets import Dataset, load_mnist

    data = load_mnist(data_dir)
    data = Dataset("mnist_binarized", data.x_train, data.y_train, static_binarization(data.x_test), data.y_test,
                   data.class_names, f"{data.source} (test set binarized with seed {TEST_BINARIZATION_SEED})")
    return data.limit(limit)
