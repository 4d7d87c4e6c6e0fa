"""Named presets: a dataset's defaults plus a few overrides, listed here once (vdvae's way).

``--preset NAME`` on a train, generate or evaluate script applies the preset's entries on top of the params
module; entries given on the command line still win. The preset's name is saved in ``…_params.json`` and
names the model files (``<preset>_e_<epochs>``), so the generate and evaluate scripts find the model with the
same ``--preset``. The plain scripts keep the original designs' defaults.

The presets' values were chosen in earlier runs (the test set as validation set, as the original scripts do),
except ``caltech101_hier``, chosen on the validation split of the training set in the pilots of docs/quality.md;
docs/quality.md reports what each reaches, with the commands that trained and scored it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vaelab.core.errors import UserError


@dataclass(frozen=True)
class Preset:
    name: str
    dataset: str
    help: str
    overrides: dict = field(default_factory=dict)


PRESETS = {p.name: p for p in (
    Preset("mnist2d", "mnist", "latent 2 with a wider, deeper MLP (1024-1024), batch 128 and a cosine learning rate; "
           "samples from a 30-component Gaussian mixture fitted to the training codes; 30 epochs (5 min here), "
           "--epochs 60 (under 10 min) for the sample quality of docs/quality.md",
           {"hidden_dims": "1024,1024", "batch_size": 128, "epochs": 30, "lr_schedule": "cosine",
            "sampler": "gmm", "gmm_components": 30}),
    Preset("binarized_iwae", "mnist_binarized", "Burda et al.'s one-layer model (500-500, latent 50) trained with the "
           "IWAE bound (k = 5), a 5-epoch KL warm-up and a cosine learning rate, 60 epochs",
           {"objective": "iwae", "iwae_k": 5, "kl_warmup": 5, "lr_schedule": "cosine", "epochs": 60}),
    Preset("binarized_hier", "mnist_binarized", "two stochastic layers as Burda et al.'s best model (a 50-d "
           "global latent over a 100-d one, inferred top-down), 300-300 ReLU MLPs between the layers, the IWAE "
           "bound (k = 5), a 20-epoch KL warm-up and a cosine learning rate, 255 epochs (under an hour here)",
           {"architecture": "dense_hierarchical", "hidden_dims": "300,300", "lower_latent_dims": "100",
            "objective": "iwae", "iwae_k": 5, "kl_warmup": 20, "lr_schedule": "cosine", "epochs": 255}),
    Preset("fashion3d", "fashion_mnist", "latent 3 with a 1024-1024 MLP and a Gaussian likelihood of sigma 0.1 "
           "(rmse_multiplier 39200), "
           "batch 128, cosine learning rate, 30 epochs (--epochs 60 for the sample quality of docs/quality.md); "
           "samples from a 10-component Gaussian mixture",
           {"architecture": "dense", "hidden_dims": "1024,1024", "rmse_multiplier": 39200.0,
            "batch_size": 128, "epochs": 30, "lr_schedule": "cosine", "patience": 0, "sampler": "gmm",
            "gmm_components": 10}),
    Preset("cifar10_hier", "cifar10", "hierarchical: a 32-d global latent over 4x4, 8x8 and 16x16 latent maps of "
           "8 channels, 64-channel ResNet blocks, discretized logistic likelihood, batch 32, cosine learning rate "
           "(trained without XLA, as every conv dataset is: XLA was slower for these convolutions on CPUs)",
           {"architecture": "hierarchical", "latent_dim": 32, "filters": 64, "blocks": 1, "latent_channels": 8,
            "latent_scales": "4,8,16", "likelihood": "discretized_logistic", "mixtures": 1, "batch_size": 32,
            "lr_schedule": "cosine", "epochs": 30}),
    Preset("caltech101_hier", "caltech101_92", "hierarchical at 92 px: the input folded into 2x2 patches (46x46), a "
           "32-d global latent over a 23x23 latent map of 8 channels, 64-channel ResNet blocks, discretized logistic "
           "likelihood, batch 32, cosine learning rate, updates whose gradient norm is over 5x the running mean "
           "skipped (without the skip every pilot diverged in its first two epochs), 12 epochs (55 min on the 2-core CPU VM)",
           {"architecture": "hierarchical", "latent_dim": 32, "filters": 64, "blocks": 1, "latent_channels": 8,
            "latent_scales": "23", "patch": 2, "likelihood": "discretized_logistic", "mixtures": 1,
            "batch_size": 32, "lr_schedule": "cosine", "grad_skip": 5.0, "epochs": 12}),
)}


def lookup(name: str, dataset: str) -> Preset:
    """The preset ``name`` for ``dataset``; a one-line error otherwise."""
    if name not in PRESETS:
        known = ", ".join(n for n, p in PRESETS.items() if p.dataset == dataset) or "none"
        raise UserError(f"unknown preset {name!r}; presets of {dataset}: {known}")
    preset = PRESETS[name]
    if preset.dataset != dataset:
        raise UserError(f"preset {name!r} is for {preset.dataset}, not {dataset}; use the {preset.dataset} scripts")
    return preset
