"""Checkpoints: the store, the callback that writes them, and resume.

A training run writes a checkpoint every ``--checkpoint-every`` epochs (default 1) into
``<models-dir>/checkpoints/<prefix>/epoch_NNNNN/``:

* ``weights.npz``   every model variable by path, the Sampling layer's SeedGenerator state included;
* ``optimizer.npz`` every optimizer variable (step count, moments, learning rate);
* ``state.json``    epochs done, the history so far, the params, numpy/Python/Keras RNG states.

The three files are written into a temporary directory that is renamed into place, so a checkpoint is
either complete or absent; only the newest one is kept. ``--resume`` rebuilds the model, restores that
checkpoint and continues with ``fit(initial_epoch=...)``.

Resume is exact (same weights and history as an uninterrupted run, tested) because nothing depends on
hidden RNG state: the training set is shuffled by :class:`EpochBatches` with a permutation derived from
``(seed, epoch)`` instead of by ``fit(shuffle=True)`` (whose order depends on how many epochs the
same ``fit`` call has run), the sampling noise comes from a SeedGenerator whose state is checkpointed,
and (with an explicit ``--seed``) TensorFlow runs with deterministic ops.

The training loop (:func:`vaelab.training.loop.fit`) adds :func:`checkpoint_callback` to its callbacks, calls
:func:`load_for_resume` for ``--resume``, and on SIGINT/SIGTERM or a NaN loss keeps the last complete epoch's
checkpoint.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import re
import shlex
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaelab.core import artifacts
from vaelab.core.errors import UserError

FORMAT = 1
STATE = "state.json"
WEIGHTS = "weights.npz"
OPTIMIZER = "optimizer.npz"
_EPOCH_DIR = re.compile(r"^epoch_(\d{5,})(\.old)?$")  # .old: the one a rewrite of its epoch replaces
# Params that may change on --resume: a lower learning rate is the cure for a NaN loss; how often TensorBoard
# gets images does not change the training.
RESUMABLE_CHANGES = ("learning_rate", "tensorboard_images_every")


# --- capturing and restoring the training state ---------------------------------------------------


@dataclass
class Snapshot:
    """The state after ``epoch`` completed epochs, as numpy copies."""

    epoch: int
    history: dict[str, list[float]]
    model: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]
    rng: dict


def _rng_state() -> dict:
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {"numpy": [np_state[0], np_state[1].tolist(), *map(_plain, np_state[2:])],
             "python": [py_state[0], list(py_state[1]), py_state[2]]}
    try:  # Keras keeps its global SeedGenerator (used by unseeded keras.random calls) in global state
        from keras.src.backend.common import global_state

        gen = global_state.get_global_attribute("global_seed_generator")
        if gen is not None:
            state["keras_global_seed_generator"] = np.asarray(gen.state.value).tolist()
    except ImportError:
        pass
    return state


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _set_rng_state(state: dict) -> None:
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "keras_global_seed_generator" in state:
        from keras.src.backend.common import global_state

        gen = global_state.get_global_attribute("global_seed_generator")
        if gen is None:
            import keras

            gen = keras.random.SeedGenerator()  # registers itself as the global one when none exists
            global_state.set_global_attribute("global_seed_generator", gen)
        gen.state.assign(np.asarray(state["keras_global_seed_generator"], dtype=gen.state.dtype))


def _variables(variables) -> dict[str, np.ndarray]:
    out = {}
    for v in variables:
        key = v.path
        while key in out:  # paths are unique in practice; never overwrite silently
            key += "'"
        out[key] = np.array(v.numpy(), copy=True)
    return out


def snapshot(model, epoch: int, history: dict[str, list[float]]) -> Snapshot:
    """Copy the model's variables (weights and SeedGenerator states), the optimizer's and the RNGs'."""
    return Snapshot(epoch, {k: list(v) for k, v in history.items()}, _variables(model.variables),
                    _variables(model.optimizer.variables), _rng_state())


def _assign(variables, saved: dict[str, np.ndarray], what: str, source: Path) -> None:
    variables = list(variables)
    keys = list(saved)
    if len(keys) != len(variables):
        raise UserError(f"{source}: the checkpoint holds {len(keys)} {what} variables, this model has "
                        f"{len(variables)}; it was made by another architecture: run without --resume")
    for v, key in zip(variables, keys):
        value = saved[key]
        if _generic(key.rstrip("'")) != _generic(v.path) or tuple(value.shape) != tuple(v.shape):
            raise UserError(f"{source}: {what} variable {key} {tuple(value.shape)} does not fit {v.path} "
                            f"{tuple(v.shape)}; it was made by another architecture: run without --resume")
        v.assign(value.astype(v.dtype) if value.dtype != np.dtype(v.dtype) else value)


def _generic(path: str) -> str:
    """A variable path without Keras' uniquifying suffixes (``seed_generator_3/state`` -> ``seed_generator/state``),
    which depend on how many objects the process made before."""
    return re.sub(r"_\d+(?=/|$)", "", path)


def restore(model, snap: Snapshot, source: Path) -> None:
    """Put a snapshot back into a compiled model (its optimizer is built here if needed)."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    _assign(model.variables, snap.model, "model", source)
    _assign(model.optimizer.variables, snap.optimizer, "optimizer", source)
    _set_rng_state(snap.rng)


# --- the checkpoint directory ---------------------------------------------------------------------


class CheckpointStore:
    """``<models_dir>/checkpoints/<prefix>/epoch_NNNNN/`` directories, written whole or not at all."""

    def __init__(self, files: artifacts.ModelFiles):
        self.root = Path(files.models_dir) / "checkpoints" / files.prefix

    def path(self, epoch: int) -> Path:
        return self.root / f"epoch_{epoch:05d}"

    def complete(self) -> list[Path]:
        """Complete checkpoints, oldest first (a directory without state.json is not one)."""
        if not self.root.is_dir():
            return []
        found = [(int(m.group(1)), m.group(2) is None, p) for p in self.root.iterdir()
                 if (m := _EPOCH_DIR.match(p.name)) and (p / STATE).is_file()]
        return [p for _, _, p in sorted(found)]  # epoch_N.old only counts when a kill left no epoch_N

    def latest(self) -> Path | None:
        done = self.complete()
        return done[-1] if done else None

    def write(self, snap: Snapshot, params) -> Path:
        """Write ``snap`` atomically, then delete every other checkpoint of this model."""
        target = self.path(snap.epoch)
        tmp = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=self.root))
            _savez(tmp / WEIGHTS, snap.model)
            _savez(tmp / OPTIMIZER, snap.optimizer)
            state = {"format": FORMAT, "epoch": snap.epoch, "history": snap.history, "params": params.to_dict(),
                     "rng": snap.rng, "model_variables": list(snap.model), "optimizer_variables": list(snap.optimizer)}
            (tmp / STATE).write_text(json.dumps(state, default=artifacts._to_builtin) + "\n")
            for name in (WEIGHTS, OPTIMIZER, STATE):
                with open(tmp / name, "rb+") as fh:
                    os.fsync(fh.fileno())
            os.chmod(tmp, 0o777 & ~artifacts._UMASK)
            if target.exists():  # the same epoch again (a resume from an older checkpoint)
                old = target.with_name(target.name + ".old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
            os.replace(tmp, target)
            tmp = None
        except OSError as e:
            previous = self.latest()
            kept = f"the previous checkpoint {previous} is kept" if previous else "no earlier checkpoint exists"
            raise UserError(f"cannot write checkpoint {target}: {e.strerror or e}; {kept}") from None
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        for p in self.root.iterdir():  # older checkpoints, and temporaries of writes that were killed
            if p != target and (_EPOCH_DIR.match(p.name) or p.name.endswith(".old")
                                or (p.name.startswith(".epoch_") and p.name.endswith(".tmp"))):
                shutil.rmtree(p, ignore_errors=True)
        return target

    def read(self, path: Path) -> tuple[Snapshot, dict]:
        """A checkpoint's snapshot and the params dict it was made with."""
        try:
            state = json.loads((path / STATE).read_text())
            model = _loadz(path / WEIGHTS, state["model_variables"])
            optimizer = _loadz(path / OPTIMIZER, state["optimizer_variables"])
            snap = Snapshot(int(state["epoch"]), state["history"], model, optimizer, state["rng"])
            return snap, dict(state["params"])
        except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
            raise UserError(f"checkpoint {path} is truncated or corrupt ({artifacts._first_line(e)}); delete it "
                            "and run without --resume") from None


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **{f"v{i:05d}": a for i, a in enumerate(arrays.values())})


def _loadz(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as f:
            return {name: f[f"v{i:05d}"] for i, name in enumerate(names)}
    except zipfile.BadZipFile as e:
        raise ValueError(f"{path.name}: {e}") from None


# --- commands to print ----------------------------------------------------------------------------


def resume_command(script: str, argv: list[str], learning_rate: float | None = None) -> str:
    """``python <script> <argv> --resume`` (and ``--learning-rate X`` when given)."""
    args, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--resume" or (learning_rate is not None and a.startswith("--learning-rate=")):
            i += 1
            continue
        if learning_rate is not None and a == "--learning-rate":
            i += 2
            continue
        args.append(a)
        i += 1
    extra = ["--learning-rate", f"{learning_rate:g}"] if learning_rate is not None else []
    return shlex.join(["python", script, *map(str, args), *extra, "--resume"])


# --- the callback and resume -----------------------------------------------------------------------


def checkpoint_callback(store: CheckpointStore, params, every: int, history: dict, start: int, steps: int,
                         stop_state, nan_guard):
    import keras

    class Checkpointer(keras.callbacks.Callback):
        """Keeps the history of completed epochs, a snapshot of the last one, and writes checkpoints.

        The snapshot is taken at the end of the epoch (copies, so nothing the next epoch does reaches it);
        writing and fsyncing it happens in a thread while the next epoch trains (:meth:`save` with
        ``wait=False``); every later save, and :meth:`wait`, waits for that write and raises its error.
        """

        def __init__(self):
            super().__init__()
            self.history = {k: list(v) for k, v in history.items()}
            self.last: Snapshot | None = None
            self.written: int | None = start or None  # the checkpoint a resume started from counts as ours
            self.batches = 0
            self._writer: threading.Thread | None = None
            self._error: BaseException | None = None

        def on_epoch_begin(self, epoch, logs=None):
            self.batches = 0

        def on_train_batch_end(self, batch, logs=None):
            # ``batch`` is the last step of the call: with several steps per execution, one call per S steps
            self.batches = max(self.batches, int(batch) + 1)
            if stop_state["signal"] is not None:  # fit() resets stop_training when it starts
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            # With grad_skip a non-finite training mean is a batch whose update was skipped (the NaN guard has
            # checked that the weights stayed finite): the epoch counts; its validation numbers must be finite.
            skipping = bool(getattr(params, "grad_skip", 0))
            finite = all(math.isfinite(float(v)) for k, v in logs.items() if not skipping or k.startswith("val_"))
            if self.batches < steps or nan_guard.bad_batch is not None or not finite:
                return  # an abandoned or diverged epoch is not a state to resume from
            for k, v in logs.items():
                self.history.setdefault(k, []).append(float(v))
            self.last = snapshot(self.model, epoch + 1, self.history)
            if (epoch + 1) % every == 0 or epoch + 1 == params.epochs:
                self.save(wait=False)

        def save(self, wait: bool = True) -> Path | None:
            """Write the last snapshot unless it is on disk already (in a thread when not ``wait``); the path
            of this run's newest checkpoint (None when it has none: an older run's checkpoint is not this
            run's last good state)."""
            self.wait()
            if self.last is not None and self.written != self.last.epoch:
                if wait:
                    store.write(self.last, params)
                else:
                    self._writer = threading.Thread(target=self._write, args=(self.last,), name="checkpoint-writer")
                    self._writer.start()
                self.written = self.last.epoch
            return store.path(self.written) if self.written is not None else None

        def _write(self, snap: Snapshot) -> None:
            try:
                store.write(snap, params)
            except BaseException as e:  # raised in the training thread by wait()
                self._error = e

        def wait(self) -> None:
            """Wait for the checkpoint being written, if any; raise its error."""
            if self._writer is not None:
                self._writer.join()
                self._writer = None
            if self._error is not None:
                error, self._error = self._error, None
                raise error

    return Checkpointer()


def load_for_resume(vae, params, store: CheckpointStore) -> tuple[int, dict]:
    """Restore the newest checkpoint into the compiled ``vae``; returns (epochs done, history so far)."""
    path = store.latest()
    if path is None:
        raise UserError(f"no checkpoint of {store.root.name} in {store.root.parent}; run without --resume "
                        "to start training")
    snap, saved = store.read(path)
    now = params.to_dict()
    differ = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k) and k not in RESUMABLE_CHANGES)
    if differ:
        shown = ", ".join(f"{k} {saved.get(k)!r} (now {now.get(k)!r})" for k in differ)
        raise UserError(f"checkpoint {path} was made with other params: {shown}; pass the same values "
                        "to resume, or run without --resume to start again")
    if snap.epoch > params.epochs:
        raise UserError(f"checkpoint {path} is at epoch {snap.epoch}, beyond --epochs {params.epochs}")
    restore(vae, snap, path)
    vae.optimizer.learning_rate.assign(params.learning_rate)  # the one change allowed on resume
    print(f"resuming from {path} (epoch {snap.epoch} of {params.epochs})")
    return snap.epoch, snap.history


def rewrite_csv_log(callbacks, history: dict, start: int) -> None:
    """On resume, the CSV log restarts from the checkpoint's epochs and is appended to, its later rows in the
    header's columns (a key the run's logs lack is written ``NA`` rather than shifting the others)."""
    for cb in callbacks:
        if type(cb).__name__ == "CSVLogger":
            keys = sorted(history)
            rows = [{"epoch": e, **{k: history[k][e] for k in keys}} for e in range(start)]
            buf = _csv_text(["epoch", *keys], rows)
            artifacts.write_bytes(cb.filename, buf.encode())
            cb.append = True
            cb.keys = list(keys)


def _csv_text(fields, rows) -> str:
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
