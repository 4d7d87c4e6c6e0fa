"""Data: MNIST from npz or IDX files, read back exactly, checked, and a clear error when missing."""

import gzip

import numpy as np
import pytest

from vaelab.data import datasets as data
from vaelab.core.errors import UserError
from conftest import digit_like_images


def _write_idx_set(folder, x_tr, y_tr, x_te, y_te):
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in zip(data.IDX_NAMES, (x_tr, y_tr, x_te, y_te)):
        data.write_idx(folder / name, arr)


def test_npz_read_back_exactly(mnist_dir):
    ds = data.load_mnist(mnist_dir)
    with np.load(mnist_dir / "mnist.npz") as f:
        np.testing.assert_array_equal(ds.x_train[..., 0], f["x_train"].astype(np.float32) / 255)
        np.testing.assert_array_equal(ds.y_test, f["y_test"])
    assert ds.x_train.shape == (512, 28, 28, 1) and ds.x_train.dtype == np.float32
    assert ds.x_test.shape == (128, 28, 28, 1) and ds.y_train.dtype == np.int64
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert ds.class_names == tuple("0123456789")


def test_idx_files_read_back_exactly(tmp_path):
    x_tr, y_tr = digit_like_images(60, seed=3)
    x_te, y_te = digit_like_images(20, seed=4)
    _write_idx_set(tmp_path / "mnist", x_tr, y_tr, x_te, y_te)
    ds = data.load_mnist(tmp_path)
    np.testing.assert_array_equal((ds.x_train[..., 0] * 255).round().astype(np.uint8), x_tr)
    np.testing.assert_array_equal(ds.y_test, y_te)


def test_idx_header_and_truncation(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    data.write_idx(tmp_path / "a.gz", arr)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a.gz"), arr)
    raw = gzip.decompress((tmp_path / "a.gz").read_bytes())
    (tmp_path / "short").write_bytes(raw[:-3])
    with pytest.raises(UserError, match="truncated or corrupt"):
        data.read_idx(tmp_path / "short")
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04" + raw[4:])
    with pytest.raises(UserError, match="bad magic"):
        data.read_idx(tmp_path / "bad")


def test_limit_takes_the_first_examples(mnist_dir):
    full, small = data.load_mnist(mnist_dir), data.load_mnist(mnist_dir, limit=10)
    assert len(small.x_train) == 10 and len(small.x_test) == 10
    np.testing.assert_array_equal(small.x_train, full.x_train[:10])


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(y_train=d["y_train"] + 10), "labels must lie in 0..9"),
    (lambda d: d.update(x_train=d["x_train"][:, :27]), "must have shape (N, 28, 28)"),
    (lambda d: d.update(x_test=d["x_test"].astype(np.float32)), "test images must be uint8"),
    (lambda d: d.update(y_test=d["y_test"][:5]), "128 test images but 5 labels"),
    (lambda d: d.pop("y_test"), "missing arrays y_test"),
])
def test_wrong_content_is_a_clear_error(tmp_path, mnist_dir, change, message):
    with np.load(mnist_dir / "mnist.npz") as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    np.savez(tmp_path / "mnist.npz", **arrays)
    with pytest.raises(UserError) as e:
        data.load_mnist(tmp_path)
    assert message in str(e.value)


def test_truncated_npz(tmp_path, mnist_dir):
    raw = (mnist_dir / "mnist.npz").read_bytes()
    (tmp_path / "mnist.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(UserError, match="truncated or corrupt npz"):
        data.load_mnist(tmp_path)


def test_env_var_is_searched(monkeypatch, mnist_dir):
    monkeypatch.setenv("VAELAB_DATA_DIR", str(mnist_dir))
    assert len(data.load_mnist().x_train) == 512


def test_missing_offline_names_the_file(tmp_path, monkeypatch):
    import urllib.request

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(UserError) as e:
        data.load_mnist(tmp_path)
    assert "mnist.npz was not found locally and could not be downloaded" in str(e.value)
    assert "--data-dir" in str(e.value)


def test_fashion_mnist_from_subfolder(tmp_path):
    x_tr, y_tr = digit_like_images(30, seed=5)
    x_te, y_te = digit_like_images(10, seed=6)
    _write_idx_set(tmp_path / "fashion-mnist", x_tr, y_tr, x_te, y_te)
    ds = data.load_fashion_mnist(tmp_path)
    assert ds.class_names[0] == "T-shirt/top" and len(ds.x_train) == 30
    np.testing.assert_array_equal(ds.y_train, y_tr)
