"""The MNIST scripts end to end on fixture data: files written, images saved, errors as one line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, run_script
from keras2_fixtures import dense, write_keras2_model
from vaelab.core import artifacts
from vaelab.models import saving


def test_train_writes_exactly_the_promised_files(trained_mnist):
    models, _, prefix = trained_mnist
    names = sorted(p.name for p in models.iterdir())
    assert names == sorted([f"{prefix}_{s}" for s in ("vae.h5", "encoder.h5", "decoder.h5", "history.pkl",
                                                       "history.json", "params.json", "log.csv", "architecture.txt")]
                  + ["checkpoints", "tensorboard"])  # on every backend
    history = artifacts.load_history(models / f"{prefix}_history.pkl")
    assert set(history) == {"loss", "reconstruction_loss", "kl_loss", "val_loss", "val_reconstruction_loss",
                            "val_kl_loss", "epoch_seconds"}
    assert 0 < history["epoch_seconds"][0] < 600
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0])
    assert json.loads((models / f"{prefix}_history.json").read_text()) == history
    params = json.loads((models / f"{prefix}_params.json").read_text())
    assert params["dataset"] == "mnist" and params["intermediate_dim"] == 32 and params["epochs"] == 1
    assert len(list((models / "tensorboard" / prefix).glob("events.out.tfevents.*"))) == 1


def test_training_draws_its_history_and_writes_its_architecture(trained_mnist):
    models, _, prefix = trained_mnist
    assert (models.parent / "results" / f"{prefix}_history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (models / f"{prefix}_architecture.txt").read_text()
    encoder, decoder = (saving.load_model(models / f"{prefix}_{kind}.h5") for kind in ("vae", "decoder"))
    encoder = encoder.encoder  # with z_log_var, as trained
    # 784 -> 32 (+ bias) -> two heads of 2; 2 -> 32 -> 784
    assert encoder.count_params() == 784 * 32 + 32 + 2 * (32 * 2 + 2) == 25252
    assert decoder.count_params() == 2 * 32 + 32 + 32 * 784 + 784 == 25968
    assert text.count("Total params:") == 2
    assert "Model: \"encoder\"" in text and "Total params: 25,252 (" in text
    assert "Model: \"decoder\"" in text and "Total params: 25,968 (" in text
    assert "encoder_hidden (Dense)" in text and "x_hat (Dense)" in text and "(None, 784)" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_summary_prints_the_architecture_and_trains_nothing(trained_mnist, tmp_path, capsys):
    models, _, prefix = trained_mnist
    code = run_script("mnist_train.py", "--summary", "--intermediate-dim", "32", "--epochs", "1",
                      "--models-dir", tmp_path / "m", "--results-dir", tmp_path / "r")
    assert code == 0
    assert capsys.readouterr().out == (models / f"{prefix}_architecture.txt").read_text()
    assert not (tmp_path / "m").exists() and not (tmp_path / "r").exists()


def test_history_figure_draws_the_numbers_and_the_learning_rate_only_when_it_changes():
    from vaelab.explore import plots

    history = {"loss": [3.0, 2.0, 1.5], "val_loss": [3.5, 2.5, 2.0], "reconstruction_loss": [2.5, 1.6, 1.2],
               "val_reconstruction_loss": [3.0, 2.0, 1.7], "kl_loss": [0.5, 0.4, 0.3], "val_kl_loss": [0.5, 0.5, 0.3],
               "learning_rate": [1e-3, 1e-3, 1e-4]}
    fig = plots.history_figure(history)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["loss", "reconstruction term", "KL term (nats)",
                                               "learning rate"]
    for ax, key in zip(axes, ("loss", "reconstruction_loss", "kl_loss")):
        train, val = ax.get_lines()
        assert list(train.get_xdata()) == [1, 2, 3] and list(train.get_ydata()) == history[key]
        assert list(val.get_ydata()) == history[f"val_{key}"]
    assert list(axes[3].get_lines()[0].get_ydata()) == [1e-3, 1e-3, 1e-4] and axes[3].get_yscale() == "log"
    assert len(plots.history_figure({**history, "learning_rate": [1e-3] * 3}).axes) == 3
    no_val = plots.history_figure({k: v for k, v in history.items() if not k.startswith("val_")})
    assert [len(ax.get_lines()) for ax in no_val.axes] == [1, 1, 1, 1]
    import matplotlib.pyplot as plt

    plt.close("all")


def test_reloaded_decoder_matches_the_vae_decoder(trained_mnist):
    models, _, prefix = trained_mnist
    vae = saving.load_model(models / f"{prefix}_vae.h5")
    decoder = saving.load_model(models / f"{prefix}_decoder.h5")
    encoder = saving.load_model(models / f"{prefix}_encoder.h5")
    z = np.random.default_rng(0).standard_normal((7, 2)).astype("float32")
    logits = vae.decoder.predict(z, verbose=0).astype(np.float64)
    np.testing.assert_allclose(decoder.predict(z, verbose=0), 1 / (1 + np.exp(-logits)), rtol=1e-6)
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
    # without --latent-dim the 3-D script looks for the latent-3 model (the params module says 2)
    (results / f"{p}_latent3d.png").unlink()
    no_dim = [a for a in base if a not in ("--latent-dim", "3")]
    assert run_script("mnist_3d_latent_space_and_generate.py", *no_dim, "--results-dir", results, "--n", "4",
                      "--slices", "4", "--frames", "5", "--no-prompt") == 0
    assert (results / f"{p}_latent3d.png").is_file()


def _write_keras2_generator(path, w1, b1, w2, b2):
    """The HDF5 layout Keras 2.0 wrote for the original scripts' `generator` model (x -> decoded)."""
    write_keras2_model(path, (w1.shape[0],), [("dense_3", "Dense", dense(w1.shape[1], "relu"), (w1, b1)),
                                              ("dense_4", "Dense", dense(w2.shape[1], "sigmoid"), (w2, b2))])


def test_keras2_generator_file_loads_and_decodes(tmp_path, trained_mnist):
    rng = np.random.default_rng(0)
    w1, b1 = rng.standard_normal((2, 32)).astype("float32"), rng.standard_normal(32).astype("float32")
    w2, b2 = rng.standard_normal((32, 784)).astype("float32") * 0.1, rng.standard_normal(784).astype("float32")
    models = tmp_path / "models"
    models.mkdir()
    _write_keras2_generator(models / "old_generator.h5", w1, b1, w2, b2)
    decoder = saving.load_model(models / "old_generator.h5", rebuild=lambda: _dense_decoder())
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
    from vaelab.models.vae import build_dense_decoder

    return build_dense_decoder(2, 32, 784)


def test_user_errors_are_one_line_without_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VAELAB_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, str(ROOT / "mnist_generate.py"), "--models-dir", str(tmp_path / "none"),
                          "--latent-dim", "7", "--no-prompt"],  # latent 7: no shipped model stands in
                         capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: model file {tmp_path / 'none' / 'ld_7_id_512_e_60_decoder.h5'} not found; "
                      "make it with: python mnist_train.py --latent-dim 7"]


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


def test_dense_models_default_to_jax_unless_the_user_chose_a_backend():
    """KERAS_BACKEND always wins; otherwise a dense VAE trains on JAX (measured faster there), the conv
    architectures keep Keras' default, and --distribute (multi-worker needs TensorFlow) keeps it too."""
    code = ("import argparse, os, sys; from vaelab.api.train import choose_backend; from vaelab.config.params import MnistParams\n"
            "none, mirrored = argparse.Namespace(distribute='none'), argparse.Namespace(distribute='mirrored')\n"
            "conv = MnistParams(architecture='conv')\n"
            "print(choose_backend(conv, none), choose_backend(MnistParams(), mirrored),\n"
            "      choose_backend(MnistParams(), none), os.environ.get('KERAS_BACKEND'), 'keras' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "None", "jax", "jax", "False"]
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, "KERAS_BACKEND": "tensorflow"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "None", "None", "tensorflow", "False"]


@pytest.mark.parametrize("script", sorted(p.name for p in ROOT.glob("*.py")
                                          if p.name.endswith(("_train.py", "_generate.py", "_morph.py"))
                                          or p.name in ("evaluate.py", "mnist_2d_latent_space_and_generate.py",
                                                        "mnist_3d_latent_space_and_generate.py")))
def test_help_lists_the_options_and_exits_0(script, capsys):
    """--help is built from the params' descriptions: one with a '%' once broke every script's --help."""
    assert run_script(script, "--help") == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and "--debug" in out
