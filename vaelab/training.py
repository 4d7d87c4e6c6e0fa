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
            bad_batch = None

            def on_train_batch_end(self, batch, logs=None):
                loss = (logs or {}).get("loss")
                if loss is not None and not math.isfinite(float(loss)):
                    self.bad_batch = batch
                    self.model.stop_training = True

        return StopOnNaN()


def callbacks_for(files: artifacts.ModelFiles, tensorboard: bool = True) -> list:
    """CSV log, TensorBoard (TensorFlow backend only) and the NaN guard."""
    import keras

    files.csv_log.parent.mkdir(parents=True, exist_ok=True)
    cbs = [keras.callbacks.CSVLogger(str(files.csv_log)), _StopOnNaN.make()]
    if tensorboard and keras.backend.backend() == "tensorflow" and importlib.util.find_spec("tensorboard"):
        cbs.append(keras.callbacks.TensorBoard(log_dir=str(files.tensorboard_dir), write_graph=False))
    return cbs


def is_batched(x) -> bool:
    """Whether ``x`` is a batch source (:func:`vaelab.data.image_batches`) rather than an array."""
    return hasattr(x, "num_examples") and not isinstance(x, np.ndarray)


def num_examples(x) -> int:
    return int(x.num_examples) if is_batched(x) else len(x)


def fit(vae, x_train, x_val, params, files: artifacts.ModelFiles, verbose="auto",
        extra_callbacks=()) -> dict[str, list[float]]:
    """Compile and fit ``vae``; returns the history dict. Stops with a clear error on a NaN loss.

    ``x_train``/``x_val`` are float arrays (batched and shuffled by Keras) or batch sources from
    :func:`vaelab.data.image_batches`, which batch and shuffle themselves.
    """
    vae.compile(optimizer=make_optimizer(params.optimizer, params.learning_rate))
    cbs = callbacks_for(files) + list(extra_callbacks)
    started = time.perf_counter()
    if is_batched(x_train):
        history = vae.fit(x_train, validation_data=x_val, epochs=params.epochs, callbacks=cbs, verbose=verbose)
    else:
        history = vae.fit(x_train, validation_data=(x_val,) if x_val is not None else None,
                          epochs=params.epochs, batch_size=params.batch_size, shuffle=True, callbacks=cbs,
                          verbose=verbose)
    seconds = time.perf_counter() - started
    nan_guard = next(c for c in cbs if type(c).__name__ == "StopOnNaN")
    if nan_guard.bad_batch is not None:
        raise UserError(f"the loss became NaN/Inf in epoch {len(history.epoch)} (batch {nan_guard.bad_batch}); "
                        "nothing was saved. Lower --learning-rate or check the data")
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    epochs_run = len(history.epoch)
    print(f"trained {epochs_run} epochs in {seconds:.1f} s ({seconds / max(epochs_run, 1):.2f} s/epoch, "
          f"{num_examples(x_train) * epochs_run / seconds:.0f} samples/s)")
    return hist


def save_trained(vae, history: dict, params, files: artifacts.ModelFiles, encoder_for_file=None) -> list[Path]:
    """Write the VAE, encoder (x -> z_mean), decoder, history (pickle and JSON) and params JSON."""
    from vaelab.models import mean_encoder

    encoder = encoder_for_file or mean_encoder(vae.encoder)
    written = [
        artifacts.save_model(vae, files.vae),
        artifacts.save_model(encoder, files.encoder),
        artifacts.save_model(vae.decoder, files.decoder),
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


def as_float_inputs(x: np.ndarray, flatten: bool) -> np.ndarray:
    """The model's input layout: (N, 784) for dense models, images otherwise."""
    return x.reshape(len(x), -1) if flatten else x


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports KiB, macOS bytes)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6
