"""The Sampling layer: the right mean and spread, seeded, and serialisable."""

import numpy as np
import keras

from vaelab.layers import Sampling


def test_sampling_mean_and_std():
    n = 200_000
    mu = np.full((n, 2), [1.5, -2.0], dtype="float32")
    log_var = np.full((n, 2), [np.log(0.25), np.log(4.0)], dtype="float32")
    z = keras.ops.convert_to_numpy(Sampling(seed=1)([mu, log_var]))
    np.testing.assert_allclose(z.mean(axis=0), [1.5, -2.0], atol=0.02)
    np.testing.assert_allclose(z.std(axis=0), [0.5, 2.0], rtol=0.01)


def test_epsilon_std_scales_the_noise():
    n = 100_000
    zeros = np.zeros((n, 1), dtype="float32")
    z = keras.ops.convert_to_numpy(Sampling(epsilon_std=0.1, seed=2)([zeros, zeros]))
    np.testing.assert_allclose(z.std(), 0.1, rtol=0.02)


def test_seeded_layers_repeat_and_config_round_trips():
    mu = np.zeros((4, 3), dtype="float32")
    a = keras.ops.convert_to_numpy(Sampling(seed=5)([mu, mu]))
    b = keras.ops.convert_to_numpy(Sampling(seed=5)([mu, mu]))
    np.testing.assert_array_equal(a, b)
    layer = Sampling.from_config(Sampling(epsilon_std=0.5, seed=3).get_config())
    assert (layer.epsilon_std, layer.seed) == (0.5, 3)
