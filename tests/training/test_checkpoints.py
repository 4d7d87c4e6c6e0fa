"""Checkpoints and resume: repeatable runs, exact resume after an interrupt, NaN keeps the last good state."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from conftest import ROOT, run_script
from vaelab.data import batches
from vaelab.training import callbacks
from vaelab.training import checkpoints
from vaelab.training import loop as training
from vaelab.core.artifacts import ModelFiles
from vaelab.core.errors import UserError

PREFIX = "ld_2_id_16_e_3"


def _args(data, models, *extra):
    """A small run; validating on the test set keeps all 300 training images (the NaN tests know its batches)."""
    return ["--data-dir", data, "--models-dir", models, "--epochs", "3", "--intermediate-dim", "16",
            "--batch-size", "96", "--limit", "300", "--validate-on", "test", *extra]


def _h5_arrays(path):
    """The model's weight arrays in a saved .h5 file, by name (optimizer slots are compared separately)."""
    out = {}
    with h5py.File(path, "r") as f:
        f["model_weights"].visititems(
            lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def _npz_arrays(path):
    with np.load(path) as f:
        return [f[k] for k in sorted(f.files)]


def _assert_same_run(a, b, prefix=PREFIX):
    """Bit-identical model files and identical histories."""
    for kind in ("vae", "encoder", "decoder"):
        wa, wb = _h5_arrays(a / f"{prefix}_{kind}.h5"), _h5_arrays(b / f"{prefix}_{kind}.h5")
        assert wa.keys() == wb.keys() and len(wa) >= 4
        for k in wa:
            np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
    ca, cb = a / "checkpoints" / prefix / "epoch_00003", b / "checkpoints" / prefix / "epoch_00003"
    for name in ("weights.npz", "optimizer.npz"):  # optimizer moments and step, Sampling's RNG state
        for x, y in zip(_npz_arrays(ca / name), _npz_arrays(cb / name), strict=True):
            np.testing.assert_array_equal(x, y)
    ha = json.loads((a / f"{prefix}_history.json").read_text())
    hb = json.loads((b / f"{prefix}_history.json").read_text())
    # every number but the wall time of each epoch (which no resume can or should reproduce)
    seconds = ha.pop("epoch_seconds"), hb.pop("epoch_seconds")
    assert ha == hb
    assert len(ha["loss"]) == 3 and all(len(s) == 3 and min(s) > 0 for s in seconds)


@pytest.fixture(autouse=True)
def _two_steps_per_call(monkeypatch):
    """MNIST trains on the fast path (several steps per call); with 2 steps per call, the 4 batches of an
    epoch here take 2 calls, so a signal can still land in the middle of an epoch."""
    monkeypatch.setattr(training, "FAST_MAX_STEPS", 2)


def _interrupt_at(monkeypatch, epoch, batch, signum=signal.SIGINT):
    """Make training send itself ``signum`` at (epoch, batch), as Ctrl-C or `kill` would (before the call
    that trains ``batch``, when a call runs several steps)."""
    import keras

    class Interrupter(keras.callbacks.Callback):
        def on_epoch_begin(self, e, logs=None):
            self.epoch = e

        def on_train_batch_begin(self, b, logs=None):
            if self.epoch == epoch and b <= batch < b + self.model.steps_per_execution:
                signal.raise_signal(signum)

    real = callbacks.run_callbacks
    monkeypatch.setattr(callbacks, "run_callbacks", lambda *a, **k: [*real(*a, **k), Interrupter()])


def test_epoch_batches_cover_each_example_once_per_epoch():
    x = np.arange(10, dtype=np.float32)[:, None]
    ds = batches.make_epoch_batches(x, 4, seed=3, initial_epoch=5)
    assert ds.steps == 3 and [len(ds[i][0]) for i in range(3)] == [2, 4, 4]  # the short batch first
    for epoch in range(3):
        seen = np.concatenate([ds[epoch * 3 + j][0][:, 0] for j in range(3)])
        assert sorted(seen) == list(range(10))
        np.testing.assert_array_equal(seen, batches.epoch_permutation(3, 5 + epoch, 10))
    assert not np.array_equal(ds[0][0], ds[3][0])  # a new order each epoch
    again = batches.make_epoch_batches(x, 4, seed=3, initial_epoch=6)
    np.testing.assert_array_equal(again[1][0], ds[4][0])  # a resumed run sees the same batches


def test_same_seed_same_bits_other_seed_differs(mnist_dir, tmp_path):
    from tensorflow.python.framework.config import is_op_determinism_enabled

    for name in ("a", "b"):
        assert run_script("mnist_train.py", *_args(mnist_dir, tmp_path / name, "--seed", "0")) == 0
        assert is_op_determinism_enabled()  # an explicit --seed asks for deterministic kernels
    _assert_same_run(tmp_path / "a", tmp_path / "b")
    assert run_script("mnist_train.py", *_args(mnist_dir, tmp_path / "c", "--seed", "1")) == 0
    a, c = _h5_arrays(tmp_path / "a" / f"{PREFIX}_decoder.h5"), _h5_arrays(tmp_path / "c" / f"{PREFIX}_decoder.h5")
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    assert run_script("mnist_train.py", *_args(mnist_dir, tmp_path / "d")) == 0
    assert not is_op_determinism_enabled()  # the default seed keeps the faster default kernels


@pytest.mark.parametrize("every, seed", [(1, []), (5, ["--seed", "7"]), (1, ["--no-jit"]),
                                         (1, ["--grad-skip", "4"]), (1, ["--ema", "0.9"]),
                                         (1, ["--lr-schedule", "cosine"])],
                         ids=["every-1-default-ops", "every-5-det-ops", "every-1-no-jit", "every-1-grad-skip",
                              "every-1-ema", "every-1-cosine"])
def test_interrupted_and_resumed_equals_uninterrupted(mnist_dir, tmp_path, monkeypatch, capsys, every, seed):
    """Both kinds of kernels: the default ones and the deterministic ones an explicit --seed picks; the
    fast path (XLA, 2 steps per call here) and the plain one (--no-jit); the update-skipping optimizer, whose
    statistics are optimizer variables; the moving average of the weights (validated with, left in the model)."""
    prefix = PREFIX + {"--grad-skip": "_skip4", "--ema": "_ema0.9"}.get(seed[0] if seed else "", "")
    full, parts = tmp_path / "full", tmp_path / "parts"
    assert run_script("mnist_train.py", *_args(mnist_dir, full, *seed)) == 0
    args = _args(mnist_dir, parts, "--checkpoint-every", str(every), *seed)
    with monkeypatch.context() as m:
        _interrupt_at(m, epoch=1, batch=1)  # Ctrl-C in the middle of the second epoch
        assert run_script("mnist_train.py", *args) == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    ckpt = parts / "checkpoints" / prefix / "epoch_00001"
    assert err == (f"error: interrupted by SIGINT after epoch 1 of 3; checkpoint saved in {ckpt}; resume with: "
                   f"python mnist_train.py {' '.join(map(str, args))} --resume")
    assert not (parts / f"{prefix}_vae.h5").exists()
    assert run_script("mnist_train.py", *args, "--resume") == 0
    assert f"resuming from {ckpt} (epoch 1 of 3)" in capsys.readouterr().out
    _assert_same_run(full, parts, prefix)
    log = (parts / f"{prefix}_log.csv").read_text().splitlines()
    assert len(log) == 4  # header + 3 epochs, no partial one
    assert "epoch_seconds" in log[0].split(",")  # the history figure's time axis, resumed epochs included
    # the resumed rows stand in the header's columns (a learning-rate schedule's column once shifted them)
    rows = {run: list(csv.DictReader(open(run / f"{prefix}_log.csv"))) for run in (full, parts)}
    for a, b in zip(rows[full], rows[parts], strict=True):
        assert a.keys() == b.keys() and None not in b and "NA" not in b.values()
        assert {k: float(v) for k, v in a.items() if k != "epoch_seconds"} == \
               {k: float(v) for k, v in b.items() if k != "epoch_seconds"}
    if seed == ["--lr-schedule", "cosine"]:
        assert "learning_rate" in rows[parts][0]


def test_resume_refuses_missing_other_params_and_corrupt(mnist_dir, tmp_path, monkeypatch, capsys):
    models = tmp_path / "m"
    assert run_script("mnist_train.py", *_args(mnist_dir, models, "--resume")) == 2
    assert capsys.readouterr().err.strip() == (f"error: no checkpoint of {PREFIX} in {models / 'checkpoints'}; "
                                               "run without --resume to start training")
    with monkeypatch.context() as m:
        _interrupt_at(m, epoch=1, batch=0, signum=signal.SIGTERM)
        assert run_script("mnist_train.py", *_args(mnist_dir, models)) == 143
    capsys.readouterr()
    # an entry outside the file name (the KL weight is in it now: a new name, so "no checkpoint")
    assert run_script("mnist_train.py", *_args(mnist_dir, models, "--epsilon-std", "0.5", "--resume")) == 2
    ckpt = models / "checkpoints" / PREFIX / "epoch_00001"
    assert capsys.readouterr().err.strip() == (
        f"error: checkpoint {ckpt} was made with other params: epsilon_std 1.0 (now 0.5); pass the same values to "
        "resume, or run without --resume to start again")
    weights = ckpt / "weights.npz"
    weights.write_bytes(weights.read_bytes()[:100])
    assert run_script("mnist_train.py", *_args(mnist_dir, models, "--resume")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: checkpoint {ckpt} is truncated or corrupt (") and err.endswith(
        "); delete it and run without --resume")


def test_nan_loss_keeps_the_last_good_checkpoint(mnist_dir, tmp_path, monkeypatch, capsys):
    import keras

    class Poison(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                kernel = self.model.decoder.get_layer("x_hat").kernel
                kernel.assign(np.full(kernel.shape, np.nan, dtype="float32"))

    models = tmp_path / "m"
    args = _args(mnist_dir, models, "--checkpoint-every", "2")
    with monkeypatch.context() as m:
        real = callbacks.run_callbacks
        m.setattr(callbacks, "run_callbacks", lambda *a, **k: [*real(*a, **k), Poison()])
        assert run_script("mnist_train.py", *args) == 2
    ckpt = models / "checkpoints" / PREFIX / "epoch_00002"
    assert capsys.readouterr().err.strip() == (
        f"error: the loss became NaN/Inf in epoch 3 (batches 0-1); the last good checkpoint (epoch 2) is {ckpt}; "
        f"resume from it with a lower learning rate: python mnist_train.py {' '.join(map(str, args))} "
        "--learning-rate 0.0001 --resume")
    with np.load(ckpt / "weights.npz") as f:
        assert all(np.isfinite(f[k]).all() for k in f.files)
    assert run_script("mnist_train.py", *args, "--learning-rate", "0.0001", "--resume") == 0
    assert len(json.loads((models / f"{PREFIX}_history.json").read_text())["loss"]) == 3


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    import errno

    from vaelab.config.params import MnistParams

    store = checkpoints.CheckpointStore(ModelFiles(tmp_path, "p"))
    snap = checkpoints.Snapshot(1, {"loss": [1.0]}, {"w": np.ones(3)}, {"it": np.array(1)},
                                {"numpy": None, "python": None})
    (store.root / ".epoch_00009.x1y2.tmp").mkdir(parents=True)  # left by a write that was killed
    first = store.write(snap, MnistParams())
    assert sorted(p.name for p in store.root.iterdir()) == ["epoch_00001"]
    real_replace = os.replace

    def full_disk(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full_disk)
    snap.epoch = 2
    with pytest.raises(UserError) as e:
        store.write(snap, MnistParams())
    monkeypatch.setattr(os, "replace", real_replace)
    assert str(e.value) == (f"cannot write checkpoint {store.path(2)}: No space left on device; the previous "
                            f"checkpoint {first} is kept")
    assert store.complete() == [first] and sorted(p.name for p in store.root.iterdir()) == ["epoch_00001"]
    assert store.read(first)[0].model["w"].tolist() == [1.0, 1.0, 1.0]


def test_resume_command_replaces_the_learning_rate():
    argv = ["--epochs", "5", "--learning-rate", "0.01", "--resume", "--data-dir", "my data"]
    assert checkpoints.resume_command("mnist_train.py", argv) == (
        "python mnist_train.py --epochs 5 --learning-rate 0.01 --data-dir 'my data' --resume")
    assert checkpoints.resume_command("mnist_train.py", argv, 0.001) == (
        "python mnist_train.py --epochs 5 --data-dir 'my data' --learning-rate 0.001 --resume")


def test_sigterm_to_a_real_training_process(mnist_dir, tmp_path):
    """kill -TERM a training subprocess once its first checkpoint exists: exit 143, one line, no traceback."""
    models = tmp_path / "m"
    args = ["--data-dir", mnist_dir, "--models-dir", models, "--epochs", "500", "--intermediate-dim", "16",
            "--batch-size", "64"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "mnist_train.py"), *map(str, args)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root = models / "checkpoints" / "ld_2_id_16_e_500"
    deadline = time.time() + 240
    while not list(root.glob("epoch_*/state.json")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: interrupted by SIGTERM after epoch ") and last.endswith(" --resume"), last
    epochs = [int(p.name[6:]) for p in root.glob("epoch_*")]
    assert len(epochs) == 1 and f"after epoch {epochs[0]} of 500" in last


def test_nan_in_the_first_epoch_points_to_no_older_runs_checkpoint(mnist_dir, tmp_path, monkeypatch, capsys):
    import keras

    class PoisonAtOnce(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            kernel = self.model.decoder.get_layer("x_hat").kernel
            kernel.assign(np.full(kernel.shape, np.inf, dtype="float32"))

    models = tmp_path / "m"
    stale = models / "checkpoints" / PREFIX / "epoch_00002"
    stale.mkdir(parents=True)
    (stale / "state.json").write_text("{}")  # an older run's checkpoint: not this run's last good state
    with monkeypatch.context() as m:
        real = callbacks.run_callbacks
        m.setattr(callbacks, "run_callbacks", lambda *a, **k: [*real(*a, **k), PoisonAtOnce()])
        assert run_script("mnist_train.py", *_args(mnist_dir, models)) == 2
    err = capsys.readouterr()
    assert "note: starting afresh; the checkpoint" in err.out
    assert err.err.strip().splitlines()[-1] == (
        "error: the loss became NaN/Inf in epoch 1 (batches 0-1); no checkpoint was written yet; lower "
        "--learning-rate or check the data")


def test_first_signal_asks_to_stop_second_ctrl_c_stops_at_once(capsys):
    class Model:
        stop_training = False

    model, before = Model(), signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with training.stop_on_signals(model) as state:
            signal.raise_signal(signal.SIGTERM)
            assert state["signal"] == signal.SIGTERM and model.stop_training
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before  # the handlers are put back
    assert "SIGTERM received: stopping after this batch and saving a checkpoint" in capsys.readouterr().err
