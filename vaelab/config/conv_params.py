"""The params of the colour-image VAEs: the original conv design's entries, CIFAR-10 and Caltech101 (92 and 128 px).

The base class, the entry rules and loading are :mod:`vaelab.config.params`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from vaelab.config.params import Params, entry
from vaelab.models import registry as parts


@dataclass(kw_only=True)
class ConvParams(Params):
    """The convolutional VAE of the original design, for colour images (:func:`vaelab.models.architectures.conv.build_conv`)."""

    architecture: str = entry("conv", "encoder/decoder architecture", choices=tuple(parts.ARCHITECTURES))
    latent_dim: int = entry(16, "size of the latent space", min=1, max=4096)
    intermediate_dim: int = entry(128, "units of the Dense layers next to the latent space", min=1, max=65536)
    epochs: int = entry(50, "passes over the training set", min=1, max=100_000)


@dataclass(kw_only=True)
class Cifar10Params(ConvParams):
    """CIFAR-10, 32x32 RGB: the original ``variational_autoencoder_deconv`` design."""

    DATASET: ClassVar[str] = "cifar10"
    NAME_TEMPLATE: ClassVar[str] = "cifar10_ld_{latent_dim}_conv_{num_conv}_id_{intermediate_dim}_e_{epochs}"
    IMAGE_SHAPE: ClassVar[tuple[int, int, int]] = (32, 32, 3)
    FIXED: ClassVar[dict[str, Any]] = {"img_rows": 32, "img_cols": 32, "img_chns": 3}


CALTECH_FITS = ("crop", "squash")


@dataclass(kw_only=True)
class Caltech101Params(ConvParams):
    """Caltech101 resized to a square: 3x3 kernels, strides 1, 2, 2, 2."""

    N_CLASSES: ClassVar[int] = 101  # the categories, without BACKGROUND_Google

    latent_dim: int = entry(32, "size of the latent space", min=1, max=4096)
    intermediate_dim: int = entry(256, "units of the Dense layers next to the latent space", min=1, max=65536)
    first_kernel: int = entry(3, "conv: kernel size of convolutions 1 and 2 (and their mirrors)", min=1, max=15)
    strides: str = entry("1,2,2,2", "conv: strides of the four encoder convolutions, comma-separated")
    batch_size: int = entry(64, "examples per training step", min=1, max=1_000_000)
    fit: str = entry("crop", "how images were made square: crop (keeps the aspect ratio) or squash",
                     choices=CALTECH_FITS)

    def model_prefix(self) -> str:
        """The name template and part tokens, plus ``_squash`` for models trained on squashed images."""
        prefix = super().model_prefix()
        return prefix if self.fit == "crop" else f"{prefix}_{self.fit}"


@dataclass(kw_only=True)
class Caltech101_92Params(Caltech101Params):
    """Caltech101 at exactly 92x92 (the original trained this model on 94 px; here the padding fits 92)."""

    DATASET: ClassVar[str] = "caltech101_92"
    NAME_TEMPLATE: ClassVar[str] = "caltech101_92_ld_{latent_dim}_conv_{num_conv}_id_{intermediate_dim}_e_{epochs}"
    IMAGE_SHAPE: ClassVar[tuple[int, int, int]] = (92, 92, 3)
    FIXED: ClassVar[dict[str, Any]] = {"img_rows": 92, "img_cols": 92, "img_chns": 3}


@dataclass(kw_only=True)
class Caltech101_128Params(Caltech101Params):
    """Caltech101 at 128x128 with 64 filters and a 64-D latent space."""

    DATASET: ClassVar[str] = "caltech101_128"
    NAME_TEMPLATE: ClassVar[str] = ("caltech101_128_ld_{latent_dim}_conv_{num_conv}_id_{intermediate_dim}"
                                    "_e_{epochs}")
    IMAGE_SHAPE: ClassVar[tuple[int, int, int]] = (128, 128, 3)
    FIXED: ClassVar[dict[str, Any]] = {"img_rows": 128, "img_cols": 128, "img_chns": 3}

    latent_dim: int = entry(64, "size of the latent space", min=1, max=4096)
    filters: int = entry(64, "conv, conv_bn, resnet, hierarchical: base number of channels", min=1, max=1024)
    batch_size: int = entry(32, "examples per training step (small: 128x128x64 activations)", min=1,
                            max=1_000_000)
