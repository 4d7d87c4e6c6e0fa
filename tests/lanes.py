"""A second lane for the one-process test run: pytest processes that run beside the main session.

One pytest process on a 2-core machine leaves a core idle much of the time (Python between TensorFlow's
kernels, one process compiling). So once the main session has collected its tests, ``tests/conftest.py`` starts a
thread (:func:`start`) that runs these lanes one after another, each a pytest process of its own:

- ``jax`` and ``torch``: the part tests again under that backend (a backend is chosen before Keras loads, so
  this is how the README's one test command checks all three; tests/package/test_backends.py);
- ``tensorflow``: the slowest script-level test files (:data:`TENSORFLOW_FILES`: whole training runs in
  subprocesses), taken out of the main session (:func:`take`) and run here instead, on the tests the session
  selected (``-k`` and the rest still apply).

``tests/package/test_backends.py::test_lane`` waits for each lane and fails with its report. Under pytest-xdist
(``-n 2``) nothing runs early: the workers already share the cores, and each lane runs in its test.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PART_TESTS = ["test_architectures.py", "test_hierarchical.py", "test_likelihoods.py", "test_objectives.py",
              "test_models.py", "test_samplers.py", "test_metrics.py", "test_binarized.py", "test_vq.py"]
# Per backend, more: the conditional models' fit failed on PyTorch only (its build call); JAX's compile of those
# five fits costs 80 s of CI, and tools/part_matrix.py's family table checks JAX (docs/parts.md).
EXTRA_TESTS = {"torch": ["test_conditional.py"]}
# About 7 minutes of the main session's 25 (2026-12-07): the files whose tests train in subprocesses.
TENSORFLOW_FILES = ("test_vq_scripts.py", "test_kill_and_disk_full.py", "test_tensorboard.py")
ORDER = ("jax", "tensorflow", "torch")  # the longest first
TIMEOUT = 1800  # seconds per lane


class Lane:
    """One pytest process: its arguments, and once it has run, its exit status and output."""

    def __init__(self, backend: str, tests: list[str]):
        self.backend, self.tests = backend, tests
        self.done = threading.Event()
        self.returncode: int | None = None
        self.output = ""

    def run(self) -> None:
        env = {**os.environ, "KERAS_BACKEND": self.backend, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
               "PYTHONFAULTHANDLER": "1", "VAELAB_TEST_LANE": self.backend}
        try:
            with tempfile.TemporaryFile("w+") as out:  # a file, not a pipe: nobody reads it until the end
                with _LOCK:  # stop_all either sees this process or this lane sees that it was called
                    if _STOPPED.is_set():
                        self.output = "(not run: the session stopped first)"
                        return
                    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                                             *self.tests], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            text=True)
                    _PROCS.append(proc)
                try:
                    proc.wait(timeout=TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    out.write(f"\nkilled after {TIMEOUT} s\n")
                out.seek(0)
                self.output, self.returncode = out.read(), proc.returncode
        finally:
            self.done.set()

    def summary(self) -> str:
        lines = self.output.strip().splitlines()
        return lines[-1] if lines else "(no output)"


LANES: dict[str, Lane] = {}
_PROCS: list[subprocess.Popen] = []
_STOPPED = threading.Event()
_LOCK = threading.Lock()


def part_tests(backend: str) -> list[str]:
    return [str(next((ROOT / "tests").rglob(t))) for t in PART_TESTS + EXTRA_TESTS.get(backend, [])]


def available(backend: str) -> bool:
    return importlib.util.find_spec(backend) is not None


def in_main_session() -> bool:
    """True in the one-process session of the TensorFlow backend, where lanes run early."""
    import keras

    return (not os.environ.get("PYTEST_XDIST_WORKER") and not os.environ.get("VAELAB_TEST_LANE")
            and keras.backend.backend() == "tensorflow")


def take(items: list, wanted: set[str]) -> list:
    """Moves the selected tests of TENSORFLOW_FILES out of ``items`` into the ``tensorflow`` lane (when that lane
    is ``wanted``) and defines the ``jax``/``torch`` lanes that are; returns the items left to the session."""
    for backend in ("jax", "torch"):
        if backend in wanted and available(backend):
            LANES[backend] = Lane(backend, part_tests(backend))
    moved = [i for i in items if i.path.name in TENSORFLOW_FILES] if "tensorflow" in wanted else []
    if moved:
        LANES["tensorflow"] = Lane("tensorflow", [str(i.path) + i.nodeid[i.nodeid.index("::"):] for i in moved])
    return [i for i in items if i not in moved] if moved else items


def start() -> None:
    """Runs the defined lanes one after another in a background thread."""
    lanes = [LANES[b] for b in ORDER if b in LANES]
    if lanes:
        threading.Thread(target=lambda: [lane.run() for lane in lanes], name="test-lanes", daemon=True).start()


def run_now(backend: str) -> Lane:
    """``backend``'s part-test lane: the one started early, or (under pytest-xdist) one run here, in the caller."""
    if backend not in LANES:
        LANES[backend] = Lane(backend, part_tests(backend))
        LANES[backend].run()
    return LANES[backend]


def stop_all() -> None:
    """Ends lanes still running (a session that stopped early: ``-x``, Ctrl-C); the later ones never start."""
    with _LOCK:
        _STOPPED.set()
        procs = list(_PROCS)
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
