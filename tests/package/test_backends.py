"""The model parts on every backend: the part tests (architectures, likelihoods, objectives, the VAE, samplers,
metrics) run again under JAX and PyTorch, each in its own process (a backend is chosen before Keras loads).

This is how the README's one test command checks all three backends; it is skipped for a backend that is not
installed, and inside a run that already uses another backend.

Those two processes take about 7 of the suite's minutes, most of it JAX compiling; ``tests/conftest.py`` starts
them (:func:`start`) as soon as the session has collected its tests, so they run beside the rest of the suite
instead of after it, and :func:`test_the_part_tests_pass_on` waits for each and reads its report. Under
pytest-xdist (``-n 2``) nothing starts early: the workers already share the cores, and the test runs its process
itself.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile

import keras
import pytest

from conftest import ROOT

PART_TESTS = ["test_architectures.py", "test_hierarchical.py", "test_likelihoods.py", "test_objectives.py",
              "test_models.py", "test_samplers.py", "test_metrics.py", "test_binarized.py", "test_vq.py"]
# Per backend, more: the conditional models' fit failed on PyTorch only (its build call); JAX's compile of those
# five fits costs 80 s of CI, and tools/part_matrix.py's family table checks JAX (docs/parts.md).
EXTRA_TESTS = {"torch": ["test_conditional.py"]}
MODULES = {"jax": "jax", "torch": "torch"}
TIMEOUT = 1500  # seconds, from the start of the process

_RUNNING: dict[str, tuple[subprocess.Popen, object]] = {}  # backend -> (its pytest process, its output file)


def _skip_reason(backend: str) -> str | None:
    if keras.backend.backend() != "tensorflow":
        return "run from the TensorFlow test session only"
    if importlib.util.find_spec(MODULES[backend]) is None:
        return f"{backend} is not installed"
    return None


def start(backend: str) -> None:
    """Start ``backend``'s pytest process (once), its output going to a temporary file."""
    if backend in _RUNNING or _skip_reason(backend):
        return
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONFAULTHANDLER": "1"}
    tests = [str(next((ROOT / "tests").rglob(t))) for t in PART_TESTS + EXTRA_TESTS.get(backend, [])]
    out = tempfile.TemporaryFile("w+")  # not a pipe: nobody reads it until the process ends
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *tests],
                            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    _RUNNING[backend] = (proc, out)


def stop_all() -> None:
    """End whatever is still running (a session stopped early, or ``-k`` that deselected a test)."""
    for proc, out in _RUNNING.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.close()
    _RUNNING.clear()


@pytest.mark.parametrize("backend", sorted(MODULES))
def test_the_part_tests_pass_on(backend):
    reason = _skip_reason(backend)
    if reason:
        pytest.skip(reason)
    start(backend)  # a no-op when conftest started it at the beginning of the session
    proc, out = _RUNNING[backend]
    try:
        proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    out.seek(0)
    stdout = out.read()
    summary = stdout.strip().splitlines()[-1:] or ["(no output)"]
    assert proc.returncode == 0, f"{backend}: {summary}\n{stdout[-4000:]}"
    assert " passed" in summary[0]
