"""Learned priors: the mixture density, the KL estimate that replaces the analytic one, saving, sampling."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from vaelab.config.params import MnistParams
from vaelab.core.errors import UserError
from vaelab.models import priors
from vaelab.models.vae import build_vae


def test_mixture_log_prob_is_the_mixture_density():
    from keras import ops

    rng = np.random.default_rng(0)
    means, log_vars = rng.normal(size=(3, 2)), rng.normal(scale=0.3, size=(3, 2))
    weights = np.array([0.2, 0.5, 0.3])
    z = rng.normal(size=(6, 2))
    got = ops.convert_to_numpy(priors.mixture_log_prob(ops.convert_to_tensor(z, "float32"),
                                                       ops.convert_to_tensor(means, "float32"),
                                                       ops.convert_to_tensor(log_vars, "float32"),
                                                       ops.convert_to_tensor(np.log(weights), "float32")))
    expected = np.log(sum(w * multivariate_normal(m, np.diag(np.exp(v))).pdf(z)
                          for w, m, v in zip(weights, means, log_vars)))
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_a_one_component_standard_mixture_gives_the_standard_models_terms():
    """MoG with one component at N(0, I): log q - log p equals the standard prior's exactly, and the KL estimate
    averages to the analytic KL."""
    import keras
    from keras import ops

    params = MnistParams(intermediate_dim=16, prior="mog", prior_components=1)
    vae = build_vae(params, (28, 28, 1))
    vae.prior.means.assign(np.zeros((1, 2), "float32"))
    x = np.random.default_rng(1).random((64, 784)).astype("float32")
    terms = vae.importance_terms(x, 50, keras.random.SeedGenerator(0))
    features = vae.encoder(ops.convert_to_tensor(x))
    from vaelab.models.gaussian import kl_divergence

    analytic = ops.convert_to_numpy(kl_divergence(features[0], features[1]))
    mc = terms["kl"].reshape(64, 50).mean(axis=1)
    np.testing.assert_allclose(mc.mean(), analytic.mean(), rtol=0.05, atol=0.02)
    np.testing.assert_allclose(terms["kl"], terms["log_qp"], rtol=1e-6)


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_a_learned_prior_trains_saves_and_samples(prior, mnist_dir, tmp_path):
    import vaelab
    from vaelab.models import saving

    model = vaelab.train("mnist", data_dir=mnist_dir, models_dir=tmp_path, epochs=2, intermediate_dim=16,
                         prior=prior, prior_components=4)
    prefix = f"ld_2_id_16_e_2_{prior}4"
    assert model.files.prefix == prefix
    vae = model.vae
    assert isinstance(vae.prior, priors.MixturePrior if prior == "mog" else priors.VampPrior)
    with np.load(tmp_path / f"{prefix}_prior.npz") as f:
        mixture = vae.prior.mixture(vae.encoder)
        np.testing.assert_allclose(f["means"], mixture["means"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(f["weights"], mixture["weights"], rtol=1e-6)
        assert f["means"].shape == (4, 2) and f["covs"].shape == (4, 2, 2)
    again = saving.load_model(tmp_path / f"{prefix}_vae.h5")
    np.testing.assert_allclose(again.prior.get_weights()[0], vae.prior.get_weights()[0])
    assert model.sampler().name == "prior" and "learned prior (4 components)" in model.sampler().describe()
    z = model.sampler().sample(4000, 2, seed=0)
    weights, means = mixture["weights"], mixture["means"]
    np.testing.assert_allclose(z.mean(axis=0), weights @ means, atol=0.1)
    x = np.load(mnist_dir / "mnist.npz")["x_test"][:16]
    assert np.isfinite(model.log_likelihood(x, k=5)).all()


def test_learned_priors_refuse_free_bits_and_vamp_refuses_labels():
    with pytest.raises(UserError, match="free_bits acts on the KL per dimension"):
        MnistParams(prior="mog", free_bits=0.5)
    with pytest.raises(UserError, match="prior vamp takes pseudo-inputs without labels"):
        MnistParams(prior="vamp", conditional=True)
    assert MnistParams(prior="mog", conditional=True).model_prefix().endswith("_mog100_cond")


def test_the_2d_script_draws_the_learned_priors_density_on_its_scatter_and_manifold(mnist_dir, tmp_path,
                                                                                      monkeypatch):
    """Both figures of mnist_2d_latent_space_and_generate.py get the contours of the prior the model was trained
    with (the mixture written beside it), and a standard-prior model's figures get none, as before."""
    import vaelab
    from conftest import run_script
    from vaelab.explore import plots

    calls = []
    real = plots.density_contours

    def recording(ax, log_density, *args, **kwargs):
        calls.append(log_density)
        return real(ax, log_density, *args, **kwargs)

    monkeypatch.setattr(plots, "density_contours", recording)
    models, results = tmp_path / "models", tmp_path / "results"
    vaelab.train("mnist", data_dir=mnist_dir, models_dir=models, epochs=1, intermediate_dim=16, prior="mog",
                 prior_components=3)
    common = ["--data-dir", mnist_dir, "--models-dir", models, "--results-dir", results, "--intermediate-dim", "16",
              "--epochs", "1", "--n", "4", "--no-prompt"]
    assert run_script("mnist_2d_latent_space_and_generate.py", *common, "--prior", "mog",
                      "--prior-components", "3") == 0
    assert len(calls) == 2  # the scatter and the manifold
    with np.load(models / "ld_2_id_16_e_1_mog3_prior.npz") as f:
        weights, means, covs = f["weights"], f["means"], f["covs"]
    z = np.random.default_rng(0).normal(size=(5, 2))
    expected = np.log(sum(w * multivariate_normal(m, c).pdf(z) for w, m, c in zip(weights, means, covs)))
    for density in calls:
        np.testing.assert_allclose(density(z), expected, rtol=1e-8)
    assert {p.name for p in results.iterdir()} == {"ld_2_id_16_e_1_mog3_latent.png", "ld_2_id_16_e_1_mog3_manifold.png"}

    calls.clear()
    vaelab.train("mnist", data_dir=mnist_dir, models_dir=models, epochs=1, intermediate_dim=16)
    assert run_script("mnist_2d_latent_space_and_generate.py", *common) == 0
    assert calls == []
