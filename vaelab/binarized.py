"""Binarized MNIST, the likelihood benchmark of the VAE literature (Burda et al. 2015, Kingma & Welling 2014).

Grey-level MNIST under a Bernoulli decoder is not a density: its "NLL" is a cross-entropy, not comparable
with published numbers. The literature's setup, reproduced here:

- **training**: dynamic binarization. Every time an image is seen (each epoch) each pixel is redrawn as
  ``Bernoulli(grey level)``. :func:`vae_class` (``DynamicBinarizationVAE``) does it inside the model with a seeded
  :class:`keras.random.SeedGenerator`, so it costs no input-pipeline work and runs on every backend;
- **evaluation**: one static binarization of the test set, drawn with the fixed :data:`TEST_BINARIZATION_SEED`
  so every model and every run is scored on the same 10,000 binary images.

:data:`BINARIZED_MNIST` is the :class:`~vaelab.experiments.Experiment` (``mnist_binarized_train.py``,
``evaluate.py --dataset mnist_binarized``); :class:`BinarizedMnistParams` its params (preset in
``mnist_binarized_params.py``: latent 50, hidden layers 500-500).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from vaelab.errors import UserError
from vaelab.experiments import Experiment
from vaelab.params import Params, entry

TEST_BINARIZATION_SEED = 2015  # fixed: every model is scored on the same binary test images


def static_binarization(x: np.ndarray, seed: int = TEST_BINARIZATION_SEED) -> np.ndarray:
    """One Bernoulli draw per pixel with probability the grey level, from a seeded generator (float32 0/1)."""
    rng = np.random.default_rng(seed)
    return (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)


def parse_hidden_dims(text: str) -> tuple[int, ...]:
    """``"500,500"`` -> ``(500, 500)``; a one-line error for anything else."""
    try:
        dims = tuple(int(t) for t in text.replace(" ", "").split(",") if t)
    except ValueError:
        dims = ()
    if not dims or any(d < 1 or d > 65536 for d in dims):
        raise UserError(f"hidden_dims must be comma-separated layer sizes in 1..65536 like '500,500', got {text!r}")
    return dims


@dataclass(kw_only=True)
class BinarizedMnistParams(Params):
    """An MLP VAE on dynamically binarized MNIST: 784 -> hidden… -> latent -> …hidden -> 784 (Bernoulli)."""

    DATASET: ClassVar[str] = "mnist_binarized"
    NAME_TEMPLATE: ClassVar[str] = "bin_ld_{latent_dim}_h_{hidden}_e_{epochs}"

    latent_dim: int = entry(50, "size of the latent space", min=1, max=4096)
    batch_size: int = entry(100, "examples per training step", min=1, max=1_000_000)
    original_dim: int = entry(784, "flattened image size (28*28)", choices=(784,))
    hidden_dims: str = entry("500,500", "comma-separated units of the encoder's hidden Dense layers "
                                        "(the decoder mirrors them)")

    def validate(self) -> None:
        parse_hidden_dims(self.hidden_dims)

    @property
    def hidden(self) -> tuple[int, ...]:
        return parse_hidden_dims(self.hidden_dims)

    def model_prefix(self) -> str:
        return self.NAME_TEMPLATE.format(latent_dim=self.latent_dim, epochs=self.epochs,
                                         hidden="-".join(map(str, self.hidden)))


_CLASSES: dict = {}


def vae_class():
    """``DynamicBinarizationVAE``, defined (and registered for loading) on first use, so that importing this
    module imports no Keras. Call it before loading a saved binarized VAE."""
    if "vae" in _CLASSES:
        return _CLASSES["vae"]
    import keras
    from keras import ops

    from vaelab.models import VAE

    @keras.saving.register_keras_serializable(package="vaelab")
    class DynamicBinarizationVAE(VAE):
        """A :class:`~vaelab.models.VAE` that redraws binary pixels ``x_b ~ Bernoulli(x)`` at every training step.

        The encoder sees ``x_b`` and the loss scores ``x_b``; outside training (evaluation, prediction) the
        input is used as given, so a statically binarized test set is scored as it is.
        """

        def __init__(self, *args, binarize_seed: int | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            self.binarize_seed = binarize_seed
            self.binarize_generator = keras.random.SeedGenerator(binarize_seed)

        def call(self, x, training=False):
            if training:
                u = keras.random.uniform(ops.shape(x), dtype=x.dtype, seed=self.binarize_generator)
                x = ops.cast(u < x, x.dtype)
            return {**super().call(x, training=training), "binarized": x}

        def per_example_losses(self, x, outputs):
            return super().per_example_losses(outputs.get("binarized", x), outputs)

        def get_config(self):
            return {**super().get_config(), "binarize_seed": self.binarize_seed}

    _CLASSES["vae"] = DynamicBinarizationVAE
    return DynamicBinarizationVAE


def custom_objects() -> dict:
    """For loading a saved binarized VAE: the legacy .h5 reader looks custom classes up by bare name, so pass
    these to ``keras.saving.custom_object_scope`` around :func:`vaelab.artifacts.load_model`."""
    return {"DynamicBinarizationVAE": vae_class()}


def build_binarized_vae(params: BinarizedMnistParams):
    """The MLP VAE of ``params`` with dynamic binarization (seeded from ``params.seed``)."""
    from vaelab.models import build_mlp_decoder, build_mlp_encoder

    encoder = build_mlp_encoder(params.original_dim, params.hidden, params.latent_dim)
    decoder = build_mlp_decoder(params.latent_dim, params.hidden, params.original_dim)
    return vae_class()(encoder, decoder, reconstruction="bce", kl_weight=params.kl_weight,
                        epsilon_std=params.epsilon_std, seed=params.seed, binarize_seed=params.seed + 1, name="vae")


def load_binarized_mnist(data_dir=None, limit: int | None = None):
    """MNIST with grey-level training images (binarized dynamically by the model) and the statically
    binarized test set (seed :data:`TEST_BINARIZATION_SEED`, drawn over all 10,000 before ``limit``)."""
    from vaelab.data import Dataset, load_mnist

    data = load_mnist(data_dir)
    data = Dataset("mnist_binarized", data.x_train, data.y_train, static_binarization(data.x_test), data.y_test,
                   data.class_names, f"{data.source} (test set binarized with seed {TEST_BINARIZATION_SEED})")
    return data.limit(limit)


def _mean_encoder(p):
    from vaelab.models import build_mlp_encoder, mean_encoder

    return mean_encoder(build_mlp_encoder(p.original_dim, p.hidden, p.latent_dim))


def _decoder(p):
    from vaelab.models import build_mlp_decoder

    return build_mlp_decoder(p.latent_dim, p.hidden, p.original_dim)


BINARIZED_MNIST = Experiment("mnist_binarized", BinarizedMnistParams, load_binarized_mnist, build_binarized_vae,
                             lambda p: (28, 28, 1), "mnist_binarized_train.py", flatten=True,
                             rebuild_encoder=_mean_encoder, rebuild_decoder=_decoder)
