"""Keras HDF5 files and a full disk: render a model file in memory, check the space before writing weights.

HDF5 writes through its own C library: when the disk fills up while Keras saves a ``.h5`` file, h5py prints a
stream of ``Can't decrement id ref count (file write failed ... No space left on device)`` tracebacks and the
process may end with a segmentation fault, before any Python code can report it. So a model's ``.h5`` file
is built in memory (an ``h5py.File`` over ``io.BytesIO``) and written with plain Python I/O, where a full disk
is an ``OSError`` that :func:`vaelab.core.artifacts.atomic_path` turns into one line. Weights files, which
Keras only writes to a path, are preceded by a check of the free space.
"""

from __future__ import annotations

import errno
import io
import math
import os
from pathlib import Path


def model_bytes(model) -> bytes | None:
    """The bytes ``model.save("x.h5")`` writes, built in memory; None when this Keras has no such writer."""
    try:
        from keras.src.legacy.saving import legacy_h5_format
    except ImportError:  # pragma: no cover - another Keras layout: the caller saves to a path
        return None
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        legacy_h5_format.save_model_to_hdf5(model, f)
    return buf.getvalue()


def weights_size(model) -> int:
    """A generous estimate of a ``.weights.h5`` file's size: the arrays, plus HDF5's few KB per array."""
    import numpy as np

    def itemsize(dtype) -> int:
        try:
            return np.dtype(dtype).itemsize
        except TypeError:  # bfloat16 and other types numpy lacks
            return 4

    arrays = sum(math.prod(w.shape) * itemsize(w.dtype) for w in model.weights)
    return arrays + 8192 * len(model.weights) + 65536


def check_space(directory, nbytes: int) -> None:
    """Raise ``OSError(ENOSPC)`` when ``directory``'s file system has less than ``nbytes`` free."""
    try:
        st = os.statvfs(Path(directory))
    except (AttributeError, OSError):  # no statvfs (Windows) or not a local file system: just try
        return
    if st.f_bavail * st.f_frsize < nbytes:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def not_a_model(path) -> str | None:
    """Why the HDF5 file ``path`` is not a Keras model file, or None: a model file (Keras 2 or 3, or layer
    weights the loader can copy), or not HDF5 at all (the loader says what it is)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "model_config" in f.attrs or "layer_names" in f.attrs or "model_weights" in f:
                return None
            if "layers" in f or "vars" in f:
                return "a weights-only file (model.save_weights), not a model: it has no architecture"
            held = ", ".join(sorted(f.keys())[:3]) or "no datasets"
            return f"an HDF5 file but not a Keras model (it holds {held})"
    except OSError:
        return None
