"""A params file entry of the wrong type, in every dataset's params module: one ``error:`` line naming the file
and the entry, before any data or model is read; a trained model beside it is untouched."""

from __future__ import annotations

import importlib

import pytest
from conftest import run_script
from test_bad_input import _broken_params_run

from vaelab.config import experiments

WRONG = [  # entry, value written in the params file, the message after "<module>.py: "
    ("latent_dim", "two", "latent_dim must be an integer, got 'two'"),
    ("epochs", 2.5, "epochs must be an integer, got 2.5"),
    ("batch_size", True, "batch_size must be an integer, got True"),
    ("learning_rate", "fast", "learning_rate must be a number, got 'fast'"),
    ("kl_weight", [1.0], "kl_weight must be a number, got [1.0]"),
    ("architecture", 3, "architecture must be a string, got 3"),
    ("seed", None, "seed must be an integer, got None"),
]
EXPERIMENTS = sorted(experiments.DATASETS.values(), key=lambda e: e.name)


@pytest.mark.parametrize("exp", EXPERIMENTS, ids=[e.name for e in EXPERIMENTS])
@pytest.mark.parametrize("entry, value, message", WRONG, ids=[w[0] for w in WRONG])
def test_a_params_entry_of_the_wrong_type_is_one_line(exp, entry, value, message, monkeypatch, capsys, tmp_path):
    module = importlib.import_module(exp.params_module)
    monkeypatch.setattr(module, entry, value, raising=False)
    code = run_script(exp.train_script, "--models-dir", tmp_path / "m", "--data-dir", tmp_path)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == f"error: {exp.params_module}.py: {message}"
    assert not (tmp_path / "m").exists()


def test_a_wrong_type_written_in_the_params_file_in_a_real_process(tmp_path):
    out = _broken_params_run(tmp_path, 7, 'latent_dim = "two"')  # line 7 of mnist_params.py: latent_dim = 2
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == "error: mnist_params.py: latent_dim must be an integer, got 'two'\n"
