"""Loading the project's model files: every class a saved model may hold is registered first.

Keras finds a custom layer or model in a file by its registered name (``vaelab>Sampling``), so the modules that
define them must have been imported; :func:`register` imports them all, and :func:`load_model` loads through
:func:`vaelab.core.artifacts.load_model` (safe mode, one-line errors, Keras 2 files rebuilt) after it.
``import vaelab`` calls :func:`register` as soon as Keras is imported, so plain ``keras.models.load_model`` reads
these files too (docs/package.md says which files need it).
"""

from __future__ import annotations

from vaelab.core import artifacts


def register() -> None:
    """Import every module that registers a Keras class a saved file may name (each registers its classes as
    it is imported); Keras is imported with them."""
    from vaelab.models import conditional, layers, pixelcnn, priors, saved, second_stage, vae, vq  # noqa: F401
    from vaelab.models.architectures import topdown, topdown_conv, topdown_dense  # noqa: F401


def load_model(path, train_hint: str = "", rebuild=None):
    """:func:`vaelab.core.artifacts.load_model` with every class of the project registered."""
    register()
    return artifacts.load_model(path, train_hint, rebuild)
