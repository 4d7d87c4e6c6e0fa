"""The FLOP count behind the benchmark's '% of peak' (timings themselves are never tested)."""

import keras

from vaelab import benchmark
from vaelab.models import build_vae
from vaelab.params import MnistParams


def test_dense_vae_training_flops_from_layer_shapes():
    vae = build_vae(MnistParams(), (28, 28, 1))  # 784 -> 512 -> (2, 2); 2 -> 512 -> 784
    forward = 2 * (784 * 512 + 512 * 2 + 512 * 2) + 2 * (2 * 512 + 512 * 784)
    assert benchmark.model_forward_flops(vae.encoder) + benchmark.model_forward_flops(vae.decoder) == forward
    assert benchmark.vae_train_flops(vae) == 3 * forward


def test_conv_flops():
    x = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same")(x)  # out 4x4x4
    y = keras.layers.Conv2DTranspose(5, 3, strides=2, padding="same")(h)  # in 4x4x4 -> 8x8x5
    model = keras.Model(x, keras.layers.Dense(6)(keras.layers.Flatten()(y)))
    assert benchmark.model_forward_flops(model) == (2 * 4 * 4 * 4 * 3 * 3 * 3 + 2 * 4 * 4 * 4 * 3 * 3 * 5
                                                    + 2 * 8 * 8 * 5 * 6)


def test_matmul_peak_reports_a_rate():
    peak = benchmark.matmul_peak(n=64, repeats=3)
    assert peak["median_flops"] > 1e6 and len(peak["rates"]) == 3 and peak["best_flops"] >= peak["median_flops"]
