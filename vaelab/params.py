"""Typed, validated parameters: a plain params module a user edits, plus command-line overrides.

A params module (``mnist_params.py``) holds plain constants. :func:`load` reads it into the dataclass of
its dataset, so a typo (``latnt_dim = 3``) or a wrong type (``epochs = "60"``) is a one-line
:class:`~vaelab.errors.UserError` naming the entry instead of a crash an hour into training.

Each dataset's dataclass inherits the common entries from :class:`Params` and adds or re-defaults its
own, the way vdvae's presets override a base. Every dataclass knows the file-name prefix of the models it
describes (``NAME_TEMPLATE``), so naming lives in one place.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
from dataclasses import dataclass, field
from typing import Any, ClassVar

from vaelab.errors import UserError

OPTIMIZERS = ("adam", "rmsprop", "sgd", "adamw", "nadam")


def entry(default, help, *, min=None, max=None, choices=None):  # noqa: A002 - mirrors argparse names
    """A dataclass field with the metadata used for validation and ``--help``."""
    return field(default=default, metadata={"help": help, "min": min, "max": max, "choices": choices})


@dataclass(kw_only=True)
class Params:
    """Entries every dataset has."""

    DATASET: ClassVar[str] = ""
    NAME_TEMPLATE: ClassVar[str] = ""

    latent_dim: int = entry(2, "size of the latent space", min=1, max=4096)
    epochs: int = entry(60, "passes over the training set", min=1, max=100_000)
    batch_size: int = entry(256, "examples per training step", min=1, max=1_000_000)
    epsilon_std: float = entry(1.0, "standard deviation of the sampling noise eps (1.0 is the true VAE)",
                               min=0.0, max=100.0)
    optimizer: str = entry("adam", "optimizer name", choices=OPTIMIZERS)
    learning_rate: float = entry(1e-3, "optimizer learning rate", min=1e-12, max=10.0)
    kl_weight: float = entry(1.0, "weight of the KL term (1.0 is the ELBO; beta-VAE otherwise)",
                             min=0.0, max=1e6)
    seed: int = entry(0, "random seed for weights, shuffling and sampling", min=0, max=2**31 - 1)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            setattr(self, f.name, _check(f, getattr(self, f.name)))
        self.validate()

    def validate(self) -> None:
        """Checks across entries; subclasses extend it."""

    def model_prefix(self) -> str:
        """File-name prefix of the models these params describe, e.g. ``ld_2_id_512_e_60``."""
        return self.NAME_TEMPLATE.format(**dataclasses.asdict(self))

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.DATASET, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "params") -> "Params":
        data = dict(data)
        dataset = data.pop("dataset", cls.DATASET)
        if dataset != cls.DATASET:
            raise UserError(f"{source}: made for dataset {dataset!r}, not {cls.DATASET!r}; use the {dataset} "
                            "scripts, or pick another model with --model")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise UserError(f"{source}: unknown entr{'y' if len(unknown) == 1 else 'ies'} "
                            f"{', '.join(unknown)}; known: {', '.join(sorted(names))}")
        try:
            return cls(**data)
        except UserError as e:
            raise UserError(f"{source}: {e}") from None


def _check(f: dataclasses.Field, value: Any) -> Any:
    """Type- and range-check one entry; returns the value normalised (ints accepted for floats)."""
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    meta = f.metadata
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{f.name} must be an integer, got {value!r}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{f.name} must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise UserError(f"{f.name} must be finite, got {value!r}")
    elif kind == "str":
        if not isinstance(value, str):
            raise UserError(f"{f.name} must be a string, got {value!r}")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise UserError(f"{f.name} must be True or False, got {value!r}")
    if meta.get("choices") is not None and value not in meta["choices"]:
        raise UserError(f"{f.name} must be one of {', '.join(map(str, meta['choices']))}; got {value!r}")
    if meta.get("min") is not None and value < meta["min"]:
        raise UserError(f"{f.name} must be >= {meta['min']}, got {value!r}")
    if meta.get("max") is not None and value > meta["max"]:
        raise UserError(f"{f.name} must be <= {meta['max']}, got {value!r}")
    return value


def module_entries(module: types.ModuleType) -> dict[str, Any]:
    """The plain constants of a params module (names not starting with ``_``, no modules or functions)."""
    return {k: v for k, v in vars(module).items()
            if not k.startswith("_") and not callable(v) and not isinstance(v, types.ModuleType)}


def load(cls: type[Params], module: types.ModuleType | None = None,
         overrides: dict[str, Any] | None = None) -> Params:
    """Build ``cls`` from a params module's constants, then apply command-line overrides."""
    data: dict[str, Any] = {}
    source = "params"
    if module is not None:
        source = f"{getattr(module, '__name__', 'params')}.py"
        data.update(module_entries(module))
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    data.setdefault("dataset", cls.DATASET)
    return cls.from_dict(data, source=source)


def load_json(cls: type[Params], path) -> Params:
    """Read a params sidecar written by training (``…_params.json``)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise UserError(f"{path}: no such params file") from None
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable params JSON file ({e})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a params JSON object")
    return cls.from_dict(data, source=str(path))


# --- datasets -------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class MnistParams(Params):
    """The dense MNIST VAE: 784 -> intermediate -> latent."""

    DATASET: ClassVar[str] = "mnist"
    NAME_TEMPLATE: ClassVar[str] = "ld_{latent_dim}_id_{intermediate_dim}_e_{epochs}"

    original_dim: int = entry(784, "flattened image size (28*28)", choices=(784,))
    intermediate_dim: int = entry(512, "units of the hidden Dense layer", min=1, max=65536)


@dataclass(kw_only=True)
class FashionMnistParams(Params):
    """The convolutional Fashion-MNIST VAE, its MSE loss, LR schedule, early stopping and morph figures.

    The loss is ``rmse_multiplier * mean squared error over pixels + kl_multiplier * KL``. Despite its
    historical name, ``rmse_multiplier`` multiplies the *mean squared* error (no square root), exactly as
    the original scripts did. ``kl_multiplier`` is this dataset's name for the base entry ``kl_weight``:
    the two are one knob. Set ``kl_multiplier``; a ``kl_weight`` left at its default follows it, and a
    ``kl_weight`` set to a different value is an error rather than a silent choice between them.
    """

    DATASET: ClassVar[str] = "fashion_mnist"
    NAME_TEMPLATE: ClassVar[str] = "fashion_mnist_ld_{latent_dim}_e_{epochs}"

    latent_dim: int = entry(3, "size of the latent space", min=1, max=4096)
    epochs: int = entry(100, "most passes over the training set (early stopping may end sooner)",
                        min=1, max=100_000)
    img_height: int = entry(28, "image height in pixels", choices=(28,))
    img_width: int = entry(28, "image width in pixels", choices=(28,))
    filters: int = entry(32, "filters of the first conv layer; later layers and the decoder's 7x7 map use "
                             "twice as many", min=1, max=1024)
    conv_layers: int = entry(3, "3x3 conv layers in the encoder (the first with stride 2)", min=1, max=16)
    rmse_multiplier: float = entry(5000.0, "weight of the mean squared error over pixels (not its root)",
                                   min=0.0, max=1e9)
    kl_multiplier: float = entry(1.0, "weight of the KL term (same knob as kl_weight)", min=0.0, max=1e6)
    patience: int = entry(10, "epochs without a better validation loss before training stops",
                          min=1, max=100_000)
    lr_drop_every: int = entry(10, "multiply the learning rate by lr_drop_factor every this many epochs",
                               min=1, max=100_000)
    lr_drop_factor: float = entry(0.1, "factor applied to the learning rate at each drop", min=1e-6, max=1.0)
    amount_to_generate: int = entry(50, "images decoded from z ~ N(0, I) by fashion_mnist_morph.py",
                                    min=1, max=1000)
    amount_of_vector_multipliers: int = entry(20, "alpha values (panels) in each morph strip", min=2, max=200)
    alpha_max: float = entry(2.0, "largest alpha of a morph strip mean_A + alpha * mean_B", min=0.0, max=100.0)

    def validate(self) -> None:
        if self.kl_weight != 1.0 and self.kl_weight != self.kl_multiplier:
            raise UserError(f"kl_weight ({self.kl_weight:g}) and kl_multiplier ({self.kl_multiplier:g}) are the "
                            "same knob for Fashion-MNIST; set only kl_multiplier")
        self.kl_weight = self.kl_multiplier
