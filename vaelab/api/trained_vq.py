"""The verbs of a trained vq model (``architecture = "vq"``), which :class:`vaelab.api.trained.Trained` hands to
these functions: its encoder maps images to integer code maps (N, h, w), its decoder code maps to images, and
samples are code maps drawn by the PixelCNN prior (or uniformly random codes) and decoded.

What needs a continuous latent vector (typed vectors, the prompt, scatters, manifolds, interpolation, the
explorers, the morphs) is refused in one line by :func:`refuse`.
"""

from __future__ import annotations

import numpy as np

from vaelab.core.errors import UserError


def refuse(trained, what: str = "this") -> UserError:
    """The one-line error for a verb that needs a continuous latent vector (raise it)."""
    h, w = code_shape(trained)
    return UserError(f"{trained.files.prefix} is a vq model: its latent is a {h}x{w} map of discrete codes "
                     f"(codebook of {trained.params.codebook_size}), not a continuous vector, so {what} does not "
                     "apply; use the random grid (--sampler pixelcnn) and reconstructions, or a continuous model")


def code_shape(trained) -> tuple[int, int]:
    return tuple(int(s) for s in trained.decoder.inputs[0].shape[1:3])


def codes(trained, c) -> np.ndarray:
    """``c`` as an int32 batch of code maps (N, h, w), every code in 0..K-1."""
    c = np.asarray(c)
    shape, k = code_shape(trained), trained.params.codebook_size
    if c.shape == shape:
        c = c[None]
    if c.ndim != 3 or c.shape[1:] != shape or not np.issubdtype(c.dtype, np.integer):
        raise UserError(f"a code map of this model is {shape[0]}x{shape[1]} integers, got an array of shape "
                        f"{c.shape} ({c.dtype})")
    if c.size and (c.min() < 0 or c.max() >= k):
        raise UserError(f"codes must be in 0..{k - 1}, got {c.min()}..{c.max()}")
    return c.astype(np.int32)


def encode(trained, x) -> np.ndarray:
    """The code maps (N, h, w) of images ``x`` (already :meth:`Trained.images`)."""
    return np.asarray(trained.encoder.predict(x, batch_size=256, verbose=0)).astype(np.int32)


def decode(trained, c) -> np.ndarray:
    c = codes(trained, c)
    out = np.asarray(trained.decoder.predict(c, batch_size=256, verbose=0), dtype=np.float32)
    return out.reshape((len(c), *trained.image_shape))


def sample(trained, sampler, n: int, seed: int) -> np.ndarray:
    """``n`` images: code maps of ``sampler`` (the PixelCNN, or ``uniform``: every code equally likely) decoded."""
    if sampler.name == "uniform":
        c = np.random.default_rng(seed).integers(0, trained.params.codebook_size, size=(n, *code_shape(trained)))
    else:
        c = sampler.sample(n, None, seed)
    return decode(trained, c)


def check_files(trained) -> None:
    """The decoder must map (h, w) code maps to this experiment's images, the encoder images to (h, w)."""
    image = tuple(trained.image_shape)
    dec_in = tuple(trained.decoder.inputs[0].shape[1:])
    dec_out = tuple(trained.decoder.outputs[0].shape[1:])
    enc_in = tuple(trained.encoder.inputs[0].shape[1:])
    enc_out = tuple(trained.encoder.outputs[0].shape[1:])
    if len(dec_in) != 2 or dec_out != image or enc_in != image or enc_out != dec_in:
        raise UserError(f"{trained.files.decoder_path()} and {trained.files.encoder} are not a {trained.exp.name} "
                        f"vq model's files: they map {enc_in} -> {enc_out} and {dec_in} -> {dec_out}, a vq model "
                        f"maps {image} -> (h, w) code maps -> {image}; pick the right one with --model")
