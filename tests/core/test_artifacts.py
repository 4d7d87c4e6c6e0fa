"""Artifacts: names, atomic writes that never leave half a file, restricted unpickling."""

import os
import pickle

import numpy as np
import pytest

from vaelab.core import artifacts
from vaelab.models import saving
from vaelab.core.errors import UserError


def test_model_file_names(tmp_path):
    f = artifacts.ModelFiles(tmp_path, "ld_2_id_512_e_60")
    assert [p.name for p in f.required()] == ["ld_2_id_512_e_60_vae.h5", "ld_2_id_512_e_60_encoder.h5",
                                              "ld_2_id_512_e_60_decoder.h5", "ld_2_id_512_e_60_history.pkl"]
    assert f.decoder_path() == f.decoder
    f.generator.write_bytes(b"")
    assert f.decoder_path() == f.generator  # the original scripts' name is accepted


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "h.pkl"
    artifacts.save_pickle({"loss": [1.0]}, target)
    with pytest.raises(RuntimeError):
        with artifacts.atomic_path(target) as tmp:
            tmp.write_bytes(b"half a fi")
            raise RuntimeError("killed midway")
    assert artifacts.load_history(target) == {"loss": [1.0]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.pkl"]  # no temporary left behind


def test_written_files_get_normal_permissions(tmp_path):
    path = artifacts.save_json({"a": 1}, tmp_path / "x.json")
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def test_history_with_numpy_values_loads():
    data = pickle.dumps({"loss": [np.float32(1.5), 2.0], "arr": np.arange(3)})
    out = artifacts.safe_unpickle(data)
    assert out["loss"] == [1.5, 2.0] and list(out["arr"]) == [0, 1, 2]


def test_malicious_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "bad_history.pkl"
    path.write_bytes(pickle.dumps({"loss": Evil()}))
    with pytest.raises(UserError, match="refusing to load"):
        artifacts.load_history(path)
    assert not (tmp_path / "pwned").exists()


def test_truncated_pickle(tmp_path):
    path = tmp_path / "h.pkl"
    path.write_bytes(pickle.dumps({"loss": [1.0, 2.0]})[:-4])
    with pytest.raises(UserError, match="truncated or corrupt"):
        artifacts.load_history(path)


def test_missing_model_names_the_train_command(tmp_path):
    with pytest.raises(UserError) as e:
        saving.load_model(tmp_path / "ld_2_decoder.h5", "python mnist_train.py --epochs 5")
    assert str(e.value) == (f"model file {tmp_path / 'ld_2_decoder.h5'} not found; make it with: "
                            "python mnist_train.py --epochs 5")


def test_corrupt_model_file(tmp_path):
    path = tmp_path / "m_decoder.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 50)
    with pytest.raises(UserError, match="cannot load model"):
        saving.load_model(path)
