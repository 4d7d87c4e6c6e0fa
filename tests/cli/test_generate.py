"""Generation: interpolation between two test images starts and ends at their codes' images, the spherical
path keeps the norm, every sampler draws a grid, and the strips are saved."""

import numpy as np

from conftest import run_script
from vaelab.cli import generate
from vaelab.config.experiments import MNIST
from vaelab.config.params import MnistParams
from vaelab.api.trained import load_trained


def test_interpolation_endpoints_decode_the_two_images_codes(trained_mnist):
    models, data, prefix = trained_mnist
    trained = load_trained(MNIST, MnistParams(), models, prefix)
    x = MNIST.dataset(trained.params, data).x_test[:2]
    for spherical in (False, True):
        alphas, images = generate.interpolation_strip(trained, x[0], x[1], 7, spherical=spherical)
        np.testing.assert_allclose(alphas, np.linspace(0, 1, 7))
        ends = trained.decode(trained.encode(x))
        np.testing.assert_allclose(images[[0, -1]], ends, atol=1e-6)
        assert images.shape == (7, 28, 28, 1) and not np.allclose(images[3], images[0])


def test_interpolate_option_saves_the_linear_and_spherical_strips(trained_mnist, tmp_path, capsys):
    import shutil

    trained_models, data, prefix = trained_mnist
    models = shutil.copytree(trained_models, tmp_path / "models")  # the fitted sampler must not leak into the fixture
    tmp_path = tmp_path / "results"
    tmp_path.mkdir()
    code = run_script("mnist_generate.py", "--data-dir", data, "--models-dir", models, "--results-dir", tmp_path,
                      "--model", prefix, "--no-prompt", "--interpolate", "3", "5", "--slerp", "--steps", "6",
                      "--sampler", "gmm", "--gmm-components", "3")
    assert code == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"{prefix}_interpolate_3_5.png", f"{prefix}_latent.png", f"{prefix}_random_gmm.png"]
    assert (models / f"{prefix}_sampler_gmm3.npz").is_file()  # fitted once, reused by later runs
    code = run_script("mnist_generate.py", "--data-dir", data, "--models-dir", models, "--results-dir", tmp_path,
                      "--model", prefix, "--no-prompt", "--interpolate", "3", "500")
    assert code == 2 and "test images are numbered 0..127, got 500" in capsys.readouterr().err


def test_without_a_trained_model_the_shipped_one_is_used_and_said(trained_mnist, tmp_path, monkeypatch, capsys):
    """The generate scripts fall back on the model of the params' name in pretrained/ (one note line); a model
    in --models-dir wins over it, and without either the error names the train command."""
    import shutil

    from vaelab.config import experiments

    models, data, prefix = trained_mnist
    shipped = tmp_path / "pretrained"
    shipped.mkdir()
    for kind in ("encoder.h5", "decoder.h5", "params.json"):
        shutil.copy(models / f"{prefix}_{kind}", shipped / f"{prefix}_{kind}")
    monkeypatch.setattr(experiments, "SHIPPED_DIR", shipped)
    args = ("--data-dir", data, "--results-dir", tmp_path / "r", "--intermediate-dim", "32", "--epochs", "1",
            "--no-prompt")
    capsys.readouterr()
    assert run_script("mnist_generate.py", "--models-dir", tmp_path / "empty", *args) == 0
    out = capsys.readouterr().out
    assert out.count("note:") == 1 and f"has no {prefix}; using {prefix} shipped in pretrained/" in out
    assert (tmp_path / "r" / f"{prefix}_random_normal.png").is_file()
    assert run_script("mnist_generate.py", "--models-dir", models, *args) == 0
    assert "shipped" not in capsys.readouterr().out
    for kind in ("encoder.h5", "decoder.h5", "params.json"):  # shipped trained for 7 epochs: used for 1 too
        (shipped / f"{prefix}_{kind}").rename(shipped / f"{prefix.replace('_e_1', '_e_7')}_{kind}")
    assert run_script("mnist_generate.py", "--models-dir", tmp_path / "empty", *args) == 0
    assert f"has no {prefix}; using {prefix.replace('_e_1', '_e_7')} shipped in pretrained/" in capsys.readouterr().out
    monkeypatch.setattr(experiments, "SHIPPED_DIR", tmp_path / "nothing")
    assert run_script("mnist_generate.py", "--models-dir", tmp_path / "empty", *args) == 2
    assert "make it with: python mnist_train.py" in capsys.readouterr().err
