"""The public API: ``vaelab.load`` (shipped models, names, paths), the verbs of a loaded model and
``vaelab.train`` as the same run as the train script."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vaelab
from vaelab.config import experiments
from vaelab.core.errors import UserError
from conftest import ROOT, digit_like_images, run_script

PACKAGE_SHIPPED = Path(experiments.__file__).resolve().parents[1] / "pretrained"


@pytest.fixture
def shipped(monkeypatch):
    monkeypatch.setattr(experiments, "SHIPPED_DIR", PACKAGE_SHIPPED)
    return PACKAGE_SHIPPED


@pytest.fixture(scope="module")
def mnist2(tmp_path_factory):
    """The shipped latent-2 MNIST model, loaded once for the verb tests."""
    import _pytest.monkeypatch

    mp = _pytest.monkeypatch.MonkeyPatch()
    mp.setattr(experiments, "SHIPPED_DIR", PACKAGE_SHIPPED)
    try:
        yield vaelab.load("ld_2_id_512_e_60")
    finally:
        mp.undo()


def test_the_shipped_models_are_package_data_and_listed(shipped):
    assert vaelab.shipped_models() == ["fashion_mnist_ld_3_e_12", "ld_2_id_512_e_60", "ld_3_id_512_e_60"]
    for name in vaelab.shipped_models():
        for part in ("encoder.h5", "decoder.h5", "params.json"):
            assert (shipped / f"{name}_{part}").is_file()
    assert (shipped / "README.md").is_file()


def test_sample_draws_the_prior_through_the_decoder_and_repeats_with_its_seed(mnist2):
    from vaelab.models.samplers import Normal

    images = mnist2.sample(16, seed=0)
    assert images.shape == (16, 28, 28, 1) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    np.testing.assert_array_equal(images, mnist2.sample(16, seed=0))
    assert np.abs(images - mnist2.sample(16, seed=1)).mean() > 0.01
    np.testing.assert_allclose(images, mnist2.decode(Normal().sample(16, 2, 0)), atol=1e-6)
    np.testing.assert_array_equal(mnist2.sample(4), mnist2.sample(4, seed=mnist2.params.seed))


def test_encode_takes_the_images_as_datasets_give_them(mnist2):
    x, _ = digit_like_images(6, seed=3)  # uint8 (6, 28, 28)
    z = mnist2.encode(x)
    assert z.shape == (6, 2) and np.isfinite(z).all()
    np.testing.assert_allclose(mnist2.encode(x.astype(np.float32) / 255.0), z, atol=1e-5)
    np.testing.assert_allclose(mnist2.encode(x[..., None]), z, atol=1e-6)
    np.testing.assert_allclose(mnist2.encode(x.reshape(6, 784)), z, atol=1e-6)
    np.testing.assert_allclose(mnist2.encode(x[0]), z[:1], atol=1e-6)


def test_reconstruct_and_interpolate_go_through_the_codes(mnist2):
    x, _ = digit_like_images(2, seed=4)
    np.testing.assert_allclose(mnist2.reconstruct(x), mnist2.decode(mnist2.encode(x)), atol=1e-6)
    path = mnist2.interpolate(x[0], x[1], steps=5)
    assert path.shape == (5, 28, 28, 1)
    ends = mnist2.decode(mnist2.encode(x))
    np.testing.assert_allclose(path[[0, -1]], ends, atol=1e-5)
    line = mnist2.interpolate([2.0, 0.0], [0.0, 2.0], steps=3)
    np.testing.assert_allclose(line[1], mnist2.decode([1.0, 1.0])[0], atol=1e-6)
    arc = mnist2.interpolate([2.0, 0.0], [0.0, 2.0], steps=3, spherical=True)
    np.testing.assert_allclose(arc[1], mnist2.decode([2 ** 0.5, 2 ** 0.5])[0], atol=1e-5)


@pytest.mark.parametrize("call, message", [
    (lambda m: m.decode([1.0, 2.0, 3.0]), "latent vectors of this model have 2 values"),
    (lambda m: m.encode(np.zeros((2, 32, 32))), "expected images of (28, 28, 1)"),
    (lambda m: m.encode(np.full((1, 28, 28), np.nan)), "NaN"),
    (lambda m: m.sample(0), "positive integer"),
    (lambda m: m.interpolate([0, 0], [1, 1], steps=1), "steps must be an integer >= 2"),
    (lambda m: m.log_likelihood(np.zeros((1, 28, 28))), "no such file; the log-likelihood"),
])
def test_bad_arguments_give_one_line_errors(mnist2, call, message):
    with pytest.raises(UserError, match=re.escape(message)):
        call(mnist2)


def test_load_finds_models_dir_first_then_paths(trained_mnist, shipped):
    models, _, prefix = trained_mnist
    by_name = vaelab.load(prefix, models_dir=models)
    by_path = vaelab.load(models / f"{prefix}_decoder.h5")
    by_prefix = vaelab.load(str(models / prefix))
    assert by_name.files == by_path.files == by_prefix.files
    assert by_name.exp.name == "mnist" and by_name.latent_dim == 2 and "ld_2_id_32_e_1" in repr(by_name)
    with pytest.raises(UserError, match="no model 'ld_9' in models/ or among the shipped models "
                                        r"\(shipped: fashion_mnist_ld_3_e_12, ld_2_id_512_e_60"):
        vaelab.load("ld_9")
    with pytest.raises(UserError, match="is a folder; name one of its models"):
        vaelab.load(models)
    with pytest.raises(UserError, match="is a mnist model, not cifar10"):
        vaelab.load(prefix, models_dir=models, dataset="cifar10")


def test_a_model_without_params_file_needs_its_dataset(trained_mnist, tmp_path):
    import shutil

    models, _, prefix = trained_mnist
    for part in ("encoder.h5", "decoder.h5"):
        shutil.copy(models / f"{prefix}_{part}", tmp_path / f"{prefix}_{part}")
    with pytest.raises(UserError, match="has no params file that names its dataset"):
        vaelab.load(tmp_path / prefix)
    assert vaelab.load(tmp_path / prefix, dataset="mnist").latent_dim == 2


def test_log_likelihood_is_the_evaluation_iwae_estimate(trained_mnist):
    from vaelab.evaluation import metrics

    models, data, prefix = trained_mnist
    model = vaelab.load(prefix, models_dir=models)
    x = np.load(data / "mnist.npz")["x_test"][:32]
    ll = model.log_likelihood(x, k=20, seed=1)
    assert ll.shape == (32,) and np.isfinite(ll).all() and (ll < 0).all()
    expected = metrics.iwae_log_likelihood(model.vae, x.reshape(32, 784).astype(np.float32) / 255.0, k=20,
                                           seed=1, verbose=0)
    np.testing.assert_allclose(ll, expected, rtol=1e-6)
    assert ll.mean() > model.log_likelihood(x, k=1, seed=1).mean()  # the bound tightens with k


def test_train_from_python_is_the_train_scripts_run(mnist_dir, tmp_path):
    flags = {"epochs": 1, "intermediate_dim": 32, "batch_size": 128, "seed": 3}
    model = vaelab.train("mnist", data_dir=mnist_dir, models_dir=tmp_path / "py", **flags)
    argv = [w for k, v in flags.items() for w in (f"--{k.replace('_', '-')}", str(v))]
    assert run_script("mnist_train.py", "--data-dir", mnist_dir, "--models-dir", tmp_path / "cli", *argv) == 0
    prefix = "ld_2_id_32_e_1"
    assert model.files.prefix == prefix and model.files.models_dir == tmp_path / "py"
    py, cli = (json.loads((tmp_path / d / f"{prefix}_params.json").read_text()) for d in ("py", "cli"))
    assert py == cli and py["seed"] == 3 and py["intermediate_dim"] == 32
    for part in ("decoder", "encoder"):
        import h5py

        with h5py.File(tmp_path / "py" / f"{prefix}_{part}.h5") as a, \
                h5py.File(tmp_path / "cli" / f"{prefix}_{part}.h5") as b:
            names = []
            a["model_weights"].visit(lambda n: names.append(n) if isinstance(a["model_weights"][n], h5py.Dataset)
                                     else None)
            assert names
            for n in names:
                np.testing.assert_allclose(a["model_weights"][n][()], b["model_weights"][n][()], atol=1e-5)
    assert model.sample(2).shape == (2, 28, 28, 1)


def test_train_refuses_unknown_and_ill_typed_overrides(mnist_dir, tmp_path):
    with pytest.raises(UserError, match="unknown epoch, latnt_dim"):
        vaelab.train("mnist", data_dir=mnist_dir, models_dir=tmp_path, epoch=1, latnt_dim=2)
    with pytest.raises(UserError, match="epochs"):
        vaelab.train("mnist", data_dir=mnist_dir, models_dir=tmp_path, epochs="many")
    with pytest.raises(UserError, match="unknown dataset 'svhn'"):
        vaelab.train("svhn")
    assert not list(tmp_path.glob("*.h5"))


def test_import_vaelab_offers_the_api_without_importing_keras():
    code = ("import sys, vaelab; assert 'keras' not in sys.modules; "
            "assert {'load', 'train', 'shipped_models', 'Trained'} <= set(dir(vaelab)); "
            "print(vaelab.shipped_models()); assert 'keras' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT.parent,
                         env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert out.returncode == 0, out.stderr
    assert "ld_2_id_512_e_60" in out.stdout


def test_the_notebook_example_in_docs_runs(shipped):
    """docs/api.md's first code block, run as written: five lines from import to an interpolation."""
    text = (ROOT / "docs" / "api.md").read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert len(block.strip().splitlines()) == 5
    scope: dict = {}
    exec(compile(block, "docs/api.md", "exec"), scope)
    assert scope["images"].shape == (16, 28, 28, 1)
    assert scope["codes"].shape == (16, 2)
    assert scope["path"].shape == (8, 28, 28, 1)
