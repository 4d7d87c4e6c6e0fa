"""The bad-input table of docs/robustness.md: each row through the real scripts gives exit status 2 and one
``error:`` line on stderr that says what is wrong and what to do; no traceback (``--debug`` shows it)."""

import errno
import gzip
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, digit_like_images, run_script
from vaelab.core import artifacts
from vaelab.models import saving
from vaelab.data import datasets as data
from vaelab.data import sources
from vaelab.core.errors import UserError

TRAIN = ["--epochs", "1", "--intermediate-dim", "16", "--batch-size", "64", "--limit", "64"]
MODEL = "ld_2_id_32_e_1"


def _error(capsys, code, expected_code=2):
    """The one line a failing script printed on stderr (after any library noise)."""
    err = capsys.readouterr().err
    assert code == expected_code, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def _npz(path, **overrides):
    x_tr, y_tr = digit_like_images(64, seed=1)
    x_te, y_te = digit_like_images(32, seed=2)
    arrays = {**dict(x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te), **overrides}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def _models(tmp_path, trained_mnist):
    """A private copy of the session's trained model, free to damage."""
    models, data_dir, _ = trained_mnist
    copy = tmp_path / "models"
    shutil.copytree(models, copy, ignore=shutil.ignore_patterns("tensorboard", "checkpoints"))
    return copy, data_dir


def _generate(models, data_dir, tmp_path, *extra):
    return run_script("mnist_generate.py", "--models-dir", models, "--data-dir", data_dir, "--results-dir",
                      tmp_path / "results", "--intermediate-dim", "32", "--epochs", "1", "--batch-size", "128",
                      "--no-prompt", "--grid", "2", *extra)


# --- datasets -------------------------------------------------------------------------------------


def test_missing_dataset_offline(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = _error(capsys, run_script("mnist_train.py", "--data-dir", empty, "--models-dir", tmp_path / "m", *TRAIN))
    assert line == ("error: mnist.npz was not found locally and could not be downloaded (downloading "
                    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz failed (URLError: <urlopen "
                    "error tests do not use the network>); nothing was kept); download "
                    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz (sha256 "
                    "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1) on a machine that is online and "
                    f"put it at {sources.KERAS_CACHE / 'mnist.npz'}, or in DIR and pass --data-dir DIR")


def test_truncated_npz(tmp_path, capsys):
    path = _npz(tmp_path / "d" / "mnist.npz")
    path.write_bytes(path.read_bytes()[:3000])
    line = _error(capsys, run_script("mnist_train.py", "--data-dir", path.parent, "--models-dir", tmp_path / "m",
                                     *TRAIN))
    assert line == (f"error: {path}: truncated or corrupt npz file (not a complete zip archive); delete it and "
                    "fetch it again")


def test_truncated_idx_gz(tmp_path, capsys):
    folder = tmp_path / "d" / "mnist"
    folder.mkdir(parents=True)
    x_tr, y_tr = digit_like_images(64, seed=1)
    x_te, y_te = digit_like_images(32, seed=2)
    for name, arr in zip(data.IDX_NAMES, (x_tr, y_tr, x_te, y_te)):
        data.write_idx(folder / name, arr)
    bad = folder / data.IDX_NAMES[0]
    bad.write_bytes(bad.read_bytes()[:-40])
    line = _error(capsys, run_script("mnist_train.py", "--data-dir", tmp_path / "d", "--models-dir", tmp_path / "m",
                                     *TRAIN))
    assert line.startswith(f"error: {bad}: truncated or corrupt IDX file (")
    assert line.endswith("); delete it and fetch it again")


@pytest.mark.parametrize("overrides, message", [
    ({"x_train": np.zeros((64, 32, 32), np.uint8)},
     "train images must have shape (N, 28, 28), found (64, 32, 32)"),
    ({"y_test": np.full(32, 12, np.uint8)}, "test labels must lie in 0..9, found 12..12"),
    ({"y_train": np.zeros(10, np.uint8)}, "64 train images but 10 labels"),
    ({"x_test": np.zeros((32, 28, 28), np.float64)}, "test images must be uint8, found float64"),
])
def test_wrong_shapes_or_labels_in_a_dataset_file(tmp_path, capsys, overrides, message):
    path = _npz(tmp_path / "d" / "mnist.npz", **overrides)
    line = _error(capsys, run_script("mnist_train.py", "--data-dir", path.parent, "--models-dir", tmp_path / "m",
                                     *TRAIN))
    assert line == f"error: {path}: {message}"


# --- params ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--latent-dim", "0"], "error: mnist_params.py: latent_dim must be >= 1, got 0"),
    (["--epochs", "abc"], "error: argument --epochs: invalid int value: 'abc'; see mnist_train.py --help"),
    (["--architecture", "transformer"], "error: mnist_params.py: architecture must be one of dense, conv, conv_bn, "
                                        "resnet, hierarchical, dense_hierarchical, vq; got 'transformer'"),
    (["--objective", "iwae", "--k", "0"], "error: mnist_params.py: iwae_k must be >= 1, got 0"),
    (["--sampler", "magic"], "error: mnist_params.py: sampler must be one of normal, uniform, gmm, two-stage, prior, pixelcnn; "
                             "got 'magic'"),
    (["--learning-rate", "nan"], "error: mnist_params.py: learning_rate must be finite, got nan"),
    (["--checkpoint-every", "0"], "error: argument --checkpoint-every: must be >= 1, got 0; see mnist_train.py --help"),
    (["--tensorboard-images-every", "-1"], "error: mnist_params.py: tensorboard_images_every must be >= 0, got -1"),
])
def test_params_of_wrong_type_or_range_on_the_command_line(args, message, capsys):
    line = _error(capsys, run_script("mnist_train.py", *args))
    assert line == message


def test_string_epochs_in_the_params_module(monkeypatch, capsys):
    import mnist_params

    monkeypatch.setattr(mnist_params, "epochs", "60")
    line = _error(capsys, run_script("mnist_train.py"))
    assert line == "error: mnist_params.py: epochs must be an integer, got '60'"


# --- model files ----------------------------------------------------------------------------------


def test_missing_model_file(tmp_path, trained_mnist, capsys):
    models, data_dir = _models(tmp_path, trained_mnist)
    (models / f"{MODEL}_decoder.h5").unlink()
    line = _error(capsys, _generate(models, data_dir, tmp_path))
    assert line == (f"error: model file {models / (MODEL + '_decoder.h5')} not found; make it with: python "
                    "mnist_train.py --epochs 1 --batch-size 128 --intermediate-dim 32")


def test_truncated_model_file(tmp_path, trained_mnist, capsys):
    models, data_dir = _models(tmp_path, trained_mnist)
    path = models / f"{MODEL}_decoder.h5"
    full = path.read_bytes()
    path.write_bytes(full[:2000])
    line = _error(capsys, _generate(models, data_dir, tmp_path))
    assert line == (f"error: cannot load model {path}: Unable to synchronously open file (truncated file: eof = 2000, "
                    f"sblock->base_addr = 0, stored_eof = {len(full)}); reading its weights layer by layer failed too")


def test_wrong_architecture_model_file(tmp_path, trained_mnist, capsys):
    models, data_dir = _models(tmp_path, trained_mnist)
    shutil.copy(models / f"{MODEL}_encoder.h5", models / f"{MODEL}_decoder.h5")  # an encoder saved as the decoder
    line = _error(capsys, _generate(models, data_dir, tmp_path))
    assert line == (f"error: {models / (MODEL + '_decoder.h5')} is not a mnist decoder: it maps (784,) -> (2,), a "
                    "decoder maps (d,) -> (28, 28, 1); it is another model's file: pick the right one with --model, "
                    "or train again")


def test_model_trained_for_another_dataset(tmp_path, trained_mnist, capsys):
    models, data_dir = _models(tmp_path, trained_mnist)
    sidecar = models / f"{MODEL}_params.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "dataset": "cifar10"}))
    line = _error(capsys, _generate(models, data_dir, tmp_path))
    assert line == (f"error: {sidecar}: made for dataset 'cifar10', not 'mnist'; use the cifar10 scripts, or pick "
                    "another model with --model")


def test_model_of_another_latent_size(tmp_path, trained_mnist, capsys):
    models, data_dir = _models(tmp_path, trained_mnist)
    line = _error(capsys, _generate(models, data_dir, tmp_path, "--model", MODEL, "--latent-dim", "3"))
    assert line == (f"error: --latent-dim 3 was given, but {MODEL} has latent dim 2; drop --latent-dim or pick "
                    "another model with --model")
    (models / f"{MODEL}_params.json").unlink()  # without the params file the file's shapes decide, the same way
    line = _error(capsys, _generate(models, data_dir, tmp_path, "--model", MODEL, "--latent-dim", "3"))
    assert line == (f"error: --latent-dim 3 was given, but {MODEL} has latent dim 2; drop --latent-dim or pick "
                    "another model with --model")


def test_lambda_layers_are_refused_in_safe_mode(tmp_path):
    import keras

    x = keras.Input((2,))
    model = keras.Model(x, keras.layers.Lambda(lambda t: t * 2)(x))
    path = tmp_path / "evil_decoder.keras"
    model.save(path)
    with pytest.raises(UserError) as e:
        saving.load_model(path)
    assert str(e.value) == (f"refusing to load model {path}: it holds a Lambda layer with Python code, which safe "
                            "mode never runs; re-save the model without Lambda layers")


def test_saved_models_have_no_lambda_layers(trained_mnist):
    import h5py

    models, _, prefix = trained_mnist
    for kind in ("vae", "encoder", "decoder"):
        with h5py.File(models / f"{prefix}_{kind}.h5", "r") as f:
            config = f.attrs["model_config"]
        assert "Lambda" not in (config.decode() if isinstance(config, bytes) else config)


# --- writing --------------------------------------------------------------------------------------


def test_unwritable_models_directory(tmp_path, mnist_dir, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    line = _error(capsys, run_script("mnist_train.py", "--data-dir", mnist_dir, "--models-dir", blocker / "models",
                                     *TRAIN))
    assert line == f"error: cannot write to {blocker / 'models'}: Not a directory; pass a writable directory"


def test_unwritable_results_directory(tmp_path, trained_mnist, capsys):
    models, data_dir = _models(tmp_path, trained_mnist)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    line = _error(capsys, run_script("mnist_generate.py", "--models-dir", models, "--data-dir", data_dir,
                                     "--results-dir", blocker / "r", "--intermediate-dim", "32", "--epochs", "1",
                                     "--no-prompt"))
    assert line == f"error: cannot write to {blocker / 'r'}: Not a directory; pass a writable directory"


def test_disk_full_while_saving_keeps_the_previous_files(tmp_path, mnist_dir, capsys, monkeypatch):
    models = tmp_path / "m"
    args = ["--data-dir", mnist_dir, "--models-dir", models, *TRAIN]
    assert run_script("mnist_train.py", *args) == 0
    history = models / "ld_2_id_16_e_1_history.pkl"
    before = history.read_bytes()
    real_replace = os.replace

    def disk_full(src, dst):
        if str(dst).endswith("_history.pkl"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst)

    capsys.readouterr()
    with monkeypatch.context() as m:
        m.setattr(os, "replace", disk_full)
        line = _error(capsys, run_script("mnist_train.py", *args, "--seed", "3"))
    ckpt = models / "checkpoints" / "ld_2_id_16_e_1" / "epoch_00001"
    assert line == (f"error: cannot write {history}: No space left on device; the previous file, if any, is "
                    f"unchanged; the trained state is kept in {ckpt}: free some space, then python mnist_train.py "
                    f"{' '.join(map(str, args))} --seed 3 --resume saves it without training again")
    assert history.read_bytes() == before and artifacts.load_history(history)["loss"]
    assert not [p for p in models.iterdir() if ".tmp" in p.name]
    # once there is space, --resume saves the trained state without training again
    capsys.readouterr()
    assert run_script("mnist_train.py", *args, "--seed", "3", "--resume") == 0
    out = capsys.readouterr().out
    assert "resuming from" in out and "trained " not in out and history.read_bytes() != before


# --- --debug and a real process ---------------------------------------------------------------------


def test_debug_shows_the_traceback(tmp_path):
    path = _npz(tmp_path / "d" / "mnist.npz")
    path.write_bytes(b"garbage")
    with pytest.raises(UserError, match="truncated or corrupt npz"):
        run_script("mnist_train.py", "--data-dir", path.parent, "--models-dir", tmp_path / "m", "--debug", *TRAIN)


def test_corrupt_dataset_in_a_real_process_is_one_line(tmp_path):
    path = _npz(tmp_path / "d" / "mnist.npz")
    path.write_bytes(gzip.compress(b"not an npz"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(ROOT / "mnist_train.py"), "--data-dir", str(path.parent),
                          "--models-dir", str(tmp_path / "m"), *TRAIN], capture_output=True, text=True, env=env,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (f"error: {path}: truncated or corrupt npz file (not a complete "
                                                   "zip archive); delete it and fetch it again")


# --- a params file the user broke -------------------------------------------------------------------

PARAMS_LINES = (ROOT / "mnist_params.py").read_text().splitlines()


def _broken_params_run(tmp_path, line: int | None, text: str, *args: str, script: str = "mnist_train.py"):
    """Run a copy of ``script`` whose ``mnist_params.py`` has ``text`` in place of line ``line`` (1-based; None:
    no params file at all), in a real process; a trained model in its models dir must stay untouched."""
    folder = tmp_path / "scripts"
    folder.mkdir()
    shutil.copy(ROOT / script, folder / script)
    (folder / "vaelab").symlink_to(ROOT / "vaelab")  # the package, without the real params modules beside it
    if line is not None:
        lines = list(PARAMS_LINES) + [""] * max(0, line - len(PARAMS_LINES))
        lines[line - 1] = text
        (folder / "mnist_params.py").write_text("\n".join(lines) + "\n")
    models = tmp_path / "models"
    models.mkdir()
    (models / "ld_2_id_512_e_60_decoder.h5").write_bytes(b"trained weights")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, str(folder / script), "--models-dir", str(models), *args],
                         capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert sorted(p.name for p in models.iterdir()) == ["ld_2_id_512_e_60_decoder.h5"]
    assert (models / "ld_2_id_512_e_60_decoder.h5").read_bytes() == b"trained weights"
    return out


@pytest.mark.parametrize("line, text, message", [
    (14, "epochs = 60 +", "mnist_params.py, line 14: invalid syntax"),
    (6, "    latent_dim = 2", "mnist_params.py, line 6: unexpected indent"),
    (4, "import numpyy", "mnist_params.py, line 4: ModuleNotFoundError: No module named 'numpyy'"),
    (7, "intermediate_dim = intermediat", "mnist_params.py, line 7: NameError: name 'intermediat' is not defined"),
    (8, "epochs = 60 / 0", "mnist_params.py, line 8: ZeroDivisionError: division by zero"),
])
def test_a_broken_params_file_is_one_line_naming_file_and_line(tmp_path, line, text, message):
    out = _broken_params_run(tmp_path, line, text)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == f"error: {message}\n"


def test_a_broken_params_file_with_debug_shows_the_original_traceback(tmp_path):
    out = _broken_params_run(tmp_path, 8, "epochs = 60 / 0", "--debug", script="mnist_generate.py")
    assert out.returncode == 1 and "Traceback" in out.stderr
    assert "ZeroDivisionError: division by zero" in out.stderr and 'mnist_params.py", line 8' in out.stderr


def test_a_missing_params_file_is_one_line(tmp_path):
    out = _broken_params_run(tmp_path, None, "", script="mnist_2d_latent_space_and_generate.py")
    assert out.returncode == 2
    assert out.stderr == ("error: mnist_params.py not found: the scripts read their params from it, beside them; "
                          "restore it (e.g. git checkout mnist_params.py)\n")


# --- --data-dir and --model that name directories -----------------------------------------------------


def test_a_data_dir_that_is_not_a_directory_is_one_line_and_downloads_nothing(tmp_path, capsys, monkeypatch):
    from vaelab.data import downloads

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(downloads, "fetch", no_download)
    missing = tmp_path / "no-such-dir"
    line = _error(capsys, run_script("mnist_train.py", "--data-dir", missing, "--models-dir", tmp_path / "m", *TRAIN))
    assert line == (f"error: --data-dir {missing} is not a directory (it does not exist); pass the directory that "
                    f"holds the dataset files, or leave it out to use {sources.KERAS_CACHE} (downloading there when "
                    "needed)")
    npz = _npz(tmp_path / "d" / "mnist.npz")
    line = _error(capsys, run_script("mnist_generate.py", "--data-dir", npz, "--models-dir", tmp_path / "m"))
    assert line == f"error: --data-dir {npz} is a file, not a directory; pass the directory that holds it " \
                   f"(--data-dir {npz.parent})"
    assert not (tmp_path / "m").exists()  # stopped while parsing the command line
    monkeypatch.setenv("VAELAB_DATA_DIR", str(missing))
    line = _error(capsys, run_script("mnist_train.py", "--models-dir", tmp_path / "m", *TRAIN))
    assert line.startswith(f"error: VAELAB_DATA_DIR={missing} is not a directory (it does not exist);")


def test_model_given_as_a_directory_finds_the_only_model_there(tmp_path, trained_mnist, capsys):
    models, data_dir = _models(tmp_path, trained_mnist)
    # the params name ld_2_id_512_e_60, which is not there: the only model there is used
    code = run_script("mnist_generate.py", "--model", models, "--data-dir", data_dir, "--results-dir",
                      tmp_path / "r", "--no-prompt", "--grid", "2")
    assert code == 0
    assert f"--model {models}: using {MODEL}, the only mnist model there" in capsys.readouterr().out
    assert (tmp_path / "r" / f"{MODEL}_random_normal.png").is_file()
    # a second model, and one of another dataset that is not counted
    for prefix, dataset in (("ld_2_id_32_e_2", "mnist"), ("cifar10_ld_2_conv_3_id_8_e_1", "cifar10")):
        shutil.copy(models / f"{MODEL}_decoder.h5", models / f"{prefix}_decoder.h5")
        (models / f"{prefix}_params.json").write_text(json.dumps({"dataset": dataset}))
    line = _error(capsys, run_script("mnist_generate.py", "--model", models, "--no-prompt"))
    assert line == (f"error: --model {models}: 2 mnist models there (ld_2_id_32_e_1, ld_2_id_32_e_2) and none is "
                    f"the one the params name (ld_2_id_512_e_60); pick one: --model {models / 'ld_2_id_32_e_1'}")
    # the one the params name wins
    code = run_script("mnist_generate.py", "--model", models, "--intermediate-dim", "32", "--epochs", "1",
                      "--data-dir", data_dir, "--results-dir", tmp_path / "r2", "--no-prompt", "--grid", "2")
    assert code == 0 and (tmp_path / "r2" / f"{MODEL}_random_normal.png").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    line = _error(capsys, run_script("mnist_generate.py", "--model", empty, "--no-prompt"))
    assert line == (f"error: --model {empty}: no mnist model in this directory (no …_decoder.h5 or "
                    "…_generator.h5); "
                    "pass the directory that holds it, or a model's path")
