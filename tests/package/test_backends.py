"""The lanes of tests/lanes.py, each a pytest process: the part tests (architectures, likelihoods, objectives, the
VAE, samplers, metrics) again under JAX and PyTorch, and the slowest script-level TensorFlow files.

In the one-process session they started when the session had collected its tests and ran beside it; each test
here waits for its lane and fails with the lane's report. A lane is skipped for a backend that is not installed,
and inside a run that already uses another backend.
"""

import keras
import pytest

import lanes


@pytest.mark.parametrize("backend", lanes.ORDER)
def test_lane(backend):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("run from the TensorFlow test session only")
    if backend == "tensorflow":
        lane = lanes.LANES.get("tensorflow")
        if lane is None:
            pytest.skip("the session runs the files of this lane itself")  # under xdist, or chosen by name
    elif not lanes.available(backend):
        pytest.skip(f"{backend} is not installed")
    else:
        lane = lanes.run_now(backend)
    lane.done.wait()
    report = f"{backend} lane: {lane.summary()}\n{lane.output[-4000:]}"
    print(report)
    assert lane.returncode == 0, report
    assert " passed" in lane.summary(), report
