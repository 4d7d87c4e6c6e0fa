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
import importlib
import importlib.util
import json
import math
import traceback
import types
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, ClassVar

from vaelab import discretized
from vaelab.errors import UserError

OPTIMIZERS = ("adam", "rmsprop", "sgd", "adamw", "nadam")
RECONSTRUCTIONS = ("bce", discretized.NAME)  # of the conv VAEs


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


def read_module(name: str, missing_ok: bool = False) -> types.ModuleType | None:
    """Import the params module ``name`` (``"mnist_params"``), the file users edit.

    Whatever goes wrong while Python reads it (a syntax error, a failing import, a misspelt name, any
    exception) is a one-line :class:`UserError` naming the file and the line, e.g.
    ``mnist_params.py, line 14: invalid syntax``; the original exception is its cause (``--debug`` shows it).
    A module that does not exist is an error too, or ``None`` with ``missing_ok``.
    """
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        if missing_ok:
            return None
        raise UserError(f"{name}.py not found: the scripts read their params from it, beside them; restore it "
                        f"(e.g. git checkout {name}.py)")
    try:
        return importlib.import_module(name)
    except SyntaxError as e:  # also IndentationError; in this file or in one it imports
        where = Path(e.filename).name if e.filename else Path(spec.origin).name
        raise UserError(f"{where}, line {e.lineno}: {e.msg}") from e
    except Exception as e:  # noqa: BLE001 - any error in a file users edit is theirs to fix
        lines = [f.lineno for f in traceback.extract_tb(e.__traceback__) if f.filename == spec.origin]
        line = f", line {lines[-1]}" if lines else ""
        raise UserError(f"{Path(spec.origin).name}{line}: {type(e).__name__}: {e}") from e


def as_module(module: types.ModuleType | str | None) -> types.ModuleType | None:
    """A params module given as a module or by name (read with :func:`read_module`)."""
    return read_module(module) if isinstance(module, str) else module


def module_entries(module: types.ModuleType) -> dict[str, Any]:
    """The plain constants of a params module (names not starting with ``_``, no modules or functions)."""
    return {k: v for k, v in vars(module).items()
            if not k.startswith("_") and not callable(v) and not isinstance(v, types.ModuleType)}


def load(cls: type[Params], module: types.ModuleType | str | None = None,
         overrides: dict[str, Any] | None = None) -> Params:
    """Build ``cls`` from a params module's constants (the module or its name), then apply command-line
    overrides."""
    module = as_module(module)
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


# --- convolutional VAEs (CIFAR-10, Caltech101) ----------------------------------------------------


def _parse_strides(text: str) -> tuple[int, ...]:
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise UserError(f"strides must be 4 whole numbers separated by commas (e.g. 1,2,2,2), got {text!r}") \
            from None
    if len(values) != 4 or not all(1 <= v <= 4 for v in values):
        raise UserError(f"strides must be 4 numbers from 1 to 4 separated by commas (e.g. 1,2,2,2), got {text!r}")
    if values[0] != 1:
        raise UserError(f"the first stride must be 1 (the decoder's last layer is a stride-1 Conv2D), got {text!r}")
    return values


@dataclass(kw_only=True)
class ConvParams(Params):
    """The convolutional VAE of the original design, for colour images.

    Encoder: four Conv2D (``img_chns`` then ``filters`` channels; kernels ``first_kernel, first_kernel,
    num_conv, num_conv``; ``strides``) -> Flatten -> Dense(intermediate, relu) -> z_mean, z_log_var.
    Decoder, the mirror: Dense(intermediate) -> Dense(filters * h * w) -> Reshape -> three Conv2DTranspose
    (mirroring convs 4, 3, 2) -> Conv2D(img_chns, sigmoid). All layers use ``padding="same"``; the
    transposed convolutions get the ``output_padding`` that makes each one return exactly the size its
    encoder twin received, so the output is exactly ``img_rows x img_cols`` with no crop.
    """

    latent_dim: int = entry(16, "size of the latent space", min=1, max=4096)
    img_rows: int = entry(32, "image height in pixels", min=4, max=1024)
    img_cols: int = entry(32, "image width in pixels", min=4, max=1024)
    img_chns: int = entry(3, "colour channels", choices=(1, 3))
    intermediate_dim: int = entry(128, "units of the Dense layers next to the latent space", min=1, max=65536)
    filters: int = entry(32, "channels of the convolutions after the first", min=1, max=1024)
    num_conv: int = entry(3, "kernel size of convolutions 3 and 4 (and their transposes); in the file name",
                          min=1, max=15)
    first_kernel: int = entry(2, "kernel size of convolutions 1 and 2 (and their mirrors)", min=1, max=15)
    strides: str = entry("1,2,1,1", "strides of the four encoder convolutions, comma-separated")
    reconstruction: str = entry("bce", "decoder likelihood: bce (Bernoulli cross-entropy, the original design) or "
                                "discretized_logistic (a mixture of logistics over the 256 pixel levels: a true "
                                "likelihood, reported in bits/dim); the latter adds _dmol_<mixtures> to the "
                                "file names", choices=RECONSTRUCTIONS)
    mixtures: int = entry(1, "logistic components per pixel with reconstruction discretized_logistic (each "
                          "adds about 0.7x the BCE model's CPU step time; PixelCNN++ uses 5-10)", min=1, max=64)

    def validate(self) -> None:
        self.stride_list()
        self.decoder_output_padding()

    def model_prefix(self) -> str:
        prefix = super().model_prefix()
        return f"{prefix}_dmol_{self.mixtures}" if self.reconstruction == discretized.NAME else prefix

    def stride_list(self) -> tuple[int, ...]:
        return _parse_strides(self.strides)

    def kernel_list(self) -> tuple[int, ...]:
        return (self.first_kernel, self.first_kernel, self.num_conv, self.num_conv)

    def feature_sizes(self) -> list[tuple[int, int]]:
        """(H, W) of the input and after each encoder convolution ("same" padding: ceil(size / stride))."""
        sizes = [(self.img_rows, self.img_cols)]
        for s in self.stride_list():
            h, w = sizes[-1]
            sizes.append((-(-h // s), -(-w // s)))
        return sizes

    def decoder_output_padding(self) -> list[tuple[int, int] | None]:
        """``output_padding`` of the transposed convolutions mirroring convs 4, 3, 2 (in decoder order).

        A "same" Conv2DTranspose returns ``in * stride`` without output_padding, and
        ``(in - 1) * stride + kernel % 2 + output_padding`` with it (Keras requires output_padding < stride).
        Raises a :class:`UserError` for a size no choice can produce exactly.
        """
        sizes, strides, kernels = self.feature_sizes(), self.stride_list(), self.kernel_list()
        out = []
        for i in (3, 2, 1):
            (th, tw), (ih, iw), s, k = sizes[i], sizes[i + 1], strides[i], kernels[i]
            if (th, tw) == (ih * s, iw * s):
                out.append(None)
                continue
            pad = (th - (ih - 1) * s - k % 2, tw - (iw - 1) * s - k % 2)
            if not all(0 <= p < s for p in pad):
                raise UserError(f"a {self.img_rows}x{self.img_cols} image cannot be reproduced exactly with "
                                f"kernel {k} and stride {s} (convolution {i + 1}); use an odd kernel or a "
                                f"size divisible by the strides")
            out.append(pad)
        return out


@dataclass(kw_only=True)
class Cifar10Params(ConvParams):
    """CIFAR-10, 32x32 RGB: the original ``variational_autoencoder_deconv`` design."""

    DATASET: ClassVar[str] = "cifar10"
    NAME_TEMPLATE: ClassVar[str] = "cifar10_ld_{latent_dim}_conv_{num_conv}_id_{intermediate_dim}_e_{epochs}"

    img_rows: int = entry(32, "image height in pixels (CIFAR-10 images are 32x32)", choices=(32,))
    img_cols: int = entry(32, "image width in pixels (CIFAR-10 images are 32x32)", choices=(32,))
    img_chns: int = entry(3, "colour channels", choices=(3,))
    epochs: int = entry(50, "passes over the training set", min=1, max=100_000)


CALTECH_FITS = ("crop", "squash")


@dataclass(kw_only=True)
class Caltech101Params(ConvParams):
    """Caltech101 resized to a square: 3x3 kernels, strides 1, 2, 2, 2."""

    latent_dim: int = entry(32, "size of the latent space", min=1, max=4096)
    img_chns: int = entry(3, "colour channels", choices=(3,))
    intermediate_dim: int = entry(256, "units of the Dense layers next to the latent space", min=1, max=65536)
    first_kernel: int = entry(3, "kernel size of convolutions 1 and 2 (and their mirrors)", min=1, max=15)
    strides: str = entry("1,2,2,2", "strides of the four encoder convolutions, comma-separated")
    epochs: int = entry(50, "passes over the training set", min=1, max=100_000)
    batch_size: int = entry(64, "examples per training step", min=1, max=1_000_000)
    fit: str = entry("crop", "how images were made square: crop (keeps the aspect ratio) or squash",
                     choices=CALTECH_FITS)

    def model_prefix(self) -> str:
        """The name template, plus ``_squash`` for models trained on squashed images."""
        prefix = super().model_prefix()
        return prefix if self.fit == "crop" else f"{prefix}_{self.fit}"


@dataclass(kw_only=True)
class Caltech101_92Params(Caltech101Params):
    """Caltech101 at exactly 92x92 (the original trained this model on 94 px; here the padding fits 92)."""

    DATASET: ClassVar[str] = "caltech101_92"
    NAME_TEMPLATE: ClassVar[str] = ("caltech101_92_ld_{latent_dim}_conv_{num_conv}_id_{intermediate_dim}"
                                    "_e_{epochs}")

    img_rows: int = entry(92, "image height in pixels", choices=(92,))
    img_cols: int = entry(92, "image width in pixels", choices=(92,))


@dataclass(kw_only=True)
class Caltech101_128Params(Caltech101Params):
    """Caltech101 at 128x128 with 64 filters and a 64-D latent space."""

    DATASET: ClassVar[str] = "caltech101_128"
    NAME_TEMPLATE: ClassVar[str] = ("caltech101_128_ld_{latent_dim}_conv_{num_conv}_id_{intermediate_dim}"
                                    "_e_{epochs}")

    img_rows: int = entry(128, "image height in pixels", choices=(128,))
    img_cols: int = entry(128, "image width in pixels", choices=(128,))
    latent_dim: int = entry(64, "size of the latent space", min=1, max=4096)
    filters: int = entry(64, "channels of the convolutions after the first", min=1, max=1024)
    batch_size: int = entry(32, "examples per training step (small: 128x128x64 activations)", min=1,
                            max=1_000_000)
