"""A damaged or truncated file of every dataset loader: one ``UserError`` line naming the file and what to do
(docs/robustness.md, "Faults that must not lose a run"). A damaged Caltech101 image is skipped and named."""

from __future__ import annotations

import gzip
import tarfile

import numpy as np
import pytest
from conftest import digit_like_images
from conv_fixtures import CALTECH_VALID, write_caltech_folder, write_cifar_dir

from vaelab.core.errors import UserError
from vaelab.data import caltech101, datasets
from vaelab.data.binarized import load_binarized_mnist


def _half(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _mnist(root):
    root.mkdir(parents=True, exist_ok=True)
    x, y = digit_like_images(64, seed=1)
    xt, yt = digit_like_images(32, seed=2)
    np.savez_compressed(root / "mnist.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    return _half(root / "mnist.npz")


def _fashion(root):
    folder = root / "fashion-mnist"
    folder.mkdir(parents=True)
    x, y = digit_like_images(64, seed=1)
    xt, yt = digit_like_images(32, seed=2)
    for name, arr in zip(datasets.IDX_NAMES, (x, y, xt, yt)):
        datasets.write_idx(folder / name, arr)
    return _half(folder / datasets.IDX_NAMES[2])


def _fashion_not_gzip(root):
    bad = _fashion(root)
    bad.write_bytes(b"<html>a proxy's error page</html>")
    return bad


def _cifar_batch(root):
    return _half(write_cifar_dir(root) / "data_batch_1")


def _cifar_tar(root):
    folder = write_cifar_dir(root / "x")
    tar_path = root / datasets.CIFAR10_TAR
    with tarfile.open(tar_path, "w:gz") as tar:
        tar.add(folder, arcname=datasets.CIFAR10_DIR)
    return _half(tar_path)


def _caltech_cache(root):
    caltech101.preprocess(write_caltech_folder(root), 16, "crop", root, progress=False)
    return _half(root / caltech101.cache_name(16, "crop"))


CASES = {  # loader, damage, the message's start after the file's path, its end
    "mnist.npz": (datasets.load_mnist, _mnist, "truncated or corrupt npz file", "; delete it and fetch it again"),
    "binarized mnist.npz": (load_binarized_mnist, _mnist, "truncated or corrupt npz file",
                            "; delete it and fetch it again"),
    "fashion .gz cut in half": (datasets.load_fashion_mnist, _fashion, "truncated or corrupt IDX file (",
                                "); delete it and fetch it again"),
    "fashion .gz not gzip": (datasets.load_fashion_mnist, _fashion_not_gzip, "truncated or corrupt IDX file (",
                             "); delete it and fetch it again"),
    "cifar10 batch": (datasets.load_cifar10, _cifar_batch, "truncated or corrupt pickle (",
                      "); delete it and fetch it again"),
    "cifar10 tar.gz": (datasets.load_cifar10, _cifar_tar, "truncated or corrupt tar.gz (",
                       "); delete it and fetch it again"),
    "caltech101 cache": (lambda d: caltech101.load(d, size=16, progress=False), _caltech_cache,
                         "truncated or corrupt cache (", "); delete it to rebuild it"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_damaged_dataset_file_is_one_line_naming_it(case, tmp_path):
    load, damage, start, end = CASES[case]
    root = tmp_path / "data"
    bad = damage(root)
    with pytest.raises(UserError) as e:
        load(root)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"{bad}: {start}") and message.endswith(end), message


def test_a_truncated_caltech_image_is_skipped_and_named(tmp_path, capsys):
    folder = write_caltech_folder(tmp_path / "data")
    _half(folder / "anchor" / "image_0002.jpg")  # a real JPEG cut in half
    done = caltech101.preprocess(folder, 16, "crop", tmp_path, progress=False)
    assert done.n_images == sum(CALTECH_VALID.values()) - 1 and done.n_skipped == 3
    out = capsys.readouterr().out
    assert "3 files skipped (not decodable: " in out and "anchor/image_0002.jpg" in out
    with np.load(done.path) as f:
        assert "anchor/image_0002.jpg" in list(f["skipped"])


def test_fashion_gz_trailing_garbage_is_not_taken_for_images(tmp_path):
    bad = _fashion(tmp_path / "data")
    folder = bad.parent
    good = folder / datasets.IDX_NAMES[0]
    good.write_bytes(gzip.compress(gzip.decompress(good.read_bytes())[:-100]))  # a whole gzip of too few bytes
    with pytest.raises(UserError) as e:
        datasets.load_fashion_mnist(tmp_path / "data")
    assert str(e.value).startswith((f"{good}: ", f"{bad}: "))
