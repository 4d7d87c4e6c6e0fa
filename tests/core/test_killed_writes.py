"""A save killed midway (SIGKILL, no cleanup code runs) leaves the previous file intact and loadable."""

import os
import signal
import subprocess
import sys

from conftest import ROOT
from vaelab.core import artifacts

CHILD = r"""
import sys, time
from vaelab.core import artifacts
with artifacts.atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "wb") as fh:
        fh.write(b"\x80\x04half of a new pickle")
        fh.flush()
        print("writing", flush=True)
        time.sleep(60)  # killed here
"""


def test_sigkill_during_a_save_keeps_the_previous_file(tmp_path):
    target = tmp_path / "ld_2_history.pkl"
    artifacts.save_pickle({"loss": [3.0, 2.0]}, target)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(target)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert artifacts.load_history(target) == {"loss": [3.0, 2.0]}
    # the half-written temporary keeps its hidden temporary name: nothing takes it for the real file
    leftovers = [p.name for p in tmp_path.iterdir() if p != target]
    assert all(n.startswith(".ld_2_history.") and ".tmp" in n for n in leftovers)
