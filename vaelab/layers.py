"""Custom layers, registered so that saved models load in safe mode on every backend."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="vaelab")
class Sampling(keras.layers.Layer):
    """Reparameterisation trick: ``z = mu + exp(log_var / 2) * eps * epsilon_std``, ``eps ~ N(0, I)``.

    A seeded :class:`keras.random.SeedGenerator` makes it run on JAX (which has no hidden global RNG)
    and makes runs repeatable.
    """

    def __init__(self, epsilon_std: float = 1.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.epsilon_std = float(epsilon_std)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = normal_noise(ops.shape(z_mean), self.epsilon_std, z_mean.dtype, self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "epsilon_std": self.epsilon_std, "seed": self.seed}


@keras.saving.register_keras_serializable(package="vaelab")
class LikelihoodMean(keras.layers.Layer):
    """Decoder output -> the image in [0, 1] that a likelihood of :mod:`vaelab.parts` has as its mean: the last
    layer of every saved ``…_decoder.h5``."""

    def __init__(self, likelihood: str, channels: int, options: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        from vaelab import parts

        self.likelihood_name, self.channels, self.options = likelihood, int(channels), dict(options or {})
        self.likelihood = parts.lookup("likelihood", likelihood)(self.channels, **self.options)

    def call(self, out):
        return self.likelihood.mean(out)

    def compute_output_shape(self, input_shape):
        if len(input_shape) == 2:  # flat decoder outputs, one number per pixel and channel
            return input_shape
        return (*input_shape[:-1], self.channels)

    def get_config(self):
        return {**super().get_config(), "likelihood": self.likelihood_name, "channels": self.channels,
                "options": self.options}


@keras.saving.register_keras_serializable(package="vaelab")
class DiscretizedLogisticMean(keras.layers.Layer):
    """Discretized-logistic mixture parameters -> the mean image (read in decoders saved before
    :class:`LikelihoodMean`)."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)

    def call(self, params):
        from vaelab import discretized

        return discretized.mean_image(params, self.channels)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


def normal_noise(shape, stddev, dtype, seed_generator):
    """``N(0, stddev^2)`` noise of ``shape`` from ``seed_generator``'s next seed, distinct per replica under
    ``tf.distribute`` (every layer that samples draws through here)."""
    replica = _replica_id()
    if replica is None:
        return keras.random.normal(shape, stddev=stddev, dtype=dtype, seed=seed_generator)
    return _replica_normal(shape, stddev, dtype, seed_generator, replica)


def _replica_id():
    """This replica's index under ``tf.distribute`` with several replicas, else None.

    Every replica runs the same step with the same mirrored seed state, so without folding this index in,
    all replicas would draw the same noise for their shares of a batch (tested in tests/test_distribute.py).
    JAX's ``DataParallel`` draws for the global batch at once and needs nothing.
    """
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context.replica_id_in_sync_group


REPLICA_SEED_STRIDE = 1_000_003  # a prime: shifts the seed's first word per replica, far from other seeds


def _replica_normal(shape, stddev, dtype, seed_generator, replica):
    """Normal noise from the layer's next seed with ``replica`` folded in (TensorFlow only)."""
    import tensorflow as tf

    seed = tf.cast(seed_generator.next(), "int64")
    seed = seed + tf.stack([tf.cast(replica, "int64") * REPLICA_SEED_STRIDE + REPLICA_SEED_STRIDE,
                            tf.constant(0, "int64")])
    seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), "int32")
    return tf.random.stateless_normal(shape, seed=seed, stddev=stddev, dtype=dtype)
