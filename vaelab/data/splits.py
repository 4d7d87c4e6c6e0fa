"""The validation set: carved from the training set (the literature's protocol), or the test set (the
original scripts' way, ``--validate-on test``).

Per-epoch validation, early stopping, the best-weights checkpoint and every choice of a preset use the
validation set; the test set is read only for a run's final report and by ``evaluate.py``. The split is a
fixed one, the same in every run and on every machine, with no shuffling: the last ``fraction`` of the
training images (MNIST and Fashion-MNIST: the last 10,000 of 60,000; CIFAR-10: the last 5,000 of 50,000),
or, per class, the last ``fraction`` of each class's training images (Caltech101, whose classes differ in
size by a factor of 25).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from vaelab.core.errors import UserError
from vaelab.data.sources import Dataset

VALIDATE_ON = ("split", "test")


def held_out(labels: np.ndarray, fraction: float, per_class: bool = False) -> np.ndarray:
    """A boolean mask of the training examples held out for validation: the last ``round(fraction * n)``
    (at least one, and never all), of the whole set or of each class of two or more examples."""
    n = len(labels)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    mask = np.zeros(n, dtype=bool)
    groups = [np.flatnonzero(np.asarray(labels) == c) for c in np.unique(labels)] if per_class else [np.arange(n)]
    for idx in groups:
        if len(idx) < 2:
            continue
        take = min(max(1, int(math.floor(fraction * len(idx) + 0.5))), len(idx) - 1)
        mask[idx[-take:]] = True
    return mask


def with_validation(data: Dataset, validate_on: str, fraction: float, per_class: bool = False,
                    prepare=None) -> Dataset:
    """``data`` with ``x_val``/``y_val`` set: the held-out part of the training set (removed from
    ``x_train``), or with ``validate_on="test"`` the test set itself. ``prepare`` is applied to the held-out
    images (binarized MNIST draws them once as binary images, as its test set is)."""
    if validate_on not in VALIDATE_ON:
        raise UserError(f"validate_on must be one of {', '.join(VALIDATE_ON)}, got {validate_on!r}")
    if validate_on == "test":
        return dataclasses.replace(data, x_val=data.x_test, y_val=data.y_test,
                                   validation="the test set (--validate-on test, the original scripts' way)")
    if len(data.x_train) < 2:
        raise UserError(f"{data.source}: {len(data.x_train)} training image(s) cannot be split into training and "
                        "validation sets; use more images (--limit) or --validate-on test")
    mask = held_out(data.y_train, fraction, per_class)
    x_val = data.x_train[mask]
    how = (f"the last {fraction:.0%} of each class's training images" if per_class
           else f"the last {mask.sum()} training images")
    return dataclasses.replace(data, x_train=data.x_train[~mask], y_train=data.y_train[~mask],
                               x_val=prepare(x_val) if prepare else x_val, y_val=data.y_train[mask],
                               validation=how)
