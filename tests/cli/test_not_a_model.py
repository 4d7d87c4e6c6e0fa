"""``--model`` given a file that is HDF5 but not a Keras model (plain datasets, or a weights-only file), and
``--z`` vectors of the wrong length: one ``error:`` line; the model files given are not changed."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from conftest import run_script

MODEL = "ld_2_id_32_e_1"


def _copy(tmp_path, trained_mnist, params_json=True):
    models, data_dir, _ = trained_mnist
    copy = tmp_path / "models"
    shutil.copytree(models, copy, ignore=shutil.ignore_patterns("tensorboard", "checkpoints"))
    if not params_json:
        (copy / f"{MODEL}_params.json").unlink()
    return copy, data_dir


def _plain_h5(path):
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(10.0)
        f.attrs["note"] = "not a model"


def _weights_only(path, models):

    from vaelab.core import artifacts

    model = artifacts.load_model(models / f"{MODEL}_decoder.h5")
    weights = path.with_name("w.weights.h5")
    model.save_weights(weights)
    weights.replace(path)


def _generate(models, data_dir, tmp_path, *extra):
    return run_script("mnist_generate.py", "--models-dir", models, "--data-dir", data_dir, "--results-dir",
                      tmp_path / "results", "--no-prompt", "--grid", "2", *extra)


def _line(capsys, code):
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("kind", ["plain datasets", "weights only"])
@pytest.mark.parametrize("params_json", [True, False], ids=["with params.json", "without"])
def test_an_hdf5_file_that_is_not_a_model_is_one_line(kind, params_json, tmp_path, trained_mnist, capsys):
    models, data_dir = _copy(tmp_path, trained_mnist, params_json)
    bad = models / f"{MODEL}_decoder.h5"
    _plain_h5(bad) if kind == "plain datasets" else _weights_only(bad, models)
    before = bad.read_bytes()
    line = _line(capsys, _generate(models, data_dir, tmp_path, "--model", bad))
    why = ("an HDF5 file but not a Keras model (it holds x)" if kind == "plain datasets" else
           "a weights-only file (model.save_weights), not a model: it has no architecture")
    hint = " --epochs 1 --batch-size 128 --intermediate-dim 32" if params_json else ""  # else the params are unknown
    assert line == (f"error: {bad}: {why}; pass a model file that training wrote, or make one with: "
                    f"python mnist_train.py{hint}"), line
    assert bad.read_bytes() == before


def test_model_given_as_a_plain_hdf5_file_of_another_name(tmp_path, trained_mnist, capsys):
    models, data_dir = _copy(tmp_path, trained_mnist)
    bad = tmp_path / "measurements.h5"
    _plain_h5(bad)
    line = _line(capsys, _generate(models, data_dir, tmp_path, "--model", bad))
    assert line == (f"error: --model {bad} is a file, but not one of a model's files (<prefix>_decoder.h5, "
                    "_encoder.h5, _vae.h5, as training writes them); pass one of those, the prefix or the directory "
                    "that holds them")


@pytest.mark.parametrize("z, message", [
    ("0.5", "expected 2 numbers"),
    ("1,2,3", "expected 2 numbers"),
])
def test_z_of_the_wrong_length_is_one_line(z, message, tmp_path, trained_mnist, capsys):
    models, data_dir = _copy(tmp_path, trained_mnist)
    line = _line(capsys, _generate(models, data_dir, tmp_path, "--model", MODEL, "--z", z))
    assert line.startswith(f"error: --z {z!r}: ") and message in line, line
