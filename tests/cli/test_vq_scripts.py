"""The vq family through the scripts: a tiny run of mnist_train.py --architecture vq on every backend, generate
with --sampler pixelcnn, evaluate.py's two-stage bound, exact resume, and the bad combinations as one
``error:`` line with exit status 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_script, write_mnist
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
VQ = ["--architecture", "vq", "--codebook-size", "8", "--codebook-dim", "3", "--filters", "4", "--blocks", "1",
      "--epochs", "2", "--batch-size", "64", "--limit", "128", "--pixelcnn-epochs", "1", "--pixelcnn-layers", "2",
      "--pixelcnn-filters", "8", "--no-tensorboard"]
PREFIX = "ld_2_id_512_e_2_vq8x3"


def _files(data, models, results):
    return ["--data-dir", str(data), "--models-dir", str(models), "--results-dir", str(results)]


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_a_vq_run_trains_and_generates_on_every_backend(backend, tmp_path):
    data = write_mnist(tmp_path / "data")
    files = _files(data, tmp_path / "models", tmp_path / "results")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    for script, args in (("mnist_train.py", VQ), ("mnist_generate.py", ["--model", PREFIX, "--grid", "3",
                                                                        "--no-prompt", "--pixelcnn-epochs", "1"])):
        done = subprocess.run([sys.executable, str(ROOT / script), *args, *files], env=env, capture_output=True,
                              text=True, timeout=600, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
    history = json.loads((tmp_path / "models" / f"{PREFIX}_history.json").read_text())
    assert len(history["loss"]) == 2 and all(np.isfinite(history["loss"]))
    assert 1.0 <= history["perplexity"][-1] <= 8.0  # exp(entropy) of 8 codes' usage
    np.testing.assert_allclose(np.add(history["reconstruction_loss"], history["vq_loss"]), history["loss"], rtol=1e-4)
    params = json.loads((tmp_path / "models" / f"{PREFIX}_params.json").read_text())
    assert params["architecture"] == "vq" and params["codebook_size"] == 8 and params["codebook_ema"] is True
    assert (tmp_path / "models" / f"{PREFIX}_sampler_pixelcnn.h5").is_file()
    grid = Image.open(tmp_path / "results" / f"{PREFIX}_random_pixelcnn.png")
    assert grid.size[0] > 100 and np.asarray(grid).std() > 0


@pytest.fixture
def vq_model(tmp_path):
    """A vq model trained in this process on the fixture data: (data dir, models dir, results dir)."""
    data = write_mnist(tmp_path / "data")
    models, results = tmp_path / "models", tmp_path / "results"
    assert run_script("mnist_train.py", *VQ, *_files(data, models, results)) == 0
    return data, models, results


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_what_a_vq_model_cannot_do_is_one_error_line(vq_model, capsys):
    data, models, results = vq_model
    files = _files(data, models, results)
    cases = [("mnist_generate.py", ["--sampler", "normal"], "continuous latent vectors"),
             ("mnist_generate.py", ["--sampler", "gmm"], "cannot be combined with --sampler gmm"),
             ("mnist_generate.py", ["--z", "0,0"], "not a continuous vector"),
             ("mnist_2d_latent_space_and_generate.py", [], "is a vq model"),
             ("mnist_3d_latent_space_and_generate.py", [], "is a vq model")]
    for script, args, words in cases:
        capsys.readouterr()
        assert run_script(script, "--model", PREFIX, "--no-prompt", *args, *files) == 2, script
        assert words in _one_error_line(capsys)
    assert run_script("mnist_train.py", *VQ, "--conditional", *files) == 2
    assert "cannot be combined with --conditional" in _one_error_line(capsys)


def test_pixelcnn_on_a_continuous_model_is_one_error_line(mnist_dir, tmp_path, capsys):
    files = _files(mnist_dir, tmp_path / "models", tmp_path / "results")
    assert run_script("mnist_train.py", "--epochs", "1", "--intermediate-dim", "8", "--limit", "64",
                      "--no-tensorboard", *files) == 0
    capsys.readouterr()
    assert run_script("mnist_generate.py", "--model", "ld_2_id_8_e_1", "--sampler", "pixelcnn", "--no-prompt",
                      *files) == 2
    assert "only a vq model decodes" in _one_error_line(capsys)


def test_evaluate_reports_reconstruction_codebook_and_the_two_stage_bound(vq_model, tmp_path):
    data, models, _ = vq_model
    out = tmp_path / "eval.json"
    assert run_script("evaluate.py", "--dataset", "mnist", "--model", PREFIX, "--data-dir", data, "--models-dir",
                      models, "--limit", "64", "--quiet", "--out", out) == 0
    r = json.loads(out.read_text())
    assert r["test_images"] == 64 and r["code_map"] == [7, 7] and 1 <= r["codebook_used"] <= 8
    assert 1.0 <= r["codebook_perplexity"] <= r["codebook_used"] + 1e-9
    assert r["two_stage_nll_nats"] == pytest.approx(r["reconstruction_nats"] + r["prior_nats"], rel=1e-9)
    assert 0 < r["prior_nats"] <= 49 * np.log(8) * 1.5  # 49 codes of 8: about uniform after one epoch
    assert 0 <= r["mse"] <= 1


def _interrupt_at(monkeypatch, epoch, batch):
    """Ctrl-C as training starts ``batch`` of ``epoch`` (as tests/training/test_checkpoints.py does)."""
    import keras

    from vaelab.training import callbacks

    class Interrupter(keras.callbacks.Callback):
        def on_epoch_begin(self, e, logs=None):
            self.epoch = e

        def on_train_batch_begin(self, b, logs=None):
            if self.epoch == epoch and b <= batch < b + self.model.steps_per_execution:
                signal.raise_signal(signal.SIGINT)

    real = callbacks.run_callbacks
    monkeypatch.setattr(callbacks, "run_callbacks", lambda *a, **k: [*real(*a, **k), Interrupter()])


def test_an_interrupted_vq_run_resumes_exactly(mnist_dir, tmp_path, monkeypatch):
    """The EMA codebook, its counts and sums are model variables: checkpointed and restored like the weights."""
    import h5py

    full, parts = tmp_path / "full", tmp_path / "parts"
    args = [*VQ, "--epochs", "3", "--data-dir", str(mnist_dir), "--validate-on", "test"]
    assert run_script("mnist_train.py", *args, "--models-dir", full) == 0
    with monkeypatch.context() as m:
        _interrupt_at(m, epoch=1, batch=1)
        assert run_script("mnist_train.py", *args, "--models-dir", parts) == 130
    assert run_script("mnist_train.py", *args, "--models-dir", parts, "--resume") == 0
    prefix = "ld_2_id_512_e_3_vq8x3"

    def arrays(path):
        out = {}
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        return {k: v for k, v in out.items() if not k.startswith("optimizer_weights")}  # named per run

    for kind in ("vae", "encoder", "decoder"):
        a, b = arrays(full / f"{prefix}_{kind}.h5"), arrays(parts / f"{prefix}_{kind}.h5")
        assert a.keys() == b.keys() and len(a) > 4
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    ha, hb = (json.loads((d / f"{prefix}_history.json").read_text()) for d in (full, parts))
    ha.pop("epoch_seconds"), hb.pop("epoch_seconds")  # wall times: the one thing a resume does not repeat
    assert ha == hb and len(ha["perplexity"]) == 3


def test_fashion_mnist_trains_a_vq_model_and_reports_it(tmp_path, capsys):
    """Fashion-MNIST has its own report (MSE and KL); a vq model gets the vq report instead, exit 0."""
    from test_fashion import write_fashion_idx

    write_fashion_idx(tmp_path / "data" / "fashion-mnist", n_train=128, n_test=64)
    assert run_script("fashion_mnist_train.py", *VQ, *_files(tmp_path / "data", tmp_path / "models",
                                                             tmp_path / "results")) == 0
    out = capsys.readouterr().out
    assert "codebook perplexity" in out and "vq loss" in out
    params = json.loads((tmp_path / "models" / "fashion_mnist_ld_3_e_2_vq8x3_params.json").read_text())
    assert params["likelihood"] == "gaussian" and params["architecture"] == "vq"
