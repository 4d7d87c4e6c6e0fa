"""The TensorBoard log on every backend, read back from its event files: tags, steps, values and image sizes."""

import io
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import ROOT, run_script
from PIL import Image

from vaelab.explore import summaries
from vaelab.training import tensorboard

# 256 training and test images in 2 batches of 128; the KL weight warms up over the first epoch
TINY = ["--epochs", "2", "--intermediate-dim", "16", "--batch-size", "128", "--limit", "256", "--kl-warmup", "1",
        "--tensorboard-images-every", "1"]
PREFIX = "ld_2_id_16_e_2_warm1"
SCALARS = {"loss", "reconstruction_loss", "kl_loss", "kl_weight", "val_loss", "val_reconstruction_loss",
           "val_kl_loss", "val_kl_weight", "learning_rate"}


def read_log(logdir):
    """``{"scalars": {tag: [(step, value)]}, "images": {tag: [(step, width, height, png)]}}`` of every event file
    in ``logdir``, as TensorBoard's own reader sees them."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    acc = ea.EventAccumulator(str(logdir), size_guidance={ea.SCALARS: 0, ea.IMAGES: 0})
    acc.Reload()
    return {"scalars": {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]},
            "images": {t: [(e.step, e.width, e.height, e.encoded_image_string) for e in acc.Images(t)]
                       for t in acc.Tags()["images"]}}


def png_array(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


# --- the writer and the pictures, without a model --------------------------------------------------


def test_the_writer_round_trips_scalars_and_images(tmp_path):
    w = tensorboard.EventWriter(tmp_path)
    w.scalar("loss", 1.5, 1)
    w.scalar("loss", 1.25, 2)
    gray = np.linspace(0, 1, 35).reshape(5, 7)
    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    w.image("gray", gray, 2)
    w.image("rgb", rgb, 3)
    w.close()
    log = read_log(tmp_path)
    assert log["scalars"] == {"loss": [(1, 1.5), (2, 1.25)]}
    (step, width, height, png), = log["images"]["gray"]
    assert (step, width, height) == (2, 7, 5)
    np.testing.assert_array_equal(png_array(png), np.round(gray * 255).astype(np.uint8))
    (step, width, height, png), = log["images"]["rgb"]
    assert (step, width, height) == (3, 6, 4)
    np.testing.assert_array_equal(png_array(png), rgb)
    assert w.path.name.startswith("events.out.tfevents.")


def test_the_writer_imports_no_tensorflow(tmp_path):
    code = ("import sys; import numpy as np; from vaelab.training.tensorboard import EventWriter; "
            f"w = EventWriter({str(tmp_path)!r}); w.scalar('a', 1.0, 1); w.image('b', np.zeros((3, 3)), 1); "
            "w.close(); print(sorted(m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_images_come_every_n_epochs_and_after_the_last():
    assert [s for s in range(1, 13) if tensorboard.images_due(s, 5, 12)] == [5, 10, 12]
    assert [s for s in range(1, 4) if tensorboard.images_due(s, 1, 3)] == [1, 2, 3]
    assert not any(tensorboard.images_due(s, 0, 12) for s in range(1, 13))


def test_the_sample_latents_depend_on_the_seed_alone():
    a, b = summaries.fixed_latents(3, 2), summaries.fixed_latents(3, 2)
    assert a.shape == (64, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)  # a resumed run (same params, same seed) decodes the same vectors
    assert not np.array_equal(a, summaries.fixed_latents(4, 2))
    assert abs(float(a.mean())) < 0.5 and 0.6 < float(a.std()) < 1.4


def test_reconstruction_grid_puts_each_row_above_its_reconstruction():
    x = np.stack([np.full((2, 3, 1), i / 100.0) for i in range(16)])
    grid = summaries.reconstruction_grid(x, 1.0 - x, cols=8)
    assert grid.shape == (4 * 2, 8 * 3, 1)
    assert grid[0, 0, 0] == pytest.approx(0.0) and grid[2, 0, 0] == pytest.approx(1.0)  # image 0, then 1 - it
    assert grid[4, 3, 0] == pytest.approx(0.09) and grid[6, 3, 0] == pytest.approx(0.91)  # image 9 (row 2, col 1)


# --- a run's log -------------------------------------------------------------------------------------


def check_run_log(models, prefix=PREFIX, epochs=2):
    """The log of a tiny MNIST run (TINY): each scalar Keras reports and the learning rate at steps 1..epochs,
    equal to the history; the three pictures at each step, of their sizes."""
    log = read_log(models / "tensorboard" / prefix)
    history = json.loads((models / f"{prefix}_history.json").read_text())
    steps = list(range(1, epochs + 1))
    assert set(log["scalars"]) == SCALARS
    for tag, events in log["scalars"].items():
        assert [s for s, _ in events] == steps, tag
        expected = [1e-3] * epochs if tag == "learning_rate" else history[tag]
        np.testing.assert_allclose([v for _, v in events], expected, rtol=1e-6, err_msg=tag)
    assert log["scalars"]["kl_weight"][-1][1] == 1.0 and log["scalars"]["kl_weight"][0][1] < 1.0  # the warm-up
    sizes = {tag: [(s, w, h) for s, w, h, _ in events] for tag, events in log["images"].items()}
    assert sizes == {"samples": [(s, 8 * 28, 8 * 28) for s in steps],  # 8x8 samples
                     "reconstructions": [(s, 8 * 28, 8 * 28) for s in steps],  # 4 rows of 8, each above its own
                     "manifold": [(s, 15 * 28, 15 * 28) for s in steps]}  # latent 2: the 15x15 manifold
    first, last = (png_array(log["images"]["samples"][i][3]) for i in (0, -1))
    assert first.shape == (224, 224) and not np.array_equal(first, last)  # the same latents, a trained decoder
    return log


def test_a_run_logs_its_curves_and_pictures(mnist_dir, tmp_path):
    assert run_script("mnist_train.py", "--data-dir", mnist_dir, "--models-dir", tmp_path / "m",
                      "--results-dir", tmp_path / "r", *TINY) == 0
    check_run_log(tmp_path / "m")


@pytest.mark.parametrize("backend", ["jax", "torch", "tensorflow"])
def test_a_run_logs_the_same_on(backend, mnist_dir, tmp_path):
    """The log needs no TensorFlow backend: the same run in a process of each other backend."""
    if backend == keras.backend.backend():
        pytest.skip("the test above runs on this session's backend")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(ROOT / "mnist_train.py"), "--data-dir", str(mnist_dir),
                           "--models-dir", str(tmp_path / "m"), "--results-dir", str(tmp_path / "r"), *TINY],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_run_log(tmp_path / "m")


def test_no_tensorboard_writes_no_log(mnist_dir, tmp_path):
    assert run_script("mnist_train.py", "--data-dir", mnist_dir, "--models-dir", tmp_path / "m",
                      "--results-dir", tmp_path / "r", *TINY[:8], "--epochs", "1", "--no-tensorboard") == 0
    assert (tmp_path / "m" / "ld_2_id_16_e_1_history.json").exists()
    assert not (tmp_path / "m" / "tensorboard").exists()


HIER = ["--architecture", "dense_hierarchical", "--lower-latent-dims", "4", "--intermediate-dim", "16",
        "--epochs", "2", "--batch-size", "128", "--limit", "256", "--seed", "0"]


def test_a_hierarchical_run_logs_each_layers_kl_and_trains_the_same_without_images(mnist_dir, tmp_path):
    """Per-layer KL at every image step; drawing the pictures (which reseeds the decoder's generator) leaves the
    training as it is: the same history with images every epoch and with none."""
    for name, every in (("a", "1"), ("b", "0")):
        assert run_script("mnist_train.py", "--data-dir", mnist_dir, "--models-dir", tmp_path / name,
                          "--results-dir", tmp_path / "r", *HIER, "--tensorboard-images-every", every) == 0
    (logdir,) = (tmp_path / "a" / "tensorboard").iterdir()
    a, b = read_log(logdir), read_log(tmp_path / "b" / "tensorboard" / logdir.name)
    layers = {"kl_layer/global", "kl_layer/lower_1"}
    assert layers <= set(a["scalars"]) and not layers & set(b["scalars"])
    for tag in layers:
        steps, values = zip(*a["scalars"][tag])
        assert steps == (1, 2) and all(np.isfinite(values)) and min(values) >= 0
    assert set(a["images"]) == {"samples", "reconstructions", "manifold"} and b["images"] == {}
    for tag in set(b["scalars"]):
        assert a["scalars"][tag] == b["scalars"][tag], tag
    history = [json.loads(p.read_text()) for p in (next((tmp_path / n).glob("*_history.json")) for n in "ab")]
    for h in history:
        h.pop("epoch_seconds")  # the one number two runs do not share
    assert history[0] == history[1]


def test_a_resumed_run_adds_a_file_whose_steps_continue_with_the_same_pictures(mnist_dir, tmp_path, monkeypatch):
    """Ctrl-C in epoch 2 of 3, then --resume: the first file has epoch 1 only (not the abandoned epoch), the
    second epochs 2 and 3, and the pictures equal those of the uninterrupted run (the same fixed latents)."""
    import signal

    from vaelab.training import callbacks
    from vaelab.training import loop as training

    monkeypatch.setattr(training, "FAST_MAX_STEPS", 1)  # one step per call, so the signal lands mid-epoch

    class Interrupter(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            if self.epoch == 1 and batch == 0:  # the epoch has 2 batches: the first one runs, then it stops
                signal.raise_signal(signal.SIGINT)

    def args(models):
        return ["--data-dir", mnist_dir, "--models-dir", models, "--results-dir", tmp_path / "r", *TINY,
                "--epochs", "3"]

    prefix = "ld_2_id_16_e_3_warm1"
    assert run_script("mnist_train.py", *args(tmp_path / "full")) == 0
    real = callbacks.run_callbacks
    with monkeypatch.context() as m:
        m.setattr(callbacks, "run_callbacks", lambda *a, **k: [*real(*a, **k), Interrupter()])
        assert run_script("mnist_train.py", *args(tmp_path / "parts")) == 130
    assert run_script("mnist_train.py", *args(tmp_path / "parts"), "--resume") == 0
    logdir = tmp_path / "parts" / "tensorboard" / prefix
    first, second = (read_log(f) for f in sorted(logdir.glob("events.out.tfevents.*")))
    assert [s for s, _ in first["scalars"]["loss"]] == [1] and [s for s, *_ in first["images"]["samples"]] == [1]
    assert [s for s, _ in second["scalars"]["loss"]] == [2, 3]
    full, parts = read_log(tmp_path / "full" / "tensorboard" / prefix), read_log(logdir)
    assert set(parts["scalars"]) == SCALARS and parts["scalars"]["loss"] == full["scalars"]["loss"]
    for tag in ("samples", "reconstructions", "manifold"):
        assert [e[:3] for e in parts["images"][tag]] == [e[:3] for e in full["images"][tag]], tag
        for a, b in zip(parts["images"][tag], full["images"][tag], strict=True):
            np.testing.assert_array_equal(png_array(a[3]), png_array(b[3]), err_msg=f"{tag} at step {a[0]}")


def test_a_conv_hierarchical_run_logs_colour_pictures_and_the_layers_kl_it_reports(tmp_path, capsys):
    """CIFAR-10's 32x32 colour images: RGB grids (no manifold for latent 8), and each stochastic layer's KL
    equal to what the run prints for the test set after its last epoch (the same images, seed and weights)."""
    import re

    from conv_fixtures import write_cifar_dir

    write_cifar_dir(tmp_path / "data")  # 32 test images: all of them are the KL's
    assert run_script("cifar10_train.py", "--data-dir", tmp_path / "data", "--models-dir", tmp_path / "m",
                      "--results-dir", tmp_path / "r", "--architecture", "hierarchical", "--filters", "4",
                      "--blocks", "0", "--latent-channels", "2", "--latent-scales", "8", "--latent-dim", "8",
                      "--epochs", "1", "--batch-size", "16", "--tensorboard-images-every", "1",
                      "--validate-on", "test") == 0  # all 32 validate: enough for the reconstructions
    printed = dict(re.findall(r"test: KL, (global|lower 1) latent ([\d.]+) nats", capsys.readouterr().out))
    (logdir,) = (tmp_path / "m" / "tensorboard").iterdir()
    log = read_log(logdir)
    assert {tag: [(s, w, h) for s, w, h, _ in e] for tag, e in log["images"].items()} == {
        "samples": [(1, 256, 256)], "reconstructions": [(1, 256, 256)]}
    assert png_array(log["images"]["samples"][0][3]).shape == (256, 256, 3)
    for layer in ("global", "lower 1"):
        ((step, value),) = log["scalars"][f"kl_layer/{layer.replace(' ', '_')}"]
        assert step == 1 and value == pytest.approx(float(printed[layer]), abs=0.006)
