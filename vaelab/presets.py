"""Named presets: a dataset's defaults plus a few overrides, listed here once (vdvae's way).

``--preset NAME`` on a train, generate or evaluate script applies the preset's entries on top of the params
module; entries given on the command line still win. The preset's name is saved in ``…_params.json`` and
names the model files (``<preset>_e_<epochs>``), so the generate and evaluate scripts find the model with the
same ``--preset``. The plain scripts keep the original designs' defaults.

The presets' values were chosen on the training sets (validation on held-out images) and are reported in the
README's "Quality" table with the commands that trained and scored them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vaelab.errors import UserError


@dataclass(frozen=True)
class Preset:
    name: str
    dataset: str
    help: str
    overrides: dict = field(default_factory=dict)


PRESETS = {p.name: p for p in (
    Preset("mnist2d", "mnist", "latent 2 with a wider, deeper MLP (1024-1024), batch 128 and a cosine learning rate; "
           "samples from a 30-component Gaussian mixture fitted to the training codes",
           {"hidden_dims": "1024,1024", "batch_size": 128, "epochs": 30, "lr_schedule": "cosine",
            "sampler": "gmm", "gmm_components": 30}),
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
