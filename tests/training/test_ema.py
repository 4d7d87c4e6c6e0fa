"""ema: the moving average of the weights is what validation sees and what the saved model holds; training
goes on with the weights themselves, unchanged by the average (exact resume: tests/training/test_checkpoints.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_script
from vaelab.core.errors import UserError
from vaelab.config.params import FashionMnistParams, MnistParams
from vaelab.models import saving


def _train(mnist_dir, models, *extra):
    # epsilon_std 0: z is the posterior mean, so a validation loss is a deterministic function of the weights
    args = ["--data-dir", mnist_dir, "--models-dir", models, "--epochs", "3", "--intermediate-dim", "16",
            "--batch-size", "64", "--limit", "512", "--validate-on", "test", "--epsilon-std", "0", "--no-jit",
            *extra]
    assert run_script("mnist_train.py", *args) == 0
    return models


def test_validation_and_the_saved_model_use_the_average(mnist_dir, tmp_path):
    plain = _train(mnist_dir, tmp_path / "plain")
    ema = _train(mnist_dir, tmp_path / "ema", "--ema", "0.9")
    h_plain = json.loads((plain / "ld_2_id_16_e_3_history.json").read_text())
    h_ema = json.loads((ema / "ld_2_id_16_e_3_ema0.9_history.json").read_text())
    # the same training trajectory: the average never feeds back into the weights being trained
    np.testing.assert_allclose(h_ema["loss"], h_plain["loss"], rtol=1e-6)
    assert all(abs(a - b) > 1e-3 for a, b in zip(h_ema["val_loss"], h_plain["val_loss"]))
    # the saved model holds the average: evaluated on the validation images (here the test set) it gives the
    # last epoch's validation loss
    vae = saving.load_model(ema / "ld_2_id_16_e_3_ema0.9_vae.h5")
    vae.compile(optimizer="adam")
    with np.load(mnist_dir / "mnist.npz") as f:
        x_test = (f["x_test"].reshape(-1, 784) / 255.0).astype("float32")
    val = vae.evaluate(x_test, batch_size=64, verbose=0, return_dict=True)["loss"]
    assert val == pytest.approx(h_ema["val_loss"][-1], rel=1e-5)
    # ... and not the weights training ended with (the last checkpoint's)
    trained = saving.load_model(plain / "ld_2_id_16_e_3_vae.h5")
    trained.compile(optimizer="adam")
    assert trained.evaluate(x_test, batch_size=64, verbose=0, return_dict=True)["loss"] == \
        pytest.approx(h_plain["val_loss"][-1], rel=1e-5)
    assert json.loads((ema / "ld_2_id_16_e_3_ema0.9_params.json").read_text())["ema"] == 0.9


def test_ema_with_early_stopping_is_refused():
    with pytest.raises(UserError, match="ema with patience"):
        MnistParams(ema=0.99, patience=3)
    with pytest.raises(UserError, match="set --patience 0"):
        FashionMnistParams(ema=0.99)  # its default patience is 10
    assert FashionMnistParams(ema=0.99, patience=0).model_prefix() == "fashion_mnist_ld_3_e_100_ema0.99"


BACKEND_SCRIPT = r"""
import json, sys
import numpy as np
import keras
from vaelab.training.callbacks import make_ema_validation
from vaelab.training.loop import make_optimizer

rng = np.random.default_rng(0)
x = rng.normal(size=(256, 4)).astype("float32")
y = (x[:, :2] * 0.5).astype("float32")
out = {}
for ema in (0.9, 0.0):
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(2)])
    m.compile(optimizer=make_optimizer("adam", 1e-2, ema=ema), loss="mse")
    cbs = [make_ema_validation()] if ema else []
    h = m.fit(x, y, batch_size=32, epochs=2, validation_data=(x, y), callbacks=cbs, verbose=0)
    out[str(ema)] = {"loss": h.history["loss"], "val": h.history["val_loss"],
                     "final": float(m.evaluate(x, y, batch_size=32, verbose=0))}
print(json.dumps(out))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_average_is_validated_and_kept_on_jax_and_torch(backend):
    import os
    import subprocess
    import sys

    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("runs the other backends in subprocesses from the TensorFlow session only")
    from conftest import ROOT

    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", BACKEND_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    ema, plain = result["0.9"], result["0.0"]
    np.testing.assert_allclose(ema["loss"], plain["loss"], rtol=1e-6)  # the same weights were trained
    # validation and the model fit leaves behind: the average, not the weights trained
    assert ema["final"] == pytest.approx(ema["val"][-1], rel=1e-5)
    assert plain["final"] == pytest.approx(plain["val"][-1], rel=1e-5)
    assert abs(ema["final"] - plain["final"]) > 1e-4
