"""The registry of model parts: every architecture, likelihood, objective and sampler, in one explicit list each.

A params entry names one part of each kind (``architecture = "resnet"``, ``likelihood = "bernoulli"``, ...);
these dictionaries turn the names into the parts. Adding a variant is one entry here plus its builder (see
docs/add_your_own.md). Nothing here imports Keras.
"""

from __future__ import annotations

from vaelab.models.architectures import base, conv, dense, hierarchical, resnet, vq
from vaelab.models import likelihoods
from vaelab.models import objectives
from vaelab.models import samplers
from vaelab.core.errors import UserError

ARCHITECTURES = {a.name: a for a in (
    dense.DENSE,
    conv.CONV,
    conv.CONV_BN,
    resnet.RESNET,
    hierarchical.HIERARCHICAL,
    hierarchical.DENSE_HIERARCHICAL,
    vq.VQ,
)}

LIKELIHOODS = {c.name: c for c in (
    likelihoods.Bernoulli,
    likelihoods.ContinuousBernoulli,
    likelihoods.Gaussian,
    likelihoods.DiscretizedLogistic,
)}

OBJECTIVES = {c.name: c for c in (
    objectives.Elbo,
    objectives.Iwae,
)}

SAMPLERS = {c.name: c for c in (
    samplers.Normal,
    samplers.Uniform,
    samplers.Gmm,
    samplers.TwoStage,
    samplers.LearnedPrior,
    samplers.PixelCnn,
)}

KINDS = {"architecture": ARCHITECTURES, "likelihood": LIKELIHOODS, "objective": OBJECTIVES, "sampler": SAMPLERS}


def lookup(kind: str, name: str):
    """The part called ``name`` of ``kind``; a one-line error listing the known ones otherwise."""
    known = KINDS[kind]
    if name not in known:
        raise UserError(f"unknown {kind} {name!r}; known: {', '.join(known)}")
    return known[name]


def architecture(params) -> base.Architecture:
    return lookup("architecture", params.architecture)


def likelihood(params, channels: int) -> likelihoods.Likelihood:
    return likelihoods.from_params(lookup("likelihood", params.likelihood), params, channels)


def objective(params) -> objectives.Objective:
    return objectives.make(lookup("objective", params.objective), params.iwae_k)


def sampler(params, name: str | None = None) -> samplers.Sampler:
    """The sampler ``name`` (default: the params'); a model with a learned prior draws from it where the params
    name the standard normal (``normal``), since N(0, I) is not its prior, and a vq model from its PixelCNN."""
    chosen = name or params.sampler
    if getattr(params, "architecture", "") == vq.VQ.name:  # its latent is a map of discrete codes
        if name is None and chosen == samplers.Normal.name:
            chosen = samplers.PixelCnn.name
        elif chosen not in (samplers.PixelCnn.name, samplers.Uniform.name):
            raise UserError(f"sampler {chosen} draws continuous latent vectors; a vq model's latent is a map of "
                            "discrete codes: use --sampler pixelcnn (its default) or uniform (random codes)")
    elif chosen == samplers.PixelCnn.name:
        raise UserError("sampler pixelcnn draws maps of discrete codes, which only a vq model decodes (train one "
                        "with --architecture vq); this model has a continuous latent")
    if chosen == "normal" and getattr(params, "prior", "standard") != "standard":
        chosen = samplers.LearnedPrior.name
    return samplers.from_params(lookup("sampler", chosen), params)
