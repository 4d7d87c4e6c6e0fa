"""evaluate.py on tiny trained fixture models: the numbers it writes agree with training's and with the
bound's ordering, the JSON is complete, and mistakes are one-line errors."""

import json
import shutil

import numpy as np

from conftest import run_script
from vaelab.models import saving


def own_copy(trained, tmp_path):
    """The session's trained fixture model copied, so that files written beside it stay out of other tests."""
    models, data, prefix = trained
    shutil.copytree(models, tmp_path / "models", ignore=shutil.ignore_patterns("tensorboard"))
    return tmp_path / "models", data, prefix


def test_evaluate_grey_mnist_model(trained_mnist, tmp_path, capsys):
    models, data, prefix = own_copy(trained_mnist, tmp_path)
    code = run_script("evaluate.py", "--dataset", "mnist", "--data-dir", data, "--models-dir", models,
                      "--model", prefix, "--k", "20", "--quiet")
    out = capsys.readouterr().out
    assert code == 0
    r = json.loads((models / f"{prefix}_eval.json").read_text())
    assert r["dataset"] == "mnist" and r["model"] == prefix and r["test_images"] == 128 and r["k"] == 20
    assert r["dims"] == 784 and r["binary_data"] is False
    # the recorded command names none of this machine's folders (tmp_path is absolute)
    assert r["command"] == ("python evaluate.py --dataset mnist --data-dir DIR --models-dir DIR "
                            f"--model {prefix} --k 20 --quiet")
    np.testing.assert_allclose(-r["elbo_nats"], r["reconstruction_nats"] + r["kl_nats"], rtol=1e-9)
    # the KL is closed form, so it equals what Keras reports for the same model and images
    vae = saving.load_model(models / f"{prefix}_vae.h5")
    with np.load(data / "mnist.npz") as f:
        x = (f["x_test"].reshape(128, 784) / np.float32(255)).astype("float32")
    vae.compile()
    keras_result = vae.evaluate(x, batch_size=128, verbose=0, return_dict=True)
    np.testing.assert_allclose(r["kl_nats"], keras_result["kl_loss"], rtol=1e-4)
    (layer,) = r["latent_layers"]  # one stochastic layer: its KL is the whole closed-form KL
    assert layer["layer"] == "global" and layer["units"] == 2 and 0 <= layer["active_units"] <= 2
    np.testing.assert_allclose(layer["kl_nats"], r["kl_nats"], rtol=1e-5)
    row = next(line for line in out.splitlines() if line.strip().startswith("KL, global latent"))
    assert row.endswith(f" {layer['kl_nats']:.2f} nats (2), {layer['active_units']} of 2 units active")
    np.testing.assert_allclose(-r["elbo_nats"], keras_result["loss"], rtol=0.02)  # Monte Carlo, 128 images
    assert r["iwae_nll_nats"] < -r["elbo_nats"]  # k = 20 tightens the bound
    assert "iwae_bits_per_dim" not in r  # a cross-entropy of grey levels is no code length
    assert "cross-entropy, not a likelihood" in out and f"saved {models / (prefix + '_eval.json')}" in out


def test_evaluate_binarized_model(mnist_dir, tmp_path, capsys):
    models = tmp_path / "models"
    assert run_script("mnist_binarized_train.py", "--data-dir", mnist_dir, "--models-dir", models, "--epochs", "1",
                      "--hidden-dims", "16", "--latent-dim", "3", "--batch-size", "128") == 0
    code = run_script("evaluate.py", "--dataset", "mnist_binarized", "--data-dir", mnist_dir, "--models-dir", models,
                      "--hidden-dims", "16", "--latent-dim", "3", "--epochs", "1", "--k", "5", "--quiet",
                      "--out", tmp_path / "k5.json")
    out = capsys.readouterr().out
    assert code == 0 and "not a likelihood" not in out
    assert not (models / "bin_ld_3_h_16_e_1_eval.json").exists()
    r = json.loads((tmp_path / "k5.json").read_text())
    assert r["binary_data"] is True and r["k"] == 5 and r["params"]["hidden_dims"] == "16"
    assert 0 < r["iwae_nll_nats"] < 784 * np.log(2)  # better than a coin per pixel after one epoch
    assert abs(r["iwae_bits_per_dim"] - r["iwae_nll_nats"] / (784 * np.log(2))) < 1e-9


def test_missing_model_is_a_one_line_error(tmp_path, mnist_dir, capsys):
    code = run_script("evaluate.py", "--dataset", "mnist", "--data-dir", mnist_dir, "--models-dir", tmp_path,
                      "--model", "nope")
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: model file") and "nope_vae.h5 not found" in err
    assert len(err.strip().splitlines()) == 1


def test_a_squashed_caltech_model_is_scored_on_squashed_images(tmp_path, capsys):
    """Every data load goes through the experiment: evaluate reads the --fit the model was trained with."""
    from conv_fixtures import write_caltech_folder

    data, models = tmp_path / "data", tmp_path / "models"
    write_caltech_folder(data)
    tiny = ("--filters", "4", "--intermediate-dim", "8", "--epochs", "1", "--batch-size", "2", "--fit", "squash")
    assert run_script("caltech101_92_train.py", "--data-dir", data, "--models-dir", models, *tiny) == 0
    capsys.readouterr()
    assert run_script("evaluate.py", "--dataset", "caltech101_92", "--data-dir", data, "--models-dir", models,
                      "--model", "caltech101_92_ld_32_conv_3_id_8_e_1_squash", "--k", "2", "--quiet") == 0
    assert "caltech101_92_squash.npz" in capsys.readouterr().out
    assert not (data / "caltech101_92_crop.npz").exists()  # the cropped cache was never built


def test_split_validation_scores_the_held_out_training_images_never_the_test_set(trained_mnist, tmp_path, capsys):
    """--split validation scores the images held out of the training set (what a pilot is chosen by): other test
    images change nothing, and the numbers equal a test-set evaluation whose test images are those held-out ones."""
    models, data, prefix = own_copy(trained_mnist, tmp_path)
    with np.load(data / "mnist.npz") as f:
        arrays = {key: f[key] for key in f.files}
    held = 85  # round(512 / 6): the last sixth of the fixture's 512 training images
    folders = {"data": data}
    for name, (x_te, y_te) in {"other": (255 - arrays["x_test"], arrays["y_test"]),
                               "as_test": (arrays["x_train"][-held:], arrays["y_train"][-held:])}.items():
        folders[name] = tmp_path / name
        folders[name].mkdir()
        np.savez_compressed(folders[name] / "mnist.npz", x_train=arrays["x_train"], y_train=arrays["y_train"],
                            x_test=x_te, y_test=y_te)
    results = {}
    for name, split in (("data", "validation"), ("other", "validation"), ("as_test", "test")):
        out = tmp_path / f"{name}_{split}.json"
        assert run_script("evaluate.py", "--dataset", "mnist", "--data-dir", folders[name], "--models-dir", models,
                          "--model", prefix, "--k", "5", "--split", split, "--quiet", "--out", out) == 0
        results[name] = json.loads(out.read_text())
    a, b, c = results["data"], results["other"], results["as_test"]
    assert a["split"] == "validation" and c["split"] == "test"
    assert a["test_images"] == b["test_images"] == c["test_images"] == held
    for key in ("elbo_nats", "reconstruction_nats", "kl_nats", "iwae_nll_nats"):
        assert a[key] == b[key]  # the test images never enter a validation score
        np.testing.assert_allclose(a[key], c[key], rtol=1e-6)  # the held-out images, scored as test images
    assert "85 validation images (held out of the training set)" in capsys.readouterr().out
    # without --out the score goes beside the model under its own name, never over the test report
    assert run_script("evaluate.py", "--dataset", "mnist", "--data-dir", data, "--models-dir", models,
                      "--model", prefix, "--k", "0", "--split", "validation", "--quiet") == 0
    assert (models / f"{prefix}_eval_validation.json").exists() and not (models / f"{prefix}_eval.json").exists()


def test_split_validation_fid_uses_the_held_out_images(trained_mnist, tmp_path):
    models, data, prefix = own_copy(trained_mnist, tmp_path)
    assert run_script("evaluate.py", "--dataset", "mnist", "--data-dir", data, "--models-dir", models,
                      "--model", prefix, "--k", "0", "--fid", "--fid-samples", "200", "--split", "validation",
                      "--quiet") == 0
    r = json.loads((models / f"{prefix}_eval_validation.json").read_text())
    assert r["fid_samples"] == 85  # as many samples as held-out images, not the 128 test images
    assert 0 <= r["fid_train_vs_test"] < r["fid"]
