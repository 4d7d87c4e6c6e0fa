"""The MNIST scripts end to end on fixture data: files written, images saved, errors as one line."""

import json
import os
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest

from conftest import ROOT, run_script
from vaelab import artifacts


def test_train_writes_exactly_the_promised_files(trained_mnist):
    models, _, prefix = trained_mnist
    names = sorted(p.name for p in models.iterdir())
    tensorboard = ["tensorboard"] if keras.backend.backend() in ("tensorflow", "jax") else []  # not on torch
    assert names == sorted([f"{prefix}_{s}" for s in ("vae.h5", "encoder.h5", "decoder.h5", "history.pkl",
                                                       "history.json", "params.json", "log.csv")]
                  + ["checkpoints"] + tensorboard)
    history = artifacts.load_history(models / f"{prefix}_history.pkl")
    assert set(history) == {"loss", "reconstruction_loss", "kl_loss", "val_loss", "val_reconstruction_loss",
                            "val_kl_loss"}
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0])
    assert json.loads((models / f"{prefix}_history.json").read_text()) == history
    params = json.loads((models / f"{prefix}_params.json").read_text())
    assert params["dataset"] == "mnist" and params["intermediate_dim"] == 32 and params["epochs"] == 1
    assert (models / "tensorboard" / prefix).is_dir() == bool(tensorboard)


def test_reloaded_decoder_matches_the_vae_decoder(trained_mnist):
    models, _, prefix = trained_mnist
    vae = artifacts.load_model(models / f"{prefix}_vae.h5")
    decoder = artifacts.load_model(models / f"{prefix}_decoder.h5")
    encoder = artifacts.load_model(models / f"{prefix}_encoder.h5")
    z = np.random.default_rng(0).standard_normal((7, 2)).astype("float32")
    np.testing.assert_array_equal(decoder.predict(z, verbose=0), vae.decoder.predict(z, verbose=0))
    x = np.random.default_rng(1).random((3, 784)).astype("float32")
    np.testing.assert_array_equal(encoder.predict(x, verbose=0), vae.encoder.predict(x, verbose=0)[0])


def _common(trained, results):
    models, data, _ = trained
    return ["--data-dir", data, "--models-dir", models, "--results-dir", results, "--intermediate-dim", "32",
            "--epochs", "1", "--batch-size", "128"]


def test_2d_script_writes_scatter_manifold_and_z_images(trained_mnist, tmp_path):
    code = run_script("mnist_2d_latent_space_and_generate.py", *_common(trained_mnist, tmp_path), "--n", "5",
                      "--no-prompt", "--z", "0.5,-1", "--z", "0 0")
    assert code == 0
    p = "ld_2_id_32_e_1"
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted(
        [f"{p}_latent.png", f"{p}_manifold.png", f"{p}_z_0.5_-1.png", f"{p}_z_0_0.png"])
    assert all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in tmp_path.iterdir())


def test_prompt_through_stdin(trained_mnist, tmp_path, capsys):
    code = run_script("mnist_2d_latent_space_and_generate.py", *_common(trained_mnist, tmp_path), "--n", "3",
                      stdin="1\nabc, 2\nnan 0\n0.25,0.5\nq\n")
    out = capsys.readouterr().out
    assert code == 0
    assert "expected 2 numbers, got 1" in out and "'abc' is not a number" in out and "not a finite number" in out
    assert (tmp_path / "ld_2_id_32_e_1_z_0.25_0.5.png").exists()


def test_prompt_ends_at_eof(trained_mnist, tmp_path):
    assert run_script("mnist_2d_latent_space_and_generate.py", *_common(trained_mnist, tmp_path), "--n", "3",
                      stdin="") == 0


def test_generate_random_grids(trained_mnist, tmp_path):
    args = [*_common(trained_mnist, tmp_path), "--grid", "4", "--no-prompt"]
    assert run_script("mnist_generate.py", *args) == 0
    assert run_script("mnist_generate.py", *args, "--uniform") == 0
    names = {f.name for f in tmp_path.iterdir()}
    assert {"ld_2_id_32_e_1_random_normal.png", "ld_2_id_32_e_1_random_uniform.png",
            "ld_2_id_32_e_1_latent.png"} <= names


def test_3d_script_writes_scatter_slices_and_gif(tmp_path, mnist_dir):
    models, results = tmp_path / "models", tmp_path / "results"
    base = ["--data-dir", mnist_dir, "--models-dir", models, "--latent-dim", "3", "--intermediate-dim", "16",
            "--epochs", "1", "--batch-size", "128"]
    assert run_script("mnist_train.py", *base) == 0
    code = run_script("mnist_3d_latent_space_and_generate.py", *base, "--results-dir", results, "--n", "4",
                      "--slices", "4", "--frames", "5", "--no-prompt", "--z", "0,0.5,-1")
    assert code == 0
    p = "ld_3_id_16_e_1"
    assert sorted(f.name for f in results.iterdir()) == sorted(
        [f"{p}_latent3d.png", f"{p}_slices.png", f"{p}_slices.gif", f"{p}_z_0_0.5_-1.png"])
    from PIL import Image

    with Image.open(results / f"{p}_slices.gif") as gif:
        assert gif.n_frames == 5 and gif.size == (4 * 28, 4 * 28)
    # the 2-D script refuses a 3-D model with a one-line error
    assert run_script("mnist_2d_latent_space_and_generate.py", *base, "--results-dir", results) == 2


def _write_keras2_generator(path, w1, b1, w2, b2):
    """The HDF5 layout Keras 2.0 wrote for the original scripts' `generator` model (x -> decoded)."""
    def dense(name, units, act, inbound):
        return {"name": name, "class_name": "Dense", "inbound_nodes": [[[inbound, 0, 0, {}]]],
                "config": {"name": name, "trainable": True, "units": units, "activation": act, "use_bias": True,
                           "kernel_initializer": {"class_name": "VarianceScaling", "config": {
                               "scale": 1.0, "mode": "fan_avg", "distribution": "uniform", "seed": None}},
                           "bias_initializer": {"class_name": "Zeros", "config": {}}, "kernel_regularizer": None,
                           "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None,
                           "bias_constraint": None}}
    config = {"class_name": "Model", "config": {"name": "model_3", "layers": [
        {"name": "input_2", "class_name": "InputLayer", "inbound_nodes": [],
         "config": {"batch_input_shape": [None, w1.shape[0]], "dtype": "float32", "sparse": False,
                    "name": "input_2"}},
        dense("dense_3", w1.shape[1], "relu", "input_2"), dense("dense_4", w2.shape[1], "sigmoid", "dense_3")],
        "input_layers": [["input_2", 0, 0]], "output_layers": [["dense_4", 0, 0]]}}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.0.8"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(config).encode()
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [b"input_2", b"dense_3", b"dense_4"]
        g.create_group("input_2").attrs["weight_names"] = np.array([], dtype="S")
        for name, (w, b) in (("dense_3", (w1, b1)), ("dense_4", (w2, b2))):
            lg = g.create_group(name)
            lg.attrs["weight_names"] = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
            lg.create_dataset(f"{name}/kernel:0", data=w)
            lg.create_dataset(f"{name}/bias:0", data=b)


def test_keras2_generator_file_loads_and_decodes(tmp_path, trained_mnist):
    rng = np.random.default_rng(0)
    w1, b1 = rng.standard_normal((2, 32)).astype("float32"), rng.standard_normal(32).astype("float32")
    w2, b2 = rng.standard_normal((32, 784)).astype("float32") * 0.1, rng.standard_normal(784).astype("float32")
    models = tmp_path / "models"
    models.mkdir()
    _write_keras2_generator(models / "old_generator.h5", w1, b1, w2, b2)
    decoder = artifacts.load_model(models / "old_generator.h5", rebuild=lambda: _dense_decoder())
    z = rng.standard_normal((5, 2)).astype("float32")
    expected = 1 / (1 + np.exp(-(np.maximum(z @ w1 + b1, 0) @ w2 + b2)))
    np.testing.assert_allclose(decoder.predict(z, verbose=0), expected, rtol=1e-5, atol=1e-6)
    # and through a generate script, with the original's encoder beside it
    trained_models, data, prefix = trained_mnist
    (models / "old_encoder.h5").write_bytes((trained_models / f"{prefix}_encoder.h5").read_bytes())
    code = run_script("mnist_generate.py", "--model", "old", "--models-dir", models, "--intermediate-dim", "32",
                      "--data-dir", data, "--results-dir", tmp_path / "r", "--grid", "3", "--no-prompt")
    assert code == 0 and (tmp_path / "r" / "old_random_normal.png").exists()


def _dense_decoder():
    from vaelab.models import build_dense_decoder

    return build_dense_decoder(2, 32, 784)


def test_user_errors_are_one_line_without_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VAELAB_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, str(ROOT / "mnist_generate.py"), "--models-dir", str(tmp_path / "none"),
                          "--no-prompt"], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: model file {tmp_path / 'none' / 'ld_2_id_512_e_60_decoder.h5'} not found; "
                      "make it with: python mnist_train.py"]


@pytest.mark.parametrize("args, message", [
    (["--latent-dim", "0"], "error: mnist_params.py: latent_dim must be >= 1, got 0"),
    (["--optimizer", "adamm"], "error: mnist_params.py: optimizer must be one of"),
])
def test_bad_params_on_the_command_line(args, message, capsys):
    assert run_script("mnist_train.py", *args) == 2
    assert message in capsys.readouterr().err


def test_command_line_type_errors_are_one_line(capsys):
    assert run_script("mnist_train.py", "--epochs", "abc") == 2
    assert capsys.readouterr().err == ("error: argument --epochs: invalid int value: 'abc'; "
                                       "see mnist_train.py --help\n")


def test_mnist_defaults_to_jax_unless_the_user_chose_a_backend():
    """KERAS_BACKEND always wins; otherwise the dense MNIST VAE trains on JAX (measured faster there), the conv
    models keep Keras' default, and --distribute (multi-worker needs TensorFlow) keeps it too."""
    code = ("import argparse, os, sys; from vaelab.experiments import MNIST, CIFAR10, choose_backend\n"
            "none, mirrored = argparse.Namespace(distribute='none'), argparse.Namespace(distribute='mirrored')\n"
            "print(choose_backend(CIFAR10, none), choose_backend(MNIST, mirrored), choose_backend(MNIST, none),\n"
            "      os.environ.get('KERAS_BACKEND'), 'keras' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "None", "jax", "jax", "False"]
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, "KERAS_BACKEND": "tensorflow"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "None", "None", "tensorflow", "False"]
