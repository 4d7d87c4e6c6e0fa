"""Two trainings of one model name: the second refuses with one line naming the first's pid; a killed holder
leaves no stale lock."""

import os
import signal
import subprocess
import sys

import pytest
from conftest import ROOT, run_script

from vaelab.core import lock
from vaelab.core.errors import UserError

HOLDER = r"""
import sys, time
from vaelab.core import lock
with lock.held(sys.argv[1], sys.argv[2]):
    print("locked", flush=True)
    time.sleep(120)  # killed here
"""


def _holder(models_dir, prefix):
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(models_dir), prefix], stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout.readline().strip() == "locked"
    return child


def test_second_holder_refuses_naming_the_pid_and_a_killed_holder_leaves_no_stale_lock(tmp_path):
    child = _holder(tmp_path, "ld_2_id_16_e_1")
    try:
        with pytest.raises(UserError) as e, lock.held(tmp_path, "ld_2_id_16_e_1"):
            pass
        assert str(e.value).startswith(f"another training of ld_2_id_16_e_1 into {tmp_path} is running "
                                       f"(pid {child.pid} on host ")
        with lock.held(tmp_path, "ld_2_id_16_e_2"):  # another name is free
            pass
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    path = tmp_path / "ld_2_id_16_e_1.lock"
    assert path.exists()  # SIGKILL ran no cleanup: the file stays, but the kernel dropped the flock
    with lock.held(tmp_path, "ld_2_id_16_e_1") as held:
        assert held == path and f'"pid": {os.getpid()}' in path.read_text()
    assert not path.exists()  # a normal end deletes it


def test_lock_released_on_an_exception(tmp_path):
    with pytest.raises(RuntimeError), lock.held(tmp_path, "m"):
        raise RuntimeError("boom")
    with lock.held(tmp_path, "m"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_holder_of_an_unreadable_lock_file():
    assert lock.holder("/nonexistent/x.lock") == "a process that has not written its pid yet"


def test_a_second_train_script_of_the_same_model_refuses_in_one_line(tmp_path, mnist_dir, capsys):
    models = tmp_path / "models"
    models.mkdir()
    child = _holder(models, "ld_2_id_16_e_1")
    try:
        code = run_script("mnist_train.py", "--data-dir", mnist_dir, "--models-dir", models, "--epochs", "1",
                          "--intermediate-dim", "16", "--limit", "64", "--results-dir", tmp_path / "r")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(f"error: another training of ld_2_id_16_e_1 into {models} is "
                                                   f"running (pid {child.pid} on host "), err
    assert sorted(p.name for p in models.iterdir()) == ["ld_2_id_16_e_1.lock"]  # nothing else written
