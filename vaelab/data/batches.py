"""Batches for training and evaluation: seeded per-epoch shuffling, and uint8 images scaled batch by batch.

:func:`make_epoch_batches` is what makes resume exact: the order of an epoch's examples is a pure function of
``(seed, epoch)``, not of how many epochs the same ``fit`` call has run. :func:`image_batches` keeps a dataset
uint8 in memory (a quarter of float32) and converts one batch at a time.
"""

from __future__ import annotations

import threading

import numpy as np

from vaelab.core.errors import UserError


# --- shuffling that does not depend on history ---------------------------------------------------


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the ``n`` training examples in ``epoch``: a pure function of (seed, epoch)."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each batch of an epoch; a short batch (``n % batch_size``) comes first.

    First rather than last so that the two batches Keras samples to infer the input signature differ in
    size whenever a short batch exists, which keeps the batch dimension dynamic.
    """
    short = n % batch_size
    bounds = [(0, short)] if short else []
    bounds += [(s, s + batch_size) for s in range(short, n, batch_size)]
    return bounds


def make_epoch_batches(x: np.ndarray, batch_size: int, seed: int, initial_epoch: int = 0, transform=None):
    """A ``keras.utils.PyDataset`` of ``(x_batch,)`` shuffled per epoch by :func:`epoch_permutation`.

    It is endless (``num_batches`` is None; fit gets ``steps_per_epoch``) so that Keras keeps a single
    iterator: batch ``g`` is batch ``g % steps`` of epoch ``initial_epoch + g // steps``, a pure function,
    however far tf.data prefetches.
    """
    import keras

    class EpochBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)
            self.x = x
            self.bounds = batch_bounds(len(x), batch_size)
            self.steps = len(self.bounds)
            self._lock = threading.Lock()
            self._perm_epoch, self._perm = None, None

        @property
        def num_batches(self):
            return None

        def permutation(self, epoch: int) -> np.ndarray:
            with self._lock:
                if self._perm_epoch != epoch:
                    self._perm, self._perm_epoch = epoch_permutation(seed, epoch, len(self.x)), epoch
                return self._perm

        def __getitem__(self, g):
            epoch, j = divmod(int(g), self.steps)
            start, stop = self.bounds[j]
            batch = self.x[self.permutation(initial_epoch + epoch)[start:stop]]
            return (transform(batch) if transform is not None else batch,)

    return EpochBatches()


# --- batches --------------------------------------------------------------------------------------


def image_batches(images: np.ndarray, batch_size: int, shuffle: bool = False, seed: int = 0,
                  max_queue_size: int = 4, flat: bool = False):
    """A ``keras.utils.PyDataset`` of float32 batches in [0, 1] cut from uint8 ``images`` (N, H, W, C).

    Only one batch at a time is converted, so a dataset stays uint8 in memory (a quarter of float32); ``flat``
    batches are flattened for dense encoders.
    With ``shuffle`` every epoch draws a new permutation from ``(seed, epoch)``, so runs repeat.
    Keras feeds a PyDataset through ``tf.data`` with prefetching on TensorFlow, so the next batch is cut
    while the current one trains.
    """
    return _image_batches_class()(images, batch_size, shuffle=shuffle, seed=seed, max_queue_size=max_queue_size,
                                  flat=flat)


_BATCH_CLASS = None


def _image_batches_class():
    """Define the PyDataset subclass on first use: importing Keras at module import would slow ``--help``."""
    global _BATCH_CLASS
    if _BATCH_CLASS is not None:
        return _BATCH_CLASS
    import keras

    class ImageBatches(keras.utils.PyDataset):
        """uint8 images -> float32 batches ``(x,)``; ``num_examples`` is the number of images."""

        def __init__(self, images, batch_size, shuffle=False, seed=0, max_queue_size=4, flat=False):
            super().__init__(workers=1, use_multiprocessing=False, max_queue_size=max_queue_size)
            if images.dtype != np.uint8:
                raise ValueError(f"image_batches takes uint8 images, got {images.dtype}")
            if len(images) == 0:
                raise UserError("no images to train or evaluate on")
            self.images, self.batch_size, self.shuffle, self.seed = images, int(batch_size), shuffle, seed
            self.flat = flat
            self.num_examples = len(images)
            self.epoch = 0
            self._order = self._permutation()

        def _permutation(self):
            if not self.shuffle:
                return None
            return np.random.default_rng([self.seed, self.epoch]).permutation(self.num_examples)

        def __len__(self):
            return -(-self.num_examples // self.batch_size)

        def __getitem__(self, index):
            lo, hi = index * self.batch_size, min((index + 1) * self.batch_size, self.num_examples)
            if self._order is None:
                batch = self.images[lo:hi]
            else:  # sorted indices read memory in order; the batch's content is what is random
                batch = self.images[np.sort(self._order[lo:hi])]
            x = batch.astype(np.float32)
            x *= np.float32(1.0 / 255.0)
            return (x.reshape(len(x), -1) if self.flat else x,)

        def on_epoch_end(self):
            self.epoch += 1
            self._order = self._permutation()

    _BATCH_CLASS = ImageBatches
    return ImageBatches
