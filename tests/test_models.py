"""The VAE: KL and reconstruction terms, the loss it trains on, shapes, save/load (replica scaling: test_distribute)."""

import keras
import numpy as np
from scipy.stats import norm

from vaelab import artifacts, models
from vaelab.params import MnistParams


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


def test_reconstruction_error_is_mean_bce_per_example():
    x = np.array([[0.0, 1.0, 0.5, 1.0]], dtype="float32")
    x_hat = np.array([[0.1, 0.8, 0.5, 0.99]], dtype="float32")
    expected = -np.mean(x * np.log(x_hat) + (1 - x) * np.log(1 - x_hat))
    got = keras.ops.convert_to_numpy(models.reconstruction_error(x, x_hat, "bce"))
    np.testing.assert_allclose(got, [expected], rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(models.reconstruction_error(x, x_hat, "mse")),
                               [np.mean((x - x_hat) ** 2)], rtol=1e-6)


def _small_vae(latent=2):
    return models.build_dense_vae(MnistParams(latent_dim=latent, intermediate_dim=16, seed=1))


def test_shapes_and_outputs():
    vae = _small_vae(latent=3)
    out = vae(np.random.rand(5, 784).astype("float32"))
    assert tuple(out["reconstruction"].shape) == (5, 784)
    assert tuple(out["z_mean"].shape) == (5, 3) and tuple(out["z_log_var"].shape) == (5, 3)
    assert vae.latent_dim == 3
    assert vae.reconstruction_weight == 784.0
    assert models.mean_encoder(vae.encoder).output_shape == (None, 3)


def test_loss_is_784_bce_plus_kl():
    vae = _small_vae()
    x = np.random.default_rng(0).random((8, 784)).astype("float32")
    out = vae(x)
    loss = float(keras.ops.convert_to_numpy(vae.compute_loss(x, None, out)))
    x_hat = np.clip(keras.ops.convert_to_numpy(out["reconstruction"]), 1e-7, 1 - 1e-7)
    bce = -np.sum(x * np.log(x_hat) + (1 - x) * np.log(1 - x_hat), axis=1)
    mu, lv = (keras.ops.convert_to_numpy(out[k]) for k in ("z_mean", "z_log_var"))
    kl = -0.5 * np.sum(1 + lv - mu ** 2 - np.exp(lv), axis=1)
    np.testing.assert_allclose(loss, np.mean(bce + kl), rtol=1e-4)
    assert [m.name for m in vae.metrics][-2:] == ["reconstruction_loss", "kl_loss"]


def test_h5_save_and_load_give_identical_outputs(tmp_path):
    vae = _small_vae()
    z = np.random.default_rng(1).standard_normal((6, 2)).astype("float32")
    x = np.random.default_rng(2).random((6, 784)).astype("float32")
    for model, path, inp in ((vae.decoder, tmp_path / "d.h5", z),
                             (models.mean_encoder(vae.encoder), tmp_path / "e.h5", x)):
        artifacts.save_model(model, path)
        again = artifacts.load_model(path)
        np.testing.assert_array_equal(again.predict(inp, verbose=0), model.predict(inp, verbose=0))
    artifacts.save_model(vae, tmp_path / "v.h5")
    again = artifacts.load_model(tmp_path / "v.h5")
    assert isinstance(again, models.VAE)
    np.testing.assert_array_equal(again.decoder.predict(z, verbose=0), vae.decoder.predict(z, verbose=0))
