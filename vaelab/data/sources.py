"""Where the datasets come from and where they are looked for: the data directories, the official files with
their published hashes, the :class:`Dataset` every loader returns and the checks every loader applies.

The bottom of the data layer: :mod:`vaelab.data.datasets` and :mod:`vaelab.data.caltech101` read the files this
module names; ``dataset/fetch.py`` downloads them all (:mod:`vaelab.cli.fetch`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vaelab.core.errors import UserError
from vaelab.data.downloads import hash_kind

KERAS_CACHE = Path("~/.keras/datasets").expanduser()


KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


MNIST_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"


IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


# Zalando publishes MD5s, not sha256s, for these files; vaelab.data.downloads.fetch verifies either.
FASHION_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}


@dataclass
class Dataset:
    """Train and test images (N, H, W, C) with integer labels and the class names; after
    :func:`vaelab.data.splits.with_validation`, the validation images too (``x_val``, ``y_val``)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...] = field(default=())
    source: str = ""
    x_val: np.ndarray | None = field(default=None, repr=False)
    y_val: np.ndarray | None = field(default=None, repr=False)
    validation: str = ""  # how x_val was chosen, in words

    def limit(self, n: int | None) -> "Dataset":
        """The first ``n`` training and test examples (all when ``n`` is None)."""
        if n is None:
            return self
        if n < 1:
            raise UserError(f"--limit must be >= 1, got {n}")
        return Dataset(self.name, self.x_train[:n], self.y_train[:n], self.x_test[:n], self.y_test[:n],
                       self.class_names, self.source)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def check_data_dir(path: str | os.PathLike, given_as: str = "--data-dir {}") -> Path:
    """``path`` if it is a directory, else a one-line :class:`UserError` (before any download is tried);
    ``given_as`` says where the path came from."""
    folder, source = Path(path).expanduser(), given_as.format(path)
    if folder.is_dir():
        return folder
    if folder.exists():
        raise UserError(f"{source} is a file, not a directory; pass the directory that holds it "
                        f"(--data-dir {folder.parent})")
    raise UserError(f"{source} is not a directory (it does not exist); pass the directory that holds the "
                    f"dataset files, or leave it out to use {KERAS_CACHE} (downloading there when needed)")


def search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where to look for dataset files, in order: ``data_dir`` or ``$VAELAB_DATA_DIR`` (which must be
    directories), then the Keras cache."""
    dirs = []
    if data_dir is not None:
        dirs.append(check_data_dir(data_dir))
    elif os.environ.get("VAELAB_DATA_DIR"):
        dirs.append(check_data_dir(os.environ["VAELAB_DATA_DIR"], "VAELAB_DATA_DIR={}"))
    dirs.append(KERAS_CACHE)
    return dirs


def check_images(name: str, x: np.ndarray, y: np.ndarray, shape: tuple[int, ...], n_classes: int,
                 source: str) -> tuple[np.ndarray, np.ndarray]:
    """Check one split: uint8 images of ``shape`` and matching integer labels in range."""
    if x.dtype != np.uint8:
        raise UserError(f"{source}: {name} images must be uint8, found {x.dtype}")
    if tuple(x.shape[1:]) != tuple(shape):
        raise UserError(f"{source}: {name} images must have shape (N, {', '.join(map(str, shape))}), "
                        f"found {x.shape}")
    y = np.asarray(y).reshape(-1)
    if len(y) != len(x):
        raise UserError(f"{source}: {len(x)} {name} images but {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer):
        raise UserError(f"{source}: {name} labels must be integers, found {y.dtype}")
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise UserError(f"{source}: {name} labels must lie in 0..{n_classes - 1}, "
                        f"found {y.min()}..{y.max()}")
    return x, y.astype(np.int64)


CIFAR10_TAR = "cifar-10-python.tar.gz"


CIFAR10_ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


# The hash keras.datasets.cifar10 verifies the official archive with.
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"


CALTECH101_ZIP = "caltech-101.zip"
CALTECH101_URL = "https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip"
CALTECH101_MD5 = "3138e1922a9193bfa496528edbbc45d0"  # as CaltechDATA publishes it for caltech-101.zip


@dataclass(frozen=True)
class RemoteFile:
    """One official dataset file: where it comes from, its published hash, where it goes in a data directory."""

    name: str
    url: str
    file_hash: str  # sha256 (64 hex digits) or MD5 (32), whichever the publisher gives
    subdir: str = ""

    @property
    def hash_kind(self) -> str:
        return hash_kind(self.file_hash)

    def path(self, folder) -> Path:
        return Path(folder) / self.subdir / self.name

    def get_it(self, target: Path, or_data_dir: bool = True) -> str:
        """What to tell a user who is offline: where the file comes from and where it goes."""
        inside = f"DIR/{self.subdir}" if self.subdir else "DIR"
        return (f"download {self.url} ({self.hash_kind} {self.file_hash}) on a machine that is online and put it "
                f"at {target}" + (f", or in {inside} and pass --data-dir DIR" if or_data_dir else ""))


# Every file the project downloads, by dataset: the loaders above and dataset/fetch.py use these entries.
DOWNLOADS: dict[str, tuple[RemoteFile, ...]] = {
    "mnist": (RemoteFile("mnist.npz", KERAS_ORIGIN + "mnist.npz", MNIST_NPZ_SHA256),),
    "fashion_mnist": tuple(RemoteFile(n, KERAS_ORIGIN + n, FASHION_MD5[n], "fashion-mnist") for n in IDX_NAMES),
    "cifar10": (RemoteFile(CIFAR10_TAR, CIFAR10_ORIGIN, CIFAR10_SHA256),),
    "caltech101": (RemoteFile(CALTECH101_ZIP, CALTECH101_URL, CALTECH101_MD5),),
}


def fetch_hint(dataset: str) -> str:
    """``python dataset/fetch.py --only NAME`` and the official URLs with their hashes, for not-found messages."""
    remotes = DOWNLOADS[dataset]
    files = "; ".join(f"{r.url}, {r.hash_kind} {r.file_hash}" for r in remotes)
    return (f"python dataset/fetch.py --only {dataset} downloads and verifies "
            f"{'them' if len(remotes) > 1 else 'it'}; official file{'s' if len(remotes) > 1 else ''}: {files}")
