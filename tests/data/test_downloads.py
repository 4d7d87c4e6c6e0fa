"""Downloads keep only hash-verified files; archives and pickles fail with one line when truncated."""

import hashlib
import io
import os
import pickle
import tarfile
import zipfile

import numpy as np
import pytest

from vaelab.data import datasets as data
from vaelab.data import sources
from vaelab.data import downloads
from vaelab.core.errors import UserError

PAYLOAD = b"the real dataset file\n" * 1000
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Response(io.BytesIO):
    """A urlopen response that sends ``body`` and then, optionally, drops the connection."""

    def __init__(self, body, fail_after=None):
        super().__init__(body)
        self.fail_after = fail_after

    def read(self, n=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError(104, "Connection reset by peer")
        return super().read(min(n, 1000) if n > 0 else n)


def _opener(body, fail_after=None):
    return lambda url, timeout=None: _Response(body, fail_after)


def test_verified_download_is_renamed_into_place(tmp_path):
    dest = tmp_path / "cache" / "x.npz"
    assert downloads.fetch("https://example/x.npz", dest, SHA, opener=_opener(PAYLOAD)) == dest
    assert dest.read_bytes() == PAYLOAD
    assert downloads.fetch("https://example/x.npz", dest, SHA, opener=None) == dest  # cached: no network


@pytest.mark.parametrize("body, fail_after, message", [
    (PAYLOAD, 5000, "downloading https://example/x.npz failed (ConnectionResetError: [Errno 104] Connection reset "
                    "by peer); nothing was kept"),
    (PAYLOAD[:-10], None, "(partial or altered); it was discarded, try again"),
])
def test_failed_or_partial_download_leaves_no_file(tmp_path, body, fail_after, message):
    dest = tmp_path / "x.npz"
    with pytest.raises(downloads.DownloadError) as e:
        downloads.fetch("https://example/x.npz", dest, SHA, opener=_opener(body, fail_after))
    assert message in str(e.value)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary


def test_partial_download_keeps_a_previous_good_file(tmp_path):
    dest = tmp_path / "x.npz"
    dest.write_bytes(b"old")  # wrong hash, so fetch downloads again
    with pytest.raises(downloads.DownloadError):
        downloads.fetch("https://example/x.npz", dest, SHA, opener=_opener(PAYLOAD, 3000))
    assert dest.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["x.npz"]


def test_md5_hashes_are_accepted(tmp_path):
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    assert downloads.fetch("u", tmp_path / "f.gz", md5, opener=_opener(PAYLOAD)).read_bytes() == PAYLOAD


def test_mnist_download_that_fails_verification_leaves_nothing(tmp_path, monkeypatch):
    import urllib.request

    monkeypatch.setattr(urllib.request, "urlopen", _opener(b"<html>captive portal</html>"))
    with pytest.raises(UserError) as e:
        data.load_mnist(tmp_path)
    assert str(e.value).startswith("mnist.npz was not found locally and could not be downloaded (the download of "
                                   "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz has sha256 ")
    assert not (sources.KERAS_CACHE / "mnist.npz").exists()


def _tar(path, files, mode="w:gz"):
    with tarfile.open(path, mode) as t:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            t.addfile(info, io.BytesIO(content))
    return path


def test_archives_unpack_whole(tmp_path):
    files = {"cifar-10-batches-py/data_batch_1": os.urandom(3000), "cifar-10-batches-py/readme": b"hi"}
    out = downloads.extract_archive(_tar(tmp_path / "a.tar.gz", files), tmp_path / "out")
    assert (out / "cifar-10-batches-py" / "readme").read_bytes() == b"hi"
    with zipfile.ZipFile(tmp_path / "b.zip", "w") as z:
        z.writestr("caltech101/x.jpg", b"jpeg")
    assert (downloads.extract_archive(tmp_path / "b.zip", tmp_path / "z") / "caltech101" / "x.jpg").exists()


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_archive_is_one_line_and_leaves_nothing(tmp_path, cut):
    path = _tar(tmp_path / "a.tar.gz", {"d/big": os.urandom(200_000)})
    path.write_bytes(path.read_bytes()[:int(path.stat().st_size * cut)])
    with pytest.raises(UserError) as e:
        downloads.extract_archive(path, tmp_path / "out")
    assert str(e.value).startswith(f"{path}: truncated or corrupt archive (")
    assert str(e.value).endswith("); delete it and fetch it again") and "\n" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz"]


def test_archive_members_cannot_escape(tmp_path):
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as z:
        z.writestr("../escaped.txt", b"x")
    with pytest.raises(UserError, match="refusing member '../escaped.txt'"):
        downloads.extract_archive(tmp_path / "evil.zip", tmp_path / "out")
    _tar(tmp_path / "evil.tar", {"../escaped.txt": b"x"}, mode="w")
    with pytest.raises(UserError, match="truncated or corrupt archive|outside"):
        downloads.extract_archive(tmp_path / "evil.tar", tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()


def test_cifar_style_pickles_load_safely(tmp_path):
    batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2], b"batch_label": b"training batch 1 of 5"}
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=4))
    loaded = downloads.read_pickle_file(path)
    assert loaded[b"labels"] == [1, 2] and loaded[b"data"].shape == (2, 3072)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(UserError, match=f"{path}: truncated or corrupt pickle"):
        downloads.read_pickle_file(path)

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path.write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(UserError, match="refusing to load posix.system"):
        downloads.read_pickle_file(path)
    assert not (tmp_path / "pwned").exists()
