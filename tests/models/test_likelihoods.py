"""Likelihoods against independent numpy/scipy computations: Bernoulli, Gaussian and the discretized logistic
mixture (whose 256 levels, and 256^3 coupled colours, sum to one), their mean images, and the older saved
configurations they read."""

import math

import keras
import numpy as np
import pytest
from keras import ops
from scipy.stats import bernoulli, logistic, norm

from vaelab.models import discretized
from vaelab.models import likelihoods
from vaelab.models import registry as parts


def np64(t):
    return np.asarray(ops.convert_to_numpy(t), dtype=np.float64)


float64 = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                             reason="needs float64 arithmetic, which JAX and PyTorch keep off by default here")


def test_bernoulli_from_logits_is_the_binomial_log_pmf_and_its_mean_the_sigmoid():
    rng = np.random.default_rng(0)
    x = (rng.random((3, 4, 4, 1)) < 0.4).astype("float32")
    logits = rng.normal(0, 3, (3, 4, 4, 1)).astype("float32")
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    lik = likelihoods.Bernoulli(1)
    np.testing.assert_allclose(np64(lik.log_prob(x, logits)), bernoulli.logpmf(x, p).sum(axis=(1, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(np64(lik.mean(logits)), p, rtol=1e-6)
    assert lik.is_probability_of(x) and not lik.is_probability_of(x * 0.5)
    big = np.full((1, 3), 40.0, "float32")  # sigmoid rounds to 1: the logit form stays finite and exact
    assert np64(lik.log_prob(np.zeros((1, 3), "float32"), big))[0] == pytest.approx(-120.0)


def test_gaussian_is_the_normal_log_density_and_trains_on_the_weighted_squared_error():
    rng = np.random.default_rng(1)
    x = rng.random((2, 5, 5, 1)).astype("float32")
    out = rng.normal(0, 1, (2, 5, 5, 1)).astype("float32")
    mean = 1 / (1 + np.exp(-out.astype(np.float64)))
    lik = likelihoods.Gaussian(1, sigma=0.3)
    np.testing.assert_allclose(np64(lik.log_prob(x, out)), norm.logpdf(x, mean, 0.3).sum(axis=(1, 2, 3)), rtol=1e-5)
    loss, log_prob = lik.loss_and_log_prob(x, out)
    np.testing.assert_allclose(np64(loss), ((x - mean) ** 2).sum(axis=(1, 2, 3)) / (2 * 0.09), rtol=1e-5)
    assert not lik.discrete and not lik.is_probability_of(x)


def test_the_fashion_loss_is_the_gaussian_with_sigma_from_its_weight():
    """5000 * MSE over 784 pixels = sum (x - m)^2 / (2 sigma^2) with sigma^2 = 784 / 10000."""
    lik = likelihoods.from_legacy("mse", 5000.0, 784, 1, 1)
    x, m = np.full((1, 784), 0.5, "float32"), np.full((1, 784), 0.25, "float32")
    assert lik.sigma == pytest.approx(math.sqrt(784 / 10000)) and lik.from_logits is False
    assert np64(lik.loss(x, m))[0] == pytest.approx(5000 * 0.0625, rel=1e-5)


def single_logistic(mean, log_scale):
    """Decoder parameters of one logistic per sub-pixel, no channel coupling (vaelab.models.discretized's layout)."""
    mean, log_scale = np.asarray(mean, dtype=np.float64), np.asarray(log_scale, dtype=np.float64)
    c = mean.shape[-1]
    coeffs = np.zeros((*mean.shape[:-1], c * (c - 1) // 2))
    return np.concatenate([np.zeros((*mean.shape[:-1], 1)), mean, log_scale, coeffs], axis=-1)


@float64
@pytest.mark.parametrize("mean,log_scale", [(0.0, -3.0), (0.9, -6.5), (-1.3, 0.5), (0.2, 4.0), (-0.99, -7.0)])
def test_discretized_logistic_probabilities_of_the_256_levels_sum_to_one(mean, log_scale):
    x = (np.arange(256, dtype=np.float64) / 255.0).reshape(256, 1)
    out = single_logistic(np.full((256, 1), mean), np.full((256, 1), log_scale))
    log_p = np64(discretized.log_prob(x, out))
    assert np.all(np.isfinite(log_p)) and np.all(log_p <= 0)
    assert np.exp(log_p).sum() == pytest.approx(1.0, abs=1e-9)


def test_discretized_logistic_matches_scipy_bin_by_bin():
    """Against scipy's logistic CDF (where its CDF differences do not cancel to 0), finite where they do; a sharp
    logistic on the pixel costs ~0 bits/dim."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (4, 8, 8, 3)) / 255.0
    mean, log_scale = 2 * x - 1 + rng.normal(0, 0.2, x.shape), rng.uniform(-3, 0, x.shape)
    lik = likelihoods.DiscretizedLogistic(3, mixtures=1)
    got = np64(lik.log_prob(x.astype("float32"), single_logistic(mean, log_scale).astype("float32")))
    xs, scale = 2 * x - 1, np.exp(log_scale)
    upper = np.where(xs > 1 - 1 / 255, 1.0, logistic.cdf(xs + 1 / 255, mean, scale))
    lower = np.where(xs < -1 + 1 / 255, 0.0, logistic.cdf(xs - 1 / 255, mean, scale))
    np.testing.assert_allclose(got, np.log(upper - lower).sum(axis=(1, 2, 3)), rtol=1e-4)
    far = single_logistic(-(2 * x - 1) * 40, np.full(x.shape, -7.0)).astype("float32")  # scipy: log 0 here
    assert np.all(np.isfinite(np64(lik.log_prob(x.astype("float32"), far))))
    sharp = single_logistic(2 * x - 1, np.full(x.shape, -7.0)).astype("float32")
    nats = -np64(lik.log_prob(x.astype("float32"), sharp)).mean()
    assert nats / (8 * 8 * 3 * math.log(2)) < 0.05  # scale e^-7 is a quarter of a bin
    assert lik.param_channels() == 10 and lik.is_probability_of(x)


@float64
@pytest.mark.parametrize("mixtures", [1, 3])
def test_a_mixture_with_channel_coupling_is_a_distribution_over_all_256_cubed_colours(mixtures):
    rng = np.random.default_rng(mixtures)
    params = rng.normal(0, 1.5, discretized.param_channels(3, mixtures))
    levels = np.arange(256) / 255.0
    colours = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    total = 0.0
    for chunk in np.array_split(np.arange(len(colours)), 16):  # float64 on TensorFlow
        total += np.exp(np64(discretized.log_prob(colours[chunk], np.broadcast_to(params, (len(chunk), len(params)))))
                        ).sum()
    assert total == pytest.approx(1.0, abs=1e-9)


def test_channel_coupling_shifts_the_later_channels_by_the_earlier_ones():
    """With coefficient c (through tanh) the green mean is mu_g + tanh(c) * red: a green equal to the red
    pixel is then the likeliest, and without coupling it is not."""
    red = np.array([0.2, 0.8])
    x = np.stack([red, red, np.full(2, 0.5)], axis=-1)
    base = np.array([0.0, -1.0, 0.0, 0.0, -4.0, -4.0, -4.0, 0.0, 0.0, 0.0])  # logit, means, log-scales, coeffs
    coupled = base.copy()
    coupled[2], coupled[7] = 0.0, 20.0  # green's own mean 0, red->green coefficient tanh(20) = 1: green = red
    lp_coupled = np64(discretized.log_prob(x, np.broadcast_to(coupled, (2, 10))))
    lp_plain = np64(discretized.log_prob(x, np.broadcast_to(base, (2, 10))))
    assert np.all(lp_coupled > lp_plain + 5)
    mean = np64(discretized.mean_image(np.broadcast_to(coupled, (1, 10)), 3))[0]
    assert mean[1] == pytest.approx(mean[0], abs=1e-6)  # green follows red's (component) mean


def test_a_decoder_width_that_is_no_mixture_is_refused():
    assert discretized.mixtures_from(50, 3) == 5 and discretized.mixtures_from(6, 1) == 2
    with pytest.raises(ValueError, match="multiple of 10"):
        discretized.mixtures_from(12, 3)


def test_every_likelihood_is_registered_with_its_parameter_count_and_options():
    assert list(parts.LIKELIHOODS) == ["bernoulli", "continuous_bernoulli", "gaussian", "discretized_logistic"]
    made = {name: cls(3) for name, cls in parts.LIKELIHOODS.items()}
    assert [m.param_channels() for m in made.values()] == [3, 3, 3, 10]
    assert [m.discrete for m in made.values()] == [True, False, False, True]
    legacy = likelihoods.from_legacy("discretized_logistic", None, 3072, 3, 50)
    assert legacy == likelihoods.DiscretizedLogistic(3, mixtures=5)
    assert likelihoods.from_legacy("bce", 784.0, 784, 1, 1) == likelihoods.Bernoulli(1, from_logits=False)


def test_the_continuous_bernoulli_is_a_density_on_the_unit_interval():
    """Against its definition in lambda = sigmoid(l): C(lambda) = 2 artanh(1 - 2 lambda) / (1 - 2 lambda),
    integrating to 1 over [0, 1], with the mean of that density (computed by quadrature)."""
    from scipy.integrate import quad

    def density(x, logit):  # float64, from lambda, independent of the logit form in the library
        lam = 1 / (1 + np.exp(-logit))
        c = 2.0 if abs(lam - 0.5) < 1e-12 else 2 * np.arctanh(1 - 2 * lam) / (1 - 2 * lam)
        return c * lam ** x * (1 - lam) ** (1 - x)

    lik = likelihoods.ContinuousBernoulli(1)
    logits = np.array([-8.0, -2.5, -0.3, -0.004, 0.0, 0.004, 1.0, 6.0], "float32")
    x = np.linspace(0.05, 0.95, len(logits)).astype("float32")
    got = np64(lik.log_prob(x[:, None], logits[:, None]))
    expected = [np.log(density(float(xi), float(li))) for xi, li in zip(x, logits)]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    for logit in logits:
        assert quad(density, 0, 1, args=(float(logit),))[0] == pytest.approx(1.0, abs=1e-7)
    means = np64(lik.mean(logits))
    np.testing.assert_allclose(means, [quad(lambda t, lg=float(lg): t * density(t, lg), 0, 1)[0] for lg in logits],
                               atol=1e-5)
    assert not lik.is_probability_of(x) and lik.param_channels() == 1


@pytest.mark.parametrize("name", sorted(parts.LIKELIHOODS))
def test_a_pixelwise_likelihood_gives_the_same_log_prob_in_any_layout(name):
    """What lets the VAE hand a dense model's flat vectors to it as they are (VAE.sample_terms)."""
    cls = parts.LIKELIHOODS[name]
    if not cls.pixelwise:
        assert cls is likelihoods.DiscretizedLogistic  # the one that couples a pixel's channels
        return
    rng = np.random.default_rng(3)
    lik = cls(3)
    x = rng.integers(0, 256, (2, 4, 4, 3)).astype("float32") / 255
    out = rng.normal(0, 1, (2, 4, 4, lik.param_channels())).astype("float32")
    flat = lik.log_prob(x.reshape(2, -1), out.reshape(2, -1))
    np.testing.assert_allclose(np64(flat), np64(lik.log_prob(x, out)), rtol=1e-6)
