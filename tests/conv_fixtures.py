"""Small dataset files in the official CIFAR-10 and Caltech101 layouts, made by the tests themselves.

Imported by the conv test modules; the fixtures defined here are re-exported there.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CIFAR_TRAIN, CIFAR_TEST = 64, 32


def cifar_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 (32, 32, 3) images whose colour depends on the class, and their labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=n)
    x = rng.integers(0, 60, size=(n, 32, 32, 3), dtype=np.uint8)
    for i, label in enumerate(y):
        x[i, 8:24, 8:24, label % 3] = 200 + label * 5
    return x, y


def cifar_batch_bytes(x: np.ndarray, y: np.ndarray, label: bytes) -> bytes:
    """A batch laid out as the official files: bytes keys, (N, 3072) channel-first rows, a labels list."""
    rows = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
    return pickle.dumps({b"batch_label": label, b"labels": [int(v) for v in y], b"data": rows}, protocol=4)


def write_cifar_dir(root: Path) -> Path:
    """``root/cifar-10-batches-py`` with ``data_batch_1`` (64 images), ``test_batch`` (32) and ``batches.meta``."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    x, y = cifar_images(CIFAR_TRAIN, seed=1)
    (folder / "data_batch_1").write_bytes(cifar_batch_bytes(x, y, b"training batch 1 of 1"))
    x, y = cifar_images(CIFAR_TEST, seed=2)
    (folder / "test_batch").write_bytes(cifar_batch_bytes(x, y, b"testing batch 1 of 1"))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"airplane"] * 10}, protocol=4))
    return folder


# --- Caltech101 -------------------------------------------------------------------------------------

# class -> list of (file name, kind); kinds: (w, h) colour JPEG, ("grey", w, h), "corrupt", "text"
CALTECH_LAYOUT = {
    "accordion": [("image_0001.jpg", (37, 53)), ("image_0002.jpg", (61, 29)), ("image_0003.jpg", ("grey", 45, 45)),
                  ("image_0004.jpg", "corrupt"), ("image_0005.jpg", (100, 40))],
    "anchor": [("image_0001.jpg", (50, 33)), ("image_0002.jpg", (29, 71)), ("image_0003.jpg", (64, 64)),
               ("notes.txt", "text")],
    "BACKGROUND_Google": [("image_0001.jpg", (40, 40))],
}
CALTECH_VALID = {"accordion": 4, "anchor": 3}  # decodable images per class (background left out)
CALTECH_SKIPPED = 2  # the corrupt JPEG and the text file


def _jpeg(kind, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    if kind == "corrupt":
        return b"\xff\xd8\xff\xe0" + rng.bytes(300)  # a JPEG header, then garbage
    if kind == "text":
        return b"not an image\n"
    if kind[0] == "grey":
        _, w, h = kind
        Image.fromarray(rng.integers(0, 255, size=(h, w), dtype=np.uint8), mode="L").save(buf, "JPEG")
    else:
        w, h = kind
        Image.fromarray(rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8), mode="RGB").save(buf, "JPEG")
    return buf.getvalue()


def write_caltech_folder(root: Path) -> Path:
    """``root/101_ObjectCategories/<class>/…`` as in ``CALTECH_LAYOUT``."""
    folder = root / "101_ObjectCategories"
    for i, (cls, files) in enumerate(CALTECH_LAYOUT.items()):
        (folder / cls).mkdir(parents=True)
        for j, (name, kind) in enumerate(files):
            (folder / cls / name).write_bytes(_jpeg(kind, seed=10 * i + j))
    return folder


def write_caltech_tar(folder: Path, path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="101_ObjectCategories")
    return path


def write_caltech_zip(folder: Path, path: Path) -> Path:
    """The official zip's layout: ``caltech-101/101_ObjectCategories.tar.gz`` (plus annotations)."""
    inner = write_caltech_tar(folder, path.parent / "inner.tar.gz")
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(inner, "caltech-101/101_ObjectCategories.tar.gz")
        zf.writestr("caltech-101/Annotations.tar", b"")
    inner.unlink()
    return path


@pytest.fixture
def cifar_dir(tmp_path) -> Path:
    """A data dir holding a tiny ``cifar-10-batches-py/``."""
    write_cifar_dir(tmp_path / "data")
    return tmp_path / "data"


@pytest.fixture
def caltech_dir(tmp_path) -> Path:
    """A data dir holding a tiny ``101_ObjectCategories/``."""
    write_caltech_folder(tmp_path / "data")
    return tmp_path / "data"
