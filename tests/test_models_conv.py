"""The conv VAEs: exact output shapes for 32, 92 and 128 px, the output_padding plan, the loss's units,
and a save/load round trip."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vaelab import params as P
from vaelab.errors import UserError


def tiny(cls, **kw):
    """The dataset's params with a small network (same geometry: sizes, kernels, strides)."""
    return cls(**{"filters": 4, "intermediate_dim": 8, "latent_dim": 3, **kw})


@pytest.mark.parametrize("cls, size", [(P.Cifar10Params, 32), (P.Caltech101_92Params, 92),
                                       (P.Caltech101_128Params, 128)])
def test_conv_vae_reproduces_its_input_shape_exactly(cls, size):
    from vaelab.models import build_conv_vae

    params = tiny(cls)
    vae = build_conv_vae(params)
    x = np.random.default_rng(0).random((2, size, size, 3)).astype("float32")
    out = vae(x)
    assert tuple(out["reconstruction"].shape) == (2, size, size, 3)
    assert tuple(out["z_mean"].shape) == (2, 3)
    assert vae.decoder.outputs[0].shape[1:] == (size, size, 3)
    # every transposed convolution returns what its encoder twin received
    enc_sizes = [tuple(layer.output.shape[1:3]) for layer in vae.encoder.layers if layer.name.startswith("conv_")]
    dec_sizes = [tuple(layer.output.shape[1:3]) for layer in vae.decoder.layers if layer.name.startswith("deconv_")]
    assert dec_sizes == enc_sizes[-2::-1]


def test_default_architectures_follow_the_issue():
    from vaelab.models import build_conv_decoder, build_conv_encoder

    c = P.Cifar10Params()
    enc, dec = build_conv_encoder(c), build_conv_decoder(c)
    convs = [layer for layer in enc.layers if layer.name.startswith("conv_")]
    assert [(layer.filters, layer.kernel_size, layer.strides) for layer in convs] == [
        (3, (2, 2), (1, 1)), (32, (2, 2), (2, 2)), (32, (3, 3), (1, 1)), (32, (3, 3), (1, 1))]
    assert dec.get_layer("decoder_upsample").units == 32 * 16 * 16
    deconvs = [layer for layer in dec.layers if layer.name.startswith("deconv_")]
    assert [layer.strides for layer in deconvs] == [(1, 1), (1, 1), (2, 2)]
    assert dec.get_layer("x_hat").activation.__name__ == "sigmoid"
    p92 = P.Caltech101_92Params()
    assert (p92.latent_dim, p92.intermediate_dim, p92.filters, p92.kernel_list(), p92.stride_list()) == (
        32, 256, 32, (3, 3, 3, 3), (1, 2, 2, 2))
    assert p92.feature_sizes() == [(92, 92), (92, 92), (46, 46), (23, 23), (12, 12)]
    assert p92.decoder_output_padding() == [(0, 0), None, None]  # 12 -> 23 needs it; 23 -> 46 -> 92 do not
    p128 = P.Caltech101_128Params()
    assert (p128.latent_dim, p128.intermediate_dim, p128.filters) == (64, 256, 64)


def _transpose_out(size, k, s, pad):
    return size * s if pad is None else (size - 1) * s + k % 2 + pad


@settings(max_examples=200, deadline=None)
@given(rows=st.integers(4, 300), cols=st.integers(4, 300), k1=st.sampled_from([1, 3, 5]),
       k2=st.sampled_from([1, 3, 5]), strides=st.lists(st.integers(1, 4), min_size=3, max_size=3))
def test_output_padding_plan_returns_every_encoder_size_for_odd_kernels(rows, cols, k1, k2, strides):
    p = P.ConvParams(img_rows=rows, img_cols=cols, first_kernel=k1, num_conv=k2,
                     strides=",".join(map(str, [1, *strides])))
    sizes, kernels, st_ = p.feature_sizes(), p.kernel_list(), p.stride_list()
    for i, pad in zip((3, 2, 1), p.decoder_output_padding()):
        pads = (None, None) if pad is None else pad
        for axis in (0, 1):
            assert _transpose_out(sizes[i + 1][axis], kernels[i], st_[i], pads[axis]) == sizes[i][axis]


@pytest.mark.parametrize("kw, message", [
    ({"img_rows": 32, "img_cols": 31, "first_kernel": 2}, "cannot be reproduced exactly"),
    ({"strides": "2,2,2,2"}, "first stride must be 1"),
    ({"strides": "1,2,2"}, "strides must be 4 numbers"),
    ({"strides": "1,x,1,1"}, "strides must be 4 whole numbers"),
])
def test_impossible_geometries_are_one_line_user_errors(kw, message):
    with pytest.raises(UserError, match=message) as e:
        P.ConvParams(**kw)
    assert "\n" not in str(e.value)


def test_dataset_sizes_are_fixed_and_names_follow_the_original():
    with pytest.raises(UserError, match="img_rows must be one of 92"):
        P.Caltech101_92Params(img_rows=94)
    assert P.Cifar10Params().model_prefix() == "cifar10_ld_16_conv_3_id_128_e_50"
    assert P.Caltech101_92Params(epochs=3).model_prefix() == "caltech101_92_ld_32_conv_3_id_256_e_3"
    assert P.Caltech101_128Params(fit="squash").model_prefix() == "caltech101_128_ld_64_conv_3_id_256_e_50_squash"


def test_loss_is_bce_summed_over_pixels_and_channels_plus_kl_summed_over_latents():
    from vaelab.models import build_conv_vae

    vae = build_conv_vae(tiny(P.Cifar10Params))
    assert vae.reconstruction_weight == 32 * 32 * 3
    rng = np.random.default_rng(1)
    x = rng.random((4, 32, 32, 3)).astype("float32")
    out = {k: np.asarray(v) for k, v in vae(x).items()}
    x_hat = np.clip(out["reconstruction"].astype("float64"), 1e-7, 1 - 1e-7)
    bce = -(x * np.log(x_hat) + (1 - x) * np.log(1 - x_hat)).sum(axis=(1, 2, 3))
    mu, lv = out["z_mean"].astype("float64"), out["z_log_var"].astype("float64")
    kl = -0.5 * (1 + lv - mu ** 2 - np.exp(lv)).sum(axis=1)
    recon, kl_model = (np.asarray(t) for t in vae.per_example_losses(x, vae(x) | {
        "reconstruction": out["reconstruction"]}))
    np.testing.assert_allclose(recon, bce, rtol=1e-3)
    np.testing.assert_allclose(kl_model, kl, rtol=1e-4, atol=1e-6)


def test_save_and_load_in_safe_mode_gives_identical_outputs(tmp_path):
    from vaelab import artifacts
    from vaelab.models import build_conv_vae, mean_encoder

    vae = build_conv_vae(tiny(P.Caltech101_92Params))
    artifacts.save_model(vae.decoder, tmp_path / "d.h5")
    artifacts.save_model(mean_encoder(vae.encoder), tmp_path / "e.h5")
    z = np.random.default_rng(2).standard_normal((3, 3)).astype("float32")
    x = np.random.default_rng(3).random((2, 92, 92, 3)).astype("float32")
    np.testing.assert_allclose(artifacts.load_model(tmp_path / "d.h5").predict(z, verbose=0),
                               vae.decoder.predict(z, verbose=0), rtol=1e-6)
    np.testing.assert_allclose(artifacts.load_model(tmp_path / "e.h5").predict(x, verbose=0),
                               vae.encoder.predict(x, verbose=0)[0], rtol=1e-5, atol=1e-6)


def test_reported_reconstruction_and_kl_add_up_to_the_loss_with_a_short_last_batch():
    """The trackers are weighted by batch size like Keras's loss: 10 images in batches of 4, 4, 2."""
    from vaelab.data import image_batches
    from vaelab.models import build_conv_vae

    vae = build_conv_vae(tiny(P.Cifar10Params, epsilon_std=0.0))  # no sampling noise: repeatable
    vae.compile(optimizer="adam")
    images = np.random.default_rng(4).integers(0, 256, size=(10, 32, 32, 3), dtype=np.uint8)
    images[8:] = 255  # the short last batch differs from the rest
    result = vae.evaluate(image_batches(images, 4), verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(result["reconstruction_loss"] + result["kl_loss"], rel=1e-5)
    x = images.astype("float32") / 255
    recon, kl = (np.asarray(t) for t in vae.per_example_losses(x, vae(x)))
    assert result["reconstruction_loss"] == pytest.approx(recon.mean(), rel=1e-4)
