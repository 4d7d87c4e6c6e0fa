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
