"""Shared fixtures: small dataset files in the official formats, and running a script in-process.

Tests never touch real datasets or the network: ``VAELAB_DATA_DIR`` points at an empty directory and
the Keras cache at another, so a loader that falls through to a download fails fast instead.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def digit_like_images(n: int, seed: int = 0, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 images with a class-dependent bright bar, so a VAE has something to learn."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=n)
    x = rng.integers(0, 40, size=(n, size, size), dtype=np.uint8)
    for i, label in enumerate(y):
        r = 2 + int(label) * (size - 6) // 10
        x[i, r:r + 3, 4:size - 4] = 230
    return x, y.astype(np.uint8)


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch):
    """No real data, no network cache, no network, no display, no shipped models for any test, and a working
    directory of its own, so that default output folders (``results/``, ``models/``) never land in the working
    copy."""
    import urllib.error
    import urllib.request

    def no_network(url, *a, **k):
        raise urllib.error.URLError("tests do not use the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    empty = tmp_path_factory.mktemp("no-data")
    monkeypatch.setenv("VAELAB_DATA_DIR", str(empty))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    import vaelab.data.sources as sources
    import vaelab.config.experiments as experiments

    monkeypatch.setattr(sources, "KERAS_CACHE", empty / "keras-cache")
    monkeypatch.setattr(experiments, "SHIPPED_DIR", empty / "no-shipped-models")  # a test that wants them says so


@pytest.fixture
def mnist_dir(tmp_path) -> Path:
    """A data dir holding ``mnist.npz`` (keras layout) with 512 train and 128 test images."""
    return write_mnist(tmp_path / "data")


def write_mnist(folder: Path, n_train: int = 512, n_test: int = 128) -> Path:
    """``folder`` holding a ``mnist.npz`` of ``digit_like_images`` (train seed 1, test seed 2); returns it."""
    x_tr, y_tr = digit_like_images(n_train, seed=1)
    x_te, y_te = digit_like_images(n_test, seed=2)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / "mnist.npz", x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    return folder


def run_script(name: str, *args: str, stdin: str | None = None, monkeypatch=None) -> int:
    """Run a top-level script as ``__main__`` in this process; returns its exit status."""
    old_argv, old_stdin = sys.argv, sys.stdin
    sys.argv = [name, *map(str, args)]
    if stdin is not None:
        import io

        sys.stdin = io.StringIO(stdin)
    try:
        runpy.run_path(str(ROOT / name), run_name="__main__")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv, sys.stdin = old_argv, old_stdin
    return 0


@pytest.fixture
def trained_mnist(tmp_path_factory):
    """A tiny MNIST model trained once per test session: (models_dir, data_dir, prefix)."""
    return _trained_mnist(tmp_path_factory)


_CACHE: dict = {}


def _trained_mnist(tmp_path_factory):
    if "mnist" not in _CACHE:
        base = tmp_path_factory.mktemp("trained")
        data = write_mnist(base / "data")
        models = base / "models"
        code = run_script("mnist_train.py", "--data-dir", data, "--models-dir", models, "--epochs", "1",
                          "--intermediate-dim", "32", "--batch-size", "128", "--results-dir", base / "results")
        assert code == 0
        _CACHE["mnist"] = (models, data, "ld_2_id_32_e_1")
    return _CACHE["mnist"]


# tests/lanes.py: pytest processes beside the main one. In one process the lanes start as soon as the tests are
# collected and tests/package/test_backends.py, which waits for their reports, goes last; under pytest-xdist
# (``-n 2``) that file goes first, so that one worker runs the lanes while the other takes the rest.
BACKENDS = "test_backends.py"


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected
def pytest_collection_modifyitems(config, items):
    import lanes

    first = bool(os.environ.get("PYTEST_XDIST_WORKER"))
    items.sort(key=lambda item: (item.path.name == BACKENDS) != first)  # stable: the rest keep their order
    if lanes.in_main_session() and not config.getoption("collectonly"):
        wanted = {item.callspec.params["backend"] for item in items
                  if item.path.name == BACKENDS and item.originalname == "test_lane"}
        items[:] = lanes.take(items, wanted)


def pytest_collection_finish(session):
    import lanes

    if lanes.in_main_session() and not session.config.getoption("collectonly"):
        lanes.start()


def pytest_sessionfinish(session, exitstatus):
    import lanes

    lanes.stop_all()  # ends what a stopped session never waited for
    _EXIT["status"] = int(exitstatus)


_EXIT: dict = {}  # the session's exit status, for pytest_unconfigure


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config):
    """Ends a session that loaded TensorFlow here, once its report is written, without the final garbage
    collection: the CI rehearsal of 2026-12-07 19:02 printed "2809 passed" and then stood still for 4 minutes in
    pytest's ``gc_collect_harder`` (until gdb attached to read its stack), where the destructor of a tf.data
    iterator left in a reference cycle (probably by a ``fit`` that a test stopped midway) waited for its thread
    (``UnboundedThreadPool::LogicalThreadWrapper``). The exit handlers still run, as on a normal exit; only the
    collection after them is skipped. Not in a pytest-xdist worker, which reports to its controller at exit."""
    if "tensorflow" in sys.modules and "status" in _EXIT and not os.environ.get("PYTEST_XDIST_WORKER"):
        import atexit

        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT["status"])
