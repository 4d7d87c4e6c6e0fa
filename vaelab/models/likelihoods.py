"""Decoder likelihoods p(x | z): one object each, used by training, evaluation and generation alike.

A likelihood says four things about the decoder's output ``out`` (B, H, W, P):

- :meth:`~Likelihood.log_prob`: log p(x | out) per example in nats, summed over pixels and channels (the
  evaluation's number, the importance-weighted bound's term);
- :meth:`~Likelihood.loss`: the reconstruction term training minimises, ``-log_prob`` up to a constant;
- :meth:`~Likelihood.mean`: the image in [0, 1] to show (what a saved ``…_decoder.h5`` outputs);
- :attr:`~Likelihood.discrete`: whether ``log_prob`` is a probability of discrete pixels, so that bits/dim
  exist (a Gaussian density of values in [0, 1] is not).

The decoder outputs unconstrained numbers and the likelihood applies its own link: Bernoulli logits (the
sigmoid and the cross-entropy fuse into ``x * out - softplus(out)``, exact and cheap), a Gaussian whose mean
is ``sigmoid(out)``, or the parameters of a discretized logistic mixture (:mod:`vaelab.models.discretized`).
Models saved before likelihoods were parts have decoders that end in the sigmoid; :func:`from_legacy` reads
them (``from_logits=False``).

Keras is imported inside the methods, so that choosing a likelihood on the command line loads no backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from vaelab.models import discretized

BCE_EPSILON = 1e-7  # keras.config.epsilon(): how ops.binary_crossentropy clips probabilities


def _ops():
    from keras import ops

    return ops


def _event_sum(values):
    ops = _ops()
    return ops.sum(ops.reshape(values, (ops.shape(values)[0], -1)), axis=-1)


@dataclass(frozen=True)
class Likelihood:
    """Base: a likelihood over images with ``channels`` colour channels."""

    name: ClassVar[str] = ""
    help: ClassVar[str] = ""
    discrete: ClassVar[bool] = True
    # log_prob is a sum of one term per value, so it takes x and out in any layout (a dense model's flat
    # vectors as they are); False when it needs images (B, H, W, C), e.g. to couple a pixel's channels.
    pixelwise: ClassVar[bool] = True

    channels: int = 1

    def param_channels(self) -> int:
        """Decoder output channels per pixel."""
        return self.channels

    def log_prob(self, x, out):
        raise NotImplementedError

    def loss(self, x, out):
        """The per-example reconstruction term training minimises."""
        return -self.log_prob(x, out)

    def loss_and_log_prob(self, x, out):
        """(:meth:`loss`, :meth:`log_prob`), computed once where they differ only by a constant."""
        log_prob = self.log_prob(x, out)
        return -log_prob, log_prob

    def mean(self, out):
        raise NotImplementedError

    def mean_activation(self) -> str | None:
        """The Keras activation whose output is :meth:`mean`, when there is one (``"sigmoid"`` for logits):
        the saved decoder then ends in Keras' own ``Activation`` layer and loads in plain Keras."""
        return None

    def is_probability_of(self, x) -> bool:
        """Whether :meth:`log_prob` is a probability (not a density or cross-entropy) of images like ``x``
        (numpy): then its negative in bits per dimension is a code length."""
        return self.discrete

    def options(self) -> dict:
        """Constructor arguments beyond ``channels`` (saved in the model's config)."""
        return {}

    def token(self) -> str:
        """The short name added to model file names when this likelihood is not the dataset's default."""
        return self.name


@dataclass(frozen=True)
class Bernoulli(Likelihood):
    """Independent Bernoulli pixels with probability ``sigmoid(out)``.

    On binary images (binarized MNIST) a probability; on grey levels a cross-entropy, not a likelihood, as
    the original scripts' loss was (evaluation says so).
    """

    name: ClassVar[str] = "bernoulli"
    help: ClassVar[str] = "Bernoulli pixels (binary cross-entropy; a likelihood only of binary images)"

    from_logits: bool = True

    def log_prob(self, x, out):
        ops = _ops()
        x, out = ops.cast(x, "float32"), ops.cast(out, "float32")
        if self.from_logits:  # x log s(l) + (1 - x) log(1 - s(l)) = x l - softplus(l)
            return _event_sum(x * out - ops.softplus(out))
        p = ops.clip(out, BCE_EPSILON, 1.0 - BCE_EPSILON)
        return _event_sum(x * ops.log(p) + (1.0 - x) * ops.log(1.0 - p))

    def mean(self, out):
        return _ops().sigmoid(out) if self.from_logits else out

    def mean_activation(self) -> str | None:
        return "sigmoid" if self.from_logits else None

    def is_probability_of(self, x) -> bool:
        import numpy as np

        return bool(np.all((x == 0) | (x == 1)))

    def options(self) -> dict:
        return {} if self.from_logits else {"from_logits": False}


@dataclass(frozen=True)
class ContinuousBernoulli(Likelihood):
    """The continuous Bernoulli (Loaiza-Ganem & Cunningham 2019): ``C(l) sigmoid(l)^x (1 - sigmoid(l))^(1 - x)``
    on [0, 1], the Bernoulli cross-entropy plus the log normaliser ``log C(l) = log(l / tanh(l / 2))`` that makes
    it a density of grey levels (the Bernoulli is one of binary pixels only). A density, so no bits/dim.

    Added the way docs/add_your_own.md describes: this class and one line in :data:`vaelab.models.registry.LIKELIHOODS`.
    """

    name: ClassVar[str] = "continuous_bernoulli"
    help: ClassVar[str] = "continuous Bernoulli: the normalised density of grey levels in [0, 1]"
    discrete: ClassVar[bool] = False

    SMALL: ClassVar[float] = 1e-2  # |logit| below which the normaliser and the mean use their Taylor series

    def log_prob(self, x, out):
        ops = _ops()
        x, out = ops.cast(x, "float32"), ops.cast(out, "float32")
        small = ops.abs(out) < self.SMALL
        safe = ops.where(small, self.SMALL, out)  # keeps the unused branch (and its gradient) finite
        log_norm = ops.where(small, math.log(2.0) + ops.square(out) / 12.0,
                             ops.log(ops.abs(safe)) - ops.log(ops.abs(ops.tanh(safe / 2.0))))
        return _event_sum(x * out - ops.softplus(out) + log_norm)

    def mean(self, out):
        ops = _ops()
        small = ops.abs(out) < self.SMALL
        safe = ops.where(small, self.SMALL, out)
        return ops.where(small, 0.5 + out / 12.0, 1.0 / (1.0 - ops.exp(-safe)) - 1.0 / safe)

    def token(self) -> str:
        return "cb"


@dataclass(frozen=True)
class Gaussian(Likelihood):
    """``N(x; sigmoid(out), sigma^2)`` per pixel with a fixed ``sigma``.

    Training minimises ``sum (x - mean)^2 / (2 sigma^2)``, the negative log density without its constant;
    with ``sigma^2 = D / (2 w)`` that is ``w * MSE``, the Fashion-MNIST model's ``rmse_multiplier * MSE``.
    """

    name: ClassVar[str] = "gaussian"
    help: ClassVar[str] = "Gaussian pixels of fixed standard deviation gaussian_sigma (a weighted squared error)"
    discrete: ClassVar[bool] = False

    sigma: float = 0.1
    from_logits: bool = True

    def _squared_error(self, x, out):
        ops = _ops()
        return _event_sum(ops.square(ops.cast(x, "float32") - self.mean(ops.cast(out, "float32"))))

    def loss(self, x, out):
        return self._squared_error(x, out) / (2.0 * self.sigma ** 2)

    def log_prob(self, x, out):
        return self.loss_and_log_prob(x, out)[1]

    def loss_and_log_prob(self, x, out):
        loss = self.loss(x, out)
        return loss, -loss - 0.5 * math.prod(x.shape[1:]) * math.log(2.0 * math.pi * self.sigma ** 2)

    def mean(self, out):
        return _ops().sigmoid(out) if self.from_logits else out

    def mean_activation(self) -> str | None:
        return "sigmoid" if self.from_logits else None

    def options(self) -> dict:
        return {"sigma": self.sigma, **({} if self.from_logits else {"from_logits": False})}

    def token(self) -> str:
        return f"gauss{self.sigma:g}"


@dataclass(frozen=True)
class DiscretizedLogistic(Likelihood):
    """A mixture of ``mixtures`` logistics over the 256 levels of each sub-pixel, with PixelCNN++'s channel
    coupling (:mod:`vaelab.models.discretized`): a probability of 8-bit pixels, reported in bits/dim."""

    name: ClassVar[str] = discretized.NAME
    help: ClassVar[str] = "discretized mixture of logistics over 8-bit pixels (bits/dim; PixelCNN++ head)"
    pixelwise: ClassVar[bool] = False

    mixtures: int = 1

    def param_channels(self) -> int:
        return discretized.param_channels(self.channels, self.mixtures)

    def log_prob(self, x, out):
        ops = _ops()
        return _event_sum(discretized.log_prob(ops.cast(x, "float32"), ops.cast(out, "float32")))

    def mean(self, out):
        return discretized.mean_image(_ops().cast(out, "float32"), self.channels)

    def options(self) -> dict:
        return {"mixtures": self.mixtures}

    def token(self) -> str:
        return f"dmol_{self.mixtures}"


def from_params(cls: type[Likelihood], params, channels: int) -> Likelihood:
    """The likelihood ``cls`` with the options the params give (``mixtures``, ``gaussian_sigma``)."""
    if cls is DiscretizedLogistic:
        return cls(channels, mixtures=params.mixtures)
    if cls is Gaussian:
        return cls(channels, sigma=params.gaussian_sigma)
    return cls(channels)


def from_legacy(reconstruction: str, weight: float | None, pixels: int, channels: int,
                param_channels: int) -> Likelihood:
    """The likelihood of a model saved with the older ``reconstruction`` config: its decoder ends in a sigmoid
    (``"bce"``: Bernoulli; ``"mse"`` with weight w: Gaussian with ``sigma^2 = D / (2 w)``) or outputs mixture
    parameters (``"discretized_logistic"``)."""
    if reconstruction == "bce":
        return Bernoulli(channels, from_logits=False)
    if reconstruction == "mse":
        return Gaussian(channels, sigma=math.sqrt(pixels / (2.0 * float(weight or pixels))), from_logits=False)
    if reconstruction == discretized.NAME:
        return DiscretizedLogistic(channels, mixtures=discretized.mixtures_from(param_channels, channels))
    raise ValueError(f"unknown reconstruction {reconstruction!r}")
