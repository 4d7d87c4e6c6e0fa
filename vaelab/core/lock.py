"""One training per model name at a time: a lock file ``<models_dir>/<prefix>.lock`` held with ``flock``.

Two runs training the same model into the same models directory would write the same files and the same
checkpoints in turn; the second one refuses instead, with one line naming the first one's pid and host.
The lock is an ``fcntl.flock`` (``msvcrt.locking`` on Windows) on the open file, which the kernel drops when
the process ends in any way, SIGKILL included: it is never stale. A file left behind by a killed run holds
no lock and is simply locked again by the next run. The holder writes its pid, host and start time into the
file for the message, and deletes the file when it is done.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path

from vaelab.core.errors import UserError

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def lock_path(models_dir, prefix: str) -> Path:
    return Path(models_dir) / f"{prefix}.lock"


def holder(path) -> str:
    """Who holds the lock, as the holder wrote it: ``pid 1234 on host h, since 2026-12-03 12:00:00 UTC``."""
    try:
        info = json.loads(Path(path).read_text(encoding="utf-8"))
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(info["since"])))
        return f"pid {int(info['pid'])} on host {info['host']}, since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not written its pid yet"


def acquire(path) -> int:
    """Take the lock at ``path`` (created if needed) and return its open descriptor; a :class:`UserError` naming
    the holder when another process has it."""
    path = Path(path)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UserError(f"cannot write {path}: {e.strerror or e}; pass a writable --models-dir") from None
        if not _try_lock(fd):
            os.close(fd)
            raise UserError(f"another training of {path.stem} into {path.parent} is running ({holder(path)}); "
                            f"wait for it to end, stop it, or train into another --models-dir")
        try:  # the previous holder may have deleted the file between our open and our lock: lock the new one
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}).encode()
    os.ftruncate(fd, 0)
    os.write(fd, info)
    return fd


def release(path, fd: int) -> None:
    """Delete the lock file, then drop the lock (in this order, so nobody locks a file about to vanish)."""
    with contextlib.suppress(OSError):
        os.unlink(path)
    os.close(fd)


@contextlib.contextmanager
def held(models_dir, prefix: str, enabled: bool = True):
    """Hold the lock of model ``prefix`` in ``models_dir`` for the ``with`` block (nothing if not ``enabled``)."""
    if not enabled:
        yield None
        return
    path = lock_path(models_dir, prefix)
    fd = acquire(path)
    try:
        yield path
    finally:
        release(path, fd)
