"""Class names typed by users: ``--class sandal``, ``--from t-shirt``, ``7: 0.5 -1`` at the prompt.

:func:`class_index` turns a name or a number into the class's index, forgiving case, punctuation, common
spellings and plurals; :func:`class_slug` makes a name file-name friendly.
"""

from __future__ import annotations

from vaelab.core.errors import UserError

# Extra spellings accepted on command lines, keyed by the normalised form (see :func:`_norm`).
CLASS_ALIASES = {"tshirt": "T-shirt/top", "top": "T-shirt/top", "tee": "T-shirt/top", "boot": "Ankle boot"}


def _norm(text: str) -> str:
    """Lower case with everything but letters and digits removed: ``"T-shirt/top"`` -> ``"tshirttop"``."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def class_slug(name: str) -> str:
    """A file-name friendly class name: ``"T-shirt/top"`` -> ``"t-shirt-top"``, ``"Ankle boot"`` -> ``"ankle-boot"``."""
    out, dash = [], False
    for ch in name.lower():
        if ch.isalnum():
            out.append(ch)
            dash = False
        elif out and not dash:
            out.append("-")
            dash = True
    return "".join(out).strip("-")


def class_index(text: str, class_names: tuple[str, ...]) -> int:
    """The index of a class given by name or number.

    Case, spaces, dashes and slashes do not matter (``dress``, ``Ankle-boot``, ``ankle_boot``,
    ``t-shirt/top``), part names and common spellings work (``t-shirt``, ``tshirt``, ``top``, ``boot``), a
    trailing plural ``s`` is forgiven (``trousers``, ``sneakers``) and ``0``..``n-1`` are indices. Anything
    else is a one-line :class:`UserError` listing the valid names.
    """
    key = _norm(str(text))
    if str(text).strip().isdigit():
        index = int(str(text).strip())
        if index < len(class_names):
            return index
    else:
        by_norm = {_norm(n): i for i, n in enumerate(class_names)}
        for name, target in CLASS_ALIASES.items():
            if target in class_names:
                by_norm.setdefault(name, class_names.index(target))
        for candidate in (key, key[:-1] if key.endswith("s") else None):
            if candidate and candidate in by_norm:
                return by_norm[candidate]
    valid = ", ".join(class_slug(n) for n in class_names)
    raise UserError(f"unknown class {text!r}; valid names: {valid} (or an index 0-{len(class_names) - 1})")
