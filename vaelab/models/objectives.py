"""Training objectives: the ELBO (with a KL weight, linear KL warm-up and free bits) and the importance-weighted
bound (IWAE, Burda et al. 2015).

An objective turns the per-sample terms the VAE computes into the scalar loss. The terms (rows are samples;
with ``k`` samples per example, example ``i`` owns rows ``i*k .. i*k+k-1``):

- ``recon``: the likelihood's training reconstruction term (``-log p(x|z)`` up to a constant);
- ``log_px``: ``log p(x|z)`` in nats;
- ``kl``: the analytic KL of q(z|x) from the prior, all stochastic layers;
- ``kl_dims``: the global latent's KL per dimension (free bits act on these);
- ``kl_lower``: the KL of the lower stochastic layers of a hierarchical model (0 otherwise);
- ``log_qp``: ``log q(z|x) - log p(z)`` at the sampled z, all layers (what the IWAE weights need).

Keras is imported inside the functions only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar


def kl_weight_at(step, warmup_steps: int, kl_weight: float):
    """The KL weight after ``step`` optimizer steps: ``kl_weight * min(1, step / warmup_steps)`` (linear warm-up
    from 0; ``warmup_steps`` 0 means none). Works on Python numbers and on backend tensors."""
    if not warmup_steps:
        return kl_weight
    if isinstance(step, (int, float)):
        return kl_weight * min(1.0, step / warmup_steps)
    from keras import ops

    return kl_weight * ops.minimum(1.0, ops.cast(step, "float32") / float(warmup_steps))


def _free_bits_kl(kl_dims, kl_lower, free_bits: float):
    """``sum_d max(E_batch KL_d, free_bits) + E_batch kl_lower`` (Kingma et al. 2016): dimensions whose KL is
    below ``free_bits`` nats get no gradient pushing them to the prior."""
    from keras import ops

    return ops.sum(ops.maximum(ops.mean(kl_dims, axis=0), free_bits)) + ops.mean(kl_lower)


@dataclass(frozen=True)
class Objective:
    name: ClassVar[str] = ""
    help: ClassVar[str] = ""
    samples: int = 1  # latent samples per example during training

    def loss(self, terms: dict, beta, free_bits: float = 0.0):
        raise NotImplementedError

    def token(self) -> str:
        return self.name


@dataclass(frozen=True)
class Elbo(Objective):
    """``E_q[-log p(x|z)] + beta * KL(q(z|x) || p(z))`` with one sample per example (the VAE of Kingma & Welling)."""

    name: ClassVar[str] = "elbo"
    help: ClassVar[str] = "the evidence lower bound, one latent sample per example"

    def loss(self, terms: dict, beta, free_bits: float = 0.0):
        from keras import ops

        kl = _free_bits_kl(terms["kl_dims"], terms["kl_lower"], free_bits) if free_bits else ops.mean(terms["kl"])
        return ops.mean(terms["recon"]) + beta * kl


@dataclass(frozen=True)
class Iwae(Objective):
    """``-log (1/k) sum_j w_j`` with ``log w_j = log p(x|z_j) - beta * (log q(z_j|x) - log p(z_j))``: a tighter
    bound than the ELBO for k > 1, equal to its one-sample estimate for k = 1 (beta 1)."""

    name: ClassVar[str] = "iwae"
    help: ClassVar[str] = "the importance-weighted bound with k samples per example (--k)"

    def loss(self, terms: dict, beta, free_bits: float = 0.0):
        from keras import ops

        log_w = terms["log_px"] - beta * terms["log_qp"]
        log_w = ops.reshape(log_w, (-1, self.samples))
        return -ops.mean(ops.logsumexp(log_w, axis=1) - math.log(self.samples))

    def token(self) -> str:
        return f"iwae{self.samples}"


def make(cls: type[Objective], iwae_k: int) -> Objective:
    """``cls`` with ``iwae_k`` samples per example if it is the IWAE, one otherwise."""
    return cls(samples=int(iwae_k)) if cls is Iwae else cls()
