"""The validation split: held out of the training set by a fixed rule, or the test set on request."""

from __future__ import annotations

import numpy as np
import pytest

from vaelab.config import experiments
from vaelab.config.params import MnistParams
from vaelab.core.errors import UserError
from vaelab.data.sources import Dataset
from vaelab.data.splits import held_out, with_validation


def dataset(n_train=60, n_test=10, classes=3):
    y = np.arange(n_train) % classes
    x = np.arange(n_train, dtype=np.float32).reshape(n_train, 1, 1, 1)
    return Dataset("toy", x, y, -np.ones((n_test, 1, 1, 1), np.float32), np.zeros(n_test, int), source="toy")


def test_the_split_is_the_last_sixth_of_mnist_and_the_last_tenth_of_cifar10():
    mask = held_out(np.zeros(60_000), 1 / 6)
    assert mask.sum() == 10_000 and mask[-10_000:].all() and not mask[:50_000].any()
    assert held_out(np.zeros(50_000), 0.1).sum() == 5_000
    assert experiments.MNIST.validation_fraction == experiments.FASHION_MNIST.validation_fraction == 1 / 6
    assert experiments.CIFAR10.validation_fraction == 0.1 and experiments.CALTECH101_92.validation_per_class


def test_per_class_split_takes_the_last_images_of_each_class():
    labels = np.array([0] * 30 + [1] * 5 + [2] * 1 + [3] * 2)
    mask = held_out(labels, 0.1, per_class=True)
    assert mask[27:30].all() and mask[:27].sum() == 0  # 3 of class 0's 30
    assert mask[34] and mask[30:34].sum() == 0  # 1 of 5 (rounded up to one)
    assert not mask[35]  # a class of one image keeps it for training
    assert mask[37] and not mask[36]  # never the whole class


def test_with_validation_removes_the_held_out_images_from_training():
    data = with_validation(dataset(), "split", 1 / 6)
    assert len(data.x_train) == 50 and len(data.x_val) == 10 and len(data.x_test) == 10
    np.testing.assert_array_equal(data.x_val.ravel(), np.arange(50, 60))
    assert not set(data.x_train.ravel()) & set(data.x_val.ravel())
    np.testing.assert_array_equal(data.y_val, np.arange(50, 60) % 3)
    assert data.validation == "the last 10 training images"


def test_validate_on_test_is_the_original_scripts_way():
    data = with_validation(dataset(), "test", 1 / 6)
    assert len(data.x_train) == 60 and data.x_val is data.x_test and "test set" in data.validation


def test_bad_requests_are_one_line_errors():
    with pytest.raises(UserError, match="validate_on must be one of split, test"):
        with_validation(dataset(), "train", 0.1)
    with pytest.raises(UserError, match="cannot be split into training and validation sets"):
        with_validation(dataset(n_train=1), "split", 0.1)


def test_binarized_mnist_validates_on_images_binarized_once():
    from vaelab.config.params import BinarizedMnistParams

    grey = dataset()
    grey = Dataset("b", np.full((60, 2, 2, 1), 0.5, np.float32), grey.y_train, grey.x_test, grey.y_test)
    params = BinarizedMnistParams()
    a = experiments.MNIST_BINARIZED.with_validation(grey, params)
    b = experiments.MNIST_BINARIZED.with_validation(grey, params)
    assert set(np.unique(a.x_val)) == {0.0, 1.0} and 0.3 < a.x_val.mean() < 0.7
    np.testing.assert_array_equal(a.x_val, b.x_val)  # a fixed draw, the same in every run
    assert set(np.unique(a.x_train)) == {0.5}  # training images stay grey (binarized at each step)


def test_the_params_default_and_old_sidecars(tmp_path):
    import json

    from vaelab.config.params import load_json

    assert MnistParams().validate_on == "split"
    path = tmp_path / "old_params.json"
    path.write_text(json.dumps({"dataset": "mnist", "latent_dim": 2}))
    assert load_json(MnistParams, path).validate_on == "test"  # trained before the split existed
    path.write_text(json.dumps({"dataset": "mnist", "validate_on": "split"}))
    assert load_json(MnistParams, path).validate_on == "split"
