"""Objectives: the KL warm-up schedule by value, the ELBO and IWAE losses on known terms, and the importance-
weighted bound of a fixed model rising with k."""

import math

import numpy as np
import pytest
from keras import ops

from vaelab.models import objectives


@pytest.mark.parametrize("step, expected", [(0, 0.0), (1, 0.1), (5, 0.5), (10, 1.0), (25, 1.0)])
def test_kl_warmup_rises_linearly_from_zero_to_the_weight(step, expected):
    assert objectives.kl_weight_at(step, 10, 1.0) == pytest.approx(expected)
    assert objectives.kl_weight_at(step, 10, 0.5) == pytest.approx(expected / 2)
    assert objectives.kl_weight_at(step, 0, 0.7) == 0.7  # no warm-up
    assert float(ops.convert_to_numpy(objectives.kl_weight_at(ops.convert_to_tensor(step), 10, 1.0))) == \
        pytest.approx(expected)


def _terms(rng, n, d=3):
    kl_dims = rng.random((n, d)).astype("float32")
    return {"recon": rng.random(n).astype("float32") * 100, "log_px": -rng.random(n).astype("float32") * 100,
            "kl_dims": kl_dims, "kl_lower": np.zeros(n, "float32"), "kl": kl_dims.sum(axis=1),
            "log_qp": rng.normal(0, 2, n).astype("float32")}


def test_elbo_loss_with_weight_and_free_bits():
    t = _terms(np.random.default_rng(0), 6)
    loss = float(ops.convert_to_numpy(objectives.Elbo().loss(t, 0.5)))
    assert loss == pytest.approx(t["recon"].mean() + 0.5 * t["kl"].mean(), rel=1e-6)
    loss = float(ops.convert_to_numpy(objectives.Elbo().loss(t, 1.0, free_bits=0.6)))
    assert loss == pytest.approx(t["recon"].mean() + np.maximum(t["kl_dims"].mean(axis=0), 0.6).sum(), rel=1e-6)


def test_iwae_loss_is_the_log_mean_of_the_weights_per_example():
    t = _terms(np.random.default_rng(1), 8)
    k4 = objectives.Iwae(samples=4)
    log_w = (t["log_px"] - t["log_qp"]).astype(np.float64).reshape(2, 4)
    expected = -np.mean(np.log(np.mean(np.exp(log_w - log_w.max(1, keepdims=True)), axis=1)) + log_w.max(1))
    assert float(ops.convert_to_numpy(k4.loss(t, 1.0))) == pytest.approx(expected, rel=1e-6)
    one = objectives.Iwae(samples=1)  # k = 1: the one-sample ELBO estimate
    assert float(ops.convert_to_numpy(one.loss(t, 1.0))) == pytest.approx(-np.mean(t["log_px"] - t["log_qp"]),
                                                                          rel=1e-6)
    assert objectives.make(objectives.Iwae, 7).samples == 7 and objectives.make(objectives.Elbo, 7).samples == 1


def test_the_bound_rises_with_k_on_a_fixed_model():
    """Weights w with log w ~ N(0, 1): L_k = log mean_k w rises towards log E w = 0.5 as k grows."""
    rng = np.random.default_rng(2)
    bounds = []
    for k in (1, 4, 32, 256):
        log_w = rng.normal(0, 1, (4000, k)).astype("float32")
        t = {"log_px": log_w.reshape(-1), "log_qp": np.zeros(log_w.size, "float32")}
        bounds.append(-float(ops.convert_to_numpy(objectives.Iwae(samples=k).loss(t, 1.0))))
    assert bounds[0] == pytest.approx(0.0, abs=0.05)
    assert bounds[0] < bounds[1] < bounds[2] < bounds[3] < 0.5 + 0.01
    assert bounds[3] == pytest.approx(0.5 - math.expm1(1.0) / (2 * 256), abs=0.01)  # the delta method's gap
