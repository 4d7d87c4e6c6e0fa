"""The interactive "type a latent vector, see the image" prompt.

Input is read with ``input()`` and parsed as numbers only; nothing typed is ever evaluated. Bad input
gets a short message and a new prompt; ``q``, end of input (Ctrl-D) and Ctrl-C end the prompt cleanly.
"""

from __future__ import annotations

import math
import re
from typing import Callable

import numpy as np

QUIT_WORDS = {"q", "quit", "exit"}
_SEPARATORS = re.compile(r"[\s,;]+")
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class ParseError(ValueError):
    """The typed text is not a latent vector of the right length; the message says why."""


def parse_latent(text: str, dim: int) -> np.ndarray:
    """Parse ``"0.5, -1"`` / ``"0.5 -1"`` / ``"[0.5, -1]"`` into a float vector of length ``dim``."""
    if not isinstance(text, str):
        raise ParseError("expected text")
    body = text.strip().strip("[]()").strip()
    if not body:
        raise ParseError(f"type {dim} numbers separated by commas or spaces, or q to quit")
    parts = [p for p in _SEPARATORS.split(body) if p]
    if len(parts) != dim:
        raise ParseError(f"expected {dim} number{'s' if dim != 1 else ''}, got {len(parts)}")
    values = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise ParseError(f"{p[:20]!r} is not a number") from None
        if not math.isfinite(v):
            raise ParseError(f"{p[:20]!r} is not a finite number")
        if abs(v) > _FLOAT32_MAX:  # would become inf in the float32 vector the decoder takes
            raise ParseError(f"{p[:20]!r} is out of range (|z| <= {_FLOAT32_MAX:.3g})")
        values.append(v)
    return np.asarray(values, dtype=np.float32)


def latent_prompt(dim: int, on_vector: Callable[[np.ndarray], None],
                  input_fn: Callable[[str], str] = input, print_fn: Callable[[str], None] = print) -> int:
    """Ask for latent vectors until ``q``/EOF/Ctrl-C; call ``on_vector`` for each valid one. Returns 0."""
    example = ", ".join(["0.5", "-1.0", "0.0", "1.2"][:dim] + ["0"] * max(0, dim - 4))
    print_fn(f"Type a latent vector of {dim} numbers (e.g. {example}) to decode it; q to quit.")
    while True:
        try:
            text = input_fn(f"z ({dim} numbers)> ")
        except (EOFError, KeyboardInterrupt):
            print_fn("")
            return 0
        if text.strip().lower() in QUIT_WORDS:
            return 0
        try:
            z = parse_latent(text, dim)
        except ParseError as e:
            print_fn(f"  {e}")
            continue
        on_vector(z)
