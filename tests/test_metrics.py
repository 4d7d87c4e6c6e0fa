"""vaelab.metrics against closed forms.

The IWAE and ELBO code is checked on a linear-Gaussian VAE, where everything is known exactly:

    p(z) = N(0, I_d),  p(x|z) = N(W z + b, s^2 I_D)  =>  p(x) = N(b, W W^T + s^2 I)

With W^T W diagonal the true posterior is a diagonal Gaussian, so a linear encoder can be *exact*; then every
importance weight equals p(x) and every estimate must equal log p(x) to rounding. With a deliberately wrong
encoder the bound is strict: its mean over repeats stays below log p(x) and closes the gap as k grows.
"""

import math

import keras
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from vaelab import metrics

D, LATENT, SIGMA = 5, 2, 0.6


def linear_gaussian(seed=0):
    """W (D, d) with orthogonal columns, b, and the exact posterior's (A, c, var): mean = A x + c."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((D, LATENT)))
    w = q * np.array([1.5, 0.7])
    b = rng.standard_normal(D) * 0.3
    post_var = 1.0 / (1.0 + np.diag(w.T @ w) / SIGMA ** 2)
    a = post_var[:, None] * w.T / SIGMA ** 2
    return w, b, a, -a @ b, post_var


def models(w, b, a, c, var):
    """Keras encoder x -> (A x + c, log var) and linear decoder z -> W z + b."""
    x = keras.Input((D,))
    mean_layer, log_var_layer = keras.layers.Dense(LATENT), keras.layers.Dense(LATENT)
    encoder = keras.Model(x, [mean_layer(x), log_var_layer(x)])
    mean_layer.set_weights([a.T, c])
    log_var_layer.set_weights([np.zeros((D, LATENT)), np.log(var)])
    z = keras.Input((LATENT,))
    out = keras.layers.Dense(D)
    decoder = keras.Model(z, out(z))
    out.set_weights([w.T, b])
    return encoder, decoder


def log_marginal(x, w, b):
    return multivariate_normal(b, w @ w.T + SIGMA ** 2 * np.eye(D)).logpdf(x)


GAUSS = metrics.gaussian_log_likelihood(SIGMA)


@pytest.fixture(scope="module")
def model():
    w, b, a, c, var = linear_gaussian()
    x = np.random.default_rng(1).multivariate_normal(b, w @ w.T + SIGMA ** 2 * np.eye(D), size=16)
    return w, b, a, c, var, x.astype(np.float32)


def test_exact_posterior_makes_every_estimate_the_marginal_likelihood(model):
    w, b, a, c, var, x = model
    enc, dec = models(w, b, a, c, var)
    truth = log_marginal(x.astype(np.float64), w, b)
    for k in (1, 7, 100):
        est = metrics.iwae_log_likelihood(enc, dec, x, k=k, log_likelihood=GAUSS, max_rows=64, verbose=0)
        np.testing.assert_allclose(est, truth, atol=2e-4)


def test_no_overflow_far_in_the_tail(model):
    """log w ~ -1e5: exponentiating would give 0 and log 0; the log-sum-exp must not."""
    w, b, a, c, var, x = model
    enc, dec = models(w, b, a, c, var)
    far = (x[:3] + 150.0).astype(np.float32)
    truth = log_marginal(far.astype(np.float64), w, b)
    assert np.all(truth < -1e4)
    est = metrics.iwae_log_likelihood(enc, dec, far, k=50, log_likelihood=GAUSS, verbose=0)
    np.testing.assert_allclose(est, truth, rtol=1e-6)


def wrong_encoder(model):
    w, b, a, c, var, x = model
    return models(w, b, 0.6 * a, c + 0.3, 3.0 * var)


def test_k1_is_the_one_sample_elbo_for_the_same_noise(model):
    """L_1 = log p(x|z) + log p(z) - log q(z|x) at z = mean + sd * eps, eps the first draw of the seed."""
    w, b, a, c, var, x = model
    enc, dec = wrong_encoder(model)
    est = metrics.iwae_log_likelihood(enc, dec, x, k=1, log_likelihood=GAUSS, seed=5, verbose=0)
    eps = np.random.default_rng(5).standard_normal((len(x), 1, LATENT))[:, 0]
    x64 = x.astype(np.float64)
    mean, sd = x64 @ (0.6 * a).T + c + 0.3, np.sqrt(3.0 * var)
    z = mean + sd * eps
    expected = (multivariate_normal(np.zeros(D), SIGMA ** 2 * np.eye(D)).logpdf(x64 - z @ w.T - b)
                + multivariate_normal(np.zeros(LATENT), np.eye(LATENT)).logpdf(z)
                - np.array([multivariate_normal(m, np.diag(sd ** 2)).logpdf(zi) for m, zi in zip(mean, z)]))
    np.testing.assert_allclose(est, expected, rtol=1e-5)


def analytic_elbo(x, w, b, mean, var):
    """E_q log N(x; W z + b, s^2) - KL(q || N(0, I)) for q = N(mean, diag(var))."""
    resid = x - mean @ w.T - b
    expected_ll = (-0.5 * D * math.log(2 * math.pi * SIGMA ** 2)
                   - (np.sum(resid ** 2, axis=1) + np.sum(w ** 2 * var, axis=(0, 1))) / (2 * SIGMA ** 2))
    kl = 0.5 * np.sum(var + mean ** 2 - 1.0 - np.log(var), axis=1)
    return expected_ll - kl, kl


def test_elbo_and_mean_of_k1_match_the_closed_form_elbo(model):
    w, b, a, c, var, x = model
    enc, dec = wrong_encoder(model)
    x64 = x.astype(np.float64)
    mean, qvar = x64 @ (0.6 * a).T + c + 0.3, 3.0 * var
    truth, kl = analytic_elbo(x64, w, b, mean, qvar)
    assert np.all(truth < log_marginal(x64, w, b) - 0.05)  # the wrong encoder leaves a real gap
    got = metrics.elbo(enc, dec, x, GAUSS, samples=40_000)  # Monte Carlo error ~0.03 nats
    np.testing.assert_allclose(got["kl"], kl, rtol=1e-5)
    np.testing.assert_allclose(got["elbo"], truth, atol=0.1)
    # E[L_1] = ELBO: 4000 independent L_1 of one example
    reps = np.repeat(x[:1], 4000, axis=0)
    l1 = metrics.iwae_log_likelihood(enc, dec, reps, k=1, log_likelihood=GAUSS, seed=3, verbose=0)
    assert abs(l1.mean() - truth[0]) < 4 * l1.std() / math.sqrt(len(l1))


def test_bound_stays_below_and_converges_to_the_marginal_likelihood(model):
    """E[L_k] <= log p(x) for every k (checked as mean + 3 standard errors over 300 repeats), the gap shrinks
    as k grows, and single estimates at k = 5000 are within 0.03 nats (either side: only the mean is bounded)."""
    w, b, a, c, var, x = model
    enc, dec = wrong_encoder(model)
    truth = float(log_marginal(x[0].astype(np.float64), w, b))
    reps = np.repeat(x[:1], 300, axis=0)
    gaps = []
    for k in (1, 10, 100, 1000):
        est = metrics.iwae_log_likelihood(enc, dec, reps, k=k, log_likelihood=GAUSS, seed=k, verbose=0)
        se = est.std() / math.sqrt(len(est))
        assert est.mean() <= truth + 3 * se
        gaps.append(truth - est.mean())
    assert gaps[0] > gaps[1] > gaps[2] > gaps[3] >= -3 * se
    big = metrics.iwae_log_likelihood(enc, dec, x[:4], k=5000, log_likelihood=GAUSS, max_rows=1024, verbose=0)
    np.testing.assert_allclose(big, log_marginal(x[:4].astype(np.float64), w, b), atol=0.03)


def test_memory_chunking_over_examples_and_samples_gives_the_same_distribution(model):
    """k larger than max_rows (chunks over samples) and k smaller (several examples per call) agree."""
    w, b, a, c, var, x = model
    enc, dec = wrong_encoder(model)
    reps = np.repeat(x[:1], 100, axis=0)
    small = metrics.iwae_log_likelihood(enc, dec, reps, k=40, log_likelihood=GAUSS, max_rows=7, verbose=0)
    large = metrics.iwae_log_likelihood(enc, dec, reps, k=40, log_likelihood=GAUSS, max_rows=100000, verbose=0)
    assert abs(small.mean() - large.mean()) < 4 * math.hypot(small.std(), large.std()) / 10


def test_bernoulli_likelihood_is_minus_the_vae_training_loss():
    """metrics' nats are the training loss's units: -log p(x|z) = 784 * mean BCE, KL the same formula."""
    from vaelab.models import build_dense_vae, kl_divergence, reconstruction_error
    from vaelab.params import MnistParams

    keras.utils.set_random_seed(0)
    vae = build_dense_vae(MnistParams(intermediate_dim=16))
    x = (np.random.default_rng(0).random((6, 784)) < 0.3).astype(np.float32)
    got = metrics.elbo(vae.encoder, vae.decoder, x, metrics.log_likelihood_for(vae), seed=2)
    mean, log_var = vae.encoder(x)
    eps = np.random.default_rng(2).standard_normal((6, 1, 2))[:, 0]
    z = (np.asarray(mean) + np.exp(0.5 * np.asarray(log_var)) * eps).astype(np.float32)
    recon = 784 * np.asarray(reconstruction_error(x, vae.decoder(z), "bce"))
    np.testing.assert_allclose(got["reconstruction"], recon, rtol=1e-4)
    np.testing.assert_allclose(got["kl"], np.asarray(kl_divergence(mean, log_var)), rtol=1e-4, atol=1e-5)


def test_gaussian_likelihood_for_an_mse_vae_is_its_loss_plus_the_constant():
    from vaelab.models import VAE, build_dense_decoder, build_dense_encoder

    vae = VAE(build_dense_encoder(784, 8, 2), build_dense_decoder(2, 8, 784), reconstruction="mse",
              reconstruction_weight=392.0)  # sigma^2 = 784 / (2 * 392) = 1
    ll = metrics.log_likelihood_for(vae)
    x, out = np.full((1, 1, 784), 0.5), np.full((1, 1, 784), 0.25)
    np.testing.assert_allclose(ll(x, out), -(392.0 * 0.0625 + 392 * math.log(2 * math.pi)))


def test_bits_per_dim():
    assert metrics.bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)


# --- Fréchet distance -----------------------------------------------------------------------------


def test_frechet_distance_of_a_set_to_itself_is_zero_and_grows_with_noise():
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((2000, 16)) @ rng.standard_normal((16, 16))
    assert metrics.frechet_distance(feats, feats) < 1e-6 * np.trace(np.cov(feats, rowvar=False))
    dists = [metrics.frechet_distance(feats, feats + s * rng.standard_normal(feats.shape)) for s in (0.1, 0.5, 2.0)]
    assert 0 < dists[0] < dists[1] < dists[2]


def test_frechet_distance_matches_the_gaussian_closed_form():
    """Diagonal covariances: |mu_a - mu_b|^2 + sum (sqrt(a_i) - sqrt(b_i))^2."""
    va, vb = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    mu_a, mu_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    closed = 1.0 + 4.0 + np.sum((np.sqrt(va) - np.sqrt(vb)) ** 2)
    assert metrics.frechet_distance_from_moments(mu_a, np.diag(va), mu_b, np.diag(vb)) == pytest.approx(closed)
    rotation, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))  # invariant under rotation
    assert metrics.frechet_distance_from_moments(rotation @ mu_a, rotation @ np.diag(va) @ rotation.T,
                                                 rotation @ mu_b, rotation @ np.diag(vb) @ rotation.T
                                                 ) == pytest.approx(closed)
    rng = np.random.default_rng(1)  # from samples it converges to the same number
    a = mu_a + np.sqrt(va) * rng.standard_normal((200_000, 3))
    b = mu_b + np.sqrt(vb) * rng.standard_normal((200_000, 3))
    assert metrics.frechet_distance(a, b) == pytest.approx(closed, rel=0.02)


def test_frechet_distance_rejects_mismatched_features():
    with pytest.raises(ValueError, match="same F"):
        metrics.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))


# --- discretized logistic (bits/dim) --------------------------------------------------------------


def single_logistic(mean, log_scale):
    """Decoder parameters of one logistic per sub-pixel, no channel coupling (vaelab.discretized's layout)."""
    mean, log_scale = np.asarray(mean, dtype=np.float64), np.asarray(log_scale, dtype=np.float64)
    c = mean.shape[-1]
    coeffs = np.zeros((*mean.shape[:-1], c * (c - 1) // 2))
    return np.concatenate([np.zeros((*mean.shape[:-1], 1)), mean, log_scale, coeffs], axis=-1)


@pytest.mark.parametrize("mean,log_scale", [(0.0, -3.0), (0.9, -6.5), (-1.3, 0.5), (0.2, 4.0), (-0.99, -7.0)])
def test_discretized_logistic_probabilities_of_the_256_levels_sum_to_one(mean, log_scale):
    levels = np.arange(256, dtype=np.float64) / 255.0
    x = levels.reshape(256, 1, 1)
    out = single_logistic(np.full((256, 1, 1), mean), np.full((256, 1, 1), log_scale))
    log_p = metrics.discretized_logistic_log_likelihood(x, out)[:, 0]
    assert np.all(np.isfinite(log_p)) and np.all(log_p <= 0)
    assert np.exp(log_p).sum() == pytest.approx(1.0, abs=1e-9)


def test_discretized_logistic_matches_scipy_and_gives_bits_per_dim():
    """Against scipy's logistic CDF bin by bin (where its CDF differences do not cancel to 0), finite where they
    do; a sharp logistic on the pixel costs ~0 bits/dim."""
    from scipy.stats import logistic

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (4, 1, 8, 8, 3)) / 255.0
    mean, log_scale = 2 * x - 1 + rng.normal(0, 0.2, x.shape), rng.uniform(-3, 0, x.shape)
    got = metrics.discretized_logistic_log_likelihood(x, single_logistic(mean, log_scale))
    xs, scale = 2 * x - 1, np.exp(log_scale)
    upper = np.where(xs > 1 - 1 / 255, 1.0, logistic.cdf(xs + 1 / 255, mean, scale))
    lower = np.where(xs < -1 + 1 / 255, 0.0, logistic.cdf(xs - 1 / 255, mean, scale))
    expected = np.log(upper - lower).sum(axis=(2, 3, 4))
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    far = single_logistic(-(2 * x - 1) * 40, np.full(x.shape, -7.0))  # scipy: log 0 here
    assert np.all(np.isfinite(metrics.discretized_logistic_log_likelihood(x, far)))
    sharp = single_logistic(2 * x - 1, np.full(x.shape, -7.0))
    sharp_nats = -metrics.discretized_logistic_log_likelihood(x, sharp).mean()
    assert metrics.bits_per_dim(sharp_nats, 8 * 8 * 3) < 0.05  # scale e^-7 is a quarter of a bin


@pytest.mark.parametrize("mixtures", [1, 3])
def test_a_mixture_with_channel_coupling_is_a_distribution_over_all_256_cubed_colours(mixtures):
    from vaelab import discretized

    rng = np.random.default_rng(mixtures)
    params = rng.normal(0, 1.5, discretized.param_channels(3, mixtures))
    levels = np.arange(256) / 255.0
    colours = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    p = np.exp(discretized.log_prob_numpy(colours, np.broadcast_to(params, (len(colours), len(params)))))
    assert p.sum() == pytest.approx(1.0, abs=1e-9)


def test_channel_coupling_shifts_the_later_channels_by_the_earlier_ones():
    """With coefficient c (through tanh) the green mean is mu_g + tanh(c) * red: a green equal to the red
    pixel is then the likeliest, and without coupling it is not."""
    from vaelab import discretized

    red = np.array([0.2, 0.8])
    x = np.stack([red, red, np.full(2, 0.5)], axis=-1)
    base = np.array([0.0, -1.0, 0.0, 0.0, -4.0, -4.0, -4.0, 0.0, 0.0, 0.0])  # logit, means, log-scales, coeffs
    coupled = base.copy()
    coupled[2], coupled[7] = 0.0, 20.0  # green's own mean 0, red->green coefficient tanh(20) = 1: green = red
    lp_coupled = discretized.log_prob_numpy(x, np.broadcast_to(coupled, (2, 10)))
    lp_plain = discretized.log_prob_numpy(x, np.broadcast_to(base, (2, 10)))
    assert np.all(lp_coupled > lp_plain + 5)
    mean = discretized.mean_image_numpy(np.broadcast_to(coupled, (1, 10)), 3)[0]
    assert mean[1] == pytest.approx(mean[0], abs=1e-6)  # green follows red's (component) mean


def test_keras_ops_and_numpy_discretized_logistic_agree():
    from keras import ops

    from vaelab import discretized

    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (2, 6, 6, 3)) / 255.0
    x[0, 0, 0] = [0.0, 1.0, 0.0]  # both edge bins
    params = rng.normal(0, 2, (2, 6, 6, discretized.param_channels(3, 4)))
    expected = discretized.log_prob_numpy(x, params)
    got = ops.convert_to_numpy(discretized.log_prob(x.astype("float32"), params.astype("float32")))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ops.convert_to_numpy(discretized.mean_image(params.astype("float32"), 3)),
                               discretized.mean_image_numpy(params, 3), atol=1e-5)


def test_a_decoder_width_that_is_no_mixture_is_refused():
    from vaelab import discretized

    assert discretized.mixtures_from(50, 3) == 5 and discretized.mixtures_from(6, 1) == 2
    with pytest.raises(ValueError, match="multiple of 10"):
        discretized.mixtures_from(12, 3)


def test_decoding_is_chunked_by_output_size_and_gives_the_same_numbers(monkeypatch):
    """Large images are decoded a few rows at a time (Caltech101's 8192 latents at once crashed the process)."""
    import keras

    z_in = keras.Input((2,))
    decoder = keras.Model(z_in, keras.layers.Reshape((4, 4, 3))(keras.layers.Dense(48, activation="sigmoid")(z_in)))
    z = np.random.default_rng(0).standard_normal((5, 3, 2))
    whole = metrics.decode_samples(decoder, z)
    calls = []
    original = decoder.__call__
    monkeypatch.setattr(metrics, "DECODE_FLOATS", 48 * 4)  # four rows per call
    monkeypatch.setattr(type(decoder), "__call__", lambda self, x, **kw: calls.append(len(x)) or original(x, **kw))
    np.testing.assert_allclose(metrics.decode_samples(decoder, z), whole, rtol=1e-6)
    assert calls == [4, 4, 4, 3]
    assert metrics.rows_for(784) == 8192 and metrics.rows_for(92 * 92 * 3) == 252 and metrics.rows_for(10 ** 9) == 16
