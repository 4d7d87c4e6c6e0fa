"""Architectures: every one builds for every dataset's image size (or says in one line why not), with the
shapes the VAE needs; the conv stack's geometry reproduces each size exactly; the original designs' layers."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vaelab.models.architectures import conv, dense, resnet
from vaelab.config import params as P
from vaelab.config import conv_params as CP
from vaelab.models import registry as parts
from vaelab.core.errors import UserError

SHAPES = [(28, 28, 1), (32, 32, 3), (92, 92, 3), (128, 128, 3)]
SINGLE = ["dense", "conv", "conv_bn", "resnet"]


def tiny(**kw):
    """Small widths, the geometry of the defaults (kernels, strides)."""
    return P.Params(**{"filters": 4, "intermediate_dim": 8, "latent_dim": 3, "blocks": 1, **kw})


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}px")
@pytest.mark.parametrize("name", SINGLE)
def test_every_architecture_maps_images_to_codes_and_codes_to_every_size(name, shape):
    params = tiny(architecture=name)
    arch = parts.ARCHITECTURES[name]
    arch.check(params, shape)
    encoder, decoder = arch.build(params, shape, out_channels=5)
    n = 2
    x = np.random.default_rng(0).random((n, *shape)).astype("float32")
    z_mean, z_log_var = encoder(x.reshape(n, -1) if arch.flat_input else x)
    assert tuple(z_mean.shape) == tuple(z_log_var.shape) == (n, 3)
    out = keras.ops.convert_to_numpy(decoder(np.zeros((n, 3), "float32")))
    assert out.shape == (n, *shape[:2], 5)


def test_dense_output_stays_flat_with_one_number_per_pixel_as_the_original():
    encoder, decoder = dense.build_dense(tiny(hidden_dims="16,8"), (28, 28, 1), 1)
    assert decoder.output_shape == (None, 784) and encoder.input_shape == (None, 784)
    assert [tuple(w.shape) for w in encoder.weights if len(w.shape) == 2] == [(784, 16), (16, 8), (8, 3), (8, 3)]
    assert [tuple(w.shape) for w in decoder.weights if len(w.shape) == 2] == [(3, 8), (8, 16), (16, 784)]


def test_resnet_halves_even_sizes_down_to_8_px_and_caps_its_width():
    assert resnet.resnet_stages((28, 28, 1)) == [(28, 28), (14, 14), (7, 7)]
    assert resnet.resnet_stages((92, 92, 3)) == [(92, 92), (46, 46), (23, 23)]
    assert resnet.resnet_stages((128, 128, 3)) == [(128, 128), (64, 64), (32, 32), (16, 16), (8, 8)]
    assert resnet.resnet_widths(tiny(filters=16), 5) == [16, 32, 64, 64, 64]


def test_an_architecture_that_cannot_make_a_size_says_why_in_one_line():
    with pytest.raises(UserError, match="conv_bn needs a height and width divisible by 4") as e:
        conv.check_conv_bn(tiny(), (30, 30, 1))
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="resnet needs an image it can halve"):
        resnet.check_resnet(tiny(), (7, 7, 1))
    with pytest.raises(UserError, match="conv cannot reproduce a 32x31 image"):
        conv.check_conv(tiny(first_kernel=2), (32, 31, 3))


def test_the_original_conv_design():
    c = CP.Cifar10Params()
    enc, dec = conv.build_conv(c, (32, 32, 3), 3)
    convs = [layer for layer in enc.layers if layer.name.startswith("conv_")]
    assert [(layer.filters, layer.kernel_size, layer.strides) for layer in convs] == [
        (3, (2, 2), (1, 1)), (32, (2, 2), (2, 2)), (32, (3, 3), (1, 1)), (32, (3, 3), (1, 1))]
    assert dec.get_layer("decoder_upsample").units == 32 * 16 * 16
    deconvs = [layer for layer in dec.layers if layer.name.startswith("deconv_")]
    assert [layer.strides for layer in deconvs] == [(1, 1), (1, 1), (2, 2)]
    assert dec.get_layer("x_hat").activation.__name__ == "linear"  # logits: the likelihood applies the sigmoid
    p92 = CP.Caltech101_92Params()
    assert (p92.latent_dim, p92.intermediate_dim, p92.filters, conv.conv_kernels(p92), conv.conv_strides(p92)) == (
        32, 256, 32, (3, 3, 3, 3), (1, 2, 2, 2))
    assert conv.conv_feature_sizes(p92, (92, 92, 3)) == [(92, 92), (92, 92), (46, 46), (23, 23), (12, 12)]
    assert conv.conv_output_padding(p92, (92, 92, 3)) == [(0, 0), None, None]  # 12 -> 23 needs it
    # every transposed convolution returns what its encoder twin received
    enc, dec = conv.build_conv(tiny(first_kernel=3, strides="1,2,2,2"), (92, 92, 3), 3)
    enc_sizes = [tuple(layer.output.shape[1:3]) for layer in enc.layers if layer.name.startswith("conv_")]
    dec_sizes = [tuple(layer.output.shape[1:3]) for layer in dec.layers if layer.name.startswith("deconv_")]
    assert dec_sizes == enc_sizes[-2::-1]


def _transpose_out(size, k, s, pad):
    return size * s if pad is None else (size - 1) * s + k % 2 + pad


@settings(max_examples=200, deadline=None)
@given(rows=st.integers(4, 300), cols=st.integers(4, 300), k1=st.sampled_from([1, 3, 5]),
       k2=st.sampled_from([1, 3, 5]), strides=st.lists(st.integers(1, 4), min_size=3, max_size=3))
def test_output_padding_plan_returns_every_encoder_size_for_odd_kernels(rows, cols, k1, k2, strides):
    p = tiny(first_kernel=k1, num_conv=k2, strides=",".join(map(str, [1, *strides])))
    shape = (rows, cols, 3)
    sizes, kernels, st_ = conv.conv_feature_sizes(p, shape), conv.conv_kernels(p), conv.conv_strides(p)
    for i, pad in zip((3, 2, 1), conv.conv_output_padding(p, shape)):
        pads = (None, None) if pad is None else pad
        for axis in (0, 1):
            assert _transpose_out(sizes[i + 1][axis], kernels[i], st_[i], pads[axis]) == sizes[i][axis]


@pytest.mark.parametrize("kw, message", [
    ({"strides": "2,2,2,2"}, "first stride must be 1"),
    ({"strides": "1,2,2"}, "strides must be 4 numbers"),
    ({"strides": "1,x,1,1"}, "strides must be comma-separated whole numbers"),
])
def test_impossible_geometries_are_one_line_user_errors(kw, message):
    with pytest.raises(UserError, match=message) as e:
        CP.Cifar10Params(**kw)
    assert "\n" not in str(e.value)


def test_the_fashion_design_wires_each_conv_to_the_previous_one():
    enc, dec = conv.build_conv_bn(P.FashionMnistParams(), (28, 28, 1), 1)
    convs = [layer for layer in enc.layers if type(layer).__name__ == "Conv2D"]
    assert [(c.filters, c.strides) for c in convs] == [(32, (2, 2)), (64, (1, 1)), (64, (1, 1))]
    assert [tuple(c.input.shape[1:]) for c in convs] == [(28, 28, 1), (14, 14, 32), (14, 14, 64)]
    assert dec.output_shape == (None, 28, 28, 1)
