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


def test_fid_temperatures_choose_on_the_validation_split_never_the_test_set(tmp_path, capsys):
    """--fid-temperatures scores the samples at each temperature against images held out of the training set and
    reports the test numbers at the closest: other test images change the test distance, not the choice."""
    from conftest import digit_like_images, write_mnist

    data = write_mnist(tmp_path / "data")
    models = tmp_path / "models"
    assert run_script("mnist_train.py", "--data-dir", data, "--models-dir", models, "--results-dir", tmp_path / "r",
                      "--architecture", "dense_hierarchical", "--lower-latent-dims", "4", "--intermediate-dim", "16",
                      "--epochs", "1", "--batch-size", "128", "--no-tensorboard") == 0
    (prefix,) = {p.name[: -len("_vae.h5")] for p in models.glob("*_vae.h5")}
    other = tmp_path / "other"  # the same training images, other test images
    other.mkdir()
    with np.load(data / "mnist.npz") as f:
        x_te, y_te = digit_like_images(128, seed=7)
        np.savez_compressed(other / "mnist.npz", x_train=f["x_train"], y_train=f["y_train"], x_test=x_te, y_test=y_te)
    results = []
    for folder in (data, other):
        out = tmp_path / f"{folder.name}_eval.json"
        assert run_script("evaluate.py", "--dataset", "mnist", "--data-dir", folder, "--models-dir", models,
                          "--model", prefix, "--k", "0", "--fid-temperatures", "1,0,0.5,1", "--fid-samples", "100",
                          "--quiet", "--out", out) == 0
        results.append(json.loads(out.read_text()))
    assert "temperature" in capsys.readouterr().out
    a, b = results
    sweep = a["fid_validation_by_temperature"]
    assert list(sweep) == ["0", "0.5", "1"]  # sorted, the repeat dropped
    assert a["fid_validation_images"] == 85  # round(512 / 6) held-out training images (fewer than the 100 samples)
    assert a["fid_temperature"] == float(min(sweep, key=sweep.get))
    assert len(set(sweep.values())) == 3 and min(sweep.values()) >= 0  # the temperature changes the samples
    assert b["fid_validation_by_temperature"] == sweep and b["fid_temperature"] == a["fid_temperature"]
    assert b["fid"] != a["fid"]  # the test images only enter the reported number


def test_fid_temperatures_refuse_a_model_without_lower_latents(trained_mnist, tmp_path, capsys):
    models, data, prefix = own_copy(trained_mnist, tmp_path)
    for value, message in (("0.5,1", "error: --fid-temperatures needs a hierarchical model"),
                           ("0.5,-1", "a temperature is a finite number >= 0, got -1")):
        code = run_script("evaluate.py", "--dataset", "mnist", "--data-dir", data, "--models-dir", models,
                          "--model", prefix, "--k", "0", "--fid-temperatures", value, "--quiet")
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err
