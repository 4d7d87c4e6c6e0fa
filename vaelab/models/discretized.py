"""A discretized mixture of logistics over 8-bit pixels: the decoder likelihood that gives bits/dim.

``likelihood = "discretized_logistic"`` (:class:`vaelab.models.likelihoods.DiscretizedLogistic`) makes the decoder output,
per pixel, the parameters of a mixture of ``M`` logistics over the 256 levels of each sub-pixel (PixelCNN++,
Salimans et al. 2017; the output head of vdvae). The last axis holds, in this order::

    [ M mixture logits | C*M means | C*M log-scales | C(C-1)/2*M channel coefficients ]

(channel-major within each block: channel c's M values are contiguous). Pixels ``k/255`` are mapped to
``x = 2k/255 - 1`` and ``P(x) = sigmoid((x + 1/255 - mean)/s) - sigmoid((x - 1/255 - mean)/s)``, the lowest and
highest bins taking the tails, so the 256 probabilities of a sub-pixel sum to 1 and ``-log P / (D ln 2)`` is
the bits/dim CIFAR-10 results are reported in. Within a pixel the channels are autoregressive as in PixelCNN++:
channel j's mean is shifted by ``tanh(coeff) * x_i`` for every earlier channel i, which models colour
correlations without a sequential decoder.

Written once over ``keras.ops`` (any backend; float64 inputs stay float64 on TensorFlow, which the tests use to
check that the 256^3 colours of a coupled mixture sum to 1).
"""

from __future__ import annotations

import types

LEVELS = 256
HALF_BIN = 1.0 / (LEVELS - 1)
LOG_SCALE_MIN, LOG_SCALE_MAX = -7.0, 7.0  # e^-7 is a quarter of a bin; the max keeps 1/s away from 0
NAME = "discretized_logistic"


def coefficient_count(channels: int) -> int:
    return channels * (channels - 1) // 2


def _per_component(channels: int) -> int:
    """Parameters of one component: its logit, a mean and a log-scale per channel, the coupling coefficients."""
    return 1 + 2 * channels + coefficient_count(channels)


def param_channels(channels: int, mixtures: int) -> int:
    """Width of the decoder's last axis for ``channels`` colour channels and ``mixtures`` components."""
    return mixtures * _per_component(channels)


def mixtures_from(width: int, channels: int) -> int:
    per = _per_component(channels)
    if width % per:
        raise ValueError(f"a decoder output of {width} channels is no discretized logistic mixture over "
                         f"{channels} colour channels (needs a multiple of {per})")
    return width // per


def _ops_namespace():
    from keras import ops

    return types.SimpleNamespace(
        exp=ops.exp, log=ops.log, tanh=ops.tanh, expm1=ops.expm1, where=ops.where, clip=ops.clip,
        softplus=ops.softplus,
        log_softmax=lambda a: ops.log_softmax(a, axis=-1),
        softmax=lambda a: ops.softmax(a, axis=-1),
        logsumexp=lambda a: ops.logsumexp(a, axis=-1),
        sum=lambda a: ops.sum(a, axis=-1, keepdims=True),
        concat=lambda xs: ops.concatenate(xs, axis=-1))


def _split(params, channels: int):
    """(logits, [means per channel], [log-scales per channel], [coefficients]) each ``(..., M)``."""
    m = mixtures_from(params.shape[-1], channels)

    def block(i):
        return params[..., m * i:m * (i + 1)]

    means = [block(1 + c) for c in range(channels)]
    log_scales = [block(1 + channels + c) for c in range(channels)]
    coeffs = [block(1 + 2 * channels + j) for j in range(coefficient_count(channels))]
    return block(0), means, log_scales, coeffs


def _coupled(xp, mean, coeffs, channel: int, earlier: list):
    """Channel ``channel``'s mean shifted by ``tanh(coeff) * value`` for each earlier channel's value; the
    coefficients of channel c start at c(c-1)/2, in the order of the earlier channels."""
    first = coefficient_count(channel)
    for i, value in enumerate(earlier):
        mean = mean + xp.tanh(coeffs[first + i]) * value
    return mean


def _log_bin(xp, x, mean, log_scale):
    """log P(bin of x) under a logistic(mean, e^log_scale) discretized to 256 levels on [-1, 1]."""
    inv_scale = xp.exp(-log_scale)
    plus, minus = (x + HALF_BIN - mean) * inv_scale, (x - HALF_BIN - mean) * inv_scale
    log_cdf_plus = -xp.softplus(-plus)  # log sigmoid(plus): the lowest bin takes the left tail
    log_sf_minus = -xp.softplus(minus)  # log (1 - sigmoid(minus)): the highest bin takes the right tail
    # sigmoid(p) - sigmoid(m) = sigmoid(p) (1 - sigmoid(m)) (1 - e^(m - p)): no cancellation, in any tail
    log_delta = log_cdf_plus + log_sf_minus + xp.log(-xp.expm1(minus - plus))
    return xp.where(x < -1.0 + HALF_BIN, log_cdf_plus, xp.where(x > 1.0 - HALF_BIN, log_sf_minus, log_delta))


def _log_prob(xp, x, params, channels: int):
    x = 2.0 * x - 1.0
    logits, means, log_scales, coeffs = _split(params, channels)
    total = xp.log_softmax(logits) if logits.shape[-1] > 1 else 0.0 * logits  # one component: weight 1
    for c in range(channels):
        mean = _coupled(xp, means[c], coeffs, c, [x[..., i:i + 1] for i in range(c)])
        log_scale = xp.clip(log_scales[c], LOG_SCALE_MIN, LOG_SCALE_MAX)
        total = total + _log_bin(xp, x[..., c:c + 1], mean, log_scale)
    return xp.logsumexp(total)


def log_prob(x, params):
    """keras.ops: log P(x) per pixel, shape ``x.shape[:-1]``; ``x`` in [0, 1] on the 8-bit grid, ``params``
    the decoder output (same leading shape, :func:`param_channels` wide)."""
    from keras import ops

    x, params = ops.convert_to_tensor(x), ops.convert_to_tensor(params)
    return _log_prob(_ops_namespace(), x, params, int(x.shape[-1]))


def _mean(xp, params, channels: int):
    logits, means, _, coeffs = _split(params, channels)
    weights = xp.softmax(logits) if logits.shape[-1] > 1 else 1.0 + 0.0 * logits
    component_means, out = [], []
    for c in range(channels):
        mean = xp.clip(_coupled(xp, means[c], coeffs, c, component_means), -1.0, 1.0)
        component_means.append(mean)
        out.append(xp.sum(weights * mean))
    return (xp.concat(out) + 1.0) / 2.0


def mean_image(params, channels: int):
    """keras.ops: the image to show for decoder ``params``, in [0, 1]: per pixel the mixture-weighted mean of
    the components, each channel's mean shifted by the component's means of the earlier channels."""
    from keras import ops

    return _mean(_ops_namespace(), ops.convert_to_tensor(params), channels)
