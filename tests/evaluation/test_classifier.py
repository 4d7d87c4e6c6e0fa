"""The generation-quality classifier: trained once and cached, its features feed the Fréchet distance, and
evaluate.py --fid reports numbers that order as they must."""

import json

import numpy as np

from conftest import run_script
from test_evaluate import own_copy
from vaelab.evaluation import classifier
from vaelab.data.datasets import load_mnist


def test_classifier_is_trained_once_then_loaded(mnist_dir, tmp_path):
    data = load_mnist(mnist_dir)
    model, info = classifier.load_or_train("mnist", data, tmp_path, epochs=3)
    assert info["train_images"] == 512 and info["test_accuracy"] > 0.5  # bars by class: chance is 0.1
    path, _ = classifier.classifier_files(tmp_path, "mnist")
    stamp = path.stat().st_mtime_ns
    again, info2 = classifier.load_or_train("mnist", data, tmp_path, epochs=3)
    assert path.stat().st_mtime_ns == stamp and info2 == info
    np.testing.assert_allclose(classifier.features(again, data.x_test[:8]), classifier.features(model, data.x_test[:8]),
                               rtol=1e-5, atol=1e-6)
    assert classifier.features(model, data.x_test[:8]).shape == (8, 128)
    smaller = data.limit(256)
    _, info3 = classifier.load_or_train("mnist", smaller, tmp_path, epochs=1)  # different data: retrained
    assert info3["train_images"] == 256


def test_evaluate_fid(trained_mnist, tmp_path, capsys):
    models, data, prefix = own_copy(trained_mnist, tmp_path)
    code = run_script("evaluate.py", "--dataset", "mnist", "--data-dir", data, "--models-dir", models,
                      "--model", prefix, "--k", "0", "--fid", "--fid-samples", "100", "--quiet")
    out = capsys.readouterr().out
    assert code == 0 and "Fréchet distance" in out
    r = json.loads((models / f"{prefix}_eval.json").read_text())
    assert r["fid_samples"] == 100 and r["fid_features"] == 128 and "k" not in r
    assert 0 <= r["fid_train_vs_test"] < r["fid"]  # a one-epoch model's samples are worse than real data
    assert 0 <= r["classifier_accuracy_reconstructions"] <= 1 and r["classifier_accuracy_test"] > 0.5
    assert (models / "classifier_mnist.h5").exists()


def test_evaluate_with_limit_scores_fewer_images_but_trains_the_classifier_on_all(trained_mnist, tmp_path):
    """--limit picks the test images scored; the cached classifier still learns from the whole training set
    (a --limit 2000 CIFAR run once cached a classifier trained on 2000 images, at chance accuracy)."""
    models, data, prefix = own_copy(trained_mnist, tmp_path)
    assert run_script("evaluate.py", "--dataset", "mnist", "--data-dir", data, "--models-dir", models,
                      "--model", prefix, "--k", "0", "--fid", "--fid-samples", "50", "--limit", "64", "--quiet") == 0
    r = json.loads((models / f"{prefix}_eval.json").read_text())
    info = json.loads((models / "classifier_mnist.json").read_text())
    assert r["test_images"] == 64 and r["fid_samples"] == 50
    assert info["train_images"] == len(load_mnist(data).x_train) > 64


def test_uint8_and_float_images_reach_the_classifier_on_the_same_scale(mnist_dir, tmp_path):
    """CIFAR-10 stays uint8 in memory while decoders output floats in [0, 1]: both must give the same features."""
    data = load_mnist(mnist_dir)
    model, _ = classifier.load_or_train("mnist", data, tmp_path, epochs=1)
    as_bytes = np.round(data.x_test[:16] * 255).astype(np.uint8)
    np.testing.assert_allclose(classifier.features(model, as_bytes),
                               classifier.features(model, as_bytes.astype(np.float32) / 255), rtol=1e-5, atol=1e-5)
    assert classifier.as_images(as_bytes).max() <= 1.0
