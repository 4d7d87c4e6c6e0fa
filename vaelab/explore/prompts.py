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


def parse_class_and_latent(text: str, dim: int, classes: Callable[[str], int]) -> tuple[int | None, np.ndarray]:
    """``"7: 0.5 -1"`` -> ``(class index, z)``; without ``CLASS:`` the class is None. ``classes`` turns the
    typed class into its index and raises (any exception with a message) for an unknown one."""
    label = None
    if isinstance(text, str) and ":" in text:
        head, text = text.split(":", 1)
        try:
            label = classes(head.strip())
        except Exception as e:  # noqa: BLE001 - the resolver's message is the answer
            raise ParseError(str(e).removeprefix("error: ")) from None
    return label, parse_latent(text, dim)


def latent_prompt(dim: int, on_vector: Callable[..., None],
                  input_fn: Callable[[str], str] = input, print_fn: Callable[[str], None] = print,
                  classes: Callable[[str], int] | None = None, class_names: tuple[str, ...] = (),
                  label: int = 0) -> int:
    """Ask for latent vectors until ``q``/EOF/Ctrl-C; call ``on_vector`` for each valid one. Returns 0.

    With ``classes`` (a conditional model) a class may come first, ``7: 0.5 -1``; it stays chosen for the
    vectors after it, and ``on_vector(z, label)`` gets it."""
    example = ", ".join(["0.5", "-1.0", "0.0", "1.2"][:dim] + ["0"] * max(0, dim - 4))
    if classes is None:
        print_fn(f"Type a latent vector of {dim} numbers (e.g. {example}) to decode it; q to quit.")
    else:
        print_fn(f"Type a latent vector of {dim} numbers (e.g. {example}) to decode it as the current class, or "
                 f"a class first ({class_names[-1] if class_names else 1}: {example}); q to quit.")
    while True:
        shown = f", class {class_names[label] if label < len(class_names) else label}" if classes else ""
        try:
            text = input_fn(f"z ({dim} numbers{shown})> ")
        except (EOFError, KeyboardInterrupt):
            print_fn("")
            return 0
        if text.strip().lower() in QUIT_WORDS:
            return 0
        try:
            if classes is None:
                z, chosen = parse_latent(text, dim), None
            else:
                chosen, z = parse_class_and_latent(text, dim, classes)
        except ParseError as e:
            print_fn(f"  {e}")
            continue
        if classes is None:
            on_vector(z)
        else:
            label = label if chosen is None else chosen
            on_vector(z, label)
