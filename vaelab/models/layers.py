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
class DiscretizedLogisticMean(keras.layers.Layer):
    """Discretized-logistic mixture parameters -> the mean image (read in decoders saved before
    :class:`LikelihoodMean`)."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)

    def call(self, params):
        from vaelab.models import discretized

        return discretized.mean_image(params, self.channels)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


@keras.saving.register_keras_serializable(package="vaelab")
class BatchNormalization(keras.layers.BatchNormalization):
    """Keras' BatchNormalization, computed by TensorFlow's fused kernel when training on TensorFlow.

    Keras 3 normalizes a training batch with separate reductions and element-wise ops; on TensorFlow's CPU
    backend those took most of the Fashion-MNIST model's step, and TensorFlow's own fused batch norm (one
    oneDNN kernel each way) did the forward and backward pass of a (256, 14, 14, 64) batch in 5.9 ms
    instead of 15.1 ms (docs/benchmarks.md). The fused kernel is used for float32 inputs of rank 2 or 4
    normalized over their last axis, in training, without a mask; everything else (other backends, inference,
    renorm, masks, mixed precision) is Keras' own code. The results and the moving statistics are Keras'
    (the moving variance averages the biased batch variance, as Keras does; tests/models/test_layers.py), the
    weights and config are the same, so models save and load as with Keras' layer.
    """

    def _fused(self, inputs, training, mask) -> bool:
        return (bool(training) and self.trainable and mask is None and not self.renorm and not self.synchronized
                and keras.backend.backend() == "tensorflow" and len(inputs.shape) in (2, 4)
                and self.axis % len(inputs.shape) == len(inputs.shape) - 1
                and keras.backend.standardize_dtype(inputs.dtype) == "float32")

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = inputs if len(inputs.shape) == 4 else inputs[:, None, None, :]
        channels = x.shape[-1]
        gamma = self.gamma if self.scale else tf.ones((channels,), "float32")
        beta = self.beta if self.center else tf.zeros((channels,), "float32")
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(x, gamma, beta, epsilon=self.epsilon,
                                                            data_format="NHWC", is_training=True)
        # The kernel returns the unbiased (n - 1) batch variance; Keras averages the biased one.
        n = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), "float32")
        variance = variance * ((n - 1.0) / tf.maximum(n, 1.0))
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return y if len(inputs.shape) == 4 else y[:, 0, 0, :]


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
    all replicas would draw the same noise for their shares of a batch (tested in tests/training/test_distribute.py).
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
