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
        eps = keras.random.normal(ops.shape(z_mean), stddev=self.epsilon_std, dtype=z_mean.dtype,
                                  seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "epsilon_std": self.epsilon_std, "seed": self.seed}
