"""What training leaves on disk: file names, atomic writes, safe loading.

Every file is written to a temporary name in its own directory and renamed into place, so an interrupted
save leaves the previous file intact. Models load with ``safe_mode=True``; pickles load through a
restricted unpickler that only builds plain containers, numbers, strings and numpy arrays.
"""

from __future__ import annotations

import io
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vaelab.core import h5bytes
from vaelab.core.atomic import _UMASK, atomic_path, together, write_bytes  # noqa: F401 - re-exported
from vaelab.core.errors import UserError

# --- names ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFiles:
    """The files of one trained model, ``<models_dir>/<prefix>_{vae,encoder,decoder}.h5`` and friends."""

    models_dir: Path
    prefix: str

    def _p(self, suffix: str) -> Path:
        return Path(self.models_dir) / f"{self.prefix}_{suffix}"

    @property
    def vae(self) -> Path:
        return self._p("vae.h5")

    @property
    def encoder(self) -> Path:
        return self._p("encoder.h5")

    @property
    def decoder(self) -> Path:
        return self._p("decoder.h5")

    @property
    def generator(self) -> Path:
        """The decoder's name in the original Keras 2 scripts."""
        return self._p("generator.h5")

    @property
    def history(self) -> Path:
        return self._p("history.pkl")

    @property
    def history_json(self) -> Path:
        return self._p("history.json")

    @property
    def params_json(self) -> Path:
        return self._p("params.json")

    @property
    def architecture(self) -> Path:
        """The encoder's and decoder's ``summary()``, as text."""
        return self._p("architecture.txt")

    @property
    def csv_log(self) -> Path:
        return self._p("log.csv")

    @property
    def best_weights(self) -> Path:
        """Weights of the epoch with the best validation loss so far, kept while training runs."""
        return self._p("best.weights.h5")

    @property
    def test_json(self) -> Path:
        """Test-set metrics written after training."""
        return self._p("test.json")

    @property
    def tensorboard_dir(self) -> Path:
        return Path(self.models_dir) / "tensorboard" / self.prefix

    def required(self) -> list[Path]:
        """The four files the train scripts promise."""
        return [self.vae, self.encoder, self.decoder, self.history]

    def decoder_path(self) -> Path:
        """The decoder file, accepting the original scripts' ``…_generator.h5``."""
        if not self.decoder.exists() and self.generator.exists():
            return self.generator
        return self.decoder


# --- atomic writes (vaelab.core.atomic) -----------------------------------------------------------

def save_json(obj: Any, path) -> Path:
    return write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=_to_builtin) + "\n").encode())


def save_pickle(obj: Any, path) -> Path:
    return write_bytes(path, pickle.dumps(obj, protocol=4))


def save_model(model, path) -> Path:
    """``model.save`` to a temporary ``.h5``/``.keras`` file, then rename."""
    import logging

    absl = logging.getLogger("absl")  # silences "HDF5 is legacy": the .h5 names are this project's format
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        data = h5bytes.model_bytes(model) if Path(path).suffix == ".h5" else None  # a full disk is then an OSError
        if data is not None:
            return write_bytes(path, data)
        with atomic_path(path) as tmp:
            tmp.unlink()  # let Keras create the file itself
            model.save(tmp)
    finally:
        absl.setLevel(level)
    return Path(path)


def save_weights(model, path) -> Path:
    """``model.save_weights`` to a temporary ``….weights.h5`` file, then rename."""
    path = Path(path)
    if not path.name.endswith(".weights.h5"):
        raise ValueError(f"weights files must end in .weights.h5, got {path.name}")
    with atomic_path(path) as tmp:
        h5bytes.check_space(path.parent, h5bytes.weights_size(model))  # HDF5 on a full disk may crash
        tmp.unlink()  # let Keras create the file itself
        model.save_weights(tmp)
    return path


def save_figure(fig, path, **kwargs) -> Path:
    """Save a matplotlib figure atomically (format from the suffix)."""
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip("."), **{"dpi": 100, "bbox_inches": "tight", **kwargs})
    return write_bytes(path, buf.getvalue())


def _to_builtin(value):
    """JSON fallback for numpy scalars and arrays."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# --- safe loading ---------------------------------------------------------------------------------


class RefusedPickle(pickle.UnpicklingError):
    """The pickle asks for a class outside the allowed plain-data set."""


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds only plain containers, numbers, strings and numpy arrays/scalars."""

    ALLOWED = {
        ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "set"),
        ("builtins", "frozenset"), ("builtins", "int"), ("builtins", "float"), ("builtins", "complex"),
        ("builtins", "str"), ("builtins", "bytes"), ("builtins", "bytearray"), ("builtins", "bool"),
        ("collections", "OrderedDict"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy.core.numeric", "_frombuffer"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED or (module == "numpy" and name.endswith("DType")):
            return super().find_class(module, name)
        raise RefusedPickle(f"refusing to load {module}.{name}")


def safe_unpickle(data: bytes, source: str = "pickle", encoding: str = "ASCII") -> Any:
    """Unpickle ``data`` allowing only plain data; anything else is a :class:`UserError`."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()
    except RefusedPickle as e:
        raise UserError(f"{source}: {e}; only plain data (numbers, strings, lists, dicts, arrays) "
                        "is loaded from pickles") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise UserError(f"{source}: truncated or corrupt pickle ({_first_line(e)})") from None


def load_history(path) -> dict[str, list[float]]:
    """A ``…_history.pkl`` (the ``history.history`` dict), read safely."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such history file") from None
    history = safe_unpickle(data, str(path))
    if not isinstance(history, dict):
        raise UserError(f"{path}: not a training history (expected a dict, found {type(history).__name__})")
    return history


def registered_objects() -> dict[str, Any]:
    """Every class registered under the ``vaelab`` package, by its bare class name as well: the legacy ``.h5``
    reader looks custom classes up by that. Reads Keras' registry, so it holds what has been imported
    (:func:`vaelab.models.saving.register` imports every module that registers a class)."""
    import keras

    found = {name: cls for name, cls in keras.saving.get_custom_objects().items() if name.startswith("vaelab>")}
    return {**found, **{name.partition(">")[2]: cls for name, cls in found.items()}}


def load_model(path, train_hint: str = "", rebuild: Callable[[], Any] | None = None):
    """Load a ``.h5``/``.keras`` model in safe mode, without its training config.

    ``train_hint`` is the command that makes the file, quoted when it is missing. ``rebuild`` builds
    the architecture for files Keras 3 cannot read whole (Keras 2.0 HDF5 from the original scripts):
    their weights are then copied layer by layer.
    """
    import keras

    path = Path(path)
    if not path.exists():
        hint = f"; make it with: {train_hint}" if train_hint else ""
        raise UserError(f"model file {path} not found{hint}")
    why = h5bytes.not_a_model(path) if path.suffix == ".h5" else None
    if why:
        raise UserError(f"{path}: {why}; pass a model file that training wrote"
                        + (f", or make one with: {train_hint}" if train_hint else ""))
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True, custom_objects=registered_objects())
    except Exception as e:  # noqa: BLE001 - Keras raises many types for unreadable files
        if rebuild is None or path.suffix != ".h5":
            if "Lambda" in str(e) and "safe_mode" in str(e):
                raise UserError(f"refusing to load model {path}: it holds a Lambda layer with Python code, which "
                                "safe mode never runs; re-save the model without Lambda layers") from None
            raise UserError(f"cannot load model {path}: {_first_line(e)}; the file is truncated, corrupt "
                            "or not a Keras model") from None
        first_error = e
    model = rebuild()
    try:
        copy_h5_weights(path, model)
    except (OSError, KeyError, ValueError) as e:
        also = "" if _first_line(e) == _first_line(first_error) else f" ({_first_line(e)})"
        raise UserError(f"cannot load model {path}: {_first_line(first_error)}; reading its weights "
                        f"layer by layer failed too{also}") from None
    return model


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _h5_weight_sets(f) -> list[list]:
    """The weight datasets (name, h5py dataset) of each layer that has weights, in saved order."""
    group = f["model_weights"] if "model_weights" in f else f
    out = []
    for name in map(_text, group.attrs["layer_names"]):
        g = group[name]
        weight_names = [_text(w) for w in g.attrs.get("weight_names", [])]
        if weight_names:
            out.append([(w, g[w]) for w in weight_names])
    return out


def h5_layer_weights(path) -> list[list]:
    """The weight arrays of each layer that has weights, in saved order, from a Keras HDF5 file."""
    import h5py
    import numpy as np

    with h5py.File(path, "r") as f:
        return [[np.asarray(d) for _, d in layer] for layer in _h5_weight_sets(f)]


def h5_kernel_shapes(path) -> list[tuple[int, ...]]:
    """The shapes of the Dense (2-D) and convolution (4-D) kernels in a Keras HDF5 file, in saved order, the
    layers of nested models included; read without loading any weights (Keras 2 and 3 files alike)."""
    import h5py

    with h5py.File(path, "r") as f:
        return [tuple(d.shape) for layer in _h5_weight_sets(f) for name, d in layer
                if name.split("/")[-1].split(":")[0] == "kernel" and len(d.shape) in (2, 4)]


def h5_layer_configs(path) -> list[dict]:
    """``{"class_name", "config"}`` of every layer in a Keras HDF5 file's ``model_config`` (nested models'
    layers in their place); empty when the file has none."""
    import h5py

    with h5py.File(path, "r") as f:
        raw = f.attrs.get("model_config")
    if raw is None:
        return []

    def flatten(model: dict) -> list[dict]:
        out = []
        for layer in model.get("config", {}).get("layers", []):
            out.extend(flatten(layer) if "layers" in layer.get("config", {}) else [layer])
        return out

    return flatten(json.loads(_text(raw)))


def copy_h5_weights(path, model) -> None:
    """Set ``model``'s weights from a Keras HDF5 file layer by layer, checking every shape."""
    saved = h5_layer_weights(path)
    targets = [layer for layer in model.layers if layer.weights]
    if len(saved) != len(targets):
        raise ValueError(f"the file has {len(saved)} layers with weights, the model {len(targets)}")
    for layer, arrays in zip(targets, saved):
        expected = [tuple(w.shape) for w in layer.weights]
        found = [tuple(a.shape) for a in arrays]
        if expected != found:
            raise ValueError(f"layer {layer.name} needs weights of shapes {expected}, the file has {found}")
        layer.set_weights(arrays)


def check_writable(directory) -> Path:
    """Create ``directory`` if needed and make sure files can be written there, before any long work."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".vaelab-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write to {directory}: {e.strerror or e}; pass a writable directory") from None
    return directory
