"""Samplers: the prior and the box, a Gaussian mixture fitted by EM that recovers a known mixture, the two-stage
VAE matching the codes' moments, and fitted samplers saved beside the model and reused."""

import numpy as np
import pytest

from vaelab.core import artifacts
from vaelab.models import registry as parts
from vaelab.models import samplers
from vaelab.config.params import MnistParams


def test_normal_and_uniform_draw_from_the_prior_and_the_box_repeatably():
    z = samplers.Normal().sample(20000, 3, seed=1)
    assert z.shape == (20000, 3) and abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    np.testing.assert_array_equal(z, samplers.Normal().sample(20000, 3, seed=1))
    u = samplers.Uniform().sample(1000, 2, seed=0)
    assert u.min() >= -2 and u.max() <= 2 and u.std() > 1


def known_mixture(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    means = np.array([[-4.0, 0.0], [3.0, 3.0], [3.0, -3.0]])
    covs = np.array([[[1.0, 0.5], [0.5, 1.0]], [[0.3, 0.0], [0.0, 2.0]], [[0.5, -0.2], [-0.2, 0.4]]])
    weights = np.array([0.5, 0.3, 0.2])
    which = rng.choice(3, size=n, p=weights)
    x = np.stack([rng.multivariate_normal(means[k], covs[k]) for k in which])
    return x, weights, means, covs


def test_gmm_recovers_a_known_mixture():
    x, weights, means, covs = known_mixture()
    w, m, c = samplers.fit_gmm(x, 3, seed=0)
    order = [int(np.argmin(np.linalg.norm(m - true, axis=1))) for true in means]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(w[order], weights, atol=0.02)
    np.testing.assert_allclose(m[order], means, atol=0.1)
    np.testing.assert_allclose(c[order], covs, atol=0.12)
    z = samplers.sample_gmm(w, m, c, 20000, seed=1)  # and samples from it have the data's moments
    np.testing.assert_allclose(z.mean(axis=0), x.mean(axis=0), atol=0.1)
    np.testing.assert_allclose(np.cov(z, rowvar=False), np.cov(x, rowvar=False), atol=0.3)


def test_log_gaussians_match_scipy_across_row_blocks(monkeypatch):
    from scipy.stats import multivariate_normal

    from vaelab.models import mixtures

    monkeypatch.setattr(mixtures, "ROWS", 7)  # several blocks, the last one short
    x, _, means, covs = known_mixture(50)
    want = np.stack([multivariate_normal(m, c).logpdf(x) for m, c in zip(means, covs)], axis=1)
    np.testing.assert_allclose(samplers.log_gaussians(x, means, covs), want, rtol=1e-10, atol=1e-10)
    w, m, c = samplers.fit_gmm(x, 3, seed=0)  # the blocked EM gives the same mixture as one block
    monkeypatch.setattr(mixtures, "ROWS", 4096)
    for a, b in zip((w, m, c), samplers.fit_gmm(x, 3, seed=0)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_fitted_samplers_are_saved_beside_the_model_and_reused(tmp_path):
    files = artifacts.ModelFiles(tmp_path, "m")
    x = known_mixture(1500)[0]
    calls = []

    def codes():
        calls.append(1)
        return x

    first = samplers.load_or_fit(parts.sampler(MnistParams(gmm_components=3), "gmm"), files, codes)
    assert (tmp_path / "m_sampler_gmm3.npz").exists() and calls == [1]
    again = samplers.load_or_fit(parts.sampler(MnistParams(gmm_components=3), "gmm"), files, codes)
    assert calls == [1]  # loaded, not fitted again
    np.testing.assert_array_equal(again.sample(50, 2, seed=3), first.sample(50, 2, seed=3))
    assert samplers.load_or_fit(samplers.Normal(), files, codes) is not None and calls == [1]


def test_two_stage_vae_learns_where_the_codes_are(tmp_path):
    """Codes on a ring of radius 3 (far from N(0, I)): the second stage's samples sit near the ring."""
    rng = np.random.default_rng(0)
    angle = rng.uniform(0, 2 * np.pi, 4000)
    codes = np.stack([3 * np.cos(angle), 3 * np.sin(angle)], axis=1) + 0.1 * rng.standard_normal((4000, 2))
    sampler = samplers.TwoStage().fit(codes, seed=0)
    z = sampler.sample(2000, 2, seed=1)
    radius = np.linalg.norm(z, axis=1)
    assert abs(np.median(radius) - 3.0) < 0.5 and np.mean(radius < 1.0) < 0.1
    path = sampler.save(tmp_path / "two.h5")
    np.testing.assert_allclose(samplers.TwoStage().load(path).sample(10, 2, seed=2), sampler.sample(10, 2, seed=2),
                               rtol=1e-5, atol=1e-5)


def test_an_unreadable_sampler_file_is_a_one_line_error(tmp_path):
    from vaelab.core.errors import UserError

    bad = tmp_path / "m_sampler_gmm3.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a readable sampler file") as e:
        samplers.Gmm(components=3).load(bad)
    assert "\n" not in str(e.value)


def test_a_mixtures_log_density_is_scipys_mixture_density():
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(3)
    weights, means = np.array([0.3, 0.7]), rng.normal(size=(2, 2))
    covs = np.array([[[1.0, 0.3], [0.3, 0.5]], [[0.4, 0.0], [0.0, 2.0]]])
    z = rng.normal(size=(7, 2)) * 2
    gmm = samplers.Gmm(components=2, weights=weights, means=means, covs=covs)
    expected = np.log(sum(w * multivariate_normal(m, c).pdf(z) for w, m, c in zip(weights, means, covs)))
    np.testing.assert_allclose(gmm.log_density(z), expected, rtol=1e-10)


def test_a_conditional_models_gmm_fits_one_mixture_per_class_and_draws_each_sample_from_its_class(tmp_path):
    """Class 0's codes around (-4, 0), class 1's around (4, 0) as two clusters, class 2 with a single code: each
    class gets its own mixture (class 2's padded with weight-0 components), samples of class c land where the
    codes of c are, the file keeps the split, and without labels the draw is the pooled mixture."""
    rng = np.random.default_rng(0)
    class0 = rng.normal(size=(600, 2)) * 0.3 + [-4.0, 0.0]
    class1 = np.concatenate([rng.normal(size=(300, 2)) * 0.3 + [4.0, 2.0], rng.normal(size=(300, 2)) * 0.3 + [4.0, -2.0]])
    codes = np.concatenate([class0, class1, [[0.0, 5.0]]])
    labels = np.array([0] * 600 + [1] * 600 + [2])
    files = artifacts.ModelFiles(tmp_path, "m")
    sampler = samplers.load_or_fit(samplers.Gmm(components=2), files, lambda: (codes, labels))
    assert sampler.per_class and sampler.weights.shape == (3, 2) and sampler.means.shape == (3, 2, 2)
    np.testing.assert_allclose(sampler.class_weights, [600 / 1201, 600 / 1201, 1 / 1201])
    np.testing.assert_allclose(sampler.weights[2], [1.0, 0.0])  # one code: one component, the other padded
    np.testing.assert_allclose(sampler.covs[2, 0], np.cov(codes, rowvar=False))  # with all the codes' spread
    np.testing.assert_allclose(sorted(sampler.weights[1]), [0.5, 0.5], atol=0.02)

    asked = np.array([0, 1, 2] * 400)
    z = sampler.sample(len(asked), 2, seed=1, labels=asked)
    np.testing.assert_allclose(z[asked == 0].mean(axis=0), [-4.0, 0.0], atol=0.1)
    np.testing.assert_allclose(np.abs(z[asked == 1][:, 1]).mean(), 2.0, atol=0.1)  # both clusters of class 1
    assert np.all(z[asked == 1][:, 0] > 2.5)
    np.testing.assert_allclose(z[asked == 2].mean(axis=0), [0.0, 5.0], atol=0.8)
    np.testing.assert_array_equal(sampler.sample(len(asked), 2, seed=1, labels=asked), z)  # seeded

    again = samplers.load_or_fit(samplers.Gmm(components=2), files, lambda: 1 / 0)  # loaded, not refitted
    assert again.per_class and "per class" in again.describe()
    np.testing.assert_array_equal(again.sample(len(asked), 2, seed=1, labels=asked), z)
    pooled = again.sample(20000, 2, seed=2)  # no labels: the classes' mixtures by their shares
    np.testing.assert_allclose(np.mean(pooled[:, 0] < 0), 600 / 1201, atol=0.02)
    with pytest.raises(Exception, match="classes 0-2"):
        again.sample(2, 2, labels=np.array([0, 3]))


def test_a_conditional_models_samples_come_from_its_class_mixture(monkeypatch, mnist_dir, tmp_path):
    """Trained.sample hands the per-image labels to the sampler before decoding them with the same labels."""
    import vaelab

    model = vaelab.train("mnist", data_dir=mnist_dir, models_dir=tmp_path, epochs=1, intermediate_dim=16,
                         conditional=True)
    seen = {}

    class Recording(samplers.Sampler):
        def sample(self, n, latent_dim, seed=0, labels=None):
            seen["labels"] = labels
            return np.zeros((n, latent_dim))

    decoded = {}
    real_decode = type(model).decode

    def decode(self, z, label=None):
        decoded["l"] = label
        return real_decode(self, z, label)

    monkeypatch.setattr(type(model), "decode", decode)
    images = model.sample(4, Recording(), label=[3, 1, 4, 1])
    np.testing.assert_array_equal(seen["labels"], [3, 1, 4, 1])
    np.testing.assert_array_equal(np.asarray(decoded["l"]).reshape(-1), [3, 1, 4, 1])
    assert images.shape == (4, 28, 28, 1)
