"""TensorBoard logs on every backend: an event-file writer that needs no TensorFlow, and the run's callback.

:class:`EventWriter` writes TensorBoard's event files (``Event`` protocol buffers in TFRecord framing) with the
``tensorboard`` package's own protobufs and record writer. It imports no TensorFlow and runs no TensorFlow op
(``tf.summary`` would start TensorFlow's runtime, its thread pools and, on a GPU, its claim on the memory, in a
JAX or PyTorch process; Keras may import TensorFlow there, to recognise ``tf.data`` inputs, but starts nothing).
Scalars are ``simple_value`` summaries, images PNG-encoded ``Summary.Image`` values: what TensorBoard's scalars
and images tabs read (and what ``torch.utils.tensorboard`` writes).

:func:`make_tensorboard` is the callback :func:`vaelab.training.callbacks.run_callbacks` adds. At the end of
each complete epoch (step = epochs done, counted from 1) it logs every number Keras reports (``loss``,
``reconstruction_loss``, ``kl_loss``, ``kl_weight`` during a KL warm-up, their ``val_`` twins; not the epoch
timer's ``epoch_seconds``, which the events' own wall times give) and the learning rate; every ``images_every`` epochs and after the last one, what its ``pictures`` hook returns (built above this
layer, in :mod:`vaelab.explore.summaries`: sample grids, reconstructions, per-layer KL). An epoch cut short by
a signal or a NaN is not logged, as it is not in the history. An event file is a log appended to as the run
goes (TensorBoard reads it while it grows), the one file not written under a temporary name; a resumed run
adds a new one beside it.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from pathlib import Path

import numpy as np

_FILES = itertools.count()  # two writers in one process and second get different file names


def to_uint8(image) -> np.ndarray:
    """An (H, W) or (H, W, C) image in [0, 1] (floats) or 0..255 (uint8) as (H, W, C) uint8."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3, 4):
        raise ValueError(f"an image is (H, W) or (H, W, 1|3|4), got shape {a.shape}")
    if a.dtype != np.uint8:
        a = np.round(np.clip(np.nan_to_num(a.astype(np.float64)), 0.0, 1.0) * 255.0).astype(np.uint8)
    return a


def png_bytes(image: np.ndarray) -> bytes:
    """``image`` (H, W, C) uint8 encoded as PNG."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image[:, :, 0] if image.shape[-1] == 1 else image).save(buf, format="PNG")
    return buf.getvalue()


class EventWriter:
    """One event file in ``logdir``: :meth:`scalar` and :meth:`image` at a step, :meth:`flush`, :meth:`close`."""

    def __init__(self, logdir):
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter

        self._event_pb2 = event_pb2
        logdir = Path(logdir)
        logdir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        self.path = logdir / (f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{os.getpid()}."
                              f"{next(_FILES):04d}.vaelab")  # sorted by name = in order
        self._records = RecordWriter(open(self.path, "wb"))  # noqa: SIM115 - open as long as the writer
        self._write(event_pb2.Event(wall_time=now, file_version="brain.Event:2"))
        self.flush()

    def _write(self, event) -> None:
        self._records.write(event.SerializeToString())

    def _summary(self, value, step: int) -> None:
        from tensorboard.compat.proto import summary_pb2

        self._write(self._event_pb2.Event(wall_time=time.time(), step=int(step),
                                          summary=summary_pb2.Summary(value=[value])))

    def scalar(self, tag: str, value: float, step: int) -> None:
        from tensorboard.compat.proto import summary_pb2

        self._summary(summary_pb2.Summary.Value(tag=tag, simple_value=float(value)), step)

    def image(self, tag: str, image, step: int) -> None:
        """``image``: (H, W) or (H, W, C), floats in [0, 1] or uint8."""
        from tensorboard.compat.proto import summary_pb2

        a = to_uint8(image)
        img = summary_pb2.Summary.Image(height=a.shape[0], width=a.shape[1], colorspace=a.shape[2],
                                        encoded_image_string=png_bytes(a))
        self._summary(summary_pb2.Summary.Value(tag=tag, image=img), step)

    def flush(self) -> None:
        self._records.flush()

    def close(self) -> None:
        if not self._records.closed:
            self._records.flush()
            self._records.close()


def learning_rate(model) -> float:
    """The optimizer's current learning rate as a float (its variable's value, or its schedule's at this step)."""
    from keras import ops

    lr = model.optimizer.learning_rate
    if callable(lr):
        lr = lr(model.optimizer.iterations)
    return float(np.asarray(ops.convert_to_numpy(lr)))


def images_due(step: int, every: int, epochs: int | None) -> bool:
    """Whether epoch ``step`` (1-based) gets images: every ``every`` epochs and the last one (never with 0)."""
    return bool(every) and (step % every == 0 or step == epochs)


def make_tensorboard(logdir, epochs: int | None = None, images_every: int = 0, steps: int | None = None,
                     pictures=None):
    """The callback writing the run's TensorBoard log into ``logdir`` (see the module docstring).

    ``epochs``: the run's last epoch (it gets images too); ``steps``: batches in an epoch (fewer seen means the
    epoch was cut short: not logged); ``pictures(model, step)`` returns ``{tag: value}``, an array of two or
    three dimensions being an image and anything else a scalar.
    """
    import keras

    class TensorBoardLog(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.logdir, self.writer, self.batches = Path(logdir), None, 0

        def on_train_begin(self, logs=None):
            self.writer = EventWriter(self.logdir)

        def on_epoch_begin(self, epoch, logs=None):
            self.batches = 0

        def on_train_batch_end(self, batch, logs=None):  # with several steps per call: the call's last one
            self.batches = max(self.batches, int(batch) + 1)

        def on_epoch_end(self, epoch, logs=None):
            if self.writer is None or (steps is not None and self.batches < steps):
                return
            step = epoch + 1
            # not the epoch timer's epoch_seconds: every event carries its wall time (TensorBoard's "relative" axis)
            values = {k: float(v) for k, v in (logs or {}).items() if _is_number(v) and k != "epoch_seconds"}
            values.setdefault("learning_rate", learning_rate(self.model))
            for tag in sorted(values):
                self.writer.scalar(tag, values[tag], step)
            if pictures is not None and images_due(step, images_every, epochs):
                for tag, value in pictures(self.model, step).items():
                    if np.ndim(value) in (2, 3):
                        self.writer.image(tag, value, step)
                    else:
                        self.writer.scalar(tag, float(value), step)
            self.writer.flush()

        def on_train_end(self, logs=None):
            if self.writer is not None:
                self.writer.close()
                self.writer = None

    return TensorBoardLog()


def _is_number(value) -> bool:
    """Whether a logs entry is one number (Keras' metrics are; a callback may add other things)."""
    if isinstance(value, (str, bytes)) or np.ndim(value) != 0:
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
