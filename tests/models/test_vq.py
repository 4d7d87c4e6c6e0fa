"""The vq architecture: the quantiser against numpy (nearest code, straight-through gradient, one EMA step), the
PixelCNN's causal mask, shapes on every dataset's image size, and save -> load -> identical outputs (the code
encoder/decoder files in plain Keras, the whole model after ``import vaelab``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from vaelab.config.conv_params import Caltech101_92Params, Cifar10Params
from vaelab.config.params import FashionMnistParams, MnistParams
from vaelab.core.errors import UserError
from vaelab.models import samplers
from vaelab.models.pixelcnn import GatedPixelCnn, causal_mask
from vaelab.models.vae import build_vae
from vaelab.models.vq import VectorQuantizer, code_decoder, code_encoder

ROOT = Path(__file__).resolve().parents[2]
TINY = {"architecture": "vq", "codebook_size": 8, "codebook_dim": 3, "filters": 4, "blocks": 1}


def _grad(f, x):
    """d sum(f(x)) / dx on the running backend."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: ops.sum(f(v)))(x))
    if backend == "torch":
        import torch

        t = torch.tensor(x, requires_grad=True)
        ops.sum(f(t)).backward()
        return t.grad.numpy()
    import tensorflow as tf

    t = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = ops.sum(f(t))
    return tape.gradient(y, t).numpy()


def _quantizer(ema: bool, k: int = 5, d: int = 3):
    q = VectorQuantizer(k, d, commitment_cost=0.25, ema=ema, decay=0.9, seed=1)
    codebook = np.random.default_rng(0).normal(size=(k, d)).astype("float32")
    q.codebook.assign(codebook)
    if ema:
        q.ema_sum.assign(codebook)
    return q, codebook


def test_the_quantiser_picks_the_nearest_code_and_passes_the_gradient_straight_through():
    q, e = _quantizer(ema=False)
    z = np.random.default_rng(1).normal(size=(2, 3, 4, 3)).astype("float32")
    z_q, codes, loss, perplexity = q(z)
    nearest = np.argmin(((z[..., None, :] - e) ** 2).sum(-1), axis=-1)
    np.testing.assert_array_equal(ops.convert_to_numpy(codes), nearest)
    np.testing.assert_allclose(ops.convert_to_numpy(z_q), e[nearest], rtol=1e-5, atol=1e-6)
    sq = ((z - e[nearest]) ** 2).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(ops.convert_to_numpy(loss), 1.25 * sq, rtol=1e-5)  # commitment + codebook loss
    p = np.bincount(nearest.ravel(), minlength=5) / nearest.size
    np.testing.assert_allclose(float(perplexity), np.exp(-np.sum(p[p > 0] * np.log(p[p > 0]))), rtol=1e-5)
    # straight through: d z_q / d z_e is the identity, so the gradient of sum(w * z_q) is w
    w = np.random.default_rng(2).normal(size=z.shape).astype("float32")
    np.testing.assert_allclose(_grad(lambda v: q(v)[0] * ops.convert_to_tensor(w), z), w, rtol=1e-6)
    # of the loss only the commitment term reaches the encoder: 2 * beta * (z_e - e)
    np.testing.assert_allclose(_grad(lambda v: q(v)[2], z), 0.5 * (z - e[nearest]), rtol=1e-4, atol=1e-6)


def test_one_ema_step_matches_numpy():
    q, e = _quantizer(ema=True)
    assert not q.codebook.trainable
    z = np.random.default_rng(3).normal(size=(4, 2, 2, 3)).astype("float32")
    q(z, training=True)
    flat = z.reshape(-1, 3)
    one_hot = np.eye(5)[np.argmin(((flat[:, None] - e) ** 2).sum(-1), axis=1)]
    count = 0.9 * 1.0 + 0.1 * one_hot.sum(0)
    total = 0.9 * e + 0.1 * one_hot.T @ flat
    n = count.sum()
    smoothed = (count + 1e-5) / (n + 5 * 1e-5) * n
    np.testing.assert_allclose(ops.convert_to_numpy(q.ema_count), count, rtol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(q.codebook), total / smoothed[:, None], rtol=1e-4, atol=1e-6)
    before = ops.convert_to_numpy(q.codebook).copy()
    q(z, training=False)  # no update outside training
    np.testing.assert_array_equal(ops.convert_to_numpy(q.codebook), before)


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_the_masks_see_only_earlier_positions(mask_type):
    v, h = causal_mask((3, 3), "v", mask_type), causal_mask((1, 3), "h", mask_type)
    np.testing.assert_array_equal(v, [[1, 1, 1], [int(mask_type == "B")] * 3, [0, 0, 0]])
    np.testing.assert_array_equal(h, [[1, int(mask_type == "B"), 0]])


def test_the_pixelcnn_output_never_depends_on_later_positions():
    keras.utils.set_random_seed(0)
    model = GatedPixelCnn(6, (5, 5), layers=3, filters=8)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 6, size=(1, 5, 5)).astype("int32")
    ref = ops.convert_to_numpy(model(base))
    for j in range(25):
        changed = base.copy()
        changed[0].flat[j] = (changed[0].flat[j] + 1 + rng.integers(0, 5)) % 6
        out = ops.convert_to_numpy(model(changed)).reshape(25, -1)
        diff = np.abs(out - ref.reshape(25, -1)).max(axis=1)
        assert np.all(diff[:j + 1] == 0), j  # this position and every one before it: unchanged
        assert j == 24 or diff[j + 1:].max() > 0  # a later one sees it (the receptive field is not empty)


def test_a_pixelcnn_sampler_fits_samples_and_scores_code_maps(tmp_path):
    codes = np.random.default_rng(0).integers(0, 2, size=(1280, 3, 3)).astype("int32")  # codes 0 and 1 only
    s = samplers.PixelCnn(codebook_size=4, epochs=20, layers=2, filters=8).fit(codes)
    drawn = s.sample(50, seed=3)
    assert drawn.shape == (50, 3, 3) and drawn.dtype == np.int32 and drawn.min() >= 0 and drawn.max() <= 3
    assert np.mean(drawn <= 1) > 0.9  # it learned that codes 2 and 3 never occur
    np.testing.assert_array_equal(drawn, s.sample(50, seed=3))  # seeded
    again = samplers.PixelCnn(codebook_size=4).load(s.save(tmp_path / "p.h5"))
    np.testing.assert_allclose(again.log_prob(codes[:5]), s.log_prob(codes[:5]), rtol=1e-6)
    assert np.all(s.log_prob(codes[:5]) > 9 * np.log(0.25))  # better than uniform over 4 codes


@pytest.mark.parametrize("cls, shape, code", [(MnistParams, (28, 28, 1), (7, 7)),
                                              (FashionMnistParams, (28, 28, 1), (7, 7)),
                                              (Cifar10Params, (32, 32, 3), (8, 8)),
                                              (Caltech101_92Params, (92, 92, 3), (23, 23))])
def test_shapes_on_each_datasets_image_size(cls, shape, code):
    params = cls(**TINY)
    vae = build_vae(params, shape)
    x = np.random.default_rng(0).random((2, *shape)).astype("float32")
    out = vae(x)
    assert tuple(out["codes"].shape) == (2, *code)
    assert tuple(out["params"].shape) == (2, *shape[:2], vae.likelihood.param_channels())
    assert code_encoder(vae)(x).shape == (2, *code) and code_decoder(vae)(out["codes"]).shape == (2, *shape)
    assert "_vq8x3" in params.model_prefix()


def test_bad_combinations_are_one_line_errors():
    for extra, words in (({"conditional": True}, "--conditional"), ({"prior": "mog"}, "--prior mog"),
                         ({"objective": "iwae"}, "--objective iwae"), ({"sampler": "gmm"}, "--sampler gmm"),
                         ({"vq_downsample": 3}, "not divisible by 8")):
        with pytest.raises(UserError, match=words):
            MnistParams(**TINY, **extra)
    with pytest.raises(UserError, match="only a vq model decodes"):
        MnistParams(sampler="pixelcnn")
    from vaelab.models import registry

    with pytest.raises(UserError, match="continuous latent vectors"):
        registry.sampler(MnistParams(**TINY), "normal")
    assert registry.sampler(MnistParams(**TINY)).name == "pixelcnn"  # the default of a vq model


SAVE_SCRIPT = """
import sys, json, numpy as np, keras
from vaelab.config.params import MnistParams
from vaelab.models.vae import build_vae
from vaelab.models.vq import code_encoder, code_decoder
from vaelab.models import saving
from vaelab.core import artifacts
folder = sys.argv[1]
keras.utils.set_random_seed(0)
vae = build_vae(MnistParams(architecture="vq", codebook_size=8, codebook_dim=3, filters=4, blocks=1), (28, 28, 1))
x = np.random.default_rng(0).random((6, 28, 28, 1)).astype("float32")
vae.compile(optimizer="adam")
vae.fit(x, batch_size=3, epochs=1, verbose=0)  # EMA steps move the codebook
artifacts.save_model(vae, folder + "/vae.h5")
artifacts.save_model(code_encoder(vae), folder + "/encoder.h5")
artifacts.save_model(code_decoder(vae), folder + "/decoder.h5")
back = saving.load_model(folder + "/vae.h5")
codes = vae.encode_codes(x)
print(json.dumps({"codes": codes.tolist(), "reloaded_codes": back.encode_codes(x).tolist(),
                  "recon": vae.reconstruct(x).ravel()[::50].tolist(),
                  "reloaded_recon": back.reconstruct(x).ravel()[::50].tolist(),
                  "codebook": keras.ops.convert_to_numpy(vae.quantizer.codebook).tolist(),
                  "reloaded_codebook": keras.ops.convert_to_numpy(back.quantizer.codebook).tolist()}))
"""

PLAIN_LOAD = """
import sys, json, numpy as np, keras
x = np.random.default_rng(0).random((6, 28, 28, 1)).astype("float32")
enc = keras.saving.load_model(sys.argv[1] + "/encoder.h5", compile=False)
dec = keras.saving.load_model(sys.argv[1] + "/decoder.h5", compile=False)
codes = np.asarray(keras.ops.convert_to_numpy(enc(x)))
print(json.dumps({"codes": codes.astype(int).tolist(),
                  "recon": keras.ops.convert_to_numpy(dec(codes.astype("int32"))).ravel()[::50].tolist()}))
"""


def _run(script, backend, folder, with_vaelab=True):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": str(ROOT) if with_vaelab else ""}
    done = subprocess.run([sys.executable, "-c", script, str(folder)], env=env, capture_output=True, text=True,
                          timeout=300, cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_save_load_identical_outputs_and_the_files_load_in_plain_keras(backend, tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("runs every backend in subprocesses from the TensorFlow session only")
    saved = _run(SAVE_SCRIPT, backend, tmp_path)
    assert saved["codes"] == saved["reloaded_codes"] and saved["codebook"] == saved["reloaded_codebook"]
    np.testing.assert_array_equal(saved["recon"], saved["reloaded_recon"])
    plain = _run(PLAIN_LOAD, backend, tmp_path, with_vaelab=False)  # no vaelab on the path at all
    assert plain["codes"] == saved["codes"]
    np.testing.assert_allclose(plain["recon"], saved["recon"], rtol=1e-5, atol=1e-6)


def test_without_ema_the_codebook_is_trained_by_its_loss():
    params = MnistParams(**{**TINY, "codebook_ema": False})
    assert params.model_prefix().endswith("_vq8x3_noema")
    vae = build_vae(params, (28, 28, 1))
    vae.compile(optimizer="adam")
    before = ops.convert_to_numpy(vae.quantizer.codebook).copy()
    x = np.random.default_rng(0).random((16, 28, 28, 1)).astype("float32")
    history = vae.fit(x, batch_size=8, epochs=1, verbose=0).history
    assert vae.quantizer.codebook.trainable and np.isfinite(history["vq_loss"][0])
    assert np.abs(ops.convert_to_numpy(vae.quantizer.codebook) - before).max() > 1e-4  # Adam moved it
