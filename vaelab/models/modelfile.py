"""The params a model file was made with, read from the file itself when no ``…_params.json`` is beside it.

A model saved by the original Keras 2 scripts, or copied without its params file, still says how big it is:
the decoder's first Dense kernel is ``(latent_dim, width)``, its convolution kernels give the filters and
kernel sizes, and the layer configs (when the file has them) the strides. :func:`infer_params` turns that
into params entries, so ``--model PATH`` needs no other flags. Only shapes are read (h5py, no Keras).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaelab.core import artifacts
from vaelab.models import registry as parts


@dataclass
class Shapes:
    """What one model file shows without loading it: its kernel shapes in saved order and its layer configs."""

    kernels: list[tuple[int, ...]] = field(default_factory=list)
    configs: list[dict] = field(default_factory=list)

    @classmethod
    def read(cls, path) -> "Shapes":
        if not path or not Path(path).is_file():
            return cls()
        return cls(artifacts.h5_kernel_shapes(path), artifacts.h5_layer_configs(path))


def infer_params(params, decoder_path, encoder_path=None) -> dict[str, Any]:
    """Params entries that the decoder (and encoder) files determine, for ``params``' architecture.

    The latent size from the decoder's first Dense kernel, then what the architecture's ``infer`` reads (widths,
    filters, kernel sizes, strides, the likelihood's output width). Entries the files cannot tell are left out;
    an unreadable file gives ``{}`` (loading it then says what is wrong). Works for this project's files and
    the original scripts' Keras 2 files (``…_generator.h5``).
    """
    try:
        decoder, encoder = Shapes.read(decoder_path), Shapes.read(encoder_path)
    except (OSError, KeyError, ValueError, TypeError):
        return {}
    if not decoder.kernels or len(decoder.kernels[0]) != 2:
        return {}  # every decoder here starts with a Dense layer from z
    infer = parts.architecture(params).infer
    return {"latent_dim": decoder.kernels[0][0], **(infer(params, decoder, encoder) if infer else {})}
