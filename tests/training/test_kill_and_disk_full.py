"""Real training processes killed with SIGKILL at several moments, and a real full disk (a small tmpfs):
the model files saved before stay loadable (never a mix of two runs), and ``--resume`` continues from the
last complete checkpoint to the same weights as an uninterrupted run."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, digit_like_images

from vaelab.core import artifacts
from vaelab.core.artifacts import ModelFiles
from vaelab.training.checkpoints import CheckpointStore

pytestmark = pytest.mark.slow

PREFIX = "ld_2_id_16_e_6"
MODEL_FILES = ("vae.h5", "encoder.h5", "decoder.h5")


def _data(tmp_path) -> Path:
    d = tmp_path / "data"
    d.mkdir(exist_ok=True)
    x, y = digit_like_images(64, seed=1)
    xt, yt = digit_like_images(32, seed=2)
    np.savez_compressed(d / "mnist.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    return d


def _cmd(data, models, *extra):
    return [sys.executable, str(ROOT / "mnist_train.py"), "--data-dir", str(data), "--models-dir", str(models),
            "--results-dir", str(models.parent / "results"), "--epochs", "6", "--intermediate-dim", "16",
            "--batch-size", "32", "--limit", "64", *extra]


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _run(cmd, cwd):
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=cwd, timeout=300, check=False)


def _weights(models) -> dict[str, list]:
    """Every model file's weight arrays (the file must read), and the history's epoch count."""
    files = ModelFiles(models, PREFIX)
    out = {name: artifacts.h5_layer_weights(files._p(name)) for name in MODEL_FILES}
    for name in MODEL_FILES:  # and Keras loads each file whole
        artifacts.load_model(files._p(name))
    out["epochs"] = len(json.loads(files.history_json.read_text())["loss"])
    assert len(artifacts.load_history(files.history)["loss"]) == out["epochs"]
    return out


def _same(a, b) -> bool:
    return len(a) == len(b) and all(len(x) == len(y) and all(np.array_equal(u, v) for u, v in zip(x, y))
                                    for x, y in zip(a, b))


def _which(found, runs: dict) -> str:
    """The run the model files all come from; fails on a mix."""
    origin = {name: [run for run, w in runs.items() if _same(found[name], w[name])] for name in MODEL_FILES}
    names = {tuple(v) for v in origin.values()}
    assert len(names) == 1 and len(next(iter(names))) == 1, f"a mix of runs: {origin}"
    return next(iter(names))[0]


def _no_temporaries(models):
    left = [str(p) for p in Path(models).rglob("*") if ".tmp" in p.name or p.name.endswith((".old", ".lock"))]
    assert not left, left


def _kill_when(cmd, cwd, ready, delay=0.0, timeout=240):
    """Start ``cmd``, SIGKILL it ``delay`` s after ``ready()`` first holds; returns the killed process."""
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env(),
                             cwd=cwd)
    end = time.monotonic() + timeout
    while not ready():
        assert child.poll() is None, f"the run ended before the moment to kill it: {child.stderr.read()}"
        assert time.monotonic() < end
        time.sleep(0.001)
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    child.stderr.close()
    assert child.returncode == -signal.SIGKILL, "it finished before the kill"
    return child


def _latest(models):
    """The newest complete checkpoint: (epoch, learning rate it was made with)."""
    path = CheckpointStore(ModelFiles(models, PREFIX)).latest()
    state = json.loads((path / "state.json").read_text())
    return state["epoch"], state["params"]["learning_rate"]


def test_sigkill_at_any_moment_keeps_the_saved_model_and_resume_finishes_it(tmp_path):
    data = _data(tmp_path)
    models = tmp_path / "runs" / "models"
    ckpts = models / "checkpoints" / PREFIX
    # run A saves the model; run B (same name, another learning rate) is killed again and again
    assert _run(_cmd(data, models), tmp_path).returncode == 0
    runs = {"A": _weights(models)}
    other = tmp_path / "uninterrupted" / "models"
    assert _run(_cmd(data, other, "--learning-rate", "0.003"), tmp_path).returncode == 0
    runs["B"] = _weights(other)
    assert not _same(runs["A"]["vae.h5"], runs["B"]["vae.h5"])
    b = _cmd(data, models, "--learning-rate", "0.003")

    def temporary(folder):
        return lambda: folder.is_dir() and any(p.name.startswith(".") and ".tmp" in p.name for p in folder.iterdir())

    # 1. while B writes its first checkpoint: A's files and A's last checkpoint stay
    _kill_when(b, tmp_path, temporary(ckpts))
    assert _which(_weights(models), runs) == "A"
    assert CheckpointStore(ModelFiles(models, PREFIX)).latest() is not None
    # 2. while B writes its final model files: the files are all A's or all B's, each complete
    _kill_when(b, tmp_path, temporary(models))
    assert _which(_weights(models), runs) in ("A", "B")
    assert [p.name for p in models.glob(".*.tmp*")]  # the kill left a temporary (the next save deletes it)
    # 3. at a random moment of training after B's first checkpoint, then --resume: B's weights, bit for bit
    rng = random.Random()
    for _ in range(1):  # more rounds: more moments
        delay = rng.uniform(0.0, 0.3)
        shutil.rmtree(ckpts, ignore_errors=True)
        _kill_when(b, tmp_path, lambda: (ckpts / "epoch_00001" / "state.json").is_file(), delay=delay)
        epoch, lr = _latest(models)
        assert lr == 0.003 and 1 <= epoch <= 6, (delay, epoch)
        assert _which(_weights(models), runs) in ("A", "B")
        done = _run([*b, "--resume"], tmp_path)
        assert done.returncode == 0, done.stderr
        assert f"resuming from {ckpts / f'epoch_{epoch:05d}'} (epoch {epoch} of 6)" in done.stdout, delay
        found = _weights(models)
        assert _which(found, runs) == "B" and found["epochs"] == 6, delay
    _no_temporaries(models)


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (skipped where it cannot be mounted: not root, or no mount command)."""
    where = tmp_path / "disk"
    where.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(where)],
                                 capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        mounted = False
    if not mounted:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30, check=False)


def _fill(disk, leave: int) -> Path:
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    filler = disk / "filler"
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))
    return filler


def _one_error_line(out) -> str:
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_a_full_disk_while_checkpointing_or_saving_keeps_every_previous_file(tmp_path, small_disk):
    data = _data(tmp_path)
    models = small_disk / "models"
    cmd = _cmd(data, models)
    assert _run(cmd, tmp_path).returncode == 0
    files = ModelFiles(models, PREFIX)
    saved = {p: p.read_bytes() for p in [*files.required(), files.history_json, files.params_json]}
    ckpt = CheckpointStore(files).latest()
    before = _weights(models)

    filler = _fill(small_disk, leave=16 * 1024)
    # a new run of the same model: its first checkpoint does not fit
    line = _one_error_line(_run(cmd, tmp_path))
    assert line == (f"error: cannot write checkpoint {ckpt.parent / 'epoch_00001'}: No space left on device; "
                    f"the previous checkpoint {ckpt} is kept")
    assert {p: p.read_bytes() for p in saved} == saved and CheckpointStore(files).latest() == ckpt
    _no_temporaries(models)

    # --resume from the finished checkpoint only saves the model files again: they do not fit
    line = _one_error_line(_run([*cmd, "--resume"], tmp_path))
    assert line.startswith(f"error: cannot write {models}/{PREFIX}_") and ": No space left on device; " in line
    assert line.endswith(f"the trained state is kept in {ckpt}: free some space, then python mnist_train.py "
                         f"{' '.join(cmd[2:])} --resume saves it without training again")
    assert {p: p.read_bytes() for p in saved} == saved
    assert _same(_weights(models)["vae.h5"], before["vae.h5"])
    _no_temporaries(models)

    filler.unlink()  # space again: --resume saves without training
    out = _run([*cmd, "--resume"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"resuming from {ckpt} (epoch 6 of 6)" in out.stdout
    assert _same(_weights(models)["vae.h5"], before["vae.h5"])
    _no_temporaries(models)


def test_a_kill_while_an_epoch_is_rewritten_keeps_the_replaced_checkpoint(tmp_path):
    """Writing epoch N again renames the old epoch_N to epoch_N.old, then the new one into place: killed between
    the two renames, epoch_N.old is the last complete checkpoint (and loses to a complete epoch_N)."""
    store = CheckpointStore(ModelFiles(tmp_path, PREFIX))
    for name in ("epoch_00003.old", "epoch_00002"):
        (store.root / name).mkdir(parents=True)
        (store.root / name / "state.json").write_text("{}")
    (store.root / ".epoch_00003.abc.tmp").mkdir()  # the new one, half written
    assert store.latest() == store.root / "epoch_00003.old"
    (store.root / "epoch_00003").mkdir()
    (store.root / "epoch_00003" / "state.json").write_text("{}")
    assert store.complete() == [store.root / n for n in ("epoch_00002", "epoch_00003.old", "epoch_00003")]
