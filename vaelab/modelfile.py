"""The params a model file was made with, read from the file itself when no ``…_params.json`` is beside it.

A model saved by the original Keras 2 scripts, or copied without its params file, still says how big it is:
the decoder's first Dense kernel is ``(latent_dim, width)``, its convolution kernels give the filters and
kernel sizes, and the layer configs (when the file has them) the strides. :func:`infer_params` turns that
into params entries, so ``--model PATH`` needs no other flags. Only shapes are read (h5py, no Keras).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from vaelab import artifacts, discretized


def infer_params(params, decoder_path, encoder_path=None) -> dict[str, Any]:
    """Params entries of ``params``' dataclass that the decoder (and encoder) files determine.

    Entries the files cannot tell are left out; an unreadable file gives ``{}`` (loading it then says what is
    wrong). Works for the dense MNIST, binarized MLP, conv (CIFAR-10, Caltech101) and Fashion-MNIST designs,
    whether written by this project (Keras 3) or by the original scripts (Keras 2, ``…_generator.h5``).
    """
    fields = {f.name for f in dataclasses.fields(params)}
    encoder_path = encoder_path if encoder_path and Path(encoder_path).is_file() else None
    try:
        kernels = artifacts.h5_kernel_shapes(decoder_path)
        configs = artifacts.h5_layer_configs(decoder_path)
        enc_kernels = artifacts.h5_kernel_shapes(encoder_path) if encoder_path else []
        enc_configs = artifacts.h5_layer_configs(encoder_path) if encoder_path else []
    except (OSError, KeyError, ValueError, TypeError):
        return {}
    dense = [k for k in kernels if len(k) == 2]
    conv = [k for k in kernels if len(k) == 4]
    if not kernels or len(kernels[0]) != 2:
        return {}  # every decoder here starts with a Dense layer from z
    found: dict[str, Any] = {"latent_dim": kernels[0][0]}
    if "hidden_dims" in fields:  # binarized MLP: z -> hn -> ... -> h1 -> pixels
        found["hidden_dims"] = ",".join(str(k[1]) for k in reversed(dense[:-1]))
    elif "intermediate_dim" in fields:
        found["intermediate_dim"] = dense[0][1]
    if "num_conv" in fields and len(conv) >= 2:  # Conv2DTranspose kernels (h, w, out, in) ..., Conv2D (h, w, in, out)
        found.update(filters=conv[0][2], num_conv=conv[0][0], first_kernel=conv[-1][0])
        channels = conv[-1][3]
        if channels != params.img_chns:  # mixture parameters per pixel, not the image's channels
            try:
                found.update(reconstruction=discretized.NAME,
                             mixtures=discretized.mixtures_from(channels, params.img_chns))
            except ValueError:
                pass  # no model of this project; loading it says so
        strides = _strides(enc_configs, "Conv2D") or _strides(configs, "Conv2DTranspose")
        if strides:
            found["strides"] = strides
    if "conv_layers" in fields and conv:  # Fashion-MNIST: every decoder conv is a Conv2DTranspose
        found["filters"] = conv[-1][3]
        if enc_kernels:
            found["conv_layers"] = sum(len(k) == 4 for k in enc_kernels)
    return found


def _strides(configs: list[dict], kind: str) -> str | None:
    """``"1,2,1,1"`` from the encoder's four Conv2D, or from the decoder's three Conv2DTranspose (which mirror
    convolutions 4, 3, 2; the first stride is always 1)."""
    strides = [layer["config"].get("strides") for layer in configs if layer.get("class_name") == kind]
    strides = [s[0] if isinstance(s, (list, tuple)) else s for s in strides]
    if kind == "Conv2D" and len(strides) == 4 and all(isinstance(s, int) for s in strides):
        return ",".join(map(str, strides))
    if kind == "Conv2DTranspose" and len(strides) == 3 and all(isinstance(s, int) for s in strides):
        return ",".join(map(str, [1, *reversed(strides)]))
    return None
