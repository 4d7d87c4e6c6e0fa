"""vaelab.evaluation.metrics against closed forms.

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

from vaelab.evaluation import metrics
from vaelab.models.vae import VAE

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


def linear_vae(w, b, a, c, var):
    """A VAE with encoder x -> (A x + c, log var), linear decoder z -> W z + b and a Gaussian likelihood of
    standard deviation SIGMA around the decoder's output (no link function)."""
    x = keras.Input((D,))
    mean_layer, log_var_layer = keras.layers.Dense(LATENT), keras.layers.Dense(LATENT)
    encoder = keras.Model(x, [mean_layer(x), log_var_layer(x)])
    mean_layer.set_weights([a.T, c])
    log_var_layer.set_weights([np.zeros((D, LATENT)), np.log(var)])
    z = keras.Input((LATENT,))
    out = keras.layers.Dense(D)
    decoder = keras.Model(z, out(z))
    out.set_weights([w.T, b])
    return VAE(encoder, decoder, likelihood="gaussian", likelihood_options={"sigma": SIGMA, "from_logits": False})


def log_marginal(x, w, b):
    return multivariate_normal(b, w @ w.T + SIGMA ** 2 * np.eye(D)).logpdf(x)


@pytest.fixture(scope="module")
def model():
    w, b, a, c, var = linear_gaussian()
    x = np.random.default_rng(1).multivariate_normal(b, w @ w.T + SIGMA ** 2 * np.eye(D), size=16)
    return w, b, a, c, var, x.astype(np.float32)


def test_exact_posterior_makes_every_estimate_the_marginal_likelihood(model):
    w, b, a, c, var, x = model
    vae = linear_vae(w, b, a, c, var)
    truth = log_marginal(x.astype(np.float64), w, b)
    for k in (1, 7, 100):
        est = metrics.iwae_log_likelihood(vae, x, k=k, max_rows=64, verbose=0)
        np.testing.assert_allclose(est, truth, atol=2e-3)


def test_no_overflow_far_in_the_tail(model):
    """log w ~ -1e5: exponentiating would give 0 and log 0; the log-sum-exp must not."""
    w, b, a, c, var, x = model
    vae = linear_vae(w, b, a, c, var)
    far = (x[:3] + 150.0).astype(np.float32)
    truth = log_marginal(far.astype(np.float64), w, b)
    assert np.all(truth < -1e4)
    est = metrics.iwae_log_likelihood(vae, far, k=50, verbose=0)
    np.testing.assert_allclose(est, truth, rtol=1e-5)


def wrong_vae(model):
    w, b, a, c, var, x = model
    return linear_vae(w, b, 0.6 * a, c + 0.3, 3.0 * var)


def analytic_elbo(x, w, b, mean, var):
    """E_q log N(x; W z + b, s^2) - KL(q || N(0, I)) for q = N(mean, diag(var))."""
    resid = x - mean @ w.T - b
    expected_ll = (-0.5 * D * math.log(2 * math.pi * SIGMA ** 2)
                   - (np.sum(resid ** 2, axis=1) + np.sum(w ** 2 * var, axis=(0, 1))) / (2 * SIGMA ** 2))
    kl = 0.5 * np.sum(var + mean ** 2 - 1.0 - np.log(var), axis=1)
    return expected_ll - kl, kl


def test_elbo_and_mean_of_k1_match_the_closed_form_elbo(model):
    w, b, a, c, var, x = model
    vae = wrong_vae(model)
    x64 = x.astype(np.float64)
    mean, qvar = x64 @ (0.6 * a).T + c + 0.3, 3.0 * var
    truth, kl = analytic_elbo(x64, w, b, mean, qvar)
    assert np.all(truth < log_marginal(x64, w, b) - 0.05)  # the wrong encoder leaves a real gap
    got = metrics.elbo(vae, x, samples=40_000)  # Monte Carlo error ~0.03 nats
    np.testing.assert_allclose(got["kl"], kl, rtol=1e-5)
    np.testing.assert_allclose(got["elbo"], truth, atol=0.1)
    # E[L_1] = ELBO: 4000 independent L_1 of one example
    reps = np.repeat(x[:1], 4000, axis=0)
    l1 = metrics.iwae_log_likelihood(vae, reps, k=1, seed=3, verbose=0)
    assert abs(l1.mean() - truth[0]) < 4 * l1.std() / math.sqrt(len(l1))


def test_bound_stays_below_and_converges_to_the_marginal_likelihood(model):
    """E[L_k] <= log p(x) for every k (checked as mean + 3 standard errors over the repeats), the gap shrinks
    as k grows (about 0.15, 0.015, 0.0015 nats for k = 1, 10, 100: 3000 repeats resolve them), and single
    estimates at k = 5000 are within 0.03 nats (either side: only the mean is bounded)."""
    w, b, a, c, var, x = model
    vae = wrong_vae(model)
    truth = float(log_marginal(x[0].astype(np.float64), w, b))
    gaps = []
    for k, repeats in ((1, 3000), (10, 3000), (100, 3000), (1000, 300)):
        est = metrics.iwae_log_likelihood(vae, np.repeat(x[:1], repeats, axis=0), k=k, seed=k, verbose=0)
        se = est.std() / math.sqrt(len(est))
        assert est.mean() <= truth + 3 * se
        gaps.append(truth - est.mean())
    assert gaps[0] > gaps[1] > gaps[2] >= -3 * se
    big = metrics.iwae_log_likelihood(vae, x[:4], k=5000, max_rows=1024, verbose=0)
    np.testing.assert_allclose(big, log_marginal(x[:4].astype(np.float64), w, b), atol=0.03)


def test_the_same_seed_repeats_and_chunking_keeps_the_distribution(model):
    """k larger than max_rows (chunks over samples) and k smaller (several examples per call) agree; a seed
    repeats exactly."""
    vae = wrong_vae(model)
    reps = np.repeat(model[-1][:1], 100, axis=0)
    small = metrics.iwae_log_likelihood(vae, reps, k=40, max_rows=7, verbose=0)
    large = metrics.iwae_log_likelihood(vae, reps, k=40, max_rows=100000, verbose=0)
    assert abs(small.mean() - large.mean()) < 4 * math.hypot(small.std(), large.std()) / 10
    np.testing.assert_array_equal(small, metrics.iwae_log_likelihood(vae, reps, k=40, max_rows=7, verbose=0))


def test_the_elbo_of_a_bernoulli_vae_is_minus_its_training_loss():
    """metrics' nats are the training loss's units: -log p(x|z) = 784 * mean BCE, KL the same formula. The
    encoder's variance is made negligible so both see the same z."""
    from vaelab.models.vae import build_vae
    from vaelab.config.params import MnistParams

    keras.utils.set_random_seed(0)
    vae = build_vae(MnistParams(intermediate_dim=16), (28, 28, 1))
    log_var = vae.encoder.get_layer("z_log_var")
    log_var.set_weights([np.zeros_like(log_var.get_weights()[0]), np.full(2, -30.0, np.float32)])
    x = (np.random.default_rng(0).random((6, 784)) < 0.3).astype(np.float32)
    got = metrics.elbo(vae, x, seed=2)
    vae.sampling.epsilon_std = 0.0
    out = vae(x)
    terms = {k: keras.ops.convert_to_numpy(v) for k, v in vae.sample_terms(x, out).items()}
    np.testing.assert_allclose(got["reconstruction"], terms["recon"], rtol=1e-4)
    np.testing.assert_allclose(got["kl"], terms["kl"], rtol=1e-4, atol=1e-4)


def test_bits_per_dim():
    assert metrics.bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)


def test_rows_per_call_shrink_with_the_image_size():
    assert metrics.rows_for(784) == 8192 and metrics.rows_for(92 * 92 * 3) == 252 and metrics.rows_for(10 ** 9) == 16


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


def test_latent_layers_of_a_one_layer_vae_give_its_kl_and_the_units_whose_mean_varies(model):
    """The linear encoder's posterior mean is 0.6 A x + c + 0.3 with a fixed variance, so the KL per image is
    closed-form and a unit is active exactly when the variance over x of its mean passes the threshold."""
    w, b, a, c, var, x = model
    vae = wrong_vae(model)
    mean = x.astype(np.float64) @ (0.6 * a).T + c + 0.3
    _, kl = analytic_elbo(x.astype(np.float64), w, b, mean, 3.0 * var)
    spread = mean.var(axis=0)
    assert spread[0] > 3 * spread[1] > 0  # room for a threshold between them
    for threshold, active in ((0.0, 2), (np.sqrt(spread[0] * spread[1]), 1), (2 * spread[0], 0)):
        (layer,) = metrics.latent_layers(vae, x, batch_size=5, threshold=threshold)
        assert layer["layer"] == "global" and layer["shape"] == [LATENT] and layer["units"] == LATENT
        assert layer["active_units"] == active
        np.testing.assert_allclose(layer["kl_nats"], kl.mean(), rtol=1e-5)


def test_latent_layers_measure_a_learned_priors_kl_from_that_prior_not_from_n01(model):
    """With a learned prior the global layer's KL is the ELBO's own estimate log q(z|x) - log p(z) along the same
    posterior draw (one batch, one seed: the same draw), so the two agree exactly; moving the prior's component
    away from the posteriors raises it by the closed-form amount a numpy Gaussian gives."""
    from vaelab.models.priors import MixturePrior

    w, b, a, c, var, x = model
    plain = wrong_vae(model)
    prior = MixturePrior(LATENT, 1, name="prior")
    vae = VAE(plain.encoder, plain.decoder, likelihood="gaussian",
              likelihood_options={"sigma": SIGMA, "from_logits": False}, prior=prior)
    (layer,) = metrics.latent_layers(vae, x, batch_size=len(x))
    kl_elbo = metrics.elbo(vae, x, samples=1)["kl"]
    np.testing.assert_allclose(layer["kl_nats"], kl_elbo.mean(), rtol=1e-5)

    # One component N(m, I) instead of N(0, I): log q - log p changes by log N(z; 0, I) - log N(z; m, I)
    # = |m|^2/2 - m.z per draw; the same seed gives the same draws z ~ q, so the change averages to
    # |m|^2/2 - m.mean_q up to the draws' noise m.(z - mean_q), whose spread is known.
    prior.set_weights([np.zeros((1, LATENT)), np.zeros((1, LATENT)), np.zeros(1)])
    at_zero = metrics.latent_layers(vae, x, batch_size=len(x))[0]["kl_nats"]
    shift = np.array([[3.0, -2.0]])
    prior.set_weights([shift, np.zeros((1, LATENT)), np.zeros(1)])
    shifted = metrics.latent_layers(vae, x, batch_size=len(x))[0]["kl_nats"]
    mean = x.astype(np.float64) @ (0.6 * a).T + c + 0.3
    draws = shifted - at_zero  # the same draws z in both (same seed), so the difference is exact per draw
    assert draws > 5.0
    closed = float(np.mean(0.5 * shift[0] @ shift[0] - mean @ shift[0]))
    noise = math.sqrt(float(np.sum(shift[0] ** 2 * 3.0 * var)) / len(x))
    assert abs(draws - closed) < 4 * noise
