"""Keras .h5 files built in memory (so a full disk is a Python OSError), the free-space check before a weights
file, and telling an HDF5 file that is not a model from one that is."""

import errno

import h5py
import numpy as np
import pytest

from vaelab.core import artifacts, h5bytes


def _model():
    import keras

    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2, name="d")(inputs))


def test_model_bytes_load_as_the_model_saved_to_a_path(tmp_path):
    model = _model()
    data = h5bytes.model_bytes(model)
    artifacts.save_model(model, tmp_path / "m.h5")  # through model_bytes
    assert (tmp_path / "m.h5").read_bytes()[:8] == data[:8] == b"\x89HDF\r\n\x1a\n"
    loaded = artifacts.load_model(tmp_path / "m.h5")
    x = np.ones((1, 3), "float32")
    assert np.array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    assert h5bytes.not_a_model(tmp_path / "m.h5") is None


def test_a_full_disk_while_saving_a_model_is_one_line_and_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "m.h5"
    target.write_bytes(b"the previous model")
    real_write = artifacts.write_bytes

    def full(path, data):
        with artifacts.atomic_path(path) as tmp:
            tmp.write_bytes(data[:10])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(artifacts, "write_bytes", full)
    with pytest.raises(artifacts.UserError, match=r"m\.h5: No space left on device; the previous file, if any, is "
                                                  "unchanged"):
        artifacts.save_model(_model(), target)
    monkeypatch.setattr(artifacts, "write_bytes", real_write)
    assert target.read_bytes() == b"the previous model" and sorted(p.name for p in tmp_path.iterdir()) == ["m.h5"]


def test_weights_need_their_size_in_free_space(tmp_path, monkeypatch):
    model = _model()
    assert h5bytes.weights_size(model) >= (3 * 2 + 2) * 4
    h5bytes.check_space(tmp_path, 1)  # there is a byte
    with pytest.raises(OSError) as e:
        h5bytes.check_space(tmp_path, 1 << 62)
    assert e.value.errno == errno.ENOSPC
    with pytest.raises(artifacts.UserError, match="No space left on device; the previous file, if any, is unchanged"):
        monkeypatch.setattr(h5bytes, "weights_size", lambda m: 1 << 62)
        artifacts.save_weights(model, tmp_path / "b.weights.h5")
    assert list(tmp_path.iterdir()) == []


def test_what_is_not_a_model(tmp_path):
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["a"], f["b"] = np.zeros(2), np.ones(2)
    assert h5bytes.not_a_model(plain) == "an HDF5 file but not a Keras model (it holds a, b)"
    weights = tmp_path / "w.weights.h5"
    _model().save_weights(weights)
    assert h5bytes.not_a_model(weights).startswith("a weights-only file")
    (tmp_path / "text.h5").write_text("not HDF5")  # the loader says what is wrong with it
    assert h5bytes.not_a_model(tmp_path / "text.h5") is None


def test_together_renames_all_or_none(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    artifacts.save_json({"v": 1}, a)
    artifacts.save_json({"v": 1}, b)
    with pytest.raises(RuntimeError), artifacts.together():
        artifacts.save_json({"v": 2}, a)
        assert a.read_text().count("1") == 1  # not renamed yet
        raise RuntimeError("killed between the two writes")
    assert [a.read_text(), b.read_text()] == ['{\n  "v": 1\n}\n'] * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]
    (tmp_path / ".a.x1y2z3.tmp.json").write_text("left by a killed run")
    with artifacts.together():
        artifacts.save_json({"v": 3}, a)
        artifacts.save_json({"v": 3}, b)
    assert [a.read_text(), b.read_text()] == ['{\n  "v": 3\n}\n'] * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]  # the killed run's temporary too
