"""The class-conditional VAE: labels packed into the inputs, every architecture, the saved two-input files."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vaelab.config.params import MnistParams
from vaelab.models import conditional
from vaelab.models.vae import build_vae, image_decoder, mean_encoder


@pytest.mark.parametrize("flat", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_pack_and_unpack_round_trip(flat, dtype):
    from keras import ops

    from vaelab.config.experiments import model_inputs

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (7, 4, 4, 1)).astype(np.uint8)
    x = x if dtype == np.uint8 else (x / 255.0).astype(np.float32)
    y = np.array([0, 9, 3, 100, 255, 1, 7])
    packed = conditional.pack(x, y)
    assert packed.shape == (7, 4, 4, 2) and packed.dtype == x.dtype
    inputs = model_inputs(packed, flat, packed=True)
    assert inputs.shape == ((7, 17) if flat else (7, 4, 4, 2)) and inputs.dtype == np.float32
    image, label = conditional.unpack(ops.convert_to_tensor(inputs))
    np.testing.assert_array_equal(ops.convert_to_numpy(label).ravel(), y)
    np.testing.assert_allclose(ops.convert_to_numpy(image), model_inputs(x, flat), atol=1e-7)


def test_pack_refuses_labels_out_of_range():
    with pytest.raises(ValueError, match="labels must lie in 0..255"):
        conditional.pack(np.zeros((1, 2, 2, 1)), [256])
    with pytest.raises(ValueError, match="2 images but 1 labels"):
        conditional.pack(np.zeros((2, 2, 2, 1)), [1])


ARCHITECTURES = [
    ("dense", {"intermediate_dim": 16}),
    ("conv", {"filters": 4, "intermediate_dim": 16}),
    ("conv_bn", {"filters": 4, "intermediate_dim": 16}),
    ("resnet", {"filters": 4, "blocks": 1}),
    ("hierarchical", {"filters": 8, "blocks": 1, "latent_scales": "7,14", "latent_channels": 2}),
    ("dense_hierarchical", {"hidden_dims": "16", "lower_latent_dims": "4"}),
]


def _digits(n=12, seed=0):
    from conftest import digit_like_images

    x, y = digit_like_images(n, seed=seed)
    return (x[..., None] / 255.0).astype(np.float32), y


@pytest.mark.parametrize("arch, extra", ARCHITECTURES, ids=[a for a, _ in ARCHITECTURES])
def test_every_architecture_takes_the_label_in_encoder_and_decoder(arch, extra, tmp_path):
    from keras import ops

    from vaelab.config.experiments import model_inputs
    from vaelab.core import artifacts
    from vaelab.models import saving

    params = MnistParams(architecture=arch, latent_dim=3, conditional=True, **extra)
    vae = build_vae(params, (28, 28, 1))
    assert vae.conditional and vae.n_classes == 10
    assert [tuple(i.shape[1:]) for i in vae.encoder.inputs][1] == (1,)
    x, y = _digits()
    flat = len(vae.encoder.inputs[0].shape) == 2
    packed = model_inputs(conditional.pack(x, y), flat, packed=True)
    # fit first, on the model not yet called: it builds it from a placeholder batch, whose label channel on
    # PyTorch was no class index (CategoryEncoding refused it)
    vae.compile(optimizer="adam")
    assert np.isfinite(vae.fit(packed, batch_size=6, epochs=1, verbose=0).history["loss"][-1])
    terms = vae.importance_terms(packed, 2, __import__("keras").random.SeedGenerator(0))
    assert terms["log_px"].shape == (24,) and np.isfinite(terms["log_px"]).all()
    loss = vae.compute_loss(x=ops.convert_to_tensor(packed), y_pred=vae(ops.convert_to_tensor(packed)),
                            training=False)
    assert np.isfinite(float(ops.convert_to_numpy(loss)))
    # The saved files take the label as a second input, and the label changes the image.
    decoder, encoder = image_decoder(vae), mean_encoder(vae.encoder)
    z = np.zeros((2, 3), np.float32)
    a = np.asarray(decoder.predict([z, np.array([[1], [1]])], verbose=0))
    b = np.asarray(decoder.predict([z, np.array([[1], [8]])], verbose=0))
    np.testing.assert_allclose(a[0], b[0], atol=1e-6)
    assert np.abs(a[1] - b[1]).max() > 1e-6
    path = artifacts.save_model(decoder, tmp_path / "d.h5")
    artifacts.save_model(encoder, tmp_path / "e.h5")
    again = saving.load_model(path)
    np.testing.assert_allclose(np.asarray(again.predict([z, np.array([[1], [8]])], verbose=0)), b, atol=1e-5)
    codes = saving.load_model(tmp_path / "e.h5").predict([model_inputs(x, flat), y.reshape(-1, 1)], verbose=0)
    assert codes.shape == (12, 3)


def test_a_learned_embedding_and_the_file_name_token():
    params = MnistParams(conditional=True, label_embedding=4, intermediate_dim=16)
    vae = build_vae(params, (28, 28, 1))
    assert vae.decoder.get_layer("decoder_label").output.shape[-1] == 4
    assert params.model_prefix() == "ld_2_id_16_e_60_cond4"
    assert dataclasses.replace(params, label_embedding=0).model_prefix() == "ld_2_id_16_e_60_cond"
    assert MnistParams(intermediate_dim=16).model_prefix() == "ld_2_id_16_e_60"


def test_the_loss_is_the_conditional_elbo_of_the_images_alone():
    """The label channel is not scored: the reconstruction term is the Bernoulli log-likelihood of the pixels."""
    from keras import ops

    from vaelab.config.experiments import model_inputs

    params = MnistParams(conditional=True, intermediate_dim=16, epsilon_std=0.0)
    vae = build_vae(params, (28, 28, 1))
    x, y = _digits(4)
    packed = ops.convert_to_tensor(model_inputs(conditional.pack(x, y), True, packed=True))
    out = vae(packed)
    assert tuple(out["x"].shape) == (4, 784)
    terms = vae.sample_terms(out["x"], out)
    logits = ops.convert_to_numpy(out["params"])
    target = x.reshape(4, 784)
    bce = np.sum(np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits))), axis=1)
    np.testing.assert_allclose(ops.convert_to_numpy(terms["recon"]), bce, rtol=1e-4)
