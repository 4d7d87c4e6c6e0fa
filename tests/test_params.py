"""Params: module constants + overrides, validated, with one-line errors naming the entry."""

import types

import pytest

from vaelab import params as P
from vaelab.errors import UserError

import mnist_params


def module(**entries):
    m = types.ModuleType("my_params")
    vars(m).update(entries)
    return m


def test_defaults_match_the_original_design():
    p = P.load(P.MnistParams, mnist_params)
    assert (p.batch_size, p.original_dim, p.latent_dim, p.intermediate_dim, p.epochs, p.epsilon_std) == (
        256, 784, 2, 512, 60, 1.0)
    assert (p.optimizer, p.learning_rate, p.kl_weight, p.seed) == ("adam", 0.001, 1.0, 0)
    assert p.model_prefix() == "ld_2_id_512_e_60"


def test_overrides_win_and_none_means_not_given():
    p = P.load(P.MnistParams, mnist_params, {"latent_dim": 3, "epochs": None})
    assert p.latent_dim == 3 and p.epochs == 60
    assert p.model_prefix() == "ld_3_id_512_e_60"


def test_int_accepted_for_float():
    p = P.load(P.MnistParams, module(learning_rate=1, epsilon_std=2))
    assert p.learning_rate == 1.0 and isinstance(p.learning_rate, float)


@pytest.mark.parametrize("entries, message", [
    ({"latent_dim": 0}, "latent_dim must be >= 1, got 0"),
    ({"epochs": "60"}, "epochs must be an integer, got '60'"),
    ({"epochs": True}, "epochs must be an integer, got True"),
    ({"learning_rate": float("nan")}, "learning_rate must be finite"),
    ({"optimizer": "adamm"}, "optimizer must be one of adam, rmsprop, sgd, adamw, nadam; got 'adamm'"),
    ({"original_dim": 100}, "original_dim must be one of 784"),
    ({"latnt_dim": 3}, "unknown entry latnt_dim"),
])
def test_bad_entries_name_the_entry(entries, message):
    with pytest.raises(UserError) as e:
        P.load(P.MnistParams, module(**entries))
    assert message in str(e.value)
    assert "\n" not in str(e.value)
    assert str(e.value).startswith("my_params.py: ")


def test_json_round_trip(tmp_path):
    p = P.MnistParams(latent_dim=5, seed=7)
    path = tmp_path / "p.json"
    path.write_text(p.to_json())
    assert P.load_json(P.MnistParams, path) == p


def test_json_from_another_dataset_is_refused(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{"dataset": "cifar10", "latent_dim": 2}')
    with pytest.raises(UserError, match="made for dataset 'cifar10', not 'mnist'"):
        P.load_json(P.MnistParams, path)


def test_module_entries_skip_imports_and_private_names():
    import math

    m = module(latent_dim=4, _private=1, math=math, helper=lambda: 1)
    assert P.module_entries(m) == {"latent_dim": 4}
