"""Fashion-MNIST: IDX loading, class names, params, the conv VAE, the LR schedule and the morph script.

Everything runs on small fixture IDX files written with :func:`vaelab.data.datasets.write_idx`; the end-to-end tests
train a tiny model (``--filters 2``) for two epochs, once per session.
"""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from conftest import digit_like_images, run_script
from explorer_fixtures import Opened
from vaelab.config import params as params_mod
from vaelab.data.datasets import FASHION_CLASSES, IDX_NAMES, load_fashion_mnist, write_idx
from vaelab.cli.morph import class_index, class_slug
from vaelab.core.errors import UserError

TINY = ("--filters", "2", "--conv-layers", "2", "--batch-size", "64", "--limit", "256")


def write_fashion_idx(folder, n_train: int = 320, n_test: int = 200):
    """The four Fashion-MNIST IDX ``.gz`` files with ``digit_like_images`` content; returns (folder, arrays)."""
    folder.mkdir(parents=True, exist_ok=True)
    x_tr, y_tr = digit_like_images(n_train, seed=3)
    x_te, y_te = digit_like_images(n_test, seed=4)
    arrays = (x_tr, y_tr, x_te, y_te)
    for name, array in zip(IDX_NAMES, arrays):
        write_idx(folder / name, array)
    return folder, arrays


@pytest.fixture
def fashion_dir(tmp_path):
    """A data dir with ``fashion-mnist/`` holding the four IDX files."""
    write_fashion_idx(tmp_path / "data" / "fashion-mnist")
    return tmp_path / "data"


_CACHE: dict = {}


@pytest.fixture
def trained_fashion(tmp_path_factory):
    """A tiny model trained once per session by fashion_mnist_train.py: (models_dir, data_dir, prefix)."""
    if "fashion" not in _CACHE:
        base = tmp_path_factory.mktemp("fashion")
        data = base / "data"
        write_fashion_idx(data)  # flat in the data dir, the other accepted layout
        models = base / "models"
        code = run_script("fashion_mnist_train.py", "--data-dir", data, "--models-dir", models, "--epochs", "3",
                          "--lr-drop-every", "2", *TINY)
        assert code == 0
        _CACHE["fashion"] = (models, data, "fashion_mnist_ld_3_e_3")
    return _CACHE["fashion"]


# --- data and class names -------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["fashion-mnist", ""])
def test_load_fashion_mnist_reads_fixture_idx_files(tmp_path, layout):
    folder, (x_tr, y_tr, x_te, y_te) = write_fashion_idx(tmp_path / "data" / layout if layout else tmp_path / "data")
    ds = load_fashion_mnist(tmp_path / "data", download=False)
    assert ds.x_train.shape == (320, 28, 28, 1) and ds.x_test.shape == (200, 28, 28, 1)
    assert ds.x_train.dtype == np.float32 and 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    np.testing.assert_allclose(ds.x_test[..., 0] * 255.0, x_te, atol=1e-3)
    np.testing.assert_array_equal(ds.y_train, y_tr)
    assert ds.class_names == FASHION_CLASSES and ds.class_names[9] == "Ankle boot"
    assert ds.source == str(folder)


def test_load_fashion_mnist_without_files_is_a_user_error(tmp_path, monkeypatch):
    import vaelab.data.datasets as data

    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", tmp_path / "no-debian")
    with pytest.raises(UserError, match="Fashion-MNIST not found"):
        load_fashion_mnist(tmp_path, download=False)


@pytest.mark.parametrize("text, index", [
    ("T-shirt/top", 0), ("t-shirt", 0), ("tshirt", 0), ("top", 0), ("t-shirt-top", 0), ("trouser", 1),
    ("Trousers", 1), ("pullover", 2), ("dress", 3), ("DRESS", 3), ("coat", 4), ("sandal", 5), ("shirt", 6),
    ("shirts", 6), ("sneaker", 7), ("bag", 8), ("ankle-boot", 9), ("Ankle boot", 9), ("ankle_boot", 9),
    ("boot", 9), ("0", 0), ("7", 7), ("9", 9),
])
def test_class_index_accepts_names_spellings_and_indices(text, index):
    assert class_index(text, FASHION_CLASSES) == index


@pytest.mark.parametrize("text", ["drss", "10", "-1", "", "jacket"])
def test_unknown_class_is_one_line_error_listing_valid_names(text):
    with pytest.raises(UserError) as info:
        class_index(text, FASHION_CLASSES)
    message = str(info.value)
    assert "\n" not in message and repr(text) in message
    for name in ("t-shirt-top", "trouser", "dress", "ankle-boot", "0-9"):
        assert name in message


def test_class_slugs_are_file_name_friendly():
    assert [class_slug(n) for n in FASHION_CLASSES] == [
        "t-shirt-top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]
    assert all(class_index(class_slug(n), FASHION_CLASSES) == i for i, n in enumerate(FASHION_CLASSES))


# --- params ---------------------------------------------------------------------------------------


def test_params_module_holds_the_issue_values():
    import fashion_mnist_params

    p = params_mod.load(params_mod.FashionMnistParams, fashion_mnist_params)
    assert (p.IMAGE_SHAPE, p.latent_dim, p.architecture, p.likelihood) == ((28, 28, 1), 3, "conv_bn", "gaussian")
    assert p.gaussian_sigma == pytest.approx((784 / 10000) ** 0.5)  # 5000 * MSE is this Gaussian's loss
    assert (p.rmse_multiplier, p.kl_multiplier, p.kl_weight) == (5000.0, 1.0, 1.0)
    assert (p.epochs, p.patience, p.batch_size, p.learning_rate) == (100, 10, 256, 0.001)
    assert (p.lr_schedule, p.lr_drop_every, p.lr_drop_factor) == ("step", 10, 0.1)
    assert (p.amount_to_generate, p.amount_of_vector_multipliers, p.alpha_max) == (50, 20, 2.0)
    assert p.model_prefix() == "fashion_mnist_ld_3_e_100"


def test_kl_weight_follows_kl_multiplier_and_a_conflict_is_an_error():
    assert params_mod.FashionMnistParams(kl_multiplier=0.5).kl_weight == 0.5
    assert params_mod.FashionMnistParams(kl_multiplier=2, kl_weight=2).kl_weight == 2.0
    with pytest.raises(UserError, match="set only kl_multiplier"):
        params_mod.FashionMnistParams(kl_multiplier=1, kl_weight=3)
    p = params_mod.FashionMnistParams(kl_multiplier=0.25)
    assert params_mod.FashionMnistParams.from_dict(p.to_dict()) == p  # the JSON sidecar round-trips


def test_bad_params_entry_is_a_user_error():
    module = types.ModuleType("fashion_bad_params")
    module.alpha_max = -1.0
    with pytest.raises(UserError, match="alpha_max must be >= 0"):
        params_mod.load(params_mod.FashionMnistParams, module)


# --- LR schedule ----------------------------------------------------------------------------------


def test_step_decay_values_for_epochs_0_to_25():
    from vaelab.training.callbacks import step_decay

    got = [step_decay(e, 0.001, 10, 0.1) for e in range(26)]
    expected = [1e-3] * 10 + [1e-4] * 10 + [1e-5] * 6
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[0] == 0.001  # no drop at epoch 0
    assert step_decay(3, 0.01, 1, 0.5) == pytest.approx(0.01 * 0.5 ** 3)


# --- model ----------------------------------------------------------------------------------------


def tiny_params(**kw):
    return params_mod.FashionMnistParams(filters=2, conv_layers=3, **kw)


def build_fashion_vae(params):
    from vaelab.models.vae import build_vae

    return build_vae(params, (28, 28, 1))


def test_conv_vae_shapes_wiring_and_loss_weights():
    vae = build_fashion_vae(tiny_params(rmse_multiplier=5000, kl_multiplier=0.5))
    assert vae.likelihood.name == "gaussian" and vae.kl_weight == 0.5
    assert vae.likelihood.sigma == pytest.approx((784 / 10000) ** 0.5)
    enc = vae.encoder
    convs = [layer for layer in enc.layers if type(layer).__name__ == "Conv2D"]
    relus = [layer for layer in enc.layers if layer.name.endswith("_relu")]
    assert [c.strides for c in convs] == [(2, 2), (1, 1), (1, 1)]
    assert [tuple(c.output.shape[1:3]) for c in convs] == [(14, 14)] * 3
    assert all(c.input is r.output for c, r in zip(convs[1:], relus))  # each conv feeds the next
    assert sum(type(layer).__name__ == "BatchNormalization" for layer in enc.layers) == 3
    dec_shapes = [tuple(layer.output.shape[1:]) for layer in vae.decoder.layers
                  if type(layer).__name__ in ("Reshape", "Conv2DTranspose")]
    assert dec_shapes == [(7, 7, 4), (14, 14, 4), (28, 28, 2), (28, 28, 1)]
    x = np.random.default_rng(0).uniform(size=(4, 28, 28, 1)).astype("float32")
    out = vae(x)
    x_hat = 1 / (1 + np.exp(-np.asarray(out["params"], dtype=np.float64)))  # the Gaussian's mean
    assert x_hat.shape == (4, 28, 28, 1)
    terms = vae.sample_terms(x, out)
    np.testing.assert_allclose(np.asarray(terms["recon"]), 5000.0 * ((x - x_hat) ** 2).mean(axis=(1, 2, 3)),
                               rtol=1e-4)
    assert np.all(np.asarray(terms["kl"]) >= 0)


def test_batchnorm_models_save_and_load_in_h5_and_decode_identically(tmp_path):
    import keras

    from vaelab.core import artifacts
    from vaelab.models import saving
    from vaelab.models.vae import image_decoder, mean_encoder

    vae = build_fashion_vae(tiny_params(latent_dim=2))
    vae.compile(optimizer="adam")
    x = np.random.default_rng(1).uniform(size=(32, 28, 28, 1)).astype("float32")
    vae.fit(x, epochs=1, batch_size=16, verbose=0)  # moves the BatchNorm statistics away from 0/1
    bn = next(layer for layer in vae.decoder.layers if type(layer).__name__ == "BatchNormalization")
    assert np.any(np.asarray(bn.moving_mean) != 0)
    z = np.random.default_rng(2).standard_normal((5, 2)).astype("float32")
    artifacts.save_model(image_decoder(vae), tmp_path / "d.h5")
    artifacts.save_model(mean_encoder(vae.encoder), tmp_path / "e.h5")
    artifacts.save_model(vae, tmp_path / "v.h5")
    dec = saving.load_model(tmp_path / "d.h5")
    np.testing.assert_array_equal(dec.predict(z, verbose=0), image_decoder(vae).predict(z, verbose=0))
    enc = saving.load_model(tmp_path / "e.h5")
    np.testing.assert_array_equal(enc.predict(x[:4], verbose=0), vae.encoder.predict(x[:4], verbose=0)[0])
    whole = saving.load_model(tmp_path / "v.h5")
    np.testing.assert_array_equal(whole.decoder.predict(z, verbose=0), vae.decoder.predict(z, verbose=0))
    # The best checkpoint holds weights only; they load into a freshly built model.
    artifacts.save_weights(vae, tmp_path / "best.weights.h5")
    fresh = build_fashion_vae(tiny_params(latent_dim=2))
    fresh(x[:1])
    fresh.load_weights(tmp_path / "best.weights.h5")
    np.testing.assert_array_equal(fresh.decoder.predict(z, verbose=0), vae.decoder.predict(z, verbose=0))
    assert keras.backend.backend()  # the test ran on whichever backend is configured


# --- latent maths ---------------------------------------------------------------------------------


def test_class_means_on_known_latents():
    from vaelab.explore.latent import class_means

    z = np.array([[0, 0, 0], [2, 2, 2], [1, -1, 4], [3, -3, 0], [5, 5, 5]], dtype=float)
    y = np.array([0, 0, 1, 1, 3])
    means = class_means(z, y, 4)
    np.testing.assert_array_equal(means[0], [1, 1, 1])
    np.testing.assert_array_equal(means[1], [2, -2, 2])
    assert np.all(np.isnan(means[2]))
    np.testing.assert_array_equal(means[3], [5, 5, 5])


def test_morph_and_interpolate_latents():
    from vaelab.cli.morph import morph_latents

    means = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.25], [np.nan] * 3])
    alphas, z = morph_latents(means, 0, 1, "morph", 20, 2.0)
    assert len(alphas) == 20 and alphas[0] == 0.0 and alphas[-1] == 2.0
    np.testing.assert_array_equal(z[0], means[0])  # alpha = 0 is exactly mean_A
    np.testing.assert_allclose(z[-1], means[0] + 2.0 * means[1])
    np.testing.assert_allclose(z[7], means[0] + alphas[7] * means[1])
    alphas, z = morph_latents(means, 0, 1, "interpolate", 5, 2.0)
    np.testing.assert_array_equal(alphas, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_array_equal(z[0], means[0])
    np.testing.assert_allclose(z[-1], means[1])
    with pytest.raises(UserError, match="no images"):
        morph_latents(means, 0, 2, "morph", 5, 2.0)


def test_morph_pairs_parse_names_and_default_set():
    from vaelab.cli.morph import DEFAULT_MORPH_PAIRS, morph_pairs

    assert morph_pairs(["dress", "7"], ["trouser", "ankle boot"], FASHION_CLASSES) == [(3, 1), (7, 9)]
    assert len(morph_pairs([], [], FASHION_CLASSES)) == len(DEFAULT_MORPH_PAIRS) >= 1
    with pytest.raises(UserError, match="same number of times"):
        morph_pairs(["dress"], [], FASHION_CLASSES)
    with pytest.raises(UserError, match="valid names"):
        morph_pairs(["dress"], ["jacket"], FASHION_CLASSES)


# --- scripts, end to end --------------------------------------------------------------------------


def test_train_script_saves_everything_and_applies_the_schedule(trained_fashion):
    from vaelab.core.artifacts import load_history

    models, _, prefix = trained_fashion
    for suffix in ("vae.h5", "encoder.h5", "decoder.h5", "history.pkl", "history.json", "params.json",
                   "test.json", "best.weights.h5", "log.csv", "architecture.txt"):
        assert (models / f"{prefix}_{suffix}").is_file(), suffix
    history = load_history(models / f"{prefix}_history.pkl")
    np.testing.assert_allclose(history["learning_rate"], [1e-3, 1e-3, 1e-4], rtol=1e-6)  # drop after 2 epochs
    assert len(history["loss"]) == 3 and len(history["epoch_seconds"]) == 3
    test = json.loads((models / f"{prefix}_test.json").read_text())
    assert test["epochs_run"] == 3 and 0 < test["test_mse"] < 1 and test["test_kl"] >= 0
    assert test["test_loss"] == pytest.approx(5000 * test["test_mse"] + test["test_kl"], rel=1e-4)


def morph_images(results, prefix, pairs, mode="morph"):
    word = "plus" if mode == "morph" else "to"
    return [results / f"{prefix}_{name}.png" for name in
            ("latent3d", "reconstructions", "generated", "class_means")] + [
        results / f"{prefix}_{mode}_{a}_{word}_{b}.png" for a, b in pairs]


def test_headless_morph_run_writes_every_image(trained_fashion, tmp_path, capsys):
    models, data, prefix = trained_fashion
    results = tmp_path / "results"
    code = run_script("fashion_mnist_morph.py", "--data-dir", data, "--models-dir", models, "--results-dir",
                      results, "--epochs", "3", "--limit", "256", "--amount-to-generate", "12",
                      "--amount-of-vector-multipliers", "6", "--from", "dress", "--to", "trouser",
                      "--from", "9", "--to", "t-shirt")
    assert code == 0
    expected = morph_images(results, prefix, [("dress", "trouser"), ("ankle-boot", "t-shirt-top")])
    assert sorted(results.iterdir()) == sorted(expected)
    out = capsys.readouterr().out
    assert all(str(p) in out for p in expected)  # every PNG path is printed


def test_default_pairs_and_interpolate_mode(trained_fashion, tmp_path):
    from vaelab.cli.morph import class_slug
    from vaelab.cli.morph import DEFAULT_MORPH_PAIRS

    models, data, prefix = trained_fashion
    results = tmp_path / "results"
    code = run_script("fashion_mnist_morph.py", "--data-dir", data, "--models-dir", models, "--results-dir",
                      results, "--model", prefix, "--limit", "128", "--mode", "interpolate",
                      "--amount-of-vector-multipliers", "3", "--amount-to-generate", "4")
    assert code == 0
    pairs = [tuple(class_slug(FASHION_CLASSES[class_index(n, FASHION_CLASSES)]) for n in pair)
             for pair in DEFAULT_MORPH_PAIRS]
    assert sorted(results.iterdir()) == sorted(morph_images(results, prefix, pairs, "interpolate"))


def test_morph_decodes_alpha_zero_exactly_as_mean_a(trained_fashion):
    from vaelab.config.experiments import FASHION_MNIST
    from vaelab.cli.morph import morph_latents
    from vaelab.api.trained import load_trained
    from vaelab.explore.latent import class_means

    models, data, prefix = trained_fashion
    trained = load_trained(FASHION_MNIST, params_mod.FashionMnistParams(epochs=3), models)
    ds = load_fashion_mnist(data, limit=128)
    z = trained.encode(ds.x_test)
    np.testing.assert_array_equal(z, trained.encode(ds.x_test))  # z_mean, no sampling noise
    means = class_means(z, ds.y_test, 10)
    _, strip = morph_latents(means, 3, 1, "morph", 6, 2.0)
    np.testing.assert_array_equal(trained.decode(strip)[0], trained.decode(means[3:4])[0])


def test_explore_gets_class_morph_sliders_over_the_test_set_means(trained_fashion, tmp_path, monkeypatch):
    from vaelab.config.experiments import FASHION_MNIST
    from vaelab.api.trained import load_trained
    from vaelab.explore.latent import class_means

    opened = Opened(monkeypatch)
    models, data, prefix = trained_fashion
    code = run_script("fashion_mnist_morph.py", "--data-dir", data, "--models-dir", models, "--results-dir",
                      tmp_path, "--epochs", "3", "--limit", "128", "--amount-to-generate", "2",
                      "--amount-of-vector-multipliers", "2", "--from", "dress", "--to", "trouser", "--explore")
    assert code == 0
    (call,) = opened.calls
    morph = call["morph"]
    assert (morph.a, morph.b, morph.alpha_max) == (3, 1, 2.0) and list(morph.class_names) == list(FASHION_CLASSES)
    trained = load_trained(FASHION_MNIST, params_mod.FashionMnistParams(epochs=3), models)
    ds = load_fashion_mnist(data, limit=128)
    means = class_means(trained.encode(ds.x_test), ds.y_test, 10)
    np.testing.assert_allclose(morph.fn(7, 9, 0.5), means[7] + 0.5 * means[9], atol=1e-6)
    assert call["scatter"].z.shape == (128, 3) and call["latent_dim"] == 3


def test_morph_train_flag_trains_first_and_says_so(fashion_dir, tmp_path, capsys):
    models, results = tmp_path / "models", tmp_path / "results"
    code = run_script("fashion_mnist_morph.py", "--data-dir", fashion_dir, "--models-dir", models,
                      "--results-dir", results, "--train", "--epochs", "1", *TINY, "--from", "bag", "--to", "coat",
                      "--amount-of-vector-multipliers", "2", "--amount-to-generate", "2")
    assert code == 0
    assert "training it first (--train)" in capsys.readouterr().out
    prefix = "fashion_mnist_ld_3_e_1"
    assert (models / f"{prefix}_decoder.h5").is_file()
    assert sorted(results.iterdir()) == sorted(morph_images(results, prefix, [("bag", "coat")])
                                               + [results / f"{prefix}_history.png"])  # from the training


def test_missing_model_and_unknown_class_are_one_line_errors(fashion_dir, tmp_path, capsys):
    code = run_script("fashion_mnist_morph.py", "--data-dir", fashion_dir, "--models-dir", tmp_path / "none",
                      "--results-dir", tmp_path / "r")
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--train" in err and "Traceback" not in err
    code = run_script("fashion_mnist_morph.py", "--data-dir", fashion_dir, "--models-dir", tmp_path / "none",
                      "--results-dir", tmp_path / "r", "--from", "drss", "--to", "dress")
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: unknown class 'drss'; valid names: t-shirt-top, trouser")
    assert err.count("\n") == 1
    code = run_script("fashion_mnist_train.py", "--data-dir", fashion_dir, "--kl-weight", "3")
    err = capsys.readouterr().err
    assert code == 2 and "set only kl_multiplier" in err


def test_evaluate_reports_a_gaussian_density_without_bits_per_dim(trained_fashion, tmp_path, capsys):
    """The MSE decoder's likelihood is a density of [0, 1] values (it can exceed 1): nats are reported, bits/dim
    (a probability of discrete pixels) are not."""
    import json
    import shutil

    models, data, prefix = trained_fashion
    shutil.copytree(models, tmp_path / "m", ignore=shutil.ignore_patterns("tensorboard"))
    assert run_script("evaluate.py", "--dataset", "fashion_mnist", "--data-dir", data, "--models-dir", tmp_path / "m",
                      "--model", prefix, "--k", "5", "--quiet") == 0
    r = json.loads((tmp_path / "m" / f"{prefix}_eval.json").read_text())
    assert r["likelihood"] == "gaussian"
    assert "iwae_bits_per_dim" not in r and "elbo_bits_per_dim" not in r and "iwae_nll_nats" in r
    assert "bits/dim" not in capsys.readouterr().out
