"""A conditional model from the train script to the generate, morph and evaluate scripts: --conditional,
--class, one row per class, the prompt's class, and the accuracy of its samples."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_script, write_mnist

PREFIX = "ld_2_id_32_e_20_cond"


@pytest.fixture(scope="module")
def conditional_mnist(tmp_path_factory):
    base = tmp_path_factory.mktemp("conditional")
    data = write_mnist(base / "data")
    models = base / "models"
    # long enough (320 steps) for the decoder to draw the bar of the label it is given
    assert run_script("mnist_train.py", "--data-dir", data, "--models-dir", models, "--epochs", "20",
                      "--learning-rate", "0.003", "--intermediate-dim", "32", "--batch-size", "32", "--conditional",
                      "--results-dir", base / "results") == 0
    return models, data


def test_the_train_script_saves_a_conditional_model(conditional_mnist):
    import vaelab

    models, _ = conditional_mnist
    params = json.loads((models / f"{PREFIX}_params.json").read_text())
    assert params["conditional"] is True and params["validate_on"] == "split"
    model = vaelab.load(PREFIX, models_dir=models)
    assert model.conditional and [tuple(i.shape[1:]) for i in model.decoder.inputs] == [(2,), (1,)]
    sevens = model.sample(4, label=7, seed=0)
    threes = model.sample(4, label="3", seed=0)
    assert sevens.shape == (4, 28, 28, 1) and np.abs(sevens - threes).max() > 1e-4  # same z, other class


def test_generate_draws_the_class_asked_for_or_one_row_per_class(conditional_mnist, tmp_path, capsys):
    models, data = conditional_mnist
    common = ["--data-dir", data, "--models-dir", models, "--results-dir", tmp_path, "--model", PREFIX]
    assert run_script("mnist_generate.py", *common, "--no-prompt", "--grid", "4") == 0
    per_class = Image.open(tmp_path / f"{PREFIX}_random_normal.png")
    assert run_script("mnist_generate.py", *common, "--no-prompt", "--grid", "4", "--class", "7",
                      "--z", "0.5,-1") == 0
    one = Image.open(tmp_path / f"{PREFIX}_random_normal_class_7.png")
    assert per_class.size[1] > one.size[1] * 1.8  # 10 rows of classes against 4 rows of sevens
    assert (tmp_path / f"{PREFIX}_z_0.5_-1_class_7.png").is_file()
    capsys.readouterr()
    assert run_script("mnist_generate.py", *common, "--no-prompt", "--class", "cat") == 2
    assert "unknown class 'cat'; valid names: 0, 1, 2" in capsys.readouterr().err


def test_the_prompt_takes_a_class_before_the_vector(conditional_mnist, tmp_path, capsys):
    models, data = conditional_mnist
    assert run_script("mnist_generate.py", "--data-dir", data, "--models-dir", models, "--results-dir", tmp_path,
                      "--model", PREFIX, "--grid", "2", stdin="4: 0.5 -1\n0 0\nnine: 1 1\nq\n") == 0
    out = capsys.readouterr().out
    assert (tmp_path / f"{PREFIX}_z_0.5_-1_class_4.png").is_file()
    assert (tmp_path / f"{PREFIX}_z_0_0_class_4.png").is_file()  # the class stays chosen
    assert "unknown class 'nine'" in out


def test_an_unconditional_model_refuses_a_class(trained_mnist, tmp_path, capsys):
    models, data, prefix = trained_mnist
    assert run_script("mnist_generate.py", "--data-dir", data, "--models-dir", models, "--results-dir", tmp_path,
                      "--model", prefix, "--no-prompt", "--class", "3") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is not a conditional model, so it takes no class" in err
    assert err.count("\n") == 1


def test_evaluate_scores_log_p_of_x_given_the_label_and_the_samples_classes(conditional_mnist, tmp_path):
    models, data = conditional_mnist
    out = tmp_path / "eval.json"
    assert run_script("evaluate.py", "--dataset", "mnist", "--data-dir", data, "--models-dir", models, "--model",
                      PREFIX, "--k", "5", "--fid", "--fid-samples", "100", "--quiet", "--out", out) == 0
    r = json.loads(out.read_text())
    assert r["dims"] == 784 and r["test_images"] == 128 and r["iwae_nll_nats"] > 0
    # the classifier agrees: samples of each class asked for carry that class's bar (0.89 when written; chance 0.1)
    assert r["conditional_accuracy"] >= 0.6
    assert set(r["conditional_fid_per_class"]) <= {str(c) for c in range(10)}
    assert len(r["conditional_fid_per_class"]) >= 5


def test_morph_changes_the_class_at_a_fixed_style(tmp_path):
    """Fashion-MNIST, conditional: the styles-by-class grid replaces the class-mean morphs (z is the style)."""
    from test_fashion import TINY, write_fashion_idx

    data, _ = write_fashion_idx(tmp_path / "data" / "fashion-mnist")
    models, results = tmp_path / "models", tmp_path / "results"
    assert run_script("fashion_mnist_morph.py", "--data-dir", data.parent, "--models-dir", models,
                      "--results-dir", results, "--train", "--epochs", "1", *TINY, "--conditional",
                      "--amount-to-generate", "4") == 0
    prefix = "fashion_mnist_ld_3_e_1_cond"
    names = sorted(p.name for p in results.iterdir())
    assert f"{prefix}_styles_by_class.png" in names and f"{prefix}_reconstructions.png" in names
    assert not any("morph_" in n or "class_means" in n for n in names)
    grid = Image.open(results / f"{prefix}_styles_by_class.png")
    assert grid.size[0] > grid.size[1]  # 11 columns (the image, then 10 classes) by 6 rows


def test_the_tensorboard_log_shows_one_class_per_row_and_validation_reconstructions(conditional_mnist):
    """The run's pictures: the sample grid's rows are classes 0-7, the reconstructions are of validation images."""
    import io

    from tensorboard.backend.event_processing import event_accumulator as ea

    models, _ = conditional_mnist
    (logdir,) = (models / "tensorboard").iterdir()
    acc = ea.EventAccumulator(str(logdir), size_guidance={ea.IMAGES: 0})
    acc.Reload()
    assert {"samples", "reconstructions", "manifold"} <= set(acc.Tags()["images"])
    last = acc.Images("samples")[-1]
    assert last.step == 20 and last.width == last.height == 224  # 8 x 8 digits of 28 px
    grid = np.asarray(Image.open(io.BytesIO(last.encoded_image_string))).astype(float)
    grid = grid if grid.ndim == 2 else grid[..., 0]
    rows = grid.reshape(8, 28, 224).mean(axis=(1, 2))
    assert np.ptp(rows) > 0  # rows differ: one class each
