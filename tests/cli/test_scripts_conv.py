"""The conv train and generate scripts end to end on tiny fixture data: one epoch of a tiny network
writes the promised files, and each generate script runs headless and writes its images."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import run_script
from conv_fixtures import CALTECH_VALID, CIFAR_TEST, write_caltech_folder, write_cifar_dir
from explorer_fixtures import Opened
from PIL import Image

from vaelab.core import artifacts
from vaelab.models import saving

TINY = ("--filters", "4", "--intermediate-dim", "8", "--epochs", "1", "--batch-size", "16")
_TRAINED: dict = {}


def _train(tmp_path_factory, key: str, script: str, writer, *extra: str):
    """Train a tiny model once per session: (data_dir, models_dir, captured stdout)."""
    if key not in _TRAINED:
        base = tmp_path_factory.mktemp(key)
        data = base / "data"
        writer(data)
        models = base / "models"
        code = run_script(script, "--data-dir", data, "--models-dir", models, *TINY, *extra)
        assert code == 0
        _TRAINED[key] = (data, models)
    return _TRAINED[key]


@pytest.fixture
def cifar_trained(tmp_path_factory):
    return _train(tmp_path_factory, "cifar", "cifar10_train.py", write_cifar_dir)


@pytest.fixture
def cifar2d_trained(tmp_path_factory):
    return _train(tmp_path_factory, "cifar2d", "cifar10_train.py", write_cifar_dir, "--latent-dim", "2")


@pytest.fixture
def cifar3d_trained(tmp_path_factory):
    return _train(tmp_path_factory, "cifar3d", "cifar10_train.py", write_cifar_dir, "--latent-dim", "3",
                  "--limit", "32")


@pytest.fixture
def caltech92_trained(tmp_path_factory):
    return _train(tmp_path_factory, "caltech92", "caltech101_92_train.py", write_caltech_folder, "--batch-size", "2")


def _png(path) -> tuple[int, int, str]:
    with Image.open(path) as img:
        return img.width, img.height, img.mode


def test_cifar10_train_writes_the_original_names_and_a_history(cifar_trained):
    _, models = cifar_trained
    files = artifacts.ModelFiles(models, "cifar10_ld_16_conv_3_id_8_e_1")
    for path in files.required() + [files.params_json, files.history_json, files.csv_log]:
        assert path.is_file(), path
    history = artifacts.load_history(files.history)
    assert set(history) >= {"loss", "reconstruction_loss", "kl_loss", "val_loss", "val_reconstruction_loss",
                            "val_kl_loss"}
    assert len(history["loss"]) == 1
    # BCE summed over 32*32*3 values: an untrained model is near 3072 * ln 2 = 2129 nats, far above 1
    assert 500 < history["val_reconstruction_loss"][0] < 4000
    decoder = saving.load_model(files.decoder)
    assert decoder.outputs[0].shape[1:] == (32, 32, 3)


def test_cifar10_train_reports_counts_loss_and_memory(tmp_path, capsys):
    write_cifar_dir(tmp_path / "data")
    code = run_script("cifar10_train.py", "--data-dir", tmp_path / "data", "--models-dir", tmp_path / "m", *TINY,
                      "--limit", "32")
    out = capsys.readouterr().out
    assert code == 0
    assert f"29 training, 3 validation and {min(32, CIFAR_TEST)} test images" in out  # CIFAR-10: a tenth held out
    assert "samples/s" in out and "test: loss" in out and "peak memory (RSS)" in out


def test_cifar10_generate_writes_grid_and_reconstructions(cifar_trained, tmp_path):
    data, models = cifar_trained
    results = tmp_path / "results"
    code = run_script("cifar10_generate.py", "--data-dir", data, "--models-dir", models, "--results-dir", results,
                      "--filters", "4", "--intermediate-dim", "8", "--epochs", "1", "--no-prompt",
                      "--n-reconstructions", "6", "--z", ",".join(["0"] * 16))
    assert code == 0
    prefix = "cifar10_ld_16_conv_3_id_8_e_1"
    names = sorted(p.name for p in results.iterdir())
    assert names == sorted([f"{prefix}_random_normal.png", f"{prefix}_reconstructions.png",
                            f"{prefix}_z_{'_'.join(['0'] * 16)}.png"])
    w, h, mode = _png(results / f"{prefix}_random_normal.png")
    assert mode in ("RGBA", "RGB") and w > 300 and h > 300
    w, h, _ = _png(results / f"{prefix}_reconstructions.png")
    assert w > 2 * h  # two rows of six images: wide


def test_cifar10_generate_scatters_a_2d_latent_space(cifar2d_trained, tmp_path):
    data, models = cifar2d_trained
    results = tmp_path / "results"
    code = run_script("cifar10_generate.py", "--data-dir", data, "--models-dir", models, "--results-dir", results,
                      "--model", "cifar10_ld_2_conv_3_id_8_e_1", "--no-prompt", "--grid", "3")
    assert code == 0
    assert (results / "cifar10_ld_2_conv_3_id_8_e_1_latent.png").is_file()


def test_cifar10_generate_scatters_a_3d_latent_space_and_explores_it(cifar3d_trained, tmp_path, monkeypatch):
    opened = Opened(monkeypatch)
    data, models = cifar3d_trained
    results = tmp_path / "results"
    prefix = "cifar10_ld_3_conv_3_id_8_e_1"
    code = run_script("cifar10_generate.py", "--data-dir", data, "--models-dir", models, "--results-dir", results,
                      "--model", prefix, "--grid", "3", "--explore")
    assert code == 0
    assert sorted(p.name for p in results.iterdir()) == [f"{prefix}_latent3d.png", f"{prefix}_random_normal.png",
                                                         f"{prefix}_reconstructions.png"]
    w, h, _ = _png(results / f"{prefix}_latent3d.png")
    assert w > 400 and h > 400
    (call,) = opened.calls
    assert call["latent_dim"] == 3 and call["scatter"].z.shape == (CIFAR_TEST, 3)
    assert call["decode"](np.zeros((1, 3))).shape == (1, 32, 32, 3)


def test_generate_without_a_model_names_the_train_command(tmp_path, capsys):
    code = run_script("cifar10_generate.py", "--models-dir", tmp_path, "--results-dir", tmp_path / "r",
                      "--no-prompt", "--epochs", "7")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "cifar10_ld_16_conv_3_id_128_e_7_decoder.h5 not found" in err and "cifar10_train.py --epochs 7" in err


def test_caltech101_92_train_builds_the_cache_and_writes_the_files(caltech92_trained):
    data, models = caltech92_trained
    assert (data / "caltech101_92_crop.npz").is_file()  # built beside the source on first use
    files = artifacts.ModelFiles(models, "caltech101_92_ld_32_conv_3_id_8_e_1")
    for path in files.required():
        assert path.is_file(), path
    assert saving.load_model(files.decoder).outputs[0].shape[1:] == (92, 92, 3)
    assert len(artifacts.load_history(files.history)["loss"]) == 1


def test_caltech101_generate_92_and_legacy_names(caltech92_trained, tmp_path):
    data, models = caltech92_trained
    new = artifacts.ModelFiles(models, "caltech101_92_ld_32_conv_3_id_8_e_1")
    args = ("--size", "92", "--data-dir", data, "--filters", "4", "--intermediate-dim", "8", "--epochs", "1",
            "--no-prompt", "--grid", "4")
    code = run_script("caltech101_generate.py", *args, "--models-dir", models, "--results-dir", tmp_path / "r")
    assert code == 0
    n_test = len(CALTECH_VALID)  # one test image per class
    assert _png(tmp_path / "r" / f"{new.prefix}_reconstructions.png")[0] > n_test * 40
    assert (tmp_path / "r" / f"{new.prefix}_random_normal.png").is_file()

    # the original scripts' names: object101_… prefix and …_generator.h5 for the decoder
    legacy_dir = tmp_path / "legacy"
    legacy_dir.mkdir()
    old = artifacts.ModelFiles(legacy_dir, "object101_92_ld_32_conv_3_id_8_e_1")
    shutil.copy(new.decoder, old.generator)
    shutil.copy(new.encoder, old.encoder)
    code = run_script("caltech101_generate.py", *args, "--models-dir", legacy_dir, "--results-dir", tmp_path / "l")
    assert code == 0
    assert (tmp_path / "l" / f"{old.prefix}_random_normal.png").is_file()


def test_caltech101_128_trains_and_generates(tmp_path):
    data = tmp_path / "data"
    write_caltech_folder(data)
    code = run_script("caltech101_128_train.py", "--data-dir", data, "--models-dir", tmp_path / "m", *TINY,
                      "--latent-dim", "4")
    assert code == 0
    files = artifacts.ModelFiles(tmp_path / "m", "caltech101_128_ld_4_conv_3_id_8_e_1")
    assert all(p.is_file() for p in files.required())
    code = run_script("caltech101_generate.py", "--size", "128", "--data-dir", data, "--models-dir", tmp_path / "m",
                      "--results-dir", tmp_path / "r", "--model", files.prefix, "--no-prompt", "--grid", "2")
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [f"{files.prefix}_random_normal.png",
                                                                  f"{files.prefix}_reconstructions.png"]
    enc = saving.load_model(files.encoder)
    assert enc.inputs[0].shape[1:] == (128, 128, 3)
    z = enc.predict(np.zeros((1, 128, 128, 3), "float32"), verbose=0)
    assert z.shape == (1, 4)


def test_conv_train_user_errors_are_one_line(tmp_path, capsys):
    write_cifar_dir(tmp_path / "data")
    (tmp_path / "data" / "cifar-10-batches-py" / "test_batch").write_bytes(b"garbage")
    code = run_script("cifar10_train.py", "--data-dir", tmp_path / "data", "--models-dir", tmp_path / "m", *TINY)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "test_batch" in err and "\n" not in err
    assert run_script("caltech101_92_train.py", "--strides", "2,2,2,2", "--models-dir", tmp_path / "m") == 2
    assert "first stride must be 1" in capsys.readouterr().err


def test_cifar10_discretized_logistic_trains_evaluates_in_bits_per_dim_and_draws(tmp_path, capsys):
    """The bits/dim path end to end: train prints the test -ELBO in bits/dim, evaluate's JSON has the
    discretized likelihood with bits/dim = nats / (D ln 2) and an IWAE bound below the ELBO, the saved decoder
    gives images in [0, 1], and the generate script draws them."""
    import json

    from vaelab.models.vae import image_decoder

    data, models, results = tmp_path / "data", tmp_path / "models", tmp_path / "results"
    write_cifar_dir(data)
    opts = (*TINY, "--likelihood", "discretized_logistic", "--mixtures", "2")
    assert run_script("cifar10_train.py", "--data-dir", data, "--models-dir", models, *opts) == 0
    prefix = "cifar10_ld_16_conv_3_id_8_e_1_dmol_2"
    out = capsys.readouterr().out
    loss = float(out.split("test: loss ")[1].split()[0])
    bpd = float(out.split(" nats = ")[1].split()[0])
    assert bpd == pytest.approx(loss / (32 * 32 * 3 * np.log(2)), rel=1e-4)
    assert 0 < bpd < 12  # 4 steps of training: about a broad logistic (8 bits/dim is uniform over 256 levels)

    decoder = saving.load_model(models / f"{prefix}_decoder.h5")
    images = decoder.predict(np.random.default_rng(0).standard_normal((5, 16)).astype("float32"), verbose=0)
    assert images.shape == (5, 32, 32, 3) and images.min() >= 0 and images.max() <= 1
    vae = saving.load_model(models / f"{prefix}_vae.h5")
    assert vae.likelihood.name == "discretized_logistic" and vae.decoder.output_shape[-1] == 20
    z = np.zeros((2, 16), "float32")
    np.testing.assert_allclose(image_decoder(vae).predict(z, verbose=0), decoder.predict(z, verbose=0), atol=1e-6)

    assert run_script("evaluate.py", "--dataset", "cifar10", "--data-dir", data, "--models-dir", models,
                      *opts, "--k", "8", "--quiet") == 0
    r = json.loads((models / f"{prefix}_eval.json").read_text())
    assert r["likelihood"] == "discretized_logistic" and r["dims"] == 3072
    assert r["iwae_bits_per_dim"] == pytest.approx(r["iwae_nll_nats"] / (3072 * np.log(2)))
    assert r["elbo_bits_per_dim"] == pytest.approx(-r["elbo_nats"] / (3072 * np.log(2)))
    assert r["iwae_nll_nats"] < -r["elbo_nats"] + 1.0  # the k = 8 bound is no looser than the ELBO (MC slack)
    assert r["elbo_bits_per_dim"] == pytest.approx(bpd, abs=0.05)  # same model, same test images as training's
    assert "bits/dim" in capsys.readouterr().out

    assert run_script("cifar10_generate.py", "--data-dir", data, "--models-dir", models, "--results-dir", results,
                      *opts, "--no-prompt", "--grid", "3") == 0
    assert _png(results / f"{prefix}_random_normal.png")[2] in ("RGB", "RGBA")
