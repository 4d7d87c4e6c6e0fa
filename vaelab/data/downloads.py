"""Downloads verified by hash, and archives opened with a clear error when they are truncated.

:func:`fetch` streams a download into a temporary file beside its destination and renames it into place
only after its sha256 (or MD5, where that is all the publisher gives) matches, so a failed, partial or
altered download never leaves a file that a later run could take for the real one.

:func:`extract_archive` unpacks a ``.tar``/``.tar.gz``/``.tgz``/``.zip`` (CIFAR-10, Caltech101) into a
temporary directory renamed into place when complete; member paths that would escape the destination are
refused. :func:`read_pickle_file` reads a pickle (CIFAR batches) through the restricted unpickler.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable

from vaelab.core import artifacts
from vaelab.core.errors import UserError

CHUNK = 1 << 20


class DownloadError(UserError):
    """The download failed or did not match its published hash; nothing was kept."""


def hash_kind(file_hash: str) -> str:
    """``sha256`` for 64 hex digits, ``md5`` for 32 (the two kinds datasets publish)."""
    kinds = {64: "sha256", 32: "md5"}
    if len(file_hash) not in kinds:
        raise ValueError(f"expected a sha256 (64 hex digits) or MD5 (32), got {file_hash!r}")
    return kinds[len(file_hash)]


def file_digest(path, kind: str = "sha256") -> str:
    h = hashlib.new(kind)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(url: str, dest, file_hash: str, opener: Callable | None = None, timeout: float = 60) -> Path:
    """Download ``url`` to ``dest`` unless a file with the right hash is there; returns ``dest``.

    Raises :class:`DownloadError` (a :class:`UserError`) when the download fails or its hash differs;
    ``dest`` is then untouched and no temporary file is left.
    """
    dest = Path(dest)
    kind = hash_kind(file_hash)
    if dest.is_file() and file_digest(dest, kind) == file_hash.lower():
        return dest
    with artifacts.atomic_path(dest) as tmp:
        h = hashlib.new(kind)
        try:
            with (opener or urllib.request.urlopen)(url, timeout=timeout) as response, open(tmp, "wb") as out:
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    h.update(chunk)
                    out.write(chunk)
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise DownloadError(f"downloading {url} failed ({type(e).__name__}: {artifacts._first_line(e)}); "
                                "nothing was kept") from None
        if h.hexdigest() != file_hash.lower():
            raise DownloadError(f"the download of {url} has {kind} {h.hexdigest()[:16]}..., expected "
                                f"{file_hash.lower()[:16]}... (partial or altered); it was discarded, try again")
    return dest


def _corrupt(path, e: BaseException) -> UserError:
    return UserError(f"{path}: truncated or corrupt archive ({type(e).__name__}: {artifacts._first_line(e)}); "
                     "delete it and fetch it again")


def extract_archive(path, dest) -> Path:
    """Unpack the archive ``path`` into the directory ``dest`` (created whole, or not at all)."""
    path, dest = Path(path), Path(dest)
    if not path.is_file():
        raise UserError(f"{path}: no such archive")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                for name in z.namelist():
                    _check_member(path, name)
                z.extractall(tmp)
        else:
            with tarfile.open(path, "r:*") as t:
                t.extractall(tmp, filter="data")  # refuses absolute paths, "..", devices and links out
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
        tmp = None
    except UserError:
        raise
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as e:
        if isinstance(e, OSError) and e.errno is not None:  # the disk, not the archive
            raise UserError(f"cannot unpack {path} into {dest}: {e.strerror or e}") from None
        raise _corrupt(path, e) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _check_member(archive, name: str) -> None:
    p = Path(name)
    if p.is_absolute() or ".." in p.parts:
        raise UserError(f"{archive}: refusing member {name!r}, whose path leaves the destination directory")


def read_pickle_file(path, encoding: str = "bytes") -> Any:
    """A pickle file (e.g. a CIFAR-10 batch) through the restricted unpickler; errors are one line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None
    return artifacts.safe_unpickle(data, str(path), encoding=encoding)
