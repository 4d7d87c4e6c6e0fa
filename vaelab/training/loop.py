"""The training loop: compile, input pipeline, callbacks, fit, and the exits on a NaN loss or a signal.

:func:`fit` is the one loop every dataset and every model uses. What it guarantees:

- **exact resume**: the training set is shuffled by :func:`vaelab.data.batches.make_epoch_batches` from
  ``(seed, epoch)``, the sampling noise comes from SeedGenerators whose state is checkpointed
  (:mod:`vaelab.training.checkpoints`), and with an explicit ``--seed`` TensorFlow runs deterministic kernels, so a
  resumed run ends with the same weights and history, bit for bit, as an uninterrupted one;
- **the fast path** (:func:`compile_options`): on TensorFlow the dense MNIST VAE's step is compiled with XLA and
  several steps run per call, a number that divides the epoch's steps so an epoch trains on exactly its own
  batches;
- **interrupts**: SIGINT (Ctrl-C) and SIGTERM finish the current call's batches, abandon the rest of that epoch
  (a partial epoch would make resume inexact), keep the checkpoint of the last complete epoch, print the command
  that resumes and exit with 130 / 143; a second Ctrl-C stops at once;
- **a NaN/Inf loss** stops training and keeps the last good checkpoint, with the command that resumes it at a
  lower learning rate.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time

import numpy as np

from vaelab.core import artifacts
from vaelab.data import batches
from vaelab.training import callbacks
from vaelab.training import checkpoints
from vaelab.core.errors import UserError


class Interrupted(UserError):
    """Training stopped by SIGINT/SIGTERM; the exit status is 128 + the signal number (130, 143)."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + int(signum)


# --- determinism and the optimizer ----------------------------------------------------------------


def make_deterministic(seed: int, ops: bool = False) -> None:
    """Seed Python, numpy and Keras; with ``ops``, also make TensorFlow use deterministic kernels.

    ``ops`` is what an explicit ``--seed`` asks for: ``enable_op_determinism`` guarantees bit-for-bit
    repeatable runs at some cost in speed. Without it, the default kernels run; on the CPUs we measured they
    repeated bit for bit too, but TensorFlow does not promise that. Set per run (not just switched on) so that
    runs in one process do not inherit the previous run's choice. Call it before ``compile``.
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


def make_optimizer(name: str, learning_rate: float, grad_skip: float = 0.0, ema: float = 0.0):
    """The Keras optimizer ``name``; with ``grad_skip`` one that skips the updates whose gradient norm exceeds
    ``grad_skip`` times the usual (:mod:`vaelab.training.skipping`); with ``ema`` it keeps Keras' exponential
    moving average of the weights (``use_ema``, decay ``ema``), which :func:`fit` validates with and leaves in
    the model at the end."""
    import keras

    classes = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD,
               "adamw": keras.optimizers.AdamW, "nadam": keras.optimizers.Nadam}
    cls = classes[name]
    if grad_skip:
        from vaelab.training.skipping import skipping

        cls = skipping(cls, grad_skip)
    return cls(learning_rate=learning_rate, **({"use_ema": True, "ema_momentum": float(ema)} if ema else {}))


# --- the fast path: XLA and several steps per execution --------------------------------------------

# The most training steps one call of the compiled train function runs on the fast path. The measured
# gain comes from paying Keras' per-call overhead (callbacks, dispatch) once per call; 47 of the default
# MNIST epoch's 235 steps measured a little faster than 5, and 64 keeps a Ctrl-C responsive.
FAST_MAX_STEPS = 64


def steps_per_execution(steps: int, most: int | None = None) -> int:
    """The largest divisor of ``steps`` (an epoch's batches) that is at most ``most`` (FAST_MAX_STEPS).

    It must divide: Keras runs ``ceil(steps / S)`` calls of ``S`` steps per epoch, and the endless
    :func:`~vaelab.data.batches.make_epoch_batches` always has data, so with ``steps % S != 0`` the last call of an
    epoch would train on batches of the next epoch (more steps than the epoch has, and another order after a
    resume).
    """
    steps, most = int(steps), max(1, int(FAST_MAX_STEPS if most is None else most))
    return max(d for d in range(1, min(steps, most) + 1) if steps % d == 0)


def compile_options(fast: bool, steps: int) -> dict:
    """``compile`` keyword arguments: the fast path's, or none (Keras' defaults) when ``fast`` is off.

    Only TensorFlow changes: ``jit_compile=True`` (XLA; Keras' ``"auto"`` leaves it off on CPUs) unless
    deterministic ops are on (an explicit ``--seed``: Keras would refuse XLA with a warning), and
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


# --- the loop -------------------------------------------------------------------------------------


def fit(vae, x_train, x_val, params, files: artifacts.ModelFiles, *, resume: bool = False,
        every: int = 1, script: str = "train.py", argv=(), deterministic: bool = False,
        verbose="auto", exact_order: bool = True, transform=None, fast: bool = False, tensorboard: bool = True,
        pictures=None) -> dict[str, list[float]]:
    """Compile and fit ``vae`` with checkpoints, exact resume, the params' schedules, signal handling and the
    NaN guard.

    Returns the history of all epochs (those before a resume included). Raises :class:`Interrupted` on
    SIGINT/SIGTERM and :class:`UserError` on a NaN loss, both after saving the last good checkpoint.
    ``script`` and ``argv`` are the command line that made this run, quoted in the messages;
    ``deterministic`` turns on TensorFlow's deterministic ops (see :func:`make_deterministic`).
    ``exact_order=False`` lets Keras shuffle (fit's ``shuffle=True``) instead of the seeded per-epoch
    batches: used under ``tf.distribute``, whose input pipeline does not take an endless PyDataset; a resume
    then restores weights, optimizer and RNG state but not the shuffling order. ``transform`` maps each
    training batch to the model's input (uint8 images -> float32), so a dataset stays uint8 in memory;
    ``x_val`` is then a batch source such as :func:`vaelab.data.batches.image_batches`. ``fast`` turns on the fast
    path (:func:`compile_options`; with ``exact_order`` only, whose epochs it keeps exact). ``tensorboard``
    writes the TensorBoard log (:mod:`vaelab.training.tensorboard`), with the images of ``pictures``.
    """
    make_deterministic(params.seed, ops=deterministic)
    steps = len(batches.batch_bounds(len(x_train), params.batch_size))
    vae.compile(optimizer=make_optimizer(params.optimizer, params.learning_rate, params.grad_skip, params.ema),
                **compile_options(fast and exact_order, steps))
    vae.optimizer.build(vae.trainable_variables)
    store = checkpoints.CheckpointStore(files)
    start, history = 0, {}
    if resume:
        start, history = checkpoints.load_for_resume(vae, params, store)
    elif store.latest() is not None:
        print(f"note: starting afresh; the checkpoint {store.latest()} will be replaced "
              "(use --resume to continue it instead)")
    if exact_order:
        source = batches.make_epoch_batches(x_train, params.batch_size, params.seed, start, transform)
        train_args = dict(x=source, steps_per_epoch=source.steps, shuffle=False)
    else:
        train_args = dict(x=x_train, batch_size=params.batch_size, shuffle=True)
    cbs = callbacks.run_callbacks(files, tensorboard, params=params, steps=steps, pictures=pictures)
    if start:
        checkpoints.rewrite_csv_log(cbs, history, start)
    nan_guard = next(c for c in cbs if hasattr(c, "bad_batch"))
    started = time.perf_counter()
    with stop_on_signals(vae) as stop:
        ckpt = checkpoints.checkpoint_callback(store, params, every, history, start, steps, stop, nan_guard)
        if start < params.epochs:
            if isinstance(x_val, np.ndarray):
                validation = dict(validation_data=(x_val,), validation_batch_size=params.batch_size)
            else:
                validation = dict(validation_data=x_val)  # a batch source, or None
            try:
                vae.fit(**train_args, epochs=params.epochs, initial_epoch=start, verbose=verbose,
                        callbacks=[*callbacks.schedule_callbacks(params, files), *cbs, ckpt], **validation)
            finally:  # the checkpoint written in the background: wait for it; an error already raised wins
                if sys.exc_info()[0] is None:
                    ckpt.wait()
                elif ckpt._writer is not None:
                    ckpt._writer.join()
    seconds = time.perf_counter() - started
    done = len(next(iter(ckpt.history.values()), []))

    if nan_guard.bad_batch is not None:
        latest = ckpt.save()
        where = (f"the last good checkpoint (epoch {done}) is {latest}; resume from it with a lower learning "
                 f"rate: {checkpoints.resume_command(script, argv, params.learning_rate / 10)}") if latest else \
            "no checkpoint was written yet; lower --learning-rate or check the data"
        raise UserError(f"the loss became NaN/Inf in epoch {done + 1} ({nan_guard.where()}); {where}")
    if stop["signal"] is not None and done < params.epochs:
        latest = ckpt.save()
        name = signal.Signals(stop["signal"]).name
        if latest is None:
            raise Interrupted(f"interrupted by {name} in epoch {done + 1} before the first checkpoint; nothing "
                              "was saved", stop["signal"])
        raise Interrupted(f"interrupted by {name} after epoch {done} of {params.epochs}; checkpoint saved in "
                          f"{latest}; resume with: {checkpoints.resume_command(script, argv)}", stop["signal"])
    ran = done - start
    if ran:
        print(f"trained {ran} epochs in {seconds:.1f} s ({seconds / ran:.2f} s/epoch, "
              f"{len(x_train) * ran / seconds:.0f} samples/s)")
    return ckpt.history


def evaluate(vae, x, batch_size: int) -> dict[str, float]:
    """Loss, reconstruction and KL (means per example) on ``x`` (an array or a batch source)."""
    if isinstance(x, np.ndarray):
        result = vae.evaluate(x, batch_size=batch_size, verbose=0, return_dict=True)
    else:
        result = vae.evaluate(x, verbose=0, return_dict=True)
    return {k: float(v) for k, v in result.items()}


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports KiB, macOS bytes)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6
