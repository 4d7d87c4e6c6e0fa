"""grad_skip: an update whose gradient norm is far above the running mean (or not finite) leaves the weights,
the optimizer's moments and its step count exactly as they were, inside a compiled fit on every backend; the
train scripts log the skipped updates and resume exactly."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from conftest import run_script
from vaelab.training import skipping
from vaelab.training.loop import make_optimizer

ROOT = Path(__file__).resolve().parents[2]

BACKEND_SCRIPT = r"""
import json, sys
import numpy as np
import keras
from vaelab.training.loop import make_optimizer
from vaelab.training.skipping import BURN_IN

def model():
    keras.utils.set_random_seed(1)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(2)])
    m.compile(optimizer=make_optimizer("adam", 1e-2, grad_skip=float(sys.argv[1])), loss="mse")
    return m

rng = np.random.default_rng(0)
x = rng.normal(size=(8 * (BURN_IN + 10), 4)).astype("float32")
y = (x[:, :2] * 0.5).astype("float32")
bad_x = rng.normal(size=(16, 4)).astype("float32")
bad_y = {"huge": np.full((16, 2), 1e6, "float32"), "nan": np.full((16, 2), np.nan, "float32")}[sys.argv[2]]
plain, spiked = model(), model()
plain.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
spiked.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
spiked.fit(bad_x, bad_y, batch_size=8, epochs=1, shuffle=False, verbose=0)  # two spiked steps
plain.fit(x[:8], y[:8], batch_size=8, epochs=1, shuffle=False, verbose=0)  # then a normal step for both
spiked.fit(x[:8], y[:8], batch_size=8, epochs=1, shuffle=False, verbose=0)
num = lambda vs: [keras.ops.convert_to_numpy(v).tolist() for v in vs]
opt = spiked.optimizer
stat = lambda name: float(keras.ops.convert_to_numpy(getattr(opt, name))) if hasattr(opt, name) else None
stats = {"skipped": stat("grad_skipped"), "taken": stat("grad_updates"), "mean": stat("grad_norm_mean"),
         "iterations": [int(keras.ops.convert_to_numpy(o.iterations)) for o in (plain.optimizer, spiked.optimizer)]}
print(json.dumps({"plain": num(plain.weights), "spiked": num(spiked.weights),
                  "plain_opt": num(plain.optimizer.variables), "spiked_opt": num(spiked.optimizer.variables),
                  **stats}))
"""


def _run(backend, *args):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT),
           "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", BACKEND_SCRIPT, *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
@pytest.mark.parametrize("bad", ["huge", "nan"])
def test_a_spiked_update_is_skipped_exactly_on_every_backend(backend, bad):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("runs every backend in subprocesses from the TensorFlow session only")
    skipping_run = _run(backend, 5.0, bad)
    assert skipping_run["skipped"] == 2 and skipping_run["taken"] == skipping.BURN_IN + 10 + 1
    # the spiked model took the same updates as the one that never saw the spikes: bit for bit
    assert skipping_run["spiked"] == skipping_run["plain"]
    plain_iterations, spiked_iterations = skipping_run["iterations"]
    assert plain_iterations == spiked_iterations == skipping.BURN_IN + 11  # the step count did not advance
    n = len(skipping_run["plain_opt"]) - 4  # all but the four statistics: moments, step count, rate
    assert skipping_run["spiked_opt"][:n] == skipping_run["plain_opt"][:n]
    assert 0 < skipping_run["mean"] < 1e3
    if bad == "huge":  # without the guard the same spike moves the weights
        unguarded = _run(backend, 0.0, bad)
        assert unguarded["spiked"] != unguarded["plain"]


def test_the_running_mean_is_the_mean_then_exponential():
    opt = make_optimizer("sgd", 0.0, grad_skip=3.0)
    w = keras.Variable(np.zeros(2, "float32"))
    opt.build([w])
    norms = []
    plain = round(1 / (1 - skipping.DECAY))  # the first 100 norms: their plain mean, then exponential
    for step in range(plain + 5):
        g = np.array([3.0, 4.0], "float32") * (1 + step % 3)  # norms 5, 10, 15, ...
        norms.append(float(np.linalg.norm(g)))
        opt.apply([keras.ops.convert_to_tensor(g)], [w])
    expected = float(np.mean(norms[:plain]))
    for n in norms[plain:]:
        expected += (1 - skipping.DECAY) * (n - expected)
    assert float(keras.ops.convert_to_numpy(opt.grad_norm_mean)) == pytest.approx(expected, rel=1e-5)
    assert float(keras.ops.convert_to_numpy(opt.grad_skipped)) == 0  # 15 < 3 x 10
    opt.apply([keras.ops.convert_to_tensor(np.array([300.0, 400.0], "float32"))], [w])  # 500 > 3 x ~10
    assert float(keras.ops.convert_to_numpy(opt.grad_skipped)) == 1
    assert float(keras.ops.convert_to_numpy(opt.grad_norm_last)) == pytest.approx(500.0)


def test_train_script_logs_skipped_updates_and_records_the_entry(tmp_path, mnist_dir):
    """(Exact resume with grad_skip: tests/training/test_checkpoints.py.)"""
    assert run_script("mnist_train.py", "--data-dir", mnist_dir, "--models-dir", tmp_path, "--epochs", "2",
                      "--intermediate-dim", "16", "--batch-size", "8", "--limit", "512", "--grad-skip", "4") == 0
    rows = list(csv.DictReader(open(next(tmp_path.glob("*_log.csv")))))
    assert len(rows) == 2 and all(float(r["skipped_updates"]) >= 0 for r in rows)
    assert all(float(r["grad_norm"]) > 0 for r in rows)
    history = json.loads(next(tmp_path.glob("*_history.json")).read_text())
    assert len(history["skipped_updates"]) == 2
    assert json.loads(next(tmp_path.glob("*_params.json")).read_text())["grad_skip"] == 4.0


def test_grad_skip_refuses_distribute(tmp_path, mnist_dir, capsys):
    code = run_script("mnist_train.py", "--data-dir", mnist_dir, "--models-dir", tmp_path, "--epochs", "1",
                      "--limit", "256", "--grad-skip", "4", "--distribute", "mirrored")
    assert code == 2
    assert "error: --grad-skip chooses per step on one device" in capsys.readouterr().err


def _guarded_fit(guard, poison_weights=False, extra=()):
    """Two epochs of a small model with grad_skip 5 whose second-to-last batch has NaN targets."""
    keras.utils.set_random_seed(1)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(2)])
    m.compile(optimizer=make_optimizer("adam", 1e-2, grad_skip=5.0), loss="mse")
    if poison_weights:
        m.layers[0].kernel.assign(np.full(m.layers[0].kernel.shape, np.nan, "float32"))
    rng = np.random.default_rng(0)
    steps = skipping.BURN_IN + 10
    x = rng.normal(size=(8 * steps, 4)).astype("float32")
    y = (x[:, :2] * 0.5).astype("float32")
    y[-16:-8] = np.nan
    history = m.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[guard, *extra])
    return m, history.history, steps


def test_with_grad_skip_a_skipped_non_finite_batch_does_not_end_the_run():
    """The optimizer skipped the NaN batch's update, so the run goes on (VDVAE's way); the plain guard stops at
    that batch, and with grad_skip too non-finite weights still stop the run."""
    from vaelab.training.callbacks import make_nan_guard

    guard = make_nan_guard(skipping=True)
    m, history, steps = _guarded_fit(guard)
    assert guard.bad_batch is None and len(history["loss"]) == 2
    assert all(np.isnan(history["loss"]))  # each epoch's mean includes its NaN batch
    assert float(keras.ops.convert_to_numpy(m.optimizer.grad_skipped)) == 2  # once per epoch, nothing else
    assert int(keras.ops.convert_to_numpy(m.optimizer.iterations)) == 2 * (steps - 1)
    assert all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in m.weights)

    plain = make_nan_guard()
    _, history, steps = _guarded_fit(plain)
    assert plain.bad_batch == steps - 2 and len(history["loss"]) == 1

    poisoned = make_nan_guard(skipping=True)
    _, history, _ = _guarded_fit(poisoned, poison_weights=True)
    assert poisoned.bad_batch == 0 and len(history["loss"]) == 1


@pytest.mark.parametrize("grad_skip, kept", [(5.0, 2), (0.0, 0)])
def test_with_grad_skip_an_epoch_with_a_skipped_nan_batch_is_checkpointed(tmp_path, grad_skip, kept):
    """The epochs whose training mean a skipped NaN batch made non-finite are still epochs to resume from: in
    the history and checkpointed (a 12-epoch Caltech101 run once kept only 5 of its epochs in its history)."""
    from types import SimpleNamespace

    from vaelab.core.artifacts import ModelFiles
    from vaelab.training import checkpoints
    from vaelab.training.callbacks import make_nan_guard

    guard = make_nan_guard(skipping=bool(grad_skip))
    params = SimpleNamespace(epochs=2, grad_skip=grad_skip, to_dict=lambda: {"grad_skip": grad_skip})
    store = checkpoints.CheckpointStore(ModelFiles(tmp_path, "p"))
    ckpt = checkpoints.checkpoint_callback(store, params, every=1,
                                           history={}, start=0, steps=skipping.BURN_IN + 10,
                                           stop_state={"signal": None}, nan_guard=guard)
    _guarded_fit(guard, extra=[ckpt])
    ckpt.wait()
    assert len(ckpt.history.get("loss", [])) == kept
    assert all(np.isnan(ckpt.history.get("loss", [])))
    assert [p.name for p in store.complete()] == (["epoch_00002"] if kept else [])  # the latest one is kept
