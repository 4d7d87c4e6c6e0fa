"""The VAE: the KL and the per-sample terms against independent numpy computations, the loss each objective
trains on, KL warm-up and free bits, shapes, and save/load (replica scaling: test_distribute)."""

import keras
import numpy as np
import pytest
from scipy.stats import norm

from vaelab.core import artifacts
from vaelab.models import saving
from vaelab.models import vae as models
from vaelab.config.conv_params import Cifar10Params
from vaelab.config.params import MnistParams


def test_kl_matches_a_monte_carlo_estimate():
    mu = np.array([[0.5, -1.0, 2.0]], dtype="float32")
    log_var = np.array([[0.0, np.log(0.3), np.log(2.5)]], dtype="float32")
    kl = float(keras.ops.convert_to_numpy(models.kl_divergence(mu, log_var))[0])
    rng = np.random.default_rng(0)
    sd = np.exp(0.5 * log_var[0])
    z = mu[0] + sd * rng.standard_normal((400_000, 3))
    mc = np.mean(np.sum(norm.logpdf(z, mu[0], sd) - norm.logpdf(z), axis=1))
    closed = 0.5 * np.sum(mu[0] ** 2 + sd ** 2 - 1 - log_var[0])
    np.testing.assert_allclose(kl, closed, rtol=1e-5)
    np.testing.assert_allclose(kl, mc, rtol=0.01)


def test_kl_is_zero_at_the_prior():
    zeros = np.zeros((3, 4), dtype="float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(models.kl_divergence(zeros, zeros)), 0.0, atol=1e-7)


def test_log_q_minus_log_p_is_the_two_densities_at_z():
    rng = np.random.default_rng(1)
    mu, lv, z = rng.normal(size=(3, 4, 5)).astype("float32")
    got = keras.ops.convert_to_numpy(models.log_q_minus_log_p(z, mu, lv))
    expected = np.sum(norm.logpdf(z, mu, np.exp(0.5 * lv)) - norm.logpdf(z), axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def _vae(**kw):
    return models.build_vae(MnistParams(**{"latent_dim": 2, "intermediate_dim": 16, "seed": 1, **kw}), (28, 28, 1))


def _np(out):
    return {k: np.asarray(keras.ops.convert_to_numpy(v), dtype=np.float64) for k, v in out.items()}


def test_shapes_and_outputs():
    vae = _vae(latent_dim=3)
    out = vae(np.random.rand(5, 784).astype("float32"))
    assert tuple(out["params"].shape) == (5, 784)  # Bernoulli logits, flat as the original decoder
    assert tuple(out["z_mean"].shape) == (5, 3) and tuple(out["kl_dims"].shape) == (5, 3)
    assert tuple(out["kl"].shape) == tuple(out["log_qp"].shape) == (5,)
    assert vae.latent_dim == 3 and vae.image_shape == (28, 28, 1)
    assert models.mean_encoder(vae.encoder).output_shape == (None, 3)
    assert models.image_decoder(vae).output_shape == (None, 784)


def test_the_elbo_loss_is_784_bce_plus_kl():
    vae = _vae()
    x = np.random.default_rng(0).random((8, 784)).astype("float32")
    out = vae(x)
    loss = float(keras.ops.convert_to_numpy(vae.compute_loss(x, None, out)))
    o = _np(out)
    p = 1.0 / (1.0 + np.exp(-o["params"]))
    bce = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    kl = -0.5 * np.sum(1 + o["z_log_var"] - o["z_mean"] ** 2 - np.exp(o["z_log_var"]), axis=1)
    np.testing.assert_allclose(loss, np.mean(bce + kl), rtol=1e-4)
    assert [m.name for m in vae.metrics][-2:] == ["reconstruction_loss", "kl_loss"]


def test_iwae_with_k_1_is_the_one_sample_elbo_and_k_samples_repeat_each_example():
    x = np.random.default_rng(2).random((4, 784)).astype("float32")
    one = _vae(objective="iwae", iwae_k=1)
    out = one(x)
    o = _np(out)
    p = 1.0 / (1.0 + np.exp(-o["params"]))
    log_px = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    loss = float(keras.ops.convert_to_numpy(one.compute_loss(x, None, out)))
    np.testing.assert_allclose(loss, -np.mean(log_px - o["log_qp"]), rtol=1e-5)
    five = _vae(objective="iwae", iwae_k=5)
    out = five(x)
    assert tuple(out["params"].shape) == (20, 784)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out["x"])[5:10], np.repeat(x[1:2], 5, axis=0))
    o = _np(out)
    p = 1.0 / (1.0 + np.exp(-o["params"]))
    log_w = (np.sum(o["x"] * np.log(p) + (1 - o["x"]) * np.log(1 - p), axis=1) - o["log_qp"]).reshape(4, 5)
    expected = -np.mean(np.log(np.mean(np.exp(log_w - log_w.max(1, keepdims=True)), axis=1)) + log_w.max(1))
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(five.compute_loss(x, None, out))), expected,
                               rtol=1e-5)


def test_free_bits_stop_penalising_dimensions_below_the_threshold():
    vae = _vae(free_bits=5.0)
    x = np.random.default_rng(3).random((6, 784)).astype("float32")
    out = vae(x)
    o = _np(out)
    p = 1.0 / (1.0 + np.exp(-o["params"]))
    bce = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    expected = bce.mean() + np.sum(np.maximum(o["kl_dims"].mean(axis=0), 5.0))
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(vae.compute_loss(x, None, out))), expected,
                               rtol=1e-5)


def test_kl_warmup_weight_rises_with_the_optimizer_steps_and_is_logged():
    vae = models.build_vae(MnistParams(intermediate_dim=8, kl_warmup=2), (28, 28, 1), steps_per_epoch=4)
    assert vae.kl_warmup_steps == 8
    vae.compile(optimizer="sgd")
    x = np.random.default_rng(4).random((16, 784)).astype("float32")
    history = vae.fit(x, batch_size=4, epochs=3, verbose=0, shuffle=False).history
    # the mean of the weight over each epoch's steps 0-3, 4-7 and 8-11 (linear to 1 at step 8)
    np.testing.assert_allclose(history["kl_weight"], [np.mean([0, 1, 2, 3]) / 8, np.mean([4, 5, 6, 7]) / 8, 1.0],
                               rtol=1e-6)


def test_h5_save_and_load_give_identical_outputs(tmp_path):
    vae = _vae()
    z = np.random.default_rng(1).standard_normal((6, 2)).astype("float32")
    x = np.random.default_rng(2).random((6, 784)).astype("float32")
    for model, path, inp in ((models.image_decoder(vae), tmp_path / "d.h5", z),
                             (models.mean_encoder(vae.encoder), tmp_path / "e.h5", x)):
        artifacts.save_model(model, path)
        again = saving.load_model(path)
        np.testing.assert_array_equal(again.predict(inp, verbose=0), model.predict(inp, verbose=0))
    artifacts.save_model(vae, tmp_path / "v.h5")
    again = saving.load_model(tmp_path / "v.h5")
    assert isinstance(again, models.VAE) and again.likelihood == vae.likelihood
    np.testing.assert_array_equal(again.decoder.predict(z, verbose=0), vae.decoder.predict(z, verbose=0))


def tiny_cifar(**kw):
    return Cifar10Params(**{"filters": 4, "intermediate_dim": 8, "latent_dim": 3, **kw})


def test_conv_loss_is_bce_summed_over_pixels_and_channels_plus_kl_summed_over_latents():
    vae = models.build_vae(tiny_cifar(), (32, 32, 3))
    x = np.random.default_rng(1).random((4, 32, 32, 3)).astype("float32")
    out = vae(x)
    o = _np(out)
    p = 1.0 / (1.0 + np.exp(-o["params"]))
    bce = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=(1, 2, 3))
    kl = -0.5 * (1 + o["z_log_var"] - o["z_mean"] ** 2 - np.exp(o["z_log_var"])).sum(axis=1)
    terms = _np(vae.sample_terms(x, out))
    np.testing.assert_allclose(terms["recon"], bce, rtol=1e-4)
    np.testing.assert_allclose(terms["kl"], kl, rtol=1e-4, atol=1e-6)


def test_reported_reconstruction_and_kl_add_up_to_the_loss_with_a_short_last_batch():
    """The trackers are weighted by batch size like Keras's loss: 10 images in batches of 4, 4, 2."""
    from vaelab.data.batches import image_batches

    vae = models.build_vae(tiny_cifar(epsilon_std=0.0), (32, 32, 3))  # no sampling noise: repeatable
    vae.compile(optimizer="adam")
    images = np.random.default_rng(4).integers(0, 256, size=(10, 32, 32, 3), dtype=np.uint8)
    images[8:] = 255  # the short last batch differs from the rest
    result = vae.evaluate(image_batches(images, 4), verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(result["reconstruction_loss"] + result["kl_loss"], rel=1e-5)
    x = images.astype("float32") / 255
    recon = _np(vae.sample_terms(x, vae(x)))["recon"]
    assert result["reconstruction_loss"] == pytest.approx(recon.mean(), rel=1e-4)


def test_models_saved_before_likelihoods_were_parts_still_score_their_sigmoid_outputs():
    """A decoder that ends in the sigmoid (config ``reconstruction="bce"``) is read as probabilities."""
    encoder, _ = models.build_vae(MnistParams(intermediate_dim=8), (28, 28, 1)).encoder, None
    z = keras.Input((2,))
    decoder = keras.Model(z, keras.layers.Dense(784, activation="sigmoid")(z))
    vae = models.VAE(encoder, decoder, reconstruction="bce", reconstruction_weight=784.0)
    assert vae.likelihood.from_logits is False and models.image_decoder(vae) is decoder
    x = np.random.default_rng(5).random((3, 784)).astype("float32")
    out = vae(x)
    p = np.clip(_np(out)["params"], 1e-7, 1 - 1e-7)
    expected = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    np.testing.assert_allclose(_np(vae.sample_terms(x, out))["recon"], expected, rtol=1e-4)


def test_the_dense_bernoulli_vae_scores_flat_vectors_as_images():
    """sample_terms gives a pixelwise likelihood the flat vectors: the same terms as in image layout."""
    from vaelab.config.experiments import MNIST
    from vaelab.models.vae import build_vae
    from vaelab.config.params import MnistParams

    vae = build_vae(MnistParams(intermediate_dim=8), MNIST.image_shape)
    x = (np.random.default_rng(0).random((4, 784)) < 0.3).astype("float32")
    out = vae(x)
    terms = vae.sample_terms(x, out)
    images = vae.likelihood.log_prob(x.reshape(4, 28, 28, 1), keras.ops.reshape(out["params"], (4, 28, 28, 1)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(terms["log_px"]), keras.ops.convert_to_numpy(images),
                               rtol=1e-6)
