"""Typed, validated parameters: a plain params module a user edits, plus command-line overrides.

A params module (``mnist_params.py``) holds plain constants. :func:`load` reads it into the dataclass of its
dataset, so a typo (``latnt_dim = 3``) or a wrong type (``epochs = "60"``) is a one-line
:class:`~vaelab.core.errors.UserError` naming the entry instead of a crash an hour into training.

:class:`Params` holds every entry with its type, range and generic default: the training entries, the model's
parts (architecture, likelihood, objective, sampler; :mod:`vaelab.models.registry`) and their options. Each dataset's
dataclass re-defaults a few of them, the way vdvae's presets override a base, and knows the file-name prefix of
the models it describes. The params modules repeat their dataset's defaults for the user to edit; a test keeps
the two in agreement. An image size is the dataset's, not an entry: files of older versions that list it are
still read when the value is the dataset's own.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
from dataclasses import dataclass
from typing import Any, ClassVar

from vaelab.models import registry as parts
from vaelab.config import presets
from vaelab.config.paramsfile import as_module, entry, module_entries
from vaelab.config.vq_params import DiscreteEntries
from vaelab.core.errors import UserError

OPTIMIZERS = ("adam", "rmsprop", "sgd", "adamw", "nadam")
LR_SCHEDULES = ("constant", "step", "cosine")
# Options of part entries, in the order their tokens join a model's file name when they differ from the
# dataset's defaults.
PART_ENTRIES = ("architecture", "likelihood", "objective")
# Entries that choose how to generate from a trained model, not the model: the command line's win over the
# params saved beside it.
GENERATION_ENTRIES = ("sampler", "gmm_components", "temperature", "pixelcnn_epochs", "pixelcnn_layers",
                      "pixelcnn_filters")


# Entries that add ``<tag><value>`` to the file names when they differ from the dataset's default, in this order
# (``..._kl0.25_warm5_fb0.5_skip4_ema0.999``); the parts (architecture, likelihood, ...) name themselves.
NAMED_ENTRIES = (("kl_weight", "kl"), ("kl_warmup", "warm"), ("free_bits", "fb"), ("grad_skip", "skip"), ("ema", "ema"))


@dataclass(kw_only=True)
class Params(DiscreteEntries):
    """Entries every dataset has."""

    DATASET: ClassVar[str] = ""
    NAME_TEMPLATE: ClassVar[str] = ""
    IMAGE_SHAPE: ClassVar[tuple[int, int, int]] = (28, 28, 1)
    N_CLASSES: ClassVar[int] = 10  # labels of the dataset (a conditional model's classes)
    # Entries of older params files that are now fixed by the dataset: read when they hold the dataset's value.
    FIXED: ClassVar[dict[str, Any]] = {}

    preset: str = entry("", "a named preset of this dataset (vaelab/config/presets.py): its entries override the params "
                            "module's, the command line's override both; it names the model files")

    # training
    latent_dim: int = entry(2, "size of the latent space (of a hierarchical model: its global latent)",
                            min=1, max=4096)
    epochs: int = entry(60, "passes over the training set", min=1, max=100_000)
    batch_size: int = entry(256, "examples per training step", min=1, max=1_000_000)
    optimizer: str = entry("adam", "optimizer name", choices=OPTIMIZERS)
    learning_rate: float = entry(1e-3, "optimizer learning rate", min=1e-12, max=10.0)
    lr_schedule: str = entry("constant", "learning rate over the epochs: constant; step (times lr_drop_factor every "
                             "lr_drop_every epochs); cosine (to 1 % of the rate at the last epoch)",
                             choices=LR_SCHEDULES)
    lr_drop_every: int = entry(10, "with lr_schedule step: epochs between drops", min=1, max=100_000)
    lr_drop_factor: float = entry(0.1, "with lr_schedule step: factor applied at each drop", min=1e-6, max=1.0)
    grad_skip: float = entry(0.0, "skip every update whose gradient norm is more than this many times the running "
                                  "mean of the updates taken, or not finite (VDVAE's guard against KL spikes; "
                                  "0: never skip); each epoch's skipped updates are logged", min=0.0, max=1e6)
    ema: float = entry(0.0, "decay of an exponential moving average of the weights (e.g. 0.999; 0: none): "
                            "per-epoch validation, the saved model, its test report, evaluation and samples use "
                            "the average, training goes on with the weights themselves", min=0.0, max=0.999999)
    patience: int = entry(0, "stop after this many epochs without a better validation loss, keeping the best "
                             "weights (0: never stop early)", min=0, max=100_000)
    seed: int = entry(0, "random seed for weights, shuffling and sampling", min=0, max=2**31 - 1)
    validate_on: str = entry("split", "the images of per-epoch validation, early stopping and the best checkpoint: "
                                      "split (held out from the training set: the last 10,000 of MNIST's and "
                                      "Fashion-MNIST's, the last 5,000 of CIFAR-10's, the last 10 % of each "
                                      "Caltech101 class's) or test (the test set, as the original scripts did)",
                             choices=("split", "test"))
    tensorboard_images_every: int = entry(5, "epochs between the sample, reconstruction and (latent_dim 2) "
                                             "manifold images of the TensorBoard log, which also gets them after "
                                             "the last epoch (0: curves only)", min=0, max=100_000)
    epsilon_std: float = entry(1.0, "standard deviation of the sampling noise eps (1.0 is the true VAE)",
                               min=0.0, max=100.0)

    # the model's parts (vaelab.models.registry)
    architecture: str = entry("dense", "encoder/decoder architecture", choices=tuple(parts.ARCHITECTURES))
    likelihood: str = entry("bernoulli", "decoder likelihood p(x|z)", choices=tuple(parts.LIKELIHOODS))
    objective: str = entry("elbo", "training objective: elbo, or iwae (the importance-weighted bound, iwae_k "
                                   "samples)", choices=tuple(parts.OBJECTIVES))
    iwae_k: int = entry(5, "with objective iwae: importance samples per example", min=1, max=10_000,
                        flags=("--k",))
    kl_weight: float = entry(1.0, "weight of the KL term (1.0 is the ELBO; beta-VAE otherwise)", min=0.0, max=1e6)
    kl_warmup: int = entry(0, "epochs over which the KL weight rises linearly from 0 (0: none)", min=0,
                           max=100_000)
    free_bits: float = entry(0.0, "nats per global latent dimension below which its KL is not penalised (0: none)",
                             min=0.0, max=100.0)
    sampler: str = entry("normal", "where generated latent vectors come from", choices=tuple(parts.SAMPLERS))
    gmm_components: int = entry(10, "with sampler gmm: mixture components", min=1, max=1000)
    temperature: float = entry(1.0, "hierarchical architectures, generating: the lower latents are drawn from their "
                                    "priors with the standard deviations times this (1: the model's own samples; "
                                    "0: the prior means, so a code always decodes to the same image)", min=0.0,
                               max=10.0)

    prior: str = entry("standard", "the prior p(z) of the global latent: standard (N(0, I)), mog (a learned "
                                   "mixture of prior_components Gaussians) or vamp (the VampPrior: the posteriors of "
                                   "prior_components learned pseudo-inputs)", choices=("standard", "mog", "vamp"))
    prior_components: int = entry(100, "with prior mog or vamp: mixture components (vamp: pseudo-inputs; Tomczak & "
                                       "Welling used 500 on MNIST)", min=1, max=10_000)
    conditional: bool = entry(False, "train a class-conditional VAE, p(x | z, label): generate a chosen class "
                                     "(--class); the label enters encoder and decoder", flags=())
    label_embedding: int = entry(0, "conditional: width of the learned label embedding (0: one-hot)", min=0,
                                 max=1024)

    # options of the parts
    mixtures: int = entry(1, "with likelihood discretized_logistic: logistic components per pixel", min=1, max=64)
    gaussian_sigma: float = entry(0.1, "with likelihood gaussian: the pixels' standard deviation", min=1e-6,
                                  max=1e6)
    intermediate_dim: int = entry(512, "units of the Dense layer next to the latent space (dense: the hidden "
                                       "layer, unless hidden_dims lists several)", min=1, max=65536)
    hidden_dims: str = entry("", "dense: comma-separated hidden layer widths of the encoder, e.g. 500,500 (the "
                                 "decoder mirrors them); empty: one layer of intermediate_dim")
    filters: int = entry(32, "conv, conv_bn, resnet, hierarchical: base number of channels", min=1, max=1024)
    blocks: int = entry(2, "resnet, hierarchical: residual blocks per resolution", min=0, max=64)
    conv_layers: int = entry(3, "conv_bn: 3x3 conv layers in the encoder (the first with stride 2)", min=1, max=16)
    num_conv: int = entry(3, "conv: kernel size of convolutions 3 and 4 (and their transposes)", min=1, max=15)
    first_kernel: int = entry(2, "conv: kernel size of convolutions 1 and 2 (and their mirrors)", min=1, max=15)
    strides: str = entry("1,2,1,1", "conv: strides of the four encoder convolutions, comma-separated")
    latent_channels: int = entry(8, "hierarchical: channels of each spatial latent", min=1, max=1024)
    latent_scales: str = entry("", "hierarchical: resolutions (px) of the spatial latents, comma-separated, "
                                   "top-down, e.g. 4,8,16 (empty: every height below the finest up to 32 px; "
                                   "none: no spatial latents)")
    lower_latent_dims: str = entry("100", "dense_hierarchical: widths of the stochastic layers below the global "
                                          "latent, comma-separated, top-down, e.g. 100 (two layers, as Burda et "
                                          "al.'s) or 100,100")
    patch: int = entry(1, "hierarchical: side of the pixel patches the network works on (2: a quarter of the "
                          "positions, the image size kept)", min=1, max=16)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            setattr(self, f.name, _check(f, getattr(self, f.name)))
        self.validate()

    def validate(self) -> None:
        """Checks across entries; subclasses extend it. The architecture must be able to make the images."""
        if self.prior != "standard" and self.free_bits:
            raise UserError(f"free_bits acts on the KL per dimension from N(0, I), which prior {self.prior} has not; "
                            "drop --free-bits or use --prior standard")
        if self.prior == "vamp" and self.conditional:
            raise UserError("prior vamp takes pseudo-inputs without labels, so not a conditional model; use --prior "
                            "mog or drop --conditional")
        if self.ema and self.patience:
            raise UserError("ema with patience: early stopping would keep the best epoch's weights, not their "
                            "average; set --patience 0 (or drop --ema)")
        if self.preset:
            presets.lookup(self.preset, self.DATASET)
        if self.hidden_dims:
            from vaelab.models.architectures.base import hidden_layers

            hidden_layers(self)
        self.check_discrete()
        parts.architecture(self).check(self, self.IMAGE_SHAPE)

    def defaults(self) -> "Params":
        """The dataset's defaults, with this preset's entries when there is one."""
        if not self.preset:
            return type(self)()
        return type(self)(preset=self.preset, **presets.lookup(self.preset, self.DATASET).overrides)

    def model_prefix(self) -> str:
        """File-name prefix of the models these params describe, e.g. ``ld_2_id_512_e_60``: the dataset's
        template (or ``<preset>_e_<epochs>``), then a short token for each part that differs from the defaults
        (``ld_2_id_512_e_60_resnet32x2_iwae5_warm10``)."""
        return "_".join([self.name_stem(), *self.part_tokens()])

    def name_stem(self) -> str:
        if self.preset:
            return f"{self.preset}_e_{self.epochs}"
        return self.NAME_TEMPLATE.format(**dataclasses.asdict(self))

    def part_tokens(self) -> list[str]:
        base = self.defaults()
        tokens = []
        arch = parts.architecture(self)
        if self.architecture != base.architecture or arch.is_resized(self, base):
            tokens.append(arch.file_token(self, base))
        if self.likelihood != base.likelihood or (self.likelihood == "discretized_logistic"
                                                  and self.mixtures != base.mixtures):
            tokens.append(parts.likelihood(self, self.IMAGE_SHAPE[-1]).token())
        if self.objective != base.objective:
            tokens.append(parts.objective(self).token())
        tokens += [f"{tag}{getattr(self, name):g}" for name, tag in NAMED_ENTRIES
                   if getattr(self, name) != getattr(base, name)]
        if self.prior != "standard":
            tokens.append(f"{self.prior}{self.prior_components}")
        if self.conditional:
            tokens.append(f"cond{self.label_embedding or ''}")
        return tokens

    def with_generation_choices(self, args) -> "Params":
        """These params with the :data:`GENERATION_ENTRIES` given on the command line (``args``)."""
        given = {k: getattr(args, k) for k in GENERATION_ENTRIES if getattr(args, k, None) is not None}
        return dataclasses.replace(self, **given) if given else self

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.DATASET, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "params") -> "Params":
        data = _upgrade(dict(data))
        dataset = data.pop("dataset", cls.DATASET)
        if dataset != cls.DATASET:
            raise UserError(f"{source}: made for dataset {dataset!r}, not {cls.DATASET!r}; use the {dataset} "
                            "scripts, or pick another model with --model")
        for name, value in cls.FIXED.items():
            if name in data and data.pop(name) != value:
                raise UserError(f"{source}: {name} is fixed at {value} for {cls.DATASET} (its images are "
                                f"{'x'.join(map(str, cls.IMAGE_SHAPE))}); remove the entry")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise UserError(f"{source}: unknown entr{'y' if len(unknown) == 1 else 'ies'} "
                            f"{', '.join(unknown)}; known: {', '.join(sorted(names))}")
        try:
            return cls(**data)
        except UserError as e:
            raise UserError(f"{source}: {e}") from None


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Entries of params files written before the parts existed, in today's terms."""
    legacy = data.pop("reconstruction", None)  # conv models: "bce" or "discretized_logistic"
    if legacy is not None:
        data.setdefault("likelihood", "bernoulli" if legacy == "bce" else legacy)
    return data


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
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    name = given.get("preset", data.get("preset"))
    if name:
        data.update(presets.lookup(name, cls.DATASET).overrides, preset=name)
    data.update(given)
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
    data.setdefault("validate_on", "test")  # written before the validation split: those runs validated on test
    return cls.from_dict(data, source=str(path))


# --- datasets -------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class MnistParams(Params):
    """The dense MNIST VAE of the original design: 784 -> 512 -> 2, Bernoulli pixels."""

    DATASET: ClassVar[str] = "mnist"
    NAME_TEMPLATE: ClassVar[str] = "ld_{latent_dim}_id_{intermediate_dim}_e_{epochs}"
    FIXED: ClassVar[dict[str, Any]] = {"original_dim": 784}


@dataclass(kw_only=True)
class BinarizedMnistParams(Params):
    """An MLP VAE on dynamically binarized MNIST: 784 -> 500 -> 500 -> 50 (Burda et al. 2015's VAE)."""

    DATASET: ClassVar[str] = "mnist_binarized"
    NAME_TEMPLATE: ClassVar[str] = "bin_ld_{latent_dim}_h_{hidden}_e_{epochs}"
    FIXED: ClassVar[dict[str, Any]] = {"original_dim": 784}

    latent_dim: int = entry(50, "size of the latent space", min=1, max=4096)
    epochs: int = entry(100, "passes over the training set", min=1, max=100_000)
    batch_size: int = entry(100, "examples per training step", min=1, max=1_000_000)
    hidden_dims: str = entry("500,500", "dense: comma-separated hidden layer widths of the encoder (the decoder "
                                        "mirrors them)")

    def validate(self) -> None:
        if not self.hidden_dims:
            raise UserError("hidden_dims must list the hidden layer widths, e.g. 500,500")
        super().validate()

    @property
    def hidden(self) -> tuple[int, ...]:
        from vaelab.models.architectures.base import hidden_layers

        return hidden_layers(self)

    def name_stem(self) -> str:
        if self.preset:
            return super().name_stem()
        return self.NAME_TEMPLATE.format(latent_dim=self.latent_dim, epochs=self.epochs,
                                         hidden="-".join(map(str, self.hidden)))

    def part_tokens(self) -> list[str]:  # the hidden widths are in the template already
        tokens = super().part_tokens()
        return [t for t in tokens if not t.startswith("dense_h_")]


@dataclass(kw_only=True)
class FashionMnistParams(Params):
    """The convolutional Fashion-MNIST VAE, its squared-error loss, LR schedule, early stopping and morph figures.

    The loss is ``rmse_multiplier * mean squared error over pixels + kl_multiplier * KL``: the Gaussian
    likelihood with ``sigma^2 = 784 / (2 * rmse_multiplier)`` (despite its historical name, ``rmse_multiplier``
    multiplies the *mean squared* error, as the original scripts did). ``kl_multiplier`` is this dataset's name
    for ``kl_weight`` and ``rmse_multiplier`` its way of setting ``gaussian_sigma``: set these two; the others
    follow them, and setting them to something else is an error rather than a silent choice.
    """

    DATASET: ClassVar[str] = "fashion_mnist"
    NAME_TEMPLATE: ClassVar[str] = "fashion_mnist_ld_{latent_dim}_e_{epochs}"
    FIXED: ClassVar[dict[str, Any]] = {"img_height": 28, "img_width": 28}

    latent_dim: int = entry(3, "size of the latent space", min=1, max=4096)
    epochs: int = entry(100, "most passes over the training set (early stopping may end sooner)", min=1,
                        max=100_000)
    architecture: str = entry("conv_bn", "encoder/decoder architecture", choices=tuple(parts.ARCHITECTURES))
    likelihood: str = entry("gaussian", "decoder likelihood p(x|z)", choices=tuple(parts.LIKELIHOODS))
    lr_schedule: str = entry("step", "learning rate over the epochs: constant, step or cosine", choices=LR_SCHEDULES)
    patience: int = entry(10, "epochs without a better validation loss before training stops (0: never)",
                          min=0, max=100_000)
    rmse_multiplier: float = entry(5000.0, "weight of the mean squared error over pixels (not its root)",
                                   min=1e-6, max=1e9)
    kl_multiplier: float = entry(1.0, "weight of the KL term (same knob as kl_weight)", min=0.0, max=1e6)
    amount_to_generate: int = entry(50, "images decoded from sampled z by fashion_mnist_morph.py", min=1, max=1000)
    amount_of_vector_multipliers: int = entry(20, "alpha values (panels) in each morph strip", min=2, max=200)
    alpha_max: float = entry(2.0, "largest alpha of a morph strip mean_A + alpha * mean_B", min=0.0, max=100.0)

    def validate(self) -> None:
        if self.kl_weight != 1.0 and self.kl_weight != self.kl_multiplier:
            raise UserError(f"kl_weight ({self.kl_weight:g}) and kl_multiplier ({self.kl_multiplier:g}) are the "
                            "same knob for Fashion-MNIST; set only kl_multiplier")
        self.kl_weight = self.kl_multiplier
        sigma = math.sqrt(math.prod(self.IMAGE_SHAPE) / (2.0 * self.rmse_multiplier))
        if self.gaussian_sigma != Params.gaussian_sigma and not math.isclose(self.gaussian_sigma, sigma, rel_tol=1e-9):
            raise UserError(f"gaussian_sigma ({self.gaussian_sigma:g}) follows rmse_multiplier for Fashion-MNIST "
                            f"(sigma^2 = 784 / (2 * rmse_multiplier) = {sigma:g}); set only rmse_multiplier")
        self.gaussian_sigma = sigma
        super().validate()
