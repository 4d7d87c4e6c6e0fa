"""Model files in the HDF5 layout Keras 2.0 wrote for the original scripts (``…_generator.h5``), made with h5py."""

from __future__ import annotations

import json

import h5py
import numpy as np


def write_keras2_model(path, input_shape, layers) -> None:
    """A Keras 2.0 functional model file: ``layers`` is a list of ``(name, class_name, config, weights)`` chained
    from an input of ``input_shape``; ``weights`` are (kernel, bias) arrays or ``()``."""
    entries = [{"name": "input_1", "class_name": "InputLayer", "inbound_nodes": [],
                "config": {"batch_input_shape": [None, *input_shape], "dtype": "float32", "sparse": False,
                           "name": "input_1"}}]
    for name, class_name, config, _ in layers:
        entries.append({"name": name, "class_name": class_name, "inbound_nodes": [[[entries[-1]["name"], 0, 0, {}]]],
                        "config": {"name": name, "trainable": True, **config}})
    model = {"class_name": "Model", "config": {"name": "model_3", "layers": entries,
                                               "input_layers": [["input_1", 0, 0]],
                                               "output_layers": [[entries[-1]["name"], 0, 0]]}}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.0.8"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(model).encode()
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [e["name"].encode() for e in entries]
        g.create_group("input_1").attrs["weight_names"] = np.array([], dtype="S")
        for name, _, _, weights in layers:
            lg = g.create_group(name)
            names = [f"{name}/{kind}:0" for kind in ("kernel", "bias")[:len(weights)]]
            lg.attrs["weight_names"] = np.array([n.encode() for n in names], dtype="S")
            for n, w in zip(names, weights):
                lg.create_dataset(n, data=w)


def dense(units: int, activation: str) -> dict:
    return {"units": units, "activation": activation, "use_bias": True}


def conv(filters: int, kernel: int, strides: int, activation: str) -> dict:
    return {"filters": filters, "kernel_size": [kernel, kernel], "strides": [strides, strides], "padding": "same",
            "activation": activation, "use_bias": True}
