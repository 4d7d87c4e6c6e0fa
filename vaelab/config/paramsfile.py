"""Reading a params module, the file users edit: whatever goes wrong while Python reads it is one line."""

from __future__ import annotations

import importlib
import importlib.util
import traceback
import types
from pathlib import Path
from dataclasses import field
from typing import Any

from vaelab.core.errors import UserError


def read_module(name: str, missing_ok: bool = False) -> types.ModuleType | None:
    """Import the params module ``name`` (``"mnist_params"``), the file users edit.

    Whatever goes wrong while Python reads it (a syntax error, a failing import, a misspelt name, any
    exception) is a one-line :class:`UserError` naming the file and the line, e.g.
    ``mnist_params.py, line 14: invalid syntax``; the original exception is its cause (``--debug`` shows it).
    A module that does not exist is an error too, or ``None`` with ``missing_ok``.
    """
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        if missing_ok:
            return None
        raise UserError(f"{name}.py not found: the scripts read their params from it, beside them; restore it "
                        f"(e.g. git checkout {name}.py)")
    try:
        return importlib.import_module(name)
    except SyntaxError as e:  # also IndentationError; in this file or in one it imports
        where = Path(e.filename).name if e.filename else Path(spec.origin).name
        raise UserError(f"{where}, line {e.lineno}: {e.msg}") from e
    except Exception as e:  # noqa: BLE001 - any error in a file users edit is theirs to fix
        lines = [f.lineno for f in traceback.extract_tb(e.__traceback__) if f.filename == spec.origin]
        line = f", line {lines[-1]}" if lines else ""
        raise UserError(f"{Path(spec.origin).name}{line}: {type(e).__name__}: {e}") from e


def as_module(module: types.ModuleType | str | None) -> types.ModuleType | None:
    """A params module given as a module or by name (read with :func:`read_module`)."""
    return read_module(module) if isinstance(module, str) else module


def module_entries(module: types.ModuleType) -> dict[str, Any]:
    """The plain constants of a params module (names not starting with ``_``, no modules or functions)."""
    return {k: v for k, v in vars(module).items()
            if not k.startswith("_") and not callable(v) and not isinstance(v, types.ModuleType)}


def entry(default, help, *, min=None, max=None, choices=None, flags=()):  # noqa: A002 - mirrors argparse names
    """A dataclass field with the metadata used for validation and ``--help``; ``flags`` are extra option names."""
    return field(default=default, metadata={"help": help, "min": min, "max": max, "choices": choices,
                                            "flags": tuple(flags)})
