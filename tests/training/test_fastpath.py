"""The fast training path (XLA, several steps per call): each epoch trains on exactly its own batches."""

import numpy as np
import pytest

from vaelab.data import batches
from vaelab.training import callbacks
from vaelab.training import loop as training
from vaelab.core.artifacts import ModelFiles


@pytest.mark.parametrize("steps, most, expected", [(235, 64, 47), (235, 16, 5), (4, 2, 2), (4, 64, 4), (7, 2, 1),
                                                   (1, 64, 1), (128, 64, 64)])
def test_steps_per_execution_divides_the_epoch(steps, most, expected):
    assert training.steps_per_execution(steps, most) == expected
    assert steps % expected == 0


def test_default_mnist_epoch_runs_in_whole_calls():
    """60000 images in batches of 256: 235 steps (a short batch of 96 first), 5 calls of 47."""
    assert len(batches.batch_bounds(60000, 256)) == 235
    assert training.steps_per_execution(235) == 47


def _tiny_model():
    import keras

    inp = keras.Input((3,))
    model = keras.Model(inp, keras.layers.Dense(1)(inp))
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=2)
    return model


def test_keras_runs_whole_calls_even_past_the_epoch_on_endless_data():
    """Why the steps per call must divide the epoch: 5 steps in calls of 2 train 6 batches (Keras 3)."""
    import keras

    class Endless(keras.utils.PyDataset):
        num_batches = None

        def __getitem__(self, i):
            return np.ones((2, 3), "float32"), np.ones((2, 1), "float32")

    model = _tiny_model()
    model.fit(Endless(), steps_per_epoch=5, epochs=1, shuffle=False, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 6  # if Keras ever stops overrunning, this may go


def test_compile_options_per_backend_and_determinism():
    import keras

    assert training.compile_options(False, 235) == {}
    if keras.backend.backend() == "jax":  # always XLA; several steps per call (a Python loop in Keras)
        assert training.compile_options(True, 235) == {"steps_per_execution": 47}
        return
    if keras.backend.backend() != "tensorflow":
        assert training.compile_options(True, 235) == {}
        return
    try:
        training.make_deterministic(0, ops=False)
        assert training.compile_options(True, 235) == {"steps_per_execution": 47, "jit_compile": True}
        training.make_deterministic(0, ops=True)  # Keras refuses XLA with deterministic ops
        assert training.compile_options(True, 235) == {"steps_per_execution": 47}
    finally:
        training.make_deterministic(0, ops=False)


def test_fast_path_trains_exactly_the_steps_of_each_epoch(tmp_path, monkeypatch):
    """10 steps per epoch, at most 4 per call: 5 calls of 2, so 10 optimizer steps per epoch, not 12."""
    import keras

    from vaelab.config.experiments import MNIST
    from vaelab.models.vae import build_vae
    from vaelab.config.params import MnistParams

    monkeypatch.setattr(training, "FAST_MAX_STEPS", 4)
    params = MnistParams(epochs=2, batch_size=32, intermediate_dim=16)
    x = np.random.default_rng(0).random((300, 784), dtype=np.float32)  # 300 = 12 + 9 x 32: 10 steps
    assert len(batches.batch_bounds(len(x), params.batch_size)) == 10
    iterations = []

    class Count(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            iterations.append(int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)))

    real = callbacks.run_callbacks
    monkeypatch.setattr(callbacks, "run_callbacks", lambda *a, **k: [*real(*a, **k), Count()])
    vae = build_vae(params, MNIST.image_shape)
    history = training.fit(vae, x, None, params, ModelFiles(tmp_path, "p"), verbose=0, fast=True)
    assert iterations == [10, 20]
    assert len(history["loss"]) == 2  # both epochs counted as complete (the Checkpointer saw every step)
    if keras.backend.backend() in ("tensorflow", "jax"):
        assert vae.steps_per_execution == 2 and vae.jit_compile


def test_only_mnist_is_on_the_fast_path():
    from vaelab.config import experiments
    from vaelab.config.presets import PRESETS

    on = [e.name for e in vars(experiments).values() if isinstance(e, experiments.Experiment) and e.fast_path]
    assert on == ["mnist"]
    # so a preset's documented command needs no --no-jit (issue 22: cifar10_hier once did)
    assert all("--no-jit" not in p.help for p in PRESETS.values())
