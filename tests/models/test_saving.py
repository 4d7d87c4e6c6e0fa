"""Saved files are Keras models: plain Keras reads those built from its own layers, and ``import vaelab``
(nothing else) is enough for the rest. Each check runs in a fresh process that imports only what it names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

LOAD = """
import sys, json{extra}
import keras, numpy as np
z = np.asarray(json.loads(sys.argv[2]), dtype="float32")
model = keras.models.load_model(sys.argv[1], compile=False)
print(json.dumps(keras.ops.convert_to_numpy(model(z)).reshape(len(z), -1)[:, :8].tolist()))
"""


def load_in_fresh_process(path, z, import_vaelab: bool):
    env = {**os.environ, "PYTHONPATH": str(ROOT) if import_vaelab else "", "KERAS_BACKEND": "tensorflow"}
    code = LOAD.format(extra="\nimport vaelab" if import_vaelab else "")
    return subprocess.run([sys.executable, "-c", code, str(path), json.dumps(np.asarray(z).tolist())], env=env,
                          capture_output=True, text=True, cwd=Path(path).parent)


def test_the_shipped_default_decoders_load_in_plain_keras():
    from vaelab.models import saving

    for prefix, dim in (("ld_2_id_512_e_60", 2), ("ld_3_id_512_e_60", 3)):
        path = ROOT / "vaelab" / "pretrained" / f"{prefix}_decoder.h5"
        z = np.linspace(-1, 1, 2 * dim, dtype="float32").reshape(2, dim)
        done = load_in_fresh_process(path, z, import_vaelab=False)
        assert done.returncode == 0, done.stderr[-2000:]
        ours = np.asarray(saving.load_model(path)(z)).reshape(2, -1)[:, :8]
        np.testing.assert_allclose(json.loads(done.stdout.splitlines()[-1]), ours, rtol=1e-5, atol=1e-6)


def test_a_decoder_of_registered_layers_needs_only_import_vaelab(tmp_path):
    """The Fashion-MNIST model's conv_bn layers are vaelab's: plain Keras refuses the file by name, and a bare
    ``import vaelab`` before Keras is enough to read it (the registration happens when Keras is imported)."""
    import keras

    from vaelab.config.params import FashionMnistParams
    from vaelab.core import artifacts
    from vaelab.models.vae import build_vae, image_decoder

    vae = build_vae(FashionMnistParams(latent_dim=2, filters=4, intermediate_dim=8), (28, 28, 1))
    path = artifacts.save_model(image_decoder(vae), tmp_path / "convbn_decoder.h5")
    z = np.array([[0.5, -1.0]], dtype="float32")
    plain = load_in_fresh_process(path, z, import_vaelab=False)
    assert plain.returncode != 0 and "vaelab>BatchNormalization" in plain.stderr
    done = load_in_fresh_process(path, z, import_vaelab=True)
    assert done.returncode == 0, done.stderr[-2000:]
    ours = keras.ops.convert_to_numpy(image_decoder(vae)(z)).reshape(1, -1)[:, :8]
    np.testing.assert_allclose(json.loads(done.stdout.splitlines()[-1]), ours, rtol=1e-5, atol=1e-6)


def test_import_vaelab_does_not_import_keras():
    code = "import sys, vaelab; print('keras' in sys.modules, 'tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"], out.stderr
