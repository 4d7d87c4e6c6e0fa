"""Params read from model files without a params sidecar: this project's Keras 3 files of every design and the
original scripts' Keras 2 files (dense and conv), so that --model PATH needs no other flags."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import run_script
from keras2_fixtures import conv, dense, write_keras2_model
from vaelab.core import artifacts
from vaelab.config import params as P
from vaelab.config import conv_params as CP
from vaelab.models.modelfile import infer_params


def _save(vae, folder, name="m"):
    from vaelab.models.vae import image_decoder, mean_encoder

    folder.mkdir(exist_ok=True)
    dec, enc = folder / f"{name}_decoder.h5", folder / f"{name}_encoder.h5"
    artifacts.save_model(image_decoder(vae), dec)
    artifacts.save_model(mean_encoder(vae.encoder), enc)
    return dec, enc


@pytest.mark.parametrize("made, defaults, expected", [
    (P.MnistParams(latent_dim=5, intermediate_dim=24), P.MnistParams(), {"latent_dim": 5, "intermediate_dim": 24}),
    (P.MnistParams(latent_dim=5, hidden_dims="24,12"), P.MnistParams(), {"latent_dim": 5, "hidden_dims": "24,12"}),
    (CP.Cifar10Params(latent_dim=6, intermediate_dim=12, filters=5, num_conv=5, first_kernel=3, strides="1,2,2,1"),
     CP.Cifar10Params(),
     {"latent_dim": 6, "intermediate_dim": 12, "filters": 5, "num_conv": 5, "first_kernel": 3, "strides": "1,2,2,1"}),
    (CP.Cifar10Params(latent_dim=4, intermediate_dim=8, filters=4, likelihood="discretized_logistic", mixtures=3),
     CP.Cifar10Params(),
     {"latent_dim": 4, "intermediate_dim": 8, "filters": 4, "num_conv": 3, "first_kernel": 2, "strides": "1,2,1,1",
      "likelihood": "discretized_logistic", "mixtures": 3}),
    (P.FashionMnistParams(latent_dim=2, filters=6, conv_layers=2), P.FashionMnistParams(),
     {"latent_dim": 2, "filters": 6, "conv_layers": 2}),
])
def test_this_projects_files_of_every_design(tmp_path, made, defaults, expected):
    from vaelab.models.vae import build_vae

    dec, enc = _save(build_vae(made, made.IMAGE_SHAPE), tmp_path)
    assert infer_params(defaults, dec, enc) == expected
    without_encoder = {k: v for k, v in expected.items() if k != "conv_layers"}  # counted in the encoder
    assert infer_params(defaults, dec) == without_encoder


def test_binarized_mlp_widths(tmp_path):
    from vaelab.models.vae import build_vae

    made = P.BinarizedMnistParams(latent_dim=7, hidden_dims="30,20")
    dec, enc = _save(build_vae(made, made.IMAGE_SHAPE, binarize=True), tmp_path)
    assert infer_params(P.BinarizedMnistParams(), dec, enc) == {"latent_dim": 7, "hidden_dims": "30,20"}


def test_unreadable_files_give_nothing(tmp_path):
    bad = tmp_path / "bad_decoder.h5"
    bad.write_bytes(b"not hdf5")
    assert infer_params(P.MnistParams(), bad) == {} and infer_params(P.MnistParams(), tmp_path / "none.h5") == {}


def keras2_conv_generator(path, decoder) -> None:
    """The original conv script's generator (Dense, Dense, Reshape, 3 Conv2DTranspose, Conv2D with a sigmoid) in
    Keras 2.0's layout, holding the weights of this project's ``decoder`` (same layer shapes; it outputs logits)."""
    weighted = [layer for layer in decoder.layers if layer.weights]
    hidden, upsample, d1, d2, d3, out = weighted
    layers = [("dense_4", "Dense", dense(hidden.units, "relu"), hidden.get_weights()),
              ("dense_5", "Dense", dense(upsample.units, "relu"), upsample.get_weights()),
              ("reshape_1", "Reshape", {"target_shape": list(decoder.get_layer("decoder_reshape").target_shape)}, ())]
    for i, layer in enumerate((d1, d2, d3)):
        layers.append((f"conv2d_transpose_{i + 1}", "Conv2DTranspose",
                       conv(layer.filters, layer.kernel_size[0], layer.strides[0], "relu"), layer.get_weights()))
    layers.append(("conv2d_5", "Conv2D", conv(out.filters, out.kernel_size[0], 1, "sigmoid"), out.get_weights()))
    write_keras2_model(path, (decoder.inputs[0].shape[-1],), layers)


def test_an_original_keras2_conv_generator_needs_no_flags(tmp_path, capsys):
    """cifar10_generate.py --model old_generator.h5 with the params module's defaults (latent 16, filters 32,
    intermediate 128): the file's sizes (latent 5, filters 4, intermediate 8, strides 1,2,2,2) are used."""
    from conv_fixtures import write_cifar_dir

    from vaelab.models.vae import build_vae, image_decoder, mean_encoder

    made = CP.Cifar10Params(latent_dim=5, intermediate_dim=8, filters=4, strides="1,2,2,2")
    vae = build_vae(made, made.IMAGE_SHAPE)
    models = tmp_path / "models"
    models.mkdir()
    keras2_conv_generator(models / "old_generator.h5", vae.decoder)  # its logits, then the sigmoid, as the original
    artifacts.save_model(mean_encoder(vae.encoder), models / "old_encoder.h5")
    assert infer_params(CP.Cifar10Params(), models / "old_generator.h5") == {
        "latent_dim": 5, "intermediate_dim": 8, "filters": 4, "num_conv": 3, "first_kernel": 2, "strides": "1,2,2,2"}
    write_cifar_dir(tmp_path / "data")
    code = run_script("cifar10_generate.py", "--model", models / "old_generator.h5", "--data-dir", tmp_path / "data",
                      "--results-dir", tmp_path / "r", "--no-prompt", "--grid", "2", "--z", "0,0,0,0,1")
    out = capsys.readouterr().out
    assert code == 0
    assert ("note: old has no params file; from its model files: latent_dim 5, intermediate_dim 8, filters 4, "
            "strides 1,2,2,2") in out
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [
        "old_random_normal.png", "old_reconstructions.png", "old_z_0_0_0_0_1.png"]
    # the weights were copied layer by layer: the file decodes as the model it was made from
    from vaelab.config.experiments import CIFAR10
    from vaelab.api.trained import load_trained

    trained = load_trained(CIFAR10, CP.Cifar10Params(), models, str(models / "old_generator.h5"))
    z = np.random.default_rng(0).standard_normal((3, 5)).astype("float32")
    np.testing.assert_allclose(trained.decode(z), image_decoder(vae).predict(z, verbose=0), atol=1e-6)


def test_a_model_copied_without_its_params_file(tmp_path, trained_mnist, capsys):
    models, data, prefix = trained_mnist
    alone = tmp_path / "alone"
    alone.mkdir()
    for kind in ("encoder", "decoder"):
        shutil.copy(models / f"{prefix}_{kind}.h5", alone / f"{prefix}_{kind}.h5")
    code = run_script("mnist_generate.py", "--model", alone / f"{prefix}_decoder.h5", "--data-dir", data,
                      "--results-dir", tmp_path / "r", "--no-prompt", "--grid", "2")
    assert code == 0
    out = capsys.readouterr().out
    assert "note: ld_2_id_32_e_1 has no params file; from its model files: intermediate_dim 32" in out
    assert (tmp_path / "r" / f"{prefix}_random_normal.png").is_file()


def test_a_model_file_of_impossible_sizes_is_one_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    models = tmp_path / "models"
    models.mkdir()
    layers = [("dense_3", "Dense", dense(8, "relu"), (rng.standard_normal((5000, 8)), np.zeros(8))),
              ("dense_4", "Dense", dense(784, "sigmoid"), (rng.standard_normal((8, 784)), np.zeros(784)))]
    write_keras2_model(models / "big_generator.h5", (5000,), layers)
    assert run_script("mnist_generate.py", "--model", models / "big_generator.h5", "--no-prompt") == 2
    assert capsys.readouterr().err == (f"error: {models / 'big_generator.h5'}: a model of latent_dim 5000, "
                                       "intermediate_dim 8 is no mnist model (latent_dim must be <= 4096, got 5000); "
                                       "pick another --model\n")
