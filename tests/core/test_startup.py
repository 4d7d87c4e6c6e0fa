"""TensorFlow's start-up lines are dropped from the scripts' stderr; every other line written meanwhile stays."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT
from vaelab.core import startup

ABSL = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
ONEDNN = ("I0000 00:00:1795992973.178034   28167 port.cc:153] oneDNN custom operations are on. You may see slightly "
          "different numerical results due to floating-point round-off errors from different computation orders. To "
          "turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n")
CPU = ("I0000 00:00:1795992973.269791   28167 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
       "available CPU instructions in performance-critical operations.\n"
       "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the "
       "appropriate compiler flags.\n")
REAL = ("E0000 00:00:1795992973.3 28167 cuda_dnn.cc:8310] Unable to register cuDNN factory\n"
        "WARNING: something the user should see\n")


def test_known_lines_are_noise_and_others_are_not():
    assert all(startup.is_noise(line) for line in (ABSL + ONEDNN + CPU).splitlines())
    assert not any(startup.is_noise(line) for line in REAL.splitlines())
    assert not startup.is_noise("oneDNN custom operations are on.")  # only the whole log line


def test_filtered_stderr_drops_the_noise_and_keeps_the_rest_in_order(capfd):
    with startup.filtered_stderr():
        os.write(2, (ABSL + ONEDNN + "first real line\n" + CPU + ABSL + ONEDNN).encode())
        os.write(2, REAL.encode())
    assert capfd.readouterr().err == "first real line\n" + REAL


@pytest.fixture
def noisy_package(tmp_path, monkeypatch):
    """A package whose import writes TensorFlow's start-up lines and one real line to fd 2."""
    def make(name: str, body: str = ""):
        pkg = tmp_path / name
        pkg.mkdir()
        noise = (ABSL + ONEDNN + "real line\n").encode()
        (pkg / "__init__.py").write_text(f"import os\nos.write(2, {noise!r})\n{body}\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
        return name

    return make


def test_the_first_import_of_a_module_is_filtered(noisy_package, capfd):
    name = noisy_package("noisy_tf_like")
    startup.quiet_import((name,))
    module = __import__(name)
    assert capfd.readouterr().err == "real line\n"
    assert module.__name__ == name and module.__spec__.loader.exec_module is not None


def test_an_import_that_fails_shows_its_lines_and_its_error(noisy_package, capfd):
    name = noisy_package("noisy_broken", "raise ImportError('libcudart.so.12: cannot open shared object file')")
    startup.quiet_import((name,))
    with pytest.raises(ImportError, match="libcudart"):
        __import__(name)
    assert capfd.readouterr().err == "real line\n"


def test_a_script_starts_without_tensorflows_lines_and_debug_keeps_them():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(ROOT)
    cmd = [sys.executable, str(ROOT / "mnist_train.py"), "--summary", "--intermediate-dim", "8"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0 and 'Model: "encoder"' in out.stdout
    assert out.stderr == ""
    debug = subprocess.run(cmd + ["--debug"], capture_output=True, text=True, env=env, timeout=300)
    assert debug.returncode == 0 and debug.stdout == out.stdout
    # --debug filters nothing: what it shows beyond the quiet run is noise only
    assert all(startup.is_noise(line) for line in debug.stderr.splitlines())
