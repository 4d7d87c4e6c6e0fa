"""Atomic writes: every file is written to a temporary name in its own directory and renamed into place, so an
interrupted save (an exception, a full disk, SIGKILL) leaves the previous file intact; :func:`together` does it
for a set of files. Re-exported by :mod:`vaelab.core.artifacts`, where the writers of each kind of file live.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path

from vaelab.core.errors import UserError

_UMASK = os.umask(0)
os.umask(_UMASK)

_STAGE = threading.local()  # .pending: the (temporary, final) paths of a together() block in this thread


@contextlib.contextmanager
def _one_line(path, kept: str):  # an OSError while writing ``path``: one line
    try:
        yield
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}; {kept} unchanged") from None


@contextlib.contextmanager
def together():
    """Write several files as one: the block's atomic writes keep their temporary files, renamed into place
    together when it ends without an error, else all deleted; a kill can mix old and new files only in the
    microseconds of the renames. Then the temporaries of these names that a killed run left are deleted: the
    caller holds their lock (:mod:`vaelab.core.lock`), so no other process is writing them."""
    pending: list[tuple[Path, Path]] = []
    _STAGE.pending = pending
    try:
        yield
        _STAGE.pending = None
        for tmp, path in pending:
            with _one_line(path, "the previous file, if any, is"):
                os.replace(tmp, path)
        for _, path in pending:
            for stale in path.parent.glob(f".{path.stem}.*.tmp{''.join(path.suffixes)}"):
                with contextlib.suppress(OSError):
                    stale.unlink()
    finally:
        _STAGE.pending = None
        for tmp, _ in pending:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path`` (same suffix); rename it into place only on success (at the end
    of the :func:`together` block this runs in, if any). An ``OSError`` is one :class:`UserError` line."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{''.join(path.suffixes)}",
                                   dir=path.parent)
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.close(fd)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}; choose a writable directory") from None
    tmp = Path(tmp)
    staged = getattr(_STAGE, "pending", None)
    try:
        with _one_line(path, "the previous files are" if staged is not None else "the previous file, if any, is"):
            yield tmp
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            if staged is None:
                os.replace(tmp, path)
        if staged is not None:
            staged.append((tmp, path))
    finally:
        if staged is None or (tmp, path) not in staged:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def write_bytes(path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
