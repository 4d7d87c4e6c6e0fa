"""Keep TensorFlow's start-up noise out of the scripts' output, and nothing else.

Importing TensorFlow 2.21 writes, from C++ straight to file descriptor 2, before absl's logging is set up
(so ``TF_CPP_MIN_LOG_LEVEL`` does not stop them; checked with 2 and 3)::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1795992973.178034   28167 port.cc:153] oneDNN custom operations are on. You may see ...

twice per start, and with ``TF_CPP_MIN_LOG_LEVEL`` below 2 also the two ``cpu_feature_guard`` lines.
:func:`quiet_import` makes the first import of ``tensorflow`` run with fd 2 sent to a temporary file; when it
ends (or fails) every captured line that is not one of those known informational lines is written back to
stderr, in order. Real errors and warnings during the import still show; ``--debug`` keeps everything.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import os
import re
import sys
import tempfile

NOISE = (
    re.compile(r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"),
    re.compile(r"I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\. "),
    re.compile(r"I\d{4} [\d:.]+ +\d+ cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized to use "),
    re.compile(r"To enable the following instructions: .*, in other operations, rebuild TensorFlow with the "
               r"appropriate compiler flags\.$"),
)


def is_noise(line: str) -> bool:
    """Whether ``line`` is one of TensorFlow's known informational start-up lines."""
    line = line.rstrip("\r\n")
    return any(p.match(line) for p in NOISE)


@contextlib.contextmanager
def filtered_stderr():
    """Send fd 2 to a temporary file meanwhile; then write back every line that is not start-up noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
            kept = "".join(line for line in text.splitlines(keepends=True) if not is_noise(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds ``names`` with the other finders, then runs their module code inside :func:`filtered_stderr`."""

    def __init__(self, names: tuple[str, ...]):
        self.names = set(names)

    def find_spec(self, name, path=None, target=None):
        if name not in self.names:
            return None
        self.names.discard(name)  # the first import only
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is not None and hasattr(loader, "exec_module"):
            run = loader.exec_module

            def exec_module(module):
                with filtered_stderr():
                    run(module)

            loader.exec_module = exec_module  # this spec's own loader object, no other module's
        return spec


def quiet_import(names: tuple[str, ...] = ("tensorflow",)) -> None:
    """Filter the start-up noise of the first import of ``names`` (nothing if one is imported already)."""
    names = tuple(n for n in names if n not in sys.modules)
    finder = next((f for f in sys.meta_path if isinstance(f, _QuietImport)), None)
    if finder is not None:
        finder.names.update(names)
    elif names:
        sys.meta_path.insert(0, _QuietImport(names))
