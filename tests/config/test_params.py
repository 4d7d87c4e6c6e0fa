"""Params: module constants + overrides, validated, with one-line errors naming the entry."""

import types

import pytest

from vaelab.config import params as P

from vaelab.config import conv_params as CP
from vaelab.config import paramsfile
from vaelab.config import presets
from vaelab.core.errors import UserError

import mnist_params


def module(**entries):
    m = types.ModuleType("my_params")
    vars(m).update(entries)
    return m


def test_defaults_match_the_original_design():
    p = P.load(P.MnistParams, mnist_params)
    assert (p.batch_size, p.latent_dim, p.intermediate_dim, p.epochs, p.epsilon_std) == (256, 2, 512, 60, 1.0)
    assert (p.architecture, p.likelihood, p.objective, p.sampler) == ("dense", "bernoulli", "elbo", "normal")
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
    ({"original_dim": 100}, "original_dim is fixed at 784 for mnist (its images are 28x28x1); remove the entry"),
    ({"architecture": "transformer"}, "architecture must be one of dense, conv, conv_bn, resnet, hierarchical, "
                                      "dense_hierarchical"),
    ({"iwae_k": 0}, "iwae_k must be >= 1, got 0"),
    ({"architecture": "dense_hierarchical", "lower_latent_dims": "100,x"},
     "lower_latent_dims must be comma-separated whole numbers in 1..4096 like '500,500', got '100,x'"),
    ({"temperature": -0.5}, "temperature must be >= 0.0, got -0.5"),
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
    assert paramsfile.module_entries(m) == {"latent_dim": 4}


@pytest.mark.parametrize("name", ["mnist", "mnist_binarized", "fashion_mnist", "cifar10", "caltech101_92",
                                  "caltech101_128"])
def test_each_params_module_holds_its_dataclass_defaults_and_names_the_parts(name):
    """One source of defaults: what a params module lists is what its dataclass defaults to (old sidecars without
    an entry read the dataclass default, so the two must agree)."""
    import importlib

    from vaelab.config.experiments import DATASETS

    exp = DATASETS[name]
    entries = paramsfile.module_entries(importlib.import_module(exp.params_module))
    defaults = exp.params_cls()
    assert {k: getattr(defaults, k) for k in entries} == entries
    assert {"architecture", "likelihood", "objective", "epochs", "latent_dim"} <= set(entries)
    assert not set(entries) & set(exp.params_cls.FIXED)  # image sizes are the dataset's, not entries


def test_older_params_files_are_read_in_todays_terms():
    old = {"dataset": "cifar10", "reconstruction": "discretized_logistic", "img_rows": 32, "img_cols": 32,
           "img_chns": 3, "latent_dim": 64}
    p = CP.Cifar10Params.from_dict(old)
    assert (p.likelihood, p.latent_dim, p.architecture) == ("discretized_logistic", 64, "conv")
    assert CP.Cifar10Params.from_dict({"reconstruction": "bce"}).likelihood == "bernoulli"
    with pytest.raises(UserError, match="img_rows is fixed at 32 for cifar10"):
        CP.Cifar10Params.from_dict({"img_rows": 64})


def test_part_choices_add_short_tokens_to_the_file_names():
    assert P.MnistParams(architecture="resnet", objective="iwae", iwae_k=10, kl_warmup=5).model_prefix() == \
        "ld_2_id_512_e_60_resnet32x2_iwae10_warm5"
    assert P.MnistParams(hidden_dims="256,256", likelihood="gaussian", gaussian_sigma=0.2).model_prefix() == \
        "ld_2_id_512_e_60_dense_h_256-256_gauss0.2"
    assert CP.Cifar10Params(likelihood="discretized_logistic", mixtures=5).model_prefix() == \
        "cifar10_ld_16_conv_3_id_128_e_50_dmol_5"
    assert P.BinarizedMnistParams(hidden_dims="300,200", free_bits=0.5).model_prefix() == \
        "bin_ld_50_h_300-200_e_100_fb0.5"
    assert P.MnistParams(kl_warmup=5, grad_skip=4).model_prefix() == "ld_2_id_512_e_60_warm5_skip4"
    # a beta-VAE gets its own files: two runs that differ only in the KL weight must not replace each other
    assert P.MnistParams(kl_weight=0.25, kl_warmup=5).model_prefix() == "ld_2_id_512_e_60_kl0.25_warm5"
    assert P.MnistParams(kl_weight=1.0).model_prefix() == "ld_2_id_512_e_60"


def test_a_preset_overrides_the_module_and_the_command_line_overrides_the_preset(tmp_path):
    from vaelab.config import presets

    mnist2d = presets.PRESETS["mnist2d"]
    p = P.load(P.MnistParams, module(seed=3, epochs=7), {"preset": "mnist2d"})
    assert p.preset == "mnist2d" and p.seed == 3  # the module's other entries stay
    assert all(getattr(p, k) == v for k, v in mnist2d.overrides.items())
    assert p.model_prefix() == f"mnist2d_e_{mnist2d.overrides['epochs']}"
    q = P.load(P.MnistParams, module(), {"preset": "mnist2d", "epochs": 4, "architecture": "resnet"})
    assert q.epochs == 4 and q.model_prefix() == "mnist2d_e_4_resnet32x2"  # tokens for what differs from the preset
    # the preset's own architecture at other sizes is another model, so another name (it replaced the preset's
    # files before: docs/quality.md, the binarized pilots of 2026-12-07); the original designs' names stay
    hier = P.load(P.BinarizedMnistParams, module(), {"preset": "binarized_hier", "epochs": 30})
    assert hier.model_prefix() == "binarized_hier_e_30"
    wide = P.load(P.BinarizedMnistParams, module(),
                  {"preset": "binarized_hier", "epochs": 30, "hidden_dims": "500,500"})
    assert wide.model_prefix() == "binarized_hier_e_30_dhier_h_500-500_z100"
    wider = P.load(CP.Cifar10Params, None, {"preset": "cifar10_hier", "filters": 128})
    assert wider.model_prefix() == "cifar10_hier_e_30_hier128x1_z8"
    assert CP.Cifar10Params(filters=4).model_prefix() == CP.Cifar10Params().model_prefix()  # as the original's
    path = tmp_path / "p.json"
    path.write_text(q.to_json())
    assert P.load_json(P.MnistParams, path) == q  # the sidecar holds every value and the preset's name
    with pytest.raises(UserError, match="preset 'mnist2d' is for mnist, not cifar10; use the mnist scripts"):
        P.load(CP.Cifar10Params, None, {"preset": "mnist2d"})
    with pytest.raises(UserError, match="unknown preset 'nope'; presets of mnist: mnist2d"):
        P.load(P.MnistParams, None, {"preset": "nope"})


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_every_preset_loads_for_its_dataset_and_its_parts_fit_the_images(name):
    from vaelab.models import registry as parts
    from vaelab.config.experiments import DATASETS

    preset = presets.PRESETS[name]
    exp = DATASETS[preset.dataset]
    p = P.load(exp.params_cls, None, {"preset": name})
    assert p.model_prefix() == f"{name}_e_{p.epochs}"  # no tokens: nothing differs from the preset
    for entry, value in preset.overrides.items():
        assert getattr(p, entry) == value
    parts.architecture(p).check(p, exp.image_shape)
