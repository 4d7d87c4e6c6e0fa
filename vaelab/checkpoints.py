"""Checkpoints, resume, interrupts and bit-for-bit repeatable training.

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

The fast path (:func:`compile_options`, on for the dense MNIST VAE under TensorFlow) compiles the train
step with XLA and runs several steps per call; it keeps resume exact by running a number of steps per
call that divides the steps of an epoch, so an epoch trains on exactly its own batches.

SIGINT (Ctrl-C) and SIGTERM during training finish the current batch (the current call's batches on the
fast path), abandon the rest of that epoch
(keeping a partial epoch would make resume inexact), write the checkpoint of the last completed epoch,
print the command that resumes, and exit with 130 / 143. A second Ctrl-C stops at once.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import random
import re
import shlex
import shutil
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaelab import artifacts
from vaelab.errors import UserError

FORMAT = 1
STATE = "state.json"
WEIGHTS = "weights.npz"
OPTIMIZER = "optimizer.npz"
_EPOCH_DIR = re.compile(r"^epoch_(\d{5,})$")
# Params that may change on --resume: a lower learning rate is the cure for a NaN loss.
RESUMABLE_CHANGES = ("learning_rate",)


class Interrupted(UserError):
    """Training stopped by SIGINT/SIGTERM; the exit status is 128 + the signal number (130, 143)."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + int(signum)


# --- determinism ----------------------------------------------------------------------------------


def make_deterministic(seed: int, ops: bool = False) -> None:
    """Seed Python, numpy and Keras; with ``ops``, also make TensorFlow use deterministic kernels.

    ``ops`` is what an explicit ``--seed`` asks for: ``enable_op_determinism`` guarantees bit-for-bit
    repeatable runs at some cost in speed (docs/robustness.md has the measurement). Without it, the default
    kernels run; on the CPUs we measured they repeated bit for bit too, but TensorFlow does not promise
    that. Set per run (not just switched on) so that runs in one process do not inherit the previous run's
    choice. Call it before ``compile``.
    """
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        from tensorflow.python.framework import config as tf_config

        if ops:
            tf.config.experimental.enable_op_determinism()
        else:
            tf_config.disable_op_determinism()


# --- shuffling that does not depend on history ---------------------------------------------------


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the ``n`` training examples in ``epoch``: a pure function of (seed, epoch)."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each batch of an epoch; a short batch (``n % batch_size``) comes first.

    First rather than last so that the two batches Keras samples to infer the input signature differ in
    size whenever a short batch exists, which keeps the batch dimension dynamic.
    """
    short = n % batch_size
    bounds = [(0, short)] if short else []
    bounds += [(s, s + batch_size) for s in range(short, n, batch_size)]
    return bounds


def make_epoch_batches(x: np.ndarray, batch_size: int, seed: int, initial_epoch: int = 0, transform=None):
    """A ``keras.utils.PyDataset`` of ``(x_batch,)`` shuffled per epoch by :func:`epoch_permutation`.

    It is endless (``num_batches`` is None; fit gets ``steps_per_epoch``) so that Keras keeps a single
    iterator: batch ``g`` is batch ``g % steps`` of epoch ``initial_epoch + g // steps``, a pure function,
    however far tf.data prefetches.
    """
    import keras

    class EpochBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)
            self.x = x
            self.bounds = batch_bounds(len(x), batch_size)
            self.steps = len(self.bounds)
            self._lock = threading.Lock()
            self._perm_epoch, self._perm = None, None

        @property
        def num_batches(self):
            return None

        def permutation(self, epoch: int) -> np.ndarray:
            with self._lock:
                if self._perm_epoch != epoch:
                    self._perm, self._perm_epoch = epoch_permutation(seed, epoch, len(self.x)), epoch
                return self._perm

        def __getitem__(self, g):
            epoch, j = divmod(int(g), self.steps)
            start, stop = self.bounds[j]
            batch = self.x[self.permutation(initial_epoch + epoch)[start:stop]]
            return (transform(batch) if transform is not None else batch,)

    return EpochBatches()


# --- the fast path: XLA and several steps per execution --------------------------------------------

# The most training steps one call of the compiled train function runs on the fast path. The measured
# gain comes from paying Keras' per-call overhead (callbacks, dispatch) once per call; 47 of the default
# MNIST epoch's 235 steps measured a little faster than 5, and 64 keeps a Ctrl-C responsive.
FAST_MAX_STEPS = 64


def steps_per_execution(steps: int, most: int | None = None) -> int:
    """The largest divisor of ``steps`` (an epoch's batches) that is at most ``most`` (FAST_MAX_STEPS).

    It must divide: Keras runs ``ceil(steps / S)`` calls of ``S`` steps per epoch, and the endless
    :func:`make_epoch_batches` always has data, so with ``steps % S != 0`` the last call of an epoch would
    train on batches of the next epoch (more steps than the epoch has, and another order after a resume).
    """
    steps, most = int(steps), max(1, int(FAST_MAX_STEPS if most is None else most))
    return max(d for d in range(1, min(steps, most) + 1) if steps % d == 0)


def compile_options(fast: bool, steps: int) -> dict:
    """``compile`` keyword arguments: the fast path's, or none (Keras' defaults) when ``fast`` is off.

    TensorFlow: ``jit_compile=True`` (XLA; Keras' ``"auto"`` leaves it off on CPUs) unless deterministic
    ops are on (an explicit ``--seed``: Keras would refuse XLA with a warning), and
    :func:`steps_per_execution`. JAX (always XLA): :func:`steps_per_execution` only. Keras runs those steps
    as a Python loop over its jitted step, so the gain is that the callbacks run once per call: per step,
    their reading of the loss (the NaN guard, the progress bar) waited for the device and serialized
    dispatch and compute (1.55x for the MNIST command in benchmarks/versus.py). PyTorch's ``jit_compile``
    would mean ``torch.compile``, which we did not measure as a gain: it keeps the defaults.
    """
    import keras

    if not fast or keras.backend.backend() not in ("tensorflow", "jax"):
        return {}
    if keras.backend.backend() == "jax":  # callbacks (and their syncs of the loss) once per S steps
        return {"steps_per_execution": steps_per_execution(steps)}
    from tensorflow.python.framework.config import is_op_determinism_enabled

    opts = {"steps_per_execution": steps_per_execution(steps)}
    if not is_op_determinism_enabled():
        opts["jit_compile"] = True
    return opts


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
        found = [(int(m.group(1)), p) for p in self.root.iterdir()
                 if (m := _EPOCH_DIR.match(p.name)) and (p / STATE).is_file()]
        return [p for _, p in sorted(found)]

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


# --- signals --------------------------------------------------------------------------------------


@contextlib.contextmanager
def stop_on_signals(model):
    """While training: the first SIGINT/SIGTERM asks ``model`` to stop after the current batch;
    a second SIGINT raises KeyboardInterrupt at once. Yields a dict whose ``"signal"`` is the number."""
    state = {"signal": None}
    if threading.current_thread() is not threading.main_thread():  # handlers only work in the main thread
        yield state
        return

    def handler(signum, frame):
        if state["signal"] is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        state["signal"] = signum
        model.stop_training = True
        print(f"\n{signal.Signals(signum).name} received: stopping after this batch and saving a checkpoint "
              "(Ctrl-C again stops at once)", file=sys.stderr, flush=True)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield state
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# --- the resumable fit ----------------------------------------------------------------------------


def _checkpoint_callback(store: CheckpointStore, params, every: int, history: dict, start: int, steps: int,
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
            finite = all(math.isfinite(float(v)) for v in logs.values())
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


def _rewrite_csv_log(callbacks, history: dict, start: int) -> None:
    """On resume, the CSV log restarts from the checkpoint's epochs and is appended to."""
    for cb in callbacks:
        if type(cb).__name__ == "CSVLogger":
            keys = sorted(history)
            rows = [{"epoch": e, **{k: history[k][e] for k in keys}} for e in range(start)]
            buf = _csv_text(["epoch", *keys], rows)
            artifacts.write_bytes(cb.filename, buf.encode())
            cb.append = True


def _csv_text(fields, rows) -> str:
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def fit_resumable(vae, x_train, x_val, params, files: artifacts.ModelFiles, *, resume: bool = False,
                  every: int = 1, script: str = "train.py", argv=(), deterministic: bool = False,
                  verbose="auto", exact_order: bool = True, extra_callbacks=(),
                  transform=None, fast: bool = False) -> dict[str, list[float]]:
    """Compile and fit ``vae`` with checkpoints, exact resume, signal handling and the NaN guard.

    Returns the history of all epochs (those before a resume included). Raises :class:`Interrupted` on
    SIGINT/SIGTERM and :class:`UserError` on a NaN loss, both after saving the last good checkpoint.
    ``script`` and ``argv`` are the command line that made this run, quoted in the messages;
    ``deterministic`` turns on TensorFlow's deterministic ops (see :func:`make_deterministic`).
    ``exact_order=False`` lets Keras shuffle (fit's ``shuffle=True``) instead of the seeded per-epoch
    batches: used under ``tf.distribute``, whose input pipeline does not take an endless PyDataset; a resume
    then restores weights, optimizer and RNG state but not the shuffling order. ``extra_callbacks`` are a
    dataset's own (learning-rate schedule, early stopping, best checkpoint). ``transform`` maps each
    training batch to the model's input (uint8 images -> float32), so a dataset stays uint8 in memory;
    ``x_val`` is then a batch source such as :func:`vaelab.data.image_batches`. ``fast`` turns on the fast
    path (:func:`compile_options`; with ``exact_order`` only, whose epochs it keeps exact).
    """
    import time

    from vaelab import training

    make_deterministic(params.seed, ops=deterministic)
    steps = len(batch_bounds(len(x_train), params.batch_size))
    vae.compile(optimizer=training.make_optimizer(params.optimizer, params.learning_rate),
                **compile_options(fast and exact_order, steps))
    vae.optimizer.build(vae.trainable_variables)
    store = CheckpointStore(files)
    start, history = 0, {}
    if resume:
        start, history = load_for_resume(vae, params, store)
    elif store.latest() is not None:
        print(f"note: starting afresh; the checkpoint {store.latest()} will be replaced "
              "(use --resume to continue it instead)")
    if exact_order:
        batches = make_epoch_batches(x_train, params.batch_size, params.seed, start, transform)
        train_args = dict(x=batches, steps_per_epoch=batches.steps, shuffle=False)
    else:
        train_args = dict(x=x_train, batch_size=params.batch_size, shuffle=True)
    cbs = training.callbacks_for(files)
    if start:
        _rewrite_csv_log(cbs, history, start)
    nan_guard = next(c for c in cbs if type(c).__name__ == "StopOnNaN")
    started = time.perf_counter()
    with stop_on_signals(vae) as stop:
        ckpt = _checkpoint_callback(store, params, every, history, start, steps, stop, nan_guard)
        if start < params.epochs:
            if isinstance(x_val, np.ndarray):
                validation = dict(validation_data=(x_val,), validation_batch_size=params.batch_size)
            else:
                validation = dict(validation_data=x_val)  # a batch source, or None
            try:
                vae.fit(**train_args, epochs=params.epochs, initial_epoch=start,
                        callbacks=[*cbs, *extra_callbacks, ckpt], verbose=verbose, **validation)
            finally:
                if sys.exc_info()[0] is None:
                    ckpt.wait()
                elif ckpt._writer is not None:  # an error is on its way: let the write finish, keep that error
                    ckpt._writer.join()
    seconds = time.perf_counter() - started
    done = len(next(iter(ckpt.history.values()), []))

    if nan_guard.bad_batch is not None:
        latest = ckpt.save()
        where = (f"the last good checkpoint (epoch {done}) is {latest}; resume from it with a lower learning "
                 f"rate: {resume_command(script, argv, params.learning_rate / 10)}") if latest else \
            "no checkpoint was written yet; lower --learning-rate or check the data"
        raise UserError(f"the loss became NaN/Inf in epoch {done + 1} ({nan_guard.where()}); {where}")
    if stop["signal"] is not None and done < params.epochs:
        latest = ckpt.save()
        name = signal.Signals(stop["signal"]).name
        if latest is None:
            raise Interrupted(f"interrupted by {name} in epoch {done + 1} before the first checkpoint; nothing "
                              "was saved", stop["signal"])
        raise Interrupted(f"interrupted by {name} after epoch {done} of {params.epochs}; checkpoint saved in "
                          f"{latest}; resume with: {resume_command(script, argv)}", stop["signal"])
    ran = done - start
    if ran:
        print(f"trained {ran} epochs in {seconds:.1f} s ({seconds / ran:.2f} s/epoch, "
              f"{len(x_train) * ran / seconds:.0f} samples/s)")
    return ckpt.history


def save_final(vae, history, params, files: artifacts.ModelFiles, script: str, argv) -> list[Path]:
    """``training.save_trained``; if that fails (disk full), say that the last checkpoint holds the model."""
    from vaelab import training

    try:
        return training.save_trained(vae, history, params, files)
    except UserError as e:
        latest = CheckpointStore(files).latest()
        if latest is None:
            raise
        raise UserError(f"{e}; the trained state is kept in {latest}: free some space, then "
                        f"{resume_command(script, argv)} saves it without training again") from None
