"""The Sampling layer: the right mean and spread, seeded, and serialisable; the fused BatchNormalization gives
Keras' numbers."""

import keras
import numpy as np
import pytest

from vaelab.models.layers import BatchNormalization, Sampling


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


@pytest.mark.parametrize("shape", [(16, 5, 7, 6), (32, 6)])
def test_batch_normalization_gives_keras_numbers(shape):
    """Outputs, gradients and moving statistics of a training step, and the inference output, equal those of
    Keras' BatchNormalization with the same weights (on TensorFlow the fused kernel computes them)."""
    rng = np.random.default_rng(0)
    x = (rng.normal(size=shape) * 3 + 1).astype("float32")
    ours, theirs = BatchNormalization(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
    for layer in (ours, theirs):
        layer.build(shape)
        layer.gamma.assign(np.arange(1, shape[-1] + 1, dtype="float32") / 2)
        layer.beta.assign(np.linspace(-1, 1, shape[-1]).astype("float32"))
    if keras.backend.backend() == "tensorflow":
        assert ours._fused(keras.ops.convert_to_tensor(x), True, None)
        assert not ours._fused(keras.ops.convert_to_tensor(x), False, None)
    weights = rng.normal(size=shape).astype("float32")

    def step(layer):
        if keras.backend.backend() != "tensorflow":
            return keras.ops.convert_to_numpy(layer(x, training=True)), None
        import tensorflow as tf

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = layer(xt, training=True)
            loss = tf.reduce_sum(y * weights)
        grads = tape.gradient(loss, [xt, layer.gamma, layer.beta])
        return y.numpy(), [g.numpy() for g in grads]

    (y1, g1), (y2, g2) = step(ours), step(theirs)
    np.testing.assert_allclose(y1, y2, rtol=1e-4, atol=1e-4)
    if g1 is not None:
        for a, b in zip(g1, g2):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)
    for name in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(getattr(ours, name)),
                                   keras.ops.convert_to_numpy(getattr(theirs, name)), rtol=1e-5, atol=1e-6)
    axes = tuple(range(len(shape) - 1))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours.moving_variance),
                               0.9 + 0.1 * x.var(axis=axes), rtol=1e-5)  # the biased variance, as Keras
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(x, training=False)),
                               keras.ops.convert_to_numpy(theirs(x, training=False)), rtol=1e-5, atol=1e-5)
    again = BatchNormalization.from_config(ours.get_config())
    assert type(again) is BatchNormalization and again.momentum == 0.9
