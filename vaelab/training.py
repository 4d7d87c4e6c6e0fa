"""Training: seeding, optimizer, callbacks, fit, and saving everything a run produces.

:func:`train` is the one training loop every dataset uses; a train script only picks the experiment.
"""

from __future__ import annotations

import importlib.util
import math
import time
from pathlib import Path

import numpy as np

from vaelab import artifacts
from vaelab.errors import UserError


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and the backend so weights, shuffling and sampling repeat."""
    import keras

    keras.utils.set_random_seed(seed)


def make_optimizer(name: str, learning_rate: float):
    import keras

    classes = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD,
               "adamw": keras.optimizers.AdamW, "nadam": keras.optimizers.Nadam}
    return classes[name](learning_rate=learning_rate)


class _StopOnNaN:
    """Factory for a callback that stops at the first non-finite loss and remembers where."""

    @staticmethod
    def make():
        import keras

        class StopOnNaN(keras.callbacks.Callback):
            """With several steps per execution Keras reports once per call: the NaN is then somewhere in
            the call's batches ``first_batch``..``bad_batch``."""

            bad_batch = None
            first_batch = None

            def on_train_batch_begin(self, batch, logs=None):
                self._begin = batch

            def on_train_batch_end(self, batch, logs=None):
                loss = (logs or {}).get("loss")
                if loss is not None and not math.isfinite(float(loss)):
                    self.bad_batch = batch
                    self.first_batch = getattr(self, "_begin", batch)
                    self.model.stop_training = True

            def where(self) -> str:
                """``batch 3``, or ``batches 0-1`` when the call that went bad ran several."""
                if self.first_batch is None or self.first_batch == self.bad_batch:
                    return f"batch {self.bad_batch}"
                return f"batches {self.first_batch}-{self.bad_batch}"

        return StopOnNaN()


def callbacks_for(files: artifacts.ModelFiles, tensorboard: bool = True) -> list:
    """CSV log, TensorBoard (TensorFlow and JAX backends: Keras writes the logs with TensorFlow, installed with
    vaelab) and the NaN guard."""
    import keras

    files.csv_log.parent.mkdir(parents=True, exist_ok=True)
    cbs = [keras.callbacks.CSVLogger(str(files.csv_log)), _StopOnNaN.make()]
    if (tensorboard and keras.backend.backend() in ("tensorflow", "jax") and importlib.util.find_spec("tensorboard")
            and importlib.util.find_spec("tensorflow")):
        cbs.append(keras.callbacks.TensorBoard(log_dir=str(files.tensorboard_dir), write_graph=False))
    return cbs


def is_batched(x) -> bool:
    """Whether ``x`` is a batch source (:func:`vaelab.data.image_batches`) rather than an array."""
    return hasattr(x, "num_examples") and not isinstance(x, np.ndarray)


def save_trained(vae, history: dict, params, files: artifacts.ModelFiles, encoder_for_file=None) -> list[Path]:
    """Write the VAE, encoder (x -> z_mean), decoder, history (pickle and JSON) and params JSON."""
    from vaelab.models import image_decoder, mean_encoder

    encoder = encoder_for_file or mean_encoder(vae.encoder)
    written = [
        artifacts.save_model(vae, files.vae),
        artifacts.save_model(encoder, files.encoder),
        artifacts.save_model(image_decoder(vae), files.decoder),
        artifacts.save_pickle(history, files.history),
        artifacts.save_json(history, files.history_json),
        artifacts.save_json(params.to_dict(), files.params_json),
    ]
    return written


def evaluate(vae, x, batch_size: int) -> dict[str, float]:
    """Loss, reconstruction and KL (means per example) on ``x`` (an array or a batch source)."""
    if is_batched(x):
        result = vae.evaluate(x, verbose=0, return_dict=True)
    else:
        result = vae.evaluate(x, batch_size=batch_size, verbose=0, return_dict=True)
    return {k: float(v) for k, v in result.items()}


def step_decay(epoch: int, lr0: float, every: int, factor: float) -> float:
    """Learning rate of (0-based) ``epoch``: ``lr0 * factor ** (epoch // every)``.

    The first drop comes after the first full block of ``every`` epochs, never at epoch 0 (the original
    schedule dropped at epoch 0 because ``0 % every == 0``).
    """
    if epoch < 0 or every < 1:
        raise ValueError(f"need epoch >= 0 and every >= 1, got epoch={epoch}, every={every}")
    return float(lr0 * factor ** (epoch // every))


def lr_schedule_callback(lr0: float, every: int, factor: float):
    """A LearningRateScheduler applying :func:`step_decay` from the initial rate (it also logs ``learning_rate``)."""
    import keras

    return keras.callbacks.LearningRateScheduler(lambda epoch, lr=None: step_decay(epoch, lr0, every, factor))


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


def early_stopping_callbacks(params, files: artifacts.ModelFiles) -> list:
    """LR step decay, early stopping on ``val_loss`` (best weights restored), best checkpoint, epoch timer.

    The timer comes first so the other callbacks (and the history) see ``epoch_seconds``.
    """
    import keras

    return [
        make_epoch_timer(),
        lr_schedule_callback(params.learning_rate, params.lr_drop_every, params.lr_drop_factor),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=params.patience, restore_best_weights=True,
                                      verbose=1),
        make_best_checkpoint(files.best_weights),
    ]


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports KiB, macOS bytes)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6
