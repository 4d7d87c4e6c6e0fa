"""CIFAR-10 reading (folder and tar.gz, safely unpickled), the uint8 batch pipeline, and Caltech101
preprocessing (folder, tar.gz and zip sources; crop and squash; skipped files; the stratified split)."""

from __future__ import annotations

import pickle
import tarfile

import numpy as np
import pytest
from conv_fixtures import (CALTECH_SKIPPED, CALTECH_VALID, CIFAR_TEST, CIFAR_TRAIN, caltech_dir, cifar_dir,  # noqa: F401
                           cifar_images, write_caltech_folder, write_caltech_tar, write_caltech_zip)
from conftest import run_script

from vaelab.data import caltech101
from vaelab.data import datasets as data
from vaelab.core.errors import UserError

# --- CIFAR-10 -----------------------------------------------------------------------------------------


def test_cifar10_folder_reads_uint8_hwc_images_and_labels(cifar_dir):
    ds = data.load_cifar10(cifar_dir, download=False)
    assert ds.x_train.shape == (CIFAR_TRAIN, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (CIFAR_TEST, 32, 32, 3) and ds.x_test.dtype == np.uint8
    x, y = cifar_images(CIFAR_TRAIN, seed=1)
    np.testing.assert_array_equal(ds.x_train, x)  # channel-first rows turned back into H, W, C exactly
    np.testing.assert_array_equal(ds.y_train, y)
    assert ds.class_names[0] == "airplane" and len(ds.class_names) == 10


def test_cifar10_tar_gz_gives_the_same_arrays(cifar_dir, tmp_path):
    tar_dir = tmp_path / "tar"
    tar_dir.mkdir()
    with tarfile.open(tar_dir / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(cifar_dir / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    a, b = data.load_cifar10(cifar_dir, download=False), data.load_cifar10(tar_dir, download=False)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert b.source.endswith("cifar-10-python.tar.gz")


def test_cifar10_pickle_with_code_is_refused(cifar_dir):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (cifar_dir / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(UserError, match="refusing to load builtins.print"):
        data.load_cifar10(cifar_dir, download=False)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update({b"labels": [10] * len(d[b"labels"])}), "labels must lie in 0..9"),
    (lambda d: d.update({b"data": d[b"data"][:, :100]}), r"shape \(N, 3072\)"),
    (lambda d: d.update({b"labels": d[b"labels"][:-1]}), "but 31 labels"),
])
def test_cifar10_bad_batches_are_user_errors(cifar_dir, mutate, message):
    path = cifar_dir / "cifar-10-batches-py" / "test_batch"
    batch = pickle.loads(path.read_bytes(), encoding="bytes")
    mutate(batch)
    path.write_bytes(pickle.dumps(batch, protocol=4))
    with pytest.raises(UserError, match=message):
        data.load_cifar10(cifar_dir, download=False)


def test_cifar10_missing_test_batch_or_gap_is_a_user_error(cifar_dir):
    folder = cifar_dir / "cifar-10-batches-py"
    (folder / "data_batch_3").write_bytes((folder / "data_batch_1").read_bytes())  # 1 and 3: a gap
    with pytest.raises(UserError, match="expected data_batch_1"):
        data.load_cifar10(cifar_dir, download=False)
    (folder / "data_batch_3").unlink()
    (folder / "test_batch").unlink()
    with pytest.raises(UserError, match="expected data_batch_1"):
        data.load_cifar10(cifar_dir, download=False)


def test_cifar10_not_found_without_download(tmp_path):
    with pytest.raises(UserError, match="CIFAR-10 not found"):
        data.load_cifar10(tmp_path, download=False)


# --- batches -------------------------------------------------------------------------------------------


def test_image_batches_scale_per_batch_and_cover_every_image_once_per_epoch():
    from vaelab.data.batches import image_batches

    images = np.arange(10 * 2 * 2 * 1, dtype=np.uint8).reshape(10, 2, 2, 1) * 6
    batches = image_batches(images, batch_size=4, shuffle=True, seed=3)
    assert len(batches) == 3 and batches.num_examples == 10
    epoch0 = [batches[i][0] for i in range(len(batches))]
    assert [len(b) for b in epoch0] == [4, 4, 2]
    assert all(b.dtype == np.float32 for b in epoch0)
    seen = np.concatenate(epoch0)
    np.testing.assert_allclose(np.sort(seen[:, 0, 0, 0]), np.sort(images[:, 0, 0, 0] / 255.0), rtol=1e-6)
    batches.on_epoch_end()
    epoch1 = np.concatenate([batches[i][0] for i in range(len(batches))])
    assert not np.array_equal(seen, epoch1)  # a new permutation each epoch
    again = image_batches(images, batch_size=4, shuffle=True, seed=3)
    np.testing.assert_array_equal(np.concatenate([again[i][0] for i in range(3)]), seen)  # repeatable by seed
    plain = image_batches(images, batch_size=4)
    np.testing.assert_allclose(plain[2][0], images[8:] / 255.0, rtol=1e-6)


# --- Caltech101 ------------------------------------------------------------------------------------------


def _check_cache(path, size):
    with np.load(path, allow_pickle=False) as f:
        images, labels, names = f["images"], f["labels"], tuple(f["class_names"])
        skipped = list(f["skipped"])
    assert images.shape == (sum(CALTECH_VALID.values()), size, size, 3) and images.dtype == np.uint8
    assert names == ("accordion", "anchor")  # sorted; BACKGROUND_Google left out
    assert np.bincount(labels).tolist() == [CALTECH_VALID["accordion"], CALTECH_VALID["anchor"]]
    assert sorted(skipped) == ["accordion/image_0004.jpg", "anchor/notes.txt"]
    return images, labels


def test_preprocess_folder_resizes_skips_and_converts_grey(caltech_dir, capsys):
    folder = caltech_dir / "101_ObjectCategories"
    result = caltech101.preprocess(folder, 92, "crop", caltech_dir, progress=False)
    assert result.path == caltech_dir / "caltech101_92_crop.npz"
    assert (result.n_images, result.n_skipped) == (sum(CALTECH_VALID.values()), CALTECH_SKIPPED)
    images, _ = _check_cache(result.path, 92)
    grey = images[2]  # accordion/image_0003.jpg, the greyscale one (the corrupt one comes after it)
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    assert "2 files skipped" in capsys.readouterr().out


@pytest.mark.parametrize("form", ["tar", "zip"])
def test_preprocess_archives_match_the_folder(caltech_dir, tmp_path, form):
    folder = caltech_dir / "101_ObjectCategories"
    ref = caltech101.preprocess(folder, 32, "squash", tmp_path / "ref", progress=False)
    out = tmp_path / form
    out.mkdir()
    src = (write_caltech_tar(folder, out / "101_ObjectCategories.tar.gz") if form == "tar"
           else write_caltech_zip(folder, out / "caltech-101.zip"))
    assert caltech101.find_source([out]) == src
    got = caltech101.preprocess(src, 32, "squash", out, progress=False)
    a, b = np.load(ref.path), np.load(got.path)
    np.testing.assert_array_equal(a["images"], b["images"])
    np.testing.assert_array_equal(a["labels"], b["labels"])
    assert got.n_skipped == CALTECH_SKIPPED


def test_crop_keeps_the_aspect_ratio_and_squash_does_not():
    import io

    from PIL import Image

    wide = np.zeros((20, 60, 3), dtype=np.uint8)
    wide[:, :20, 0] = 255  # red left third
    wide[:, 20:40, 1] = 255  # green centre
    wide[:, 40:, 2] = 255  # blue right third
    buf = io.BytesIO()
    Image.fromarray(wide).save(buf, "PNG")
    crop = caltech101.to_square(buf.getvalue(), 16, "crop")
    squash = caltech101.to_square(buf.getvalue(), 16, "squash")
    assert crop.shape == squash.shape == (16, 16, 3)
    assert crop[..., 1].min() > 200 and crop[..., 0].max() < 30  # only the green centre square
    assert squash[:, 0, 0].min() > 200 and squash[:, -1, 2].min() > 200  # all three thirds, squeezed
    assert caltech101.to_square(b"GIF89a broken", 16) is None


def test_include_background_adds_the_class(caltech_dir, tmp_path):
    r = caltech101.preprocess(caltech_dir / "101_ObjectCategories", 16, "crop", tmp_path,
                              include_background=True, progress=False)
    assert r.class_names == ("BACKGROUND_Google", "accordion", "anchor") and r.n_images == 8


def test_load_builds_the_cache_once_and_splits_by_class(caltech_dir, capsys):
    ds = caltech101.load(caltech_dir, 92, "crop", progress=False)
    assert "building it" in capsys.readouterr().out
    assert (caltech_dir / "caltech101_92_crop.npz").is_file()
    assert ds.x_train.dtype == np.uint8 and ds.image_shape == (92, 92, 3)
    # 10 % of each class, at least one: one test image per class here
    assert np.bincount(ds.y_test).tolist() == [1, 1]
    assert np.bincount(ds.y_train).tolist() == [CALTECH_VALID["accordion"] - 1, CALTECH_VALID["anchor"] - 1]
    again = caltech101.load(caltech_dir, 92, "crop", progress=False)
    assert "building" not in capsys.readouterr().out
    np.testing.assert_array_equal(ds.x_test, again.x_test)  # the split is fixed


def test_stratified_split_is_disjoint_complete_and_ten_percent():
    labels = np.repeat(np.arange(3), [40, 11, 1])
    train, test = caltech101.stratified_split(labels)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(52))
    assert np.bincount(labels[test], minlength=3).tolist() == [4, 1, 0]


def test_preprocess_script_writes_the_cache_and_reports_missing_sources(caltech_dir, tmp_path, capsys):
    zip_dir = tmp_path / "zip"
    zip_dir.mkdir()
    write_caltech_zip(caltech_dir / "101_ObjectCategories", zip_dir / "caltech-101.zip")
    code = run_script("dataset/caltech101_preprocess.py", "--size", "24", "--fit", "squash", "--data-dir", zip_dir,
                      "--cache-dir", tmp_path / "cache", "--no-progress")
    assert code == 0
    _check_cache(tmp_path / "cache" / "caltech101_24_squash.npz", 24)
    (tmp_path / "nothing").mkdir()
    assert run_script("dataset/caltech101_preprocess.py", "--data-dir", tmp_path / "nothing") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: Caltech101 not found") and "Traceback" not in "".join(err)


def test_truncated_archive_is_a_user_error(caltech_dir, tmp_path):
    src = write_caltech_tar(caltech_dir / "101_ObjectCategories", tmp_path / "101_ObjectCategories.tar.gz")
    src.write_bytes(src.read_bytes()[:200])
    with pytest.raises(UserError, match="truncated or corrupt"):
        caltech101.preprocess(src, 16, "crop", tmp_path, progress=False)


def test_cifar10_downloads_the_official_archive_with_its_sha256_when_nothing_is_local(cifar_dir, tmp_path,
                                                                                       monkeypatch):
    archive = tmp_path / "cache" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(cifar_dir / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    calls = []

    def fake_download(remote):
        calls.append((remote.name, remote.file_hash, remote.url))
        return archive

    monkeypatch.setattr(data, "_download", fake_download)
    (tmp_path / "empty").mkdir()
    ds = data.load_cifar10(tmp_path / "empty")
    assert calls == [("cifar-10-python.tar.gz",
                      "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                      "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz")]
    assert ds.x_train.shape == (CIFAR_TRAIN, 32, 32, 3)


def test_cifar10_truncated_batch_is_a_user_error(cifar_dir):
    path = cifar_dir / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError, match="data_batch_1: truncated or corrupt pickle"):
        data.load_cifar10(cifar_dir, download=False)
