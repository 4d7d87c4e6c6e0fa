"""vaelab: variational autoencoders for MNIST, Fashion-MNIST, CIFAR-10 and Caltech101 on Keras 3.

The package is cut into layers, lowest first (:data:`LAYERS`; docs/package.md is the map). Importing it is
cheap: no Keras, so ``--help`` and parameter errors answer before TensorFlow has loaded. The project's custom
Keras classes register themselves as soon as Keras is imported (now, if it already is), so after a bare
``import vaelab`` plain ``keras.models.load_model`` reads every model file the project writes.

The public API (docs/api.md), each imported when first used::

    vaelab.load(name_or_path)      # a trained or shipped model: encode, decode, sample, reconstruct,
                                   # interpolate, log_likelihood (vaelab.api.trained.Trained)
    vaelab.train("mnist", epochs=5, data_dir="data")   # the train script's run; returns the model
    vaelab.shipped_models()        # the names of the models that come with the package
"""

import sys

LAYERS = ("core", "data", "models", "config", "training", "evaluation", "explore", "api", "cli")

__all__ = ["LAYERS", "load", "train", "shipped_models", "Trained", "TrainOptions"]
_PUBLIC = {"load": "vaelab.api.public", "train": "vaelab.api.public", "shipped_models": "vaelab.api.public",
           "Trained": "vaelab.api.trained", "TrainOptions": "vaelab.training.options"}


def __getattr__(name):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'vaelab' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_PUBLIC])


def _vaelab_is_importing() -> bool:
    """Whether a vaelab module is half-way through its own import (it imported Keras itself, and registers
    what it needs when it loads a model: registering now would import it again half-made)."""
    return any(getattr(getattr(m, "__spec__", None), "_initializing", False)
               for name, m in list(sys.modules.items()) if name.startswith("vaelab."))


def _register() -> None:
    if not _vaelab_is_importing():
        from vaelab.models import saving

        saving.register()


class _RegisterAfterKeras:
    """A meta-path finder that lets Keras import as usual and registers vaelab's classes right after."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        import importlib.util

        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("keras")
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                _register()

            spec.loader.exec_module = exec_module
        return spec


if "keras" in sys.modules:
    _register()
elif not any(isinstance(f, _RegisterAfterKeras) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKeras())
