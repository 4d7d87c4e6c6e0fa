"""The hierarchical architectures: shapes for every image size, the lower layers' KL against numpy, log q - log p
against the KL, deterministic generation, .h5 round trips, and the same numbers on TensorFlow, JAX and PyTorch
(the conv model here, the dense one through tests/package/test_backends.py); the dense one trained with the IWAE bound."""

import json
import os
import subprocess
import sys
import textwrap
import types

import keras
import numpy as np
import pytest
from conftest import ROOT

from vaelab.models import saving
from vaelab.models import discretized
from vaelab.models.architectures import topdown, topdown_conv, topdown_dense
from vaelab.core.errors import UserError
from vaelab.models.layers import DiscretizedLogisticMean


def tiny(latent_scales="4,8,16", **overrides):
    """Params small enough that a model builds and runs in well under a second."""
    values = dict(latent_dim=4, filters=8, blocks=1, latent_channels=2, latent_scales=latent_scales, seed=3,
                  patch=1)
    return types.SimpleNamespace(**{**values, **overrides})


def images(n, shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape)).astype("float32") / 255.0


def numpy_of(*tensors):
    return [keras.ops.convert_to_numpy(t) for t in tensors]


@pytest.mark.parametrize("shape, scales, sides", [
    ((28, 28, 1), "7,14,28", [28, 14, 7]),
    ((32, 32, 3), "4,8,16", [32, 16, 8, 4]),
    ((92, 92, 3), "23,46", [92, 46, 23]),
    ((128, 128, 3), "4,8,8,16", [128, 64, 32, 16, 8, 4]),
])
def test_shapes_for_each_image_size(shape, scales, sides):
    assert topdown.resolutions(shape) == sides
    out_channels = discretized.param_channels(shape[-1], 2)
    encoder, decoder = topdown_conv.build(tiny(scales), shape, out_channels)
    z_mean, z_log_var, *features = encoder(images(2, shape))
    assert z_mean.shape == z_log_var.shape == (2, 4) and keras.backend.standardize_dtype(z_mean.dtype) == "float32"
    distinct = sorted(set(int(s) for s in scales.split(",")))
    assert [tuple(f.shape) for f in features] == [(2, s, s, 8) for s in distinct]
    params, kl, log_qp = decoder([z_mean, *features])
    assert params.shape == (2, shape[0], shape[1], out_channels)
    assert keras.backend.standardize_dtype(params.dtype) == "float32"
    assert kl.shape == log_qp.shape == (2,)
    assert np.all(keras.ops.convert_to_numpy(kl) > 0)
    generated, kl0, log_qp0 = numpy_of(*decoder(z_mean))
    assert generated.shape == (2, shape[0], shape[1], out_channels)
    np.testing.assert_array_equal(np.concatenate([kl0, log_qp0]), 0.0)


def test_patches_halve_the_network_and_keep_the_image_size():
    shape, channels = (32, 32, 3), discretized.param_channels(3, 1)
    assert topdown.resolutions(shape, patch=2) == [16, 8, 4]
    encoder, decoder = topdown_conv.build(tiny("4,8,16", patch=2), shape, channels)
    z_mean, _, *features = encoder(images(2, shape))
    assert [tuple(f.shape[1:3]) for f in features] == [(4, 4), (8, 8), (16, 16)]
    assert decoder([z_mean, *features])[0].shape == (2, 32, 32, channels)
    x = np.arange(2 * 4 * 6 * 3, dtype="float32").reshape(2, 4, 6, 3)
    patches = keras.ops.convert_to_numpy(topdown.space_to_depth(x, 2))
    np.testing.assert_array_equal(patches[1, 1, 2], x[1, 2:4, 4:6].ravel())  # one 2x2 patch, row by row
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(topdown.depth_to_space(patches, 2)), x)


@pytest.mark.parametrize("shape, scales, message", [
    ((28, 28, 1), "4,8", "latent_scales: 4 is not a resolution of the 28x28 network; choose from 7, 14, 28"),
    ((32, 32, 3), "16,8", "latent_scales go top-down, coarse to fine"),
    ((32, 32, 3), "4,x", "latent_scales must be comma-separated integers"),
    ((30, 30, 3), "8", "choose from 15, 30"),
    ((28, 28, 1), "7", "patch 3 must be >= 1 and divide the image's height and width"),
])
def test_impossible_scales_are_one_line_user_errors(shape, scales, message):
    with pytest.raises(UserError, match=message) as info:
        topdown_conv.build(tiny(scales, patch=3 if "patch" in message else 1), shape, 3)
    assert "\n" not in str(info.value)


def test_default_scales_are_the_heights_below_the_finest_up_to_32px():
    assert [topdown.default_scales(s) for s in ((28, 28, 1), (32, 32, 3), (92, 92, 3), (128, 128, 3))] == [
        (7, 14), (4, 8, 16), (23,), (4, 8, 16, 32)]
    assert topdown.check_scales((32, 32, 3), "") == (4, 8, 16)


def test_no_lower_latents_is_a_resnet_vae():
    encoder, decoder = topdown_conv.build(tiny("none"), (32, 32, 3), 3)
    z_mean, z_log_var, *features = encoder(images(2, (32, 32, 3)))
    assert features == []
    params, kl, _ = numpy_of(*decoder([z_mean]))
    assert params.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(kl, 0.0)


def test_kl_matches_numpy_closed_form():
    encoder, decoder = topdown_conv.build(tiny("4,8,8"), (32, 32, 3), 3)
    z_mean, _, *features = encoder(images(3, (32, 32, 3)))
    _, kl, log_qp, layers = decoder.latent_distributions([z_mean, *features])
    expected = np.zeros(3)
    for layer in layers:
        mq, sq, mp, sp = (keras.ops.convert_to_numpy(layer[k]).astype(np.float64)
                          for k in ("mu_q", "log_std_q", "mu_p", "log_std_p"))
        sq, sp = np.exp(sq), np.exp(sp)
        expected += (np.log(sp / sq) + (sq**2 + (mq - mp) ** 2) / (2 * sp**2) - 0.5).reshape(3, -1).sum(axis=1)
    assert [tuple(layer["z"].shape) for layer in layers] == [(3, 4, 4, 2), (3, 8, 8, 2), (3, 8, 8, 2)]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(kl), expected, rtol=1e-4)
    assert np.all(expected > 0.01)  # the untrained posteriors differ from the priors: a real test of the formula


def test_gaussian_kl_of_known_distributions():
    ops = keras.ops
    # KL(N(1, 0.5^2) || N(0, 2^2)) = log 4 + (0.25 + 1) / 8 - 1/2
    value = topdown.gaussian_kl(ops.ones(1), ops.log(0.5 * ops.ones(1)), ops.zeros(1), ops.log(2 * ops.ones(1)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(value), [np.log(4) + 1.25 / 8 - 0.5], rtol=1e-6)


def test_log_q_minus_log_p_averages_to_the_kl():
    """E_q[log q - log p] is the KL: over 4000 draws for one image the two means agree within 4 standard errors."""
    encoder, decoder = topdown_conv.build(tiny("4,8"), (16, 16, 3), 3)
    for posterior in decoder.posteriors:  # posteriors far from their priors, as after training
        kernel = posterior.convs[-1].kernel
        kernel.assign(4.0 * kernel)
    assert_log_qp_averages_to_kl(encoder, decoder, images(1, (16, 16, 3)))


def assert_log_qp_averages_to_kl(encoder, decoder, x, n=4000):
    """Over ``n`` draws of the lower latents for one image ``x``, the means of log q - log p and of the analytic
    KL agree within 4 standard errors."""
    z_mean, _, *features = encoder(x)
    repeated = [keras.ops.repeat(t, n, axis=0) for t in (z_mean, *features)]
    _, kl, log_qp = numpy_of(*decoder(repeated))
    assert np.std(kl) > 0  # the lower layer's KL depends on the draw above it, so this is not trivial
    error = np.sqrt(np.var(log_qp - kl) / n)
    assert abs(np.mean(log_qp) - np.mean(kl)) < 4 * error
    assert error < 0.05 * np.mean(kl)  # so the first check could see an error of a fifth of the KL


def test_generation_at_temperature_zero_is_deterministic_and_above_zero_varies():
    _, decoder = topdown_conv.build(tiny(), (32, 32, 3), 3)
    assert_temperature_zero_is_deterministic_and_one_varies(decoder)


def assert_temperature_zero_is_deterministic_and_one_varies(decoder):
    """A decoder given ``z`` alone: the same images twice at its temperature 0, different ones at 1 (a copy
    made from its config with the same weights)."""
    z = np.random.default_rng(1).normal(size=(2, decoder.latent_dim)).astype("float32")
    first, second = numpy_of(decoder(z)[0], decoder(z)[0])
    np.testing.assert_array_equal(first, second)
    warm = type(decoder).from_config({**decoder.get_config(), "temperature": 1.0})
    warm.set_weights(decoder.get_weights())
    a, b = numpy_of(warm(z)[0], warm(z)[0])
    assert np.abs(a - b).max() > 1e-3
    return z


@pytest.mark.parametrize("patch", [1, 2])
def test_saved_models_load_in_safe_mode_with_identical_outputs(tmp_path, patch):
    channels = discretized.param_channels(3, 1)
    encoder, decoder = topdown_conv.build(tiny(patch=patch), (32, 32, 3), channels)
    x = images(2, (32, 32, 3))
    z = keras.Input(shape=(4,), name="z")
    image_decoder = keras.Model(z, DiscretizedLogisticMean(3)(decoder(z)[0]), name="decoder")
    outputs = {}
    for name, model, inputs in (("encoder", encoder, x), ("decoder", decoder, encoder(x)[0]),
                                ("image_decoder", image_decoder, encoder(x)[0])):
        model.save(tmp_path / f"{name}.h5")
        loaded = saving.load_model(tmp_path / f"{name}.h5")
        before, after = keras.tree.flatten(model(inputs)), keras.tree.flatten(loaded(inputs))
        for b, a in zip(before, after):
            np.testing.assert_array_equal(*numpy_of(b, a))
        outputs[name] = loaded
    assert outputs["decoder"].get_config() == decoder.get_config()
    assert keras.saving.load_model(tmp_path / "image_decoder.h5", safe_mode=True, compile=False) is not None


BACKEND_SCRIPT = textwrap.dedent("""
    import json, os, sys, types
    import numpy as np, keras
    from vaelab.models import saving
    from vaelab.models import discretized
    from vaelab.models.architectures import topdown, topdown_conv, topdown_dense
    from vaelab.models.layers import Sampling

    params = types.SimpleNamespace(latent_dim=4, filters=8, blocks=1, latent_channels=2, latent_scales="4,8", seed=3,
                                   patch=1)
    shape, path = (16, 16, 3), sys.argv[1]
    if not os.path.exists(path):  # the first (TensorFlow) run saves the decoder every backend then loads
        topdown_conv.build(params, shape, discretized.param_channels(3, 1))[1].save(path)
    z = np.linspace(-1, 1, 8, dtype="float32").reshape(2, 4)
    generated = keras.ops.convert_to_numpy(saving.load_model(path)(z)[0])

    colours = np.random.default_rng(0).integers(0, 256, size=(16, 1, 1, 3))
    x = (np.broadcast_to(colours, (16, *shape)) / 255.0).astype("float32")  # flat colours: quick to learn
    encoder, decoder = topdown_conv.build(params, shape, discretized.param_channels(3, 1))

    class Tiny(keras.Model):  # the ELBO the VAE class computes, enough to take gradients through everything
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder, self.sampling = encoder, decoder, Sampling(seed=1)

        def call(self, x):
            z_mean, z_log_var, *features = self.encoder(x)
            out, kl, _ = self.decoder([self.sampling([z_mean, z_log_var]), *features])
            kl_top = -0.5 * keras.ops.sum(1 + z_log_var - z_mean**2 - keras.ops.exp(z_log_var), axis=-1)
            nll = -keras.ops.sum(keras.ops.reshape(discretized.log_prob(x, out), (-1, 256)), axis=-1)
            return nll + kl_top + kl

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            return keras.ops.mean(y_pred)

    model = Tiny()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model(x[:1])
    before = [keras.ops.convert_to_numpy(v).copy() for v in model.trainable_variables]
    losses = model.fit(x, batch_size=8, epochs=10, verbose=0, shuffle=False).history["loss"]
    moved = [bool(np.any(b != keras.ops.convert_to_numpy(v))) for b, v in zip(before, model.trainable_variables)]
    print(json.dumps({"generated": generated.ravel()[:50].tolist(), "first": losses[0], "last": losses[-1],
                      "variables": len(moved), "moved": sum(moved)}))
""")


def _run(script, backend, *args):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT),
           "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def on_tensorflow(tmp_path_factory):
    """(the decoder file TensorFlow saved, TensorFlow's numbers)."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("runs every backend in subprocesses from the TensorFlow session only")
    path = tmp_path_factory.mktemp("hier") / "decoder.h5"
    return path, _run(BACKEND_SCRIPT, "tensorflow", path)


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_every_backend_trains_and_generates_the_same_images(backend, on_tensorflow):
    path, reference = on_tensorflow
    result = reference if backend == "tensorflow" else _run(BACKEND_SCRIPT, backend, path)
    np.testing.assert_allclose(result["generated"], reference["generated"], rtol=1e-4, atol=1e-5)
    assert np.isfinite(result["last"]) and result["last"] < 0.95 * result["first"]  # 20 steps: about -10 %
    assert result["moved"] == result["variables"] > 50  # gradients reach every weight of encoder and decoder


# --- dense_hierarchical ------------------------------------------------------------------------------


def dense_tiny(lower="5,3", **overrides):
    values = dict(latent_dim=2, hidden_dims="16,8", intermediate_dim=8, lower_latent_dims=lower, seed=3)
    return types.SimpleNamespace(**{**values, **overrides})


def binary_images(n, seed=0):
    return (np.random.default_rng(seed).random((n, 784)) < 0.3).astype("float32")


def test_dense_shapes_and_widths_follow_the_params():
    encoder, decoder = topdown_dense.build(dense_tiny(), (28, 28, 1), 1)
    z_mean, z_log_var, *features = numpy_of(*encoder(binary_images(4)))
    assert z_mean.shape == z_log_var.shape == (4, 2)
    assert [f.shape for f in features] == [(4, 8), (4, 8)]  # one bottom-up feature per lower layer
    params, kl, log_qp, layers = decoder.latent_distributions([z_mean, *features])
    assert tuple(params.shape) == (4, 784) and tuple(kl.shape) == tuple(log_qp.shape) == (4,)
    assert [tuple(layer["z"].shape) for layer in layers] == [(4, 5), (4, 3)]
    # x -> 16 -> 8 (d_0) -> 16 -> 8 (d_1) -> 16 -> 8 -> z: three bottom-up MLPs for two lower layers
    assert [tuple(w.shape) for w in encoder.weights if len(w.shape) == 2] == [
        (784, 16), (16, 8), (8, 16), (16, 8), (8, 16), (16, 8), (8, 2), (8, 2)]
    four_channels = topdown_dense.build(dense_tiny(), (28, 28, 1), 4)[1]
    assert tuple(four_channels(z_mean)[0].shape) == (4, 28, 28, 4)
    colour_encoder, colour_decoder = topdown_dense.build(dense_tiny(), (32, 32, 3), 10)  # a mixture's numbers
    assert colour_encoder.input_shape == (None, 3072)
    assert tuple(colour_decoder(z_mean)[0].shape) == (4, 32, 32, 10)


def test_dense_priors_start_as_standard_normals_and_the_kl_matches_numpy():
    encoder, decoder = topdown_dense.build(dense_tiny(), (28, 28, 1), 1)
    z_mean, _, *features = encoder(binary_images(3))
    _, kl, _, layers = decoder.latent_distributions([z_mean, *features])
    expected = np.zeros(3)
    for layer in layers:
        mq, sq, mp, sp = (keras.ops.convert_to_numpy(layer[k]).astype(np.float64)
                          for k in ("mu_q", "log_std_q", "mu_p", "log_std_p"))
        np.testing.assert_array_equal(mp, 0.0)  # zero-initialised prior layers: N(0, I) at first
        np.testing.assert_array_equal(sp, 0.0)
        sq, sp = np.exp(sq), np.exp(sp)
        expected += (np.log(sp / sq) + (sq**2 + (mq - mp) ** 2) / (2 * sp**2) - 0.5).sum(axis=1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(kl), expected, rtol=1e-4)
    assert np.all(expected > 0.01)


def test_dense_log_q_minus_log_p_averages_to_the_kl():
    encoder, decoder = topdown_dense.build(dense_tiny("4,4"), (28, 28, 1), 1)
    for layer in (*decoder.posteriors, *decoder.priors):  # priors that depend on the draw above, as after training
        layer.kernel.assign(np.random.default_rng(5).normal(0, 0.5, layer.kernel.shape).astype("float32"))
    assert_log_qp_averages_to_kl(encoder, decoder, binary_images(1))


def test_dense_generation_takes_prior_means_and_round_trips_through_h5(tmp_path):
    encoder, decoder = topdown_dense.build(dense_tiny(), (28, 28, 1), 1)
    z = assert_temperature_zero_is_deterministic_and_one_varies(decoder)
    for name, model, inputs in (("encoder", encoder, binary_images(2)), ("decoder", decoder, z)):
        model.save(tmp_path / f"{name}.h5")
        loaded = saving.load_model(tmp_path / f"{name}.h5")
        for before, after in zip(keras.tree.flatten(model(inputs)), keras.tree.flatten(loaded(inputs))):
            np.testing.assert_array_equal(*numpy_of(before, after))
    assert loaded.get_config() == decoder.get_config()


def test_dense_hierarchical_vae_trains_with_the_iwae_bound_and_scores_with_every_layer():
    """Through the VAE: a few IWAE steps lower the loss, and the evaluation's importance terms include the lower
    layer (log q - log p of both layers, so the terms differ from the top latent's alone)."""
    from vaelab.models import vae as models
    from vaelab.config import params as P

    p = P.BinarizedMnistParams(architecture="dense_hierarchical", hidden_dims="32", lower_latent_dims="4",
                               latent_dim=2, objective="iwae", iwae_k=3, seed=1)
    vae = models.build_vae(p, (28, 28, 1), binarize=True)
    assert vae.hierarchical
    x = np.tile(binary_images(4), (16, 1))
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    losses = vae.fit(x, batch_size=16, epochs=6, verbose=0, shuffle=False).history["loss"]
    assert losses[-1] < 0.9 * losses[0]
    terms = vae.importance_terms(x[:2], 5, keras.random.SeedGenerator(0))
    assert terms["log_qp"].shape == terms["kl"].shape == (10,)
    features = vae.encoder(x[:2])
    kl_top = keras.ops.convert_to_numpy(models.kl_divergence(features[0], features[1]))
    assert np.all(terms["kl"].reshape(2, 5) > kl_top[:, None] + 1e-4)  # the lower layer's KL is in


def test_temperature_draws_the_lower_latents_of_a_saved_decoder_and_reconstructions_use_the_posterior(tmp_path):
    """Generating: ``set_temperature`` reaches the top-down decoder inside a saved ``…_decoder`` (0: the same
    image for a code every time; 1: a new draw each call); reconstructions take the lower latents from the
    posterior, so they differ from decoding ``z_mean`` alone; a one-layer model's equal it."""
    from vaelab.models import vae as models
    from vaelab.config import params as P

    p = P.BinarizedMnistParams(architecture="dense_hierarchical", hidden_dims="16", lower_latent_dims="4",
                               latent_dim=2, seed=1)
    vae = models.build_vae(p, (28, 28, 1), binarize=True)
    models.image_decoder(vae).save(tmp_path / "decoder.h5")
    decoder = saving.load_model(tmp_path / "decoder.h5")
    z = np.random.default_rng(0).normal(size=(3, 2)).astype("float32")
    assert topdown.set_temperature(decoder, 0.0)
    np.testing.assert_array_equal(*numpy_of(decoder(z), decoder(z)))
    assert topdown.set_temperature(decoder, 1.0)
    assert np.abs(np.subtract(*numpy_of(decoder(z), decoder(z)))).max() > 1e-4
    # predict() compiles once and keeps what it traced: set_temperature has it traced again (a temperature sweep
    # in one process, evaluate.py --fid-temperatures, once got the first temperature's images at every one)
    topdown.set_temperature(decoder, 0.0)
    cold = decoder.predict(z, verbose=0)
    topdown.set_temperature(decoder, 1.0)
    warm = decoder.predict(z, verbose=0)
    topdown.set_temperature(decoder, 0.0)
    assert np.abs(warm - cold).max() > 1e-4
    np.testing.assert_allclose(decoder.predict(z, verbose=0), cold, rtol=1e-6, atol=1e-6)
    x = binary_images(3)
    for layer in vae.decoder.posteriors:  # a posterior that moves away from the prior, as after training
        layer.kernel.assign(np.full(layer.kernel.shape, 0.05, "float32"))
    recon = vae.reconstruct(x, batch_size=2)
    z_mean = vae.encoder(x)[0]
    topdown.set_temperature(vae.decoder, 0.0)
    assert recon.shape == (3, 784) and 0 <= recon.min() and recon.max() <= 1
    assert np.abs(recon - numpy_of(models.image_decoder(vae)(z_mean))[0]).max() > 1e-3

    flat = models.build_vae(P.BinarizedMnistParams(hidden_dims="16", latent_dim=2), (28, 28, 1), binarize=True)
    assert not topdown.set_temperature(models.image_decoder(flat), 1.0)
    expected = numpy_of(models.image_decoder(flat)(flat.encoder(x)[0]))[0]
    np.testing.assert_allclose(flat.reconstruct(x), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_latent_layers_split_the_elbo_kl_by_layer_top_down(kind):
    """metrics.latent_layers on a hierarchical VAE: the global latent, then each lower layer with its shape;
    with the same seed and one batch it takes the ELBO's posterior draws, so the layers' KLs add up to the
    ELBO's KL term to rounding; the active-unit counts run from every unit (threshold 0) to none."""
    from vaelab.evaluation import metrics
    from vaelab.models import vae as models
    from vaelab.config import conv_params as CP
    from vaelab.config import params as P

    if kind == "dense":
        p = P.BinarizedMnistParams(architecture="dense_hierarchical", hidden_dims="16", lower_latent_dims="6,4",
                                   latent_dim=3, seed=1)
        shape, x, shapes = (28, 28, 1), binary_images(300), [[3], [6], [4]]
    else:
        p = CP.Cifar10Params(architecture="hierarchical", latent_dim=4, filters=8, blocks=1, latent_channels=2,
                            latent_scales="4,8", seed=1, likelihood="discretized_logistic", mixtures=1)
        shape, x, shapes = (32, 32, 3), images(300, (32, 32, 3)), [[4], [4, 4, 2], [8, 8, 2]]
        x = x.reshape(len(x), *shape)
    vae = models.build_vae(p, shape, binarize=kind == "dense")
    layers = metrics.latent_layers(vae, x, seed=4, batch_size=len(x))
    assert [layer["layer"] for layer in layers] == ["global", "lower 1", "lower 2"]
    assert [layer["shape"] for layer in layers] == shapes
    assert [layer["units"] for layer in layers] == [int(np.prod(s)) for s in shapes]
    assert all(layer["kl_nats"] > 0 for layer in layers)
    elbo_kl = metrics.elbo(vae, x, samples=1, seed=4)["kl"].mean()
    np.testing.assert_allclose(sum(layer["kl_nats"] for layer in layers), elbo_kl, rtol=1e-5)
    other_draws = metrics.latent_layers(vae, x, seed=5, batch_size=128)
    assert other_draws[0]["kl_nats"] == pytest.approx(layers[0]["kl_nats"], rel=1e-6)  # closed form, no draw
    assert other_draws[1]["kl_nats"] != layers[1]["kl_nats"]
    assert [layer["active_units"] for layer in metrics.latent_layers(vae, x, threshold=0.0)] == \
        [layer["units"] for layer in layers]
    assert all(layer["active_units"] == 0 for layer in metrics.latent_layers(vae, x, threshold=1e6))
