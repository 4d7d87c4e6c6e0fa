"""Datasets: find local copies, read the official formats, check what was read, download if needed.

Search order for every dataset: ``--data-dir`` (or ``$VAELAB_DATA_DIR``), then the Keras cache
``~/.keras/datasets``. Files are checked by content (shapes, dtypes, label range) rather than by archive
hash, because local copies are often re-packed. Only when nothing is found locally is the official file
downloaded, and kept only if its published hash matches (:mod:`vaelab.data.downloads`).
"""

from __future__ import annotations

import gzip
import os
import struct
import zipfile
from pathlib import Path

import numpy as np

from vaelab.core.errors import UserError
from vaelab.data import sources
from vaelab.data.sources import (CIFAR10_ORIGIN, CIFAR10_SHA256, CIFAR10_TAR, DOWNLOADS, FASHION_MD5, IDX_NAMES,  # noqa: F401
                                 KERAS_ORIGIN, MNIST_NPZ_SHA256, Dataset, RemoteFile, check_data_dir,
                                 check_images, fetch_hint, search_dirs)


DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def to_float(x: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1]."""
    return (x.astype(np.float32) / np.float32(255.0))


# --- readers --------------------------------------------------------------------------------------


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) of unsigned bytes, as in the MNIST distribution."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise UserError(f"{path}: truncated or corrupt IDX file ({e}); delete it and fetch it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UserError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise UserError(f"{path}: IDX file holds {len(raw) - header} bytes of data, its header says "
                        f"{expected}; the file is truncated or corrupt")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write uint8 ``array`` as a gzipped IDX file (used by tests to make fixtures)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.tobytes())


def read_mnist_npz(path: str | os.PathLike) -> tuple[np.ndarray, ...]:
    """Read ``mnist.npz`` in the keras.datasets layout (``x_train, y_train, x_test, y_test``)."""
    if not zipfile.is_zipfile(path):  # else np.load guesses "pickled data", a confusing message
        raise UserError(f"{path}: truncated or corrupt npz file (not a complete zip archive); delete it and "
                        "fetch it again")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in f.files]
            if missing:
                raise UserError(f"{path}: missing arrays {', '.join(missing)}; expected the keras "
                                "mnist.npz layout")
            return f["x_train"], f["y_train"], f["x_test"], f["y_test"]
    except UserError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{path}: truncated or corrupt npz file ({e}); delete it and fetch it again") from None


def _from_uint8(name: str, arrays, source: str, class_names, shape=(28, 28)) -> Dataset:
    x_tr, y_tr, x_te, y_te = arrays
    x_tr, y_tr = check_images("train", x_tr, y_tr, shape, len(class_names), source)
    x_te, y_te = check_images("test", x_te, y_te, shape, len(class_names), source)
    return Dataset(name, to_float(x_tr)[..., None], y_tr, to_float(x_te)[..., None], y_te,
                   tuple(class_names), source)


def _find_idx_set(dirs: list[Path], subdirs: tuple[str, ...]) -> Path | None:
    for d in dirs:
        for sub in subdirs:
            candidate = d / sub if sub else d
            if all((candidate / n).exists() or (candidate / n[:-3]).exists() for n in IDX_NAMES):
                return candidate
    return None


def _read_idx_set(folder: Path) -> tuple[np.ndarray, ...]:
    def pick(n):
        return folder / n if (folder / n).exists() else folder / n[:-3]
    return tuple(read_idx(pick(n)) for n in IDX_NAMES)


def _download(remote: "RemoteFile") -> Path:
    """Download one official file into the Keras cache, verified by its published hash.

    :func:`vaelab.data.downloads.fetch` renames the file into place only once its hash matches, so a failed
    or partial download leaves nothing that a later run would read. Offline, the message says where the
    file comes from (URL and hash) and where it goes.
    """
    from vaelab.data import downloads

    target = remote.path(sources.KERAS_CACHE)
    try:
        return downloads.fetch(remote.url, target, remote.file_hash)
    except downloads.DownloadError as e:
        raise UserError(f"{remote.name} was not found locally and could not be downloaded ({e}); "
                        f"{remote.get_it(target)}") from None


def load_mnist(data_dir=None, limit: int | None = None, download: bool = True) -> Dataset:
    """MNIST as float32 (N, 28, 28, 1) in [0, 1] with int64 labels.

    Reads ``mnist.npz`` (keras layout) or the four IDX files (flat or in ``mnist/``) from the search
    directories, else downloads ``mnist.npz``.
    """
    dirs = search_dirs(data_dir)
    for d in dirs:
        if (d / "mnist.npz").exists():
            path = d / "mnist.npz"
            return _from_uint8("mnist", read_mnist_npz(path), str(path), MNIST_CLASSES).limit(limit)
    folder = _find_idx_set(dirs, ("", "mnist"))
    if folder is not None:
        return _from_uint8("mnist", _read_idx_set(folder), str(folder), MNIST_CLASSES).limit(limit)
    if not download:
        raise UserError(f"MNIST not found: put mnist.npz in {dirs[0]} ({fetch_hint('mnist')})")
    path = _download(DOWNLOADS["mnist"][0])
    return _from_uint8("mnist", read_mnist_npz(path), str(path), MNIST_CLASSES).limit(limit)


def load_fashion_mnist(data_dir=None, limit: int | None = None, download: bool = True) -> Dataset:
    """Fashion-MNIST as float32 (N, 28, 28, 1) in [0, 1] with int64 labels.

    Reads the four IDX files from ``fashion-mnist/`` or flat in a search directory, else from Debian's
    ``dataset-fashion-mnist`` location, else downloads them.
    """
    dirs = search_dirs(data_dir)
    folder = _find_idx_set(dirs + [DEBIAN_FASHION_DIR], ("fashion-mnist", ""))
    if folder is None:
        if not download:
            raise UserError(f"Fashion-MNIST not found: put the four IDX .gz files in {dirs[0]}/fashion-mnist "
                            f"({fetch_hint('fashion_mnist')})")
        for remote in DOWNLOADS["fashion_mnist"]:
            _download(remote)
        folder = sources.KERAS_CACHE / "fashion-mnist"
    return _from_uint8("fashion_mnist", _read_idx_set(folder), str(folder), FASHION_CLASSES).limit(limit)


# --- CIFAR-10 -------------------------------------------------------------------------------------

CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


def read_cifar_batch(raw: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled CIFAR-10 batch -> uint8 images (N, 32, 32, 3) and int64 labels.

    Read with :func:`vaelab.core.artifacts.safe_unpickle` (``encoding="bytes"``, as the batches are Python 2
    pickles): a batch can only build plain data, never run code.
    """
    from vaelab.core.artifacts import safe_unpickle

    try:
        batch = safe_unpickle(raw, source, encoding="bytes")
    except UserError as e:
        if "truncated or corrupt" not in str(e):  # a pickle with code in it is refused as it is
            raise
        raise UserError(f"{e}; delete it and fetch it again") from None
    if not isinstance(batch, dict):
        raise UserError(f"{source}: not a CIFAR-10 batch (expected a dict, found {type(batch).__name__})")
    batch = {k.decode("utf-8", "replace") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise UserError(f"{source}: not a CIFAR-10 batch (no 'data' and 'labels' entries)")
    x = batch["data"]
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
        raise UserError(f"{source}: CIFAR-10 data must be a uint8 array of shape (N, 3072), found "
                        f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}")
    x = x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return check_images("batch", np.ascontiguousarray(x), np.asarray(batch["labels"]), (32, 32, 3), 10, source)


def _cifar_from_members(read, names: set[str], source: str) -> Dataset:
    """Assemble the training batches present (1..k, no gap) and ``test_batch`` via ``read(name)``."""
    present = [n for n in CIFAR10_TRAIN_BATCHES if n in names]
    if not present or present != list(CIFAR10_TRAIN_BATCHES[:len(present)]) or "test_batch" not in names:
        raise UserError(f"{source}: expected data_batch_1 … data_batch_5 and test_batch, found "
                        f"{', '.join(sorted(names)) or 'nothing'}")
    parts = [read_cifar_batch(read(n), f"{source}/{n}") for n in present]
    x_te, y_te = read_cifar_batch(read("test_batch"), f"{source}/test_batch")
    x_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    return Dataset("cifar10", x_tr, y_tr, x_te, y_te, CIFAR10_CLASSES, source)


def read_cifar10_dir(folder: str | os.PathLike) -> Dataset:
    """The extracted ``cifar-10-batches-py/`` folder, as uint8 images."""
    folder = Path(folder)
    names = {p.name for p in folder.iterdir() if p.is_file()}
    return _cifar_from_members(lambda n: (folder / n).read_bytes(), names, str(folder))


def read_cifar10_tar(path: str | os.PathLike) -> Dataset:
    """``cifar-10-python.tar.gz`` read in place (nothing is extracted to disk), as uint8 images."""
    import tarfile

    path = Path(path)
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers()
                       if m.isfile() and Path(m.name).parent.name == CIFAR10_DIR}

            def read(name):
                return tar.extractfile(members[name]).read()

            return _cifar_from_members(read, set(members), str(path))
    except (OSError, EOFError, tarfile.TarError) as e:
        raise UserError(f"{path}: truncated or corrupt tar.gz ({e}); delete it and fetch it again") from None


def load_cifar10(data_dir=None, limit: int | None = None, download: bool = True) -> Dataset:
    """CIFAR-10 as uint8 (N, 32, 32, 3) with int64 labels; scale per batch with :func:`image_batches`.

    Reads ``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz`` from the search directories, else
    downloads the official archive (sha256-verified) into the Keras cache.
    """
    dirs = search_dirs(data_dir)
    for d in dirs:
        if (d / CIFAR10_DIR).is_dir():
            return read_cifar10_dir(d / CIFAR10_DIR).limit(limit)
        if (d / CIFAR10_TAR).is_file():
            return read_cifar10_tar(d / CIFAR10_TAR).limit(limit)
    if not download:
        raise UserError(f"CIFAR-10 not found: put {CIFAR10_DIR}/ or {CIFAR10_TAR} in {dirs[0]} "
                        f"({fetch_hint('cifar10')})")
    return read_cifar10_tar(_download(DOWNLOADS["cifar10"][0])).limit(limit)


# --- the official files, and fetching them all ------------------------------------------------------


