"""Keras callbacks of a training run: logs, the NaN guard, learning-rate schedules and early stopping.

:func:`run_callbacks` is what every run gets (the epoch timer, CSV log, the TensorBoard log of :mod:`vaelab.training.tensorboard` on
every backend, the NaN guard);
:func:`schedule_callbacks` what the params ask for (``lr_schedule``, ``patience``). Keras is imported inside
the functions.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from vaelab.core import artifacts


def make_nan_guard(skipping: bool = False):
    """A callback that stops at the first non-finite loss and remembers where.

    With ``skipping`` (``grad_skip``: the optimizer skips every update whose gradient is not finite, leaving
    the weights as they were) a non-finite batch loss is a skipped update, not a broken run, as in VDVAE: the
    guard then stops only when the weights themselves are no longer finite. Keras' epoch means of the
    training loss include that batch, so the epoch's logged training loss is non-finite; its validation loss,
    computed afresh, is not, and ``skipped_updates`` counts the batch.
    """
    import keras
    import numpy as np

    class StopOnNaN(keras.callbacks.Callback):
        """With several steps per execution Keras reports once per call: the NaN is then somewhere in the
        call's batches ``first_batch``..``bad_batch``."""

        bad_batch = None
        first_batch = None

        def on_train_batch_begin(self, batch, logs=None):
            self._begin = batch

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is None or math.isfinite(float(loss)):
                return
            if skipping and all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in self.model.weights):
                return
            self.bad_batch = batch
            self.first_batch = getattr(self, "_begin", batch)
            self.model.stop_training = True

        def where(self) -> str:
            """``batch 3``, or ``batches 0-1`` when the call that went bad ran several."""
            if self.first_batch is None or self.first_batch == self.bad_batch:
                return f"batch {self.bad_batch}"
            return f"batches {self.first_batch}-{self.bad_batch}"

    return StopOnNaN()


def run_callbacks(files: artifacts.ModelFiles, tensorboard: bool = True, params=None, steps: int | None = None,
                  pictures=None) -> list:
    """The epoch timer, CSV log, TensorBoard (with ``tensorboard``, on every backend) and the NaN guard; with
    ``params.ema`` the validation on the weights' average, with ``params.grad_skip`` the skipped-updates log.

    The timer comes first, so the CSV log, TensorBoard and the history all see ``epoch_seconds`` (what the
    history figure's validation-bound-against-wall-time panel is drawn from).

    The TensorBoard log goes to ``files.tensorboard_dir``; with ``params`` it knows the last epoch and
    ``params.tensorboard_images_every``, with ``steps`` (an epoch's batches) it skips epochs cut short, and
    ``pictures`` is its image hook (:func:`vaelab.training.tensorboard.make_tensorboard`).
    """
    import keras

    files.csv_log.parent.mkdir(parents=True, exist_ok=True)
    cbs = [make_epoch_timer()]
    if getattr(params, "ema", 0):  # validation sees the average; Keras' fit leaves it in the model at the end
        cbs.insert(0, make_ema_validation())
    if getattr(params, "grad_skip", 0):  # before the CSV log and TensorBoard, so they record it too
        from vaelab.training.skipping import make_skip_report

        cbs.append(make_skip_report())
    cbs.append(keras.callbacks.CSVLogger(str(files.csv_log)))
    if tensorboard:
        from vaelab.training.tensorboard import make_tensorboard

        cbs.append(make_tensorboard(files.tensorboard_dir, epochs=getattr(params, "epochs", None),
                                    images_every=getattr(params, "tensorboard_images_every", 0), steps=steps,
                                    pictures=pictures))
    return [*cbs, make_nan_guard(skipping=bool(getattr(params, "grad_skip", 0)))]


# --- learning-rate schedules ------------------------------------------------------------------------

COSINE_FLOOR = 0.01  # the cosine schedule ends at 1 % of the initial rate


def step_decay(epoch: int, lr0: float, every: int, factor: float) -> float:
    """Learning rate of (0-based) ``epoch``: ``lr0 * factor ** (epoch // every)``.

    The first drop comes after the first full block of ``every`` epochs, never at epoch 0 (the original
    schedule dropped at epoch 0 because ``0 % every == 0``).
    """
    if epoch < 0 or every < 1:
        raise ValueError(f"need epoch >= 0 and every >= 1, got epoch={epoch}, every={every}")
    return float(lr0 * factor ** (epoch // every))


def cosine_decay(epoch: int, lr0: float, epochs: int) -> float:
    """``lr0`` at epoch 0 falling along a half cosine to ``COSINE_FLOOR * lr0`` at the last epoch."""
    if epochs <= 1:
        return float(lr0)
    t = min(max(epoch, 0), epochs - 1) / (epochs - 1)
    return float(lr0 * (COSINE_FLOOR + (1.0 - COSINE_FLOOR) * 0.5 * (1.0 + math.cos(math.pi * t))))


def learning_rate_at(params, epoch: int) -> float:
    """The learning rate of (0-based) ``epoch`` under ``params.lr_schedule``."""
    if params.lr_schedule == "step":
        return step_decay(epoch, params.learning_rate, params.lr_drop_every, params.lr_drop_factor)
    if params.lr_schedule == "cosine":
        return cosine_decay(epoch, params.learning_rate, params.epochs)
    return float(params.learning_rate)


def make_best_checkpoint(path, monitor: str = "val_loss"):
    """A callback keeping the weights of the epoch with the lowest ``monitor`` at ``path``, written atomically.

    Like ``ModelCheckpoint(save_best_only=True, save_weights_only=True)``, but an interrupted write leaves the
    previous best file intact.
    """
    import keras

    class BestCheckpoint(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.path, self.monitor = Path(path), monitor
            self.best, self.best_epoch = math.inf, None

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(self.monitor)
            if value is not None and math.isfinite(float(value)) and float(value) < self.best:
                self.best, self.best_epoch = float(value), epoch
                artifacts.save_weights(self.model, self.path)

    return BestCheckpoint()


def make_ema_validation():
    """A callback that puts the optimizer's moving average of the weights into the model while it is validated
    and the weights themselves back afterwards (numpy copies, so training resumes bit for bit; Keras'
    ``SwapEMAWeights`` swaps by additions on TensorFlow, which round)."""
    import keras

    class EMAValidation(keras.callbacks.Callback):
        def _pairs(self):
            opt = self.model.optimizer
            return list(zip(opt._trainable_variables, opt._model_variables_moving_average))

        def on_test_begin(self, logs=None):
            pairs = self._pairs()
            self._weights = [keras.ops.convert_to_numpy(v).copy() for v, _ in pairs]
            for v, average in pairs:
                v.assign(keras.ops.convert_to_numpy(average))

        def on_test_end(self, logs=None):
            for (v, _), w in zip(self._pairs(), getattr(self, "_weights", [])):
                v.assign(w)
            self._weights = []

    return EMAValidation()


def make_epoch_timer():
    """A callback adding each epoch's wall-clock seconds to the logs (and so to the history) as ``epoch_seconds``."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["epoch_seconds"] = time.perf_counter() - self._started

    return EpochTimer()


def schedule_callbacks(params, files: artifacts.ModelFiles) -> list:
    """What the params ask for: the learning-rate schedule, and with ``patience`` early stopping on
    ``val_loss`` (best weights restored) and the best-weights file."""
    import keras

    cbs = []
    if params.lr_schedule != "constant":
        cbs.append(keras.callbacks.LearningRateScheduler(lambda epoch, lr=None: learning_rate_at(params, epoch)))
    if params.patience:
        cbs += [keras.callbacks.EarlyStopping(monitor="val_loss", patience=params.patience,
                                              restore_best_weights=True, verbose=1),
                make_best_checkpoint(files.best_weights)]
    return cbs
