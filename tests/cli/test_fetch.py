"""dataset/fetch.py: every dataset's official files downloaded into one directory and verified, files already
there and valid kept, one-line errors offline; the network is mocked with fixture bytes."""

from __future__ import annotations

import hashlib
import io
import urllib.request

import pytest

from conftest import run_script
from vaelab.data import sources
from vaelab.data import datasets as data


def test_one_registry_holds_the_urls_and_hashes_the_loaders_use():
    d = data.DOWNLOADS
    assert list(d) == ["mnist", "fashion_mnist", "cifar10", "caltech101"]
    assert d["mnist"][0].file_hash == data.MNIST_NPZ_SHA256 and d["mnist"][0].url == data.KERAS_ORIGIN + "mnist.npz"
    assert [(r.name, r.file_hash, r.subdir) for r in d["fashion_mnist"]] == [
        (n, data.FASHION_MD5[n], "fashion-mnist") for n in data.IDX_NAMES]
    assert (d["cifar10"][0].url, d["cifar10"][0].file_hash) == (data.CIFAR10_ORIGIN, data.CIFAR10_SHA256)
    assert (d["caltech101"][0].name, d["caltech101"][0].url, d["caltech101"][0].file_hash) == (
        sources.CALTECH101_ZIP, sources.CALTECH101_URL, sources.CALTECH101_MD5)
    assert [r.hash_kind for rs in d.values() for r in rs] == ["sha256"] + ["md5"] * 4 + ["sha256", "md5"]


@pytest.fixture
def served(monkeypatch):
    """Every official URL served with small fixture bytes whose hashes replace the published ones; counts requests."""
    bodies, requests, registry = {}, [], {}
    for name, remotes in data.DOWNLOADS.items():
        fakes = []
        for r in remotes:
            body = f"fixture bytes of {r.name}".encode() * 100
            digest = hashlib.new(r.hash_kind, body).hexdigest()
            bodies[r.url] = body
            fakes.append(data.RemoteFile(r.name, r.url, digest, r.subdir))
        registry[name] = tuple(fakes)
    monkeypatch.setattr(sources, "DOWNLOADS", registry)

    def urlopen(url, timeout=None):
        requests.append(url)
        return io.BytesIO(bodies[url])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return bodies, requests


def test_fetches_every_dataset_then_keeps_what_is_valid(served, tmp_path, capsys):
    bodies, requests = served
    dest = tmp_path / "datasets"
    assert run_script("dataset/fetch.py", "--data-dir", dest) == 0
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert files == sorted(["mnist.npz", "cifar-10-python.tar.gz", "caltech-101.zip",
                            *(f"fashion-mnist/{n}" for n in data.IDX_NAMES)])
    assert len(requests) == 7
    for remotes in data.DOWNLOADS.values():
        for r in remotes:
            assert r.path(dest).read_bytes() == bodies[r.url]
    out = capsys.readouterr().out
    assert out.count("verified)") == 7 and "saved " in out
    # again: nothing downloaded; a damaged file is fetched again
    (dest / "mnist.npz").write_bytes(b"damaged")
    assert run_script("dataset/fetch.py", "--data-dir", dest) == 0
    assert requests[7:] == [data.DOWNLOADS["mnist"][0].url]
    out = capsys.readouterr().out
    assert out.count(": ok, ") == 6 and "mnist.npz: " + str(dest / "mnist.npz") + " is not the official file" in out
    assert (dest / "mnist.npz").read_bytes() == bodies[data.DOWNLOADS["mnist"][0].url]


def test_only_some_into_the_keras_cache_by_default(served):
    _, requests = served
    assert run_script("dataset/fetch.py", "--only", "mnist,cifar10") == 0
    assert sorted(p.name for p in sources.KERAS_CACHE.iterdir()) == ["cifar-10-python.tar.gz", "mnist.npz"]
    assert len(requests) == 2


def test_offline_each_file_says_where_it_comes_from_and_the_error_is_one_line(tmp_path, capsys):
    dest = tmp_path / "datasets"
    assert run_script("dataset/fetch.py", "--data-dir", dest, "--only", "mnist,fashion_mnist") == 2
    captured = capsys.readouterr()
    assert captured.err == ("error: 5 files could not be downloaded (mnist.npz, train-images-idx3-ubyte.gz, "
                            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz); each "
                            "line above says where it comes from and where it goes\n")
    assert ("mnist.npz: failed: downloading https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz "
            "failed (URLError: <urlopen error tests do not use the network>); nothing was kept; download "
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz (sha256 "
            "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1) on a machine that is online and put it "
            f"at {dest / 'mnist.npz'}\n") in captured.out
    assert f"(md5 bb300cfdad3c16e7a12a480ee83cd310) on a machine that is online and put it at " \
           f"{dest / 'fashion-mnist' / 't10k-labels-idx1-ubyte.gz'}\n" in captured.out
    assert not [p for p in dest.rglob("*") if p.is_file()]  # nothing half-written


def test_bad_options_are_one_line(tmp_path, capsys):
    assert run_script("dataset/fetch.py", "--only", "mnist,imagenet") == 2
    assert capsys.readouterr().err == ("error: --only 'mnist,imagenet': unknown dataset imagenet; choose among mnist, "
                                       "fashion_mnist, cifar10, caltech101\n")
    afile = tmp_path / "f"
    afile.write_text("x")
    assert run_script("dataset/fetch.py", "--data-dir", afile) == 2
    assert capsys.readouterr().err == f"error: --data-dir {afile} is a file, not a directory\n"
