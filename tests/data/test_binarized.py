"""Binarized MNIST: the static test binarization is fixed, the dynamic one is redrawn every step and scored as
drawn, the MLP builder has the asked-for layers, and the params preset names its models."""

import keras
import numpy as np
import pytest

from conftest import run_script
from vaelab.models import saving
from vaelab.data import binarized
from vaelab.evaluation import metrics
from vaelab.core.errors import UserError
from vaelab.models.vae import build_vae, image_decoder
from vaelab.config.params import BinarizedMnistParams


def _vae(**kwargs):
    return build_vae(BinarizedMnistParams(**kwargs), (28, 28, 1), binarize=True)


def test_static_binarization_is_bernoulli_with_a_fixed_seed():
    x = np.full((200, 784), 0.3, dtype=np.float32)
    x[:, :10] = 0.0
    x[:, 10:20] = 1.0
    a, b = binarized.static_binarization(x), binarized.static_binarization(x)
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0.0, 1.0}
    assert a[:, :10].sum() == 0 and a[:, 10:20].min() == 1.0
    assert abs(a[:, 20:].mean() - 0.3) < 0.005  # 153,200 draws: standard error 0.0012
    assert not np.array_equal(a, binarized.static_binarization(x, seed=1))


def test_loader_binarizes_the_test_set_only_and_before_limit(mnist_dir):
    full = binarized.load_binarized_mnist(mnist_dir)
    part = binarized.load_binarized_mnist(mnist_dir, limit=10)
    assert set(np.unique(full.x_test)) == {0.0, 1.0}
    assert len(np.unique(full.x_train)) > 2  # grey levels: the model binarizes them itself
    np.testing.assert_array_equal(part.x_test, full.x_test[:10])


def test_params_prefix_and_hidden_dims():
    p = BinarizedMnistParams()
    assert (p.latent_dim, p.hidden, p.batch_size) == (50, (500, 500), 100)
    assert BinarizedMnistParams(hidden_dims="300, 200", epochs=7).model_prefix() == "bin_ld_50_h_300-200_e_7"
    for bad in ("", "500,x", "0,5"):
        with pytest.raises(UserError, match="hidden_dims"):
            BinarizedMnistParams(hidden_dims=bad)


def test_mlp_builder_has_the_asked_for_layers():
    vae = _vae(hidden_dims="30,20", latent_dim=4)
    enc = [tuple(w.shape) for w in vae.encoder.weights if len(w.shape) == 2]
    dec = [tuple(w.shape) for w in vae.decoder.weights if len(w.shape) == 2]
    assert enc == [(784, 30), (30, 20), (20, 4), (20, 4)]
    assert dec == [(4, 20), (20, 30), (30, 784)]


def test_training_redraws_binary_pixels_each_call_and_scores_what_it_drew():
    keras.utils.set_random_seed(0)
    vae = _vae(hidden_dims="8", latent_dim=2)
    x = np.full((4, 784), 0.5, dtype=np.float32)
    first, second = vae(x, training=True)["x"], vae(x, training=True)["x"]
    first, second = keras.ops.convert_to_numpy(first), keras.ops.convert_to_numpy(second)
    assert set(np.unique(first)) == {0.0, 1.0} and abs(first.mean() - 0.5) < 0.05
    assert (first != second).mean() > 0.3  # a fresh draw, not a fixed one
    assert "x" not in vae(x, training=False)  # evaluation: scored as given
    out = vae(x, training=True)
    recon = vae.sample_terms(out["x"], out)["recon"]
    p = 1 / (1 + np.exp(-keras.ops.convert_to_numpy(out["params"]).astype(np.float64)))
    xb = keras.ops.convert_to_numpy(out["x"])
    expected = -np.sum(xb * np.log(p) + (1 - xb) * np.log(1 - p), axis=1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(recon), expected, rtol=1e-4)


def test_train_script_saves_a_model_that_reloads(mnist_dir, tmp_path):
    models = tmp_path / "models"
    code = run_script("mnist_binarized_train.py", "--data-dir", mnist_dir, "--models-dir", models, "--epochs", "1",
                      "--hidden-dims", "16,16", "--latent-dim", "3", "--batch-size", "128")
    assert code == 0
    vae = saving.load_model(models / "bin_ld_3_h_16-16_e_1_vae.h5")
    assert vae.binarize and vae.binarize_seed == 1
    z = np.zeros((2, 3), np.float32)
    decoder = saving.load_model(models / "bin_ld_3_h_16-16_e_1_decoder.h5")
    npy = keras.ops.convert_to_numpy
    np.testing.assert_array_equal(npy(decoder(z)), npy(image_decoder(vae)(z)))


def test_the_two_layer_preset_trains_generates_and_scores_with_both_layers(mnist_dir, tmp_path, capsys):
    """``--preset binarized_hier`` (shrunk): the files carry the preset's name and the shrunk sizes, the generate
    script draws its grid and reconstructions, and evaluate.py's importance-weighted NLL lies below the -ELBO, both
    over both layers."""
    import json

    prefix = "binarized_hier_e_1_dhier_h_16_z4"  # the preset's sizes changed: another model, another name
    models, results = tmp_path / "models", tmp_path / "results"
    common = ["--preset", "binarized_hier", "--epochs", "1", "--hidden-dims", "16", "--lower-latent-dims", "4",
              "--latent-dim", "3", "--data-dir", mnist_dir, "--models-dir", models, "--results-dir", results]
    assert run_script("mnist_binarized_train.py", *common, "--batch-size", "128") == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("test: KL, ")]
    saved = json.loads((models / f"{prefix}_params.json").read_text())
    assert (saved["architecture"], saved["lower_latent_dims"], saved["objective"]) == ("dense_hierarchical", "4",
                                                                                       "iwae")
    assert run_script("mnist_binarized_generate.py", *common, "--grid", "3", "--no-prompt") == 0
    assert sorted(p.name for p in results.iterdir()) == [f"{prefix}_{name}.png" for name in (
        "history", "latent3d", "random_normal", "reconstructions")]
    assert run_script("evaluate.py", "--dataset", "mnist_binarized", *common, "--k", "20", "--quiet") == 0
    scores = json.loads((models / f"{prefix}_eval.json").read_text())
    assert scores["test_images"] == 128 and scores["kl_nats"] > 0
    assert 0 < scores["iwae_nll_nats"] < -scores["elbo_nats"]
    assert [(layer["layer"], layer["units"]) for layer in scores["latent_layers"]] == [("global", 3), ("lower 1", 4)]
    # the training script ends with the same per-layer numbers for the model it saved
    assert printed == [f"test: KL, {layer['layer']} latent {metrics.layer_summary(layer)}"
                       for layer in scores["latent_layers"]]
