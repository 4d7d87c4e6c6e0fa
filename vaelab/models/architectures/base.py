"""What every encoder/decoder architecture is: the :class:`Architecture` record and the helpers the builders share.

An :class:`Architecture` is a name, a ``check`` that says in one line why it cannot produce an image size, a
file-name ``token`` and a ``build(params, image_shape, out_channels) -> (encoder, decoder)``:

- ``encoder``: a functional ``keras.Model`` ``x -> [z_mean, z_log_var]`` (the hierarchical one adds the
  bottom-up features its posteriors need);
- ``decoder``: ``z -> out`` with ``out_channels`` numbers per pixel that the likelihood reads (Bernoulli
  logits, mixture parameters, ...); the hierarchical decoder also returns its lower layers' KL terms.

Every layer whose output enters the loss computes in float32, also under a mixed-precision policy.
Keras is imported inside the builders, so that naming an architecture on the command line loads no backend.

The builders: :mod:`~vaelab.models.architectures.dense`, :mod:`~vaelab.models.architectures.conv`,
:mod:`~vaelab.models.architectures.resnet` and :mod:`~vaelab.models.architectures.hierarchical`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from vaelab.core.errors import UserError

def parse_ints(text: str, what: str, low: int = 1, high: int = 65536) -> tuple[int, ...]:
    """``"500,500"`` -> ``(500, 500)``; one-line error naming ``what`` otherwise."""
    try:
        values = tuple(int(t) for t in str(text).replace(" ", "").split(",") if t)
    except ValueError:
        values = ()
    if not values or any(v < low or v > high for v in values):
        raise UserError(f"{what} must be comma-separated whole numbers in {low}..{high} like '500,500', "
                        f"got {text!r}")
    return values


def hidden_layers(params) -> tuple[int, ...]:
    """The dense MLP's hidden widths: ``hidden_dims`` when given, else one layer of ``intermediate_dim``."""
    return parse_ints(params.hidden_dims, "hidden_dims") if params.hidden_dims else (params.intermediate_dim,)


def _latent_heads(h, latent_dim: int):
    from keras import layers

    return (layers.Dense(latent_dim, name="z_mean", dtype="float32")(h),
            layers.Dense(latent_dim, name="z_log_var", dtype="float32")(h))


def _named(base: str, i: int, n: int) -> str:
    """``encoder_hidden`` for a single layer (the original scripts' names), ``encoder_hidden_0``… for several."""
    return base if n == 1 else f"{base}_{i}"


def _mixtures(params, channels_out: int, image_channels: int) -> dict:
    """The likelihood entries a decoder's output width shows: more numbers per pixel than colour channels are the
    discretized logistic's mixture parameters."""
    if channels_out == image_channels:
        return {}
    from vaelab.models import discretized

    try:
        return {"likelihood": discretized.NAME, "mixtures": discretized.mixtures_from(channels_out, image_channels)}
    except ValueError:
        return {}  # no model of this project; loading it says so


def lower_latent_layers(params) -> tuple[int, ...]:
    """The widths of the dense hierarchical model's lower stochastic layers, top-down (``lower_latent_dims``)."""
    return parse_ints(params.lower_latent_dims, "lower_latent_dims", 1, 4096)


@dataclass(frozen=True)
class Architecture:
    name: str
    help: str
    build: Callable  # (params, image_shape, out_channels) -> (encoder, decoder)
    check: Callable = lambda params, image_shape: None  # raises UserError when it cannot do the image size
    token: Callable | None = None  # (params, defaults) -> file-name token; default: the name
    # (params, defaults) -> whether these are other sizes than the defaults' (a preset's own architecture at
    # other sizes is another model, so its files get the token); default: the token differs
    resized: Callable | None = None
    # (params, decoder shapes, encoder shapes) -> the entries a saved model's files show (vaelab.models.modelfile)
    infer: Callable | None = None
    flat_input: bool = False  # the encoder takes flattened images
    # The backend it trains fastest on, used when KERAS_BACKEND is unset (vaelab.api.train.choose_backend):
    # benchmarks/versus.py measured the dense MLPs faster on JAX; TensorFlow's oneDNN convolutions beat JAX's.
    backend: str | None = None
    hierarchical: bool = False  # the decoder takes [z, *features] and returns (out, kl, log_qp)

    def file_token(self, params, defaults) -> str:
        return self.token(params, defaults) if self.token else self.name

    def is_resized(self, params, defaults) -> bool:
        if self.resized:
            return self.resized(params, defaults)
        return self.file_token(params, defaults) != self.file_token(defaults, defaults)
