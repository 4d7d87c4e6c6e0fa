"""The live explorer: real matplotlib events on the Agg backend move z and the decoded image exactly as they
should; without a display it is a one-line error; under Xvfb a real window opens and is not blank."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from matplotlib.backend_bases import MouseEvent

from conftest import ROOT, run_script
from explorer_fixtures import Opened
from vaelab.explore import explorer
from vaelab.core.errors import UserError


def fake_decode(z):
    """A 2 x d grey image whose pixel j is (z[j] + 10) / 20: the image says exactly which z was decoded."""
    z = np.asarray(z, dtype=np.float64)
    return np.repeat(((z + 10.0) / 20.0)[:, None, :, None], 2, axis=1)


def shown_z(ex) -> np.ndarray:
    """The z the image on screen was decoded from (inverting :func:`fake_decode`)."""
    return np.asarray(ex.image.get_array())[0] * 20.0 - 10.0


def mouse(ex, ax, kind: str, x: float, y: float, button: int = 1) -> None:
    """Send a real matplotlib mouse event at data coordinates (x, y) of ``ax``."""
    px, py = ax.transData.transform((x, y))
    MouseEvent(kind, ex.fig.canvas, px, py, button=button)._process()


def press_button(ex, button) -> None:
    """A click (press and release) in the middle of a widget Button."""
    ax = button.ax
    for kind in ("button_press_event", "button_release_event"):
        px, py = ax.transAxes.transform((0.5, 0.5))
        MouseEvent(kind, ex.fig.canvas, px, py, button=1)._process()


def scatter(dim: int, n: int = 200, seed: int = 0) -> explorer.Scatter:
    rng = np.random.default_rng(seed)
    return explorer.Scatter(rng.standard_normal((n, dim)), rng.integers(0, 10, n), [str(c) for c in range(10)])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def test_click_and_drag_on_the_scatter_set_z0_z1_sliders_and_image():
    ex = explorer.Explorer(fake_decode, 2, scatter=scatter(2), min_interval=0)
    assert ex.decodes == 1 and np.allclose(shown_z(ex), [0, 0])
    mouse(ex, ex.scatter_ax, "button_press_event", 1.5, -0.5)
    np.testing.assert_allclose(ex.z, [1.5, -0.5], atol=1e-9)
    np.testing.assert_allclose(shown_z(ex), [1.5, -0.5], atol=1e-6)
    assert [s.val for s in ex.sliders] == pytest.approx([1.5, -0.5])
    assert ex.marker.get_xdata()[0] == pytest.approx(1.5) and ex.marker.get_ydata()[0] == pytest.approx(-0.5)
    mouse(ex, ex.scatter_ax, "motion_notify_event", 0.25, 0.75)  # drag
    np.testing.assert_allclose(shown_z(ex), [0.25, 0.75], atol=1e-6)
    mouse(ex, ex.scatter_ax, "button_release_event", 0.25, 0.75)
    decodes = ex.decodes
    assert decodes == 3  # the first image, the press, one motion: one vector each
    mouse(ex, ex.scatter_ax, "motion_notify_event", -2.0, -2.0)  # moving without a button: nothing
    mouse(ex, ex.scatter_ax, "button_press_event", -2.0, -2.0, button=3)  # right button: nothing
    mouse(ex, ex.image_ax, "button_press_event", 0.5, 0.5)  # a click on the image: nothing
    assert ex.decodes == decodes and np.allclose(ex.z, [0.25, 0.75])


def test_a_fast_drag_decodes_at_most_once_per_interval_and_the_release_position_last():
    now = [100.0]
    ex = explorer.Explorer(fake_decode, 2, scatter=scatter(2), min_interval=0.05, clock=lambda: now[0])
    mouse(ex, ex.scatter_ax, "button_press_event", 0.0, 1.0)
    assert ex.decodes == 2
    for x in (0.1, 0.2, 0.3):  # three motions within the interval: none decoded
        mouse(ex, ex.scatter_ax, "motion_notify_event", x, 1.0)
    assert ex.decodes == 2 and np.allclose(shown_z(ex), [0.0, 1.0], atol=1e-6)
    now[0] += 0.06
    mouse(ex, ex.scatter_ax, "motion_notify_event", 0.4, 1.0)
    assert ex.decodes == 3 and np.allclose(shown_z(ex), [0.4, 1.0], atol=1e-6)
    mouse(ex, ex.scatter_ax, "motion_notify_event", 0.5, 1.0)  # too soon again
    mouse(ex, ex.scatter_ax, "button_release_event", 0.5, 1.0)
    assert ex.decodes == 4 and np.allclose(shown_z(ex), [0.5, 1.0], atol=1e-6)


def test_each_slider_moves_one_dimension_with_one_decode():
    ex = explorer.Explorer(fake_decode, 5)
    assert len(ex.sliders) == 5 and ex.scatter_ax is None
    ex.sliders[3].set_val(-1.25)
    np.testing.assert_allclose(ex.z, [0, 0, 0, -1.25, 0])
    np.testing.assert_allclose(shown_z(ex), ex.z, atol=1e-6)
    assert ex.decodes == 2
    # a real click on slider z[1] at the value 2.0
    mouse(ex, ex.sliders[1].ax, "button_press_event", 2.0, 0.5)
    mouse(ex, ex.sliders[1].ax, "button_release_event", 2.0, 0.5)
    np.testing.assert_allclose(ex.z, [0, 2.0, 0, -1.25, 0], atol=1e-9)
    np.testing.assert_allclose(shown_z(ex), ex.z, atol=1e-6)
    assert ex.decodes == 3


def test_random_draws_the_whole_vector_from_a_seeded_normal_and_zero_resets():
    ex = explorer.Explorer(fake_decode, 20, seed=7)
    assert len(ex.sliders) == explorer.MAX_SLIDERS == 16
    press_button(ex, ex.random_button)
    expected = np.random.default_rng(7).standard_normal(20)
    np.testing.assert_allclose(ex.z, expected)
    np.testing.assert_allclose(shown_z(ex), expected, atol=1e-5)
    assert [s.val for s in ex.sliders] == pytest.approx(expected[:16])
    assert ex.decodes == 2  # 16 sliders moved, one decode
    press_button(ex, ex.random_button)
    rng = np.random.default_rng(7)
    rng.standard_normal(20)
    np.testing.assert_allclose(ex.z, rng.standard_normal(20))
    press_button(ex, ex.zero_button)
    assert np.all(ex.z == 0) and np.allclose(shown_z(ex), 0, atol=1e-6) and ex.decodes == 4


def test_3d_scatter_click_keeps_z2_and_the_slice_follows_the_z2_slider():
    sc = scatter(3, n=500)
    ex = explorer.Explorer(fake_decode, 3, scatter=sc, min_interval=0)
    ex.sliders[2].set_val(1.0)
    mouse(ex, ex.scatter_ax, "button_press_event", -0.5, 0.5)
    np.testing.assert_allclose(ex.z, [-0.5, 0.5, 1.0], atol=1e-9)
    np.testing.assert_allclose(shown_z(ex), [-0.5, 0.5, 1.0], atol=1e-6)
    near = np.abs(sc.z[:, 2] - 1.0) <= 0.25 * np.std(sc.z[:, 2])
    assert 10 < near.sum() < 400
    np.testing.assert_array_equal(ex.points.get_alpha(), np.where(near, 0.9, 0.06))


def test_slider_ranges_hold_the_scatter():
    sc = scatter(2)
    sc.z[:, 0] *= 3.0  # codes out to about +-8 along z[0]
    ex = explorer.Explorer(fake_decode, 2, scatter=sc)
    lo, hi = np.percentile(sc.z[:, 0], [0.5, 99.5])
    assert ex.sliders[0].valmin < lo and ex.sliders[0].valmax > hi and ex.sliders[0].valmax > 3
    assert (ex.sliders[1].valmin, ex.sliders[1].valmax) == (-3.0, 3.0)
    assert ex.scatter_ax.get_xlim() == (ex.sliders[0].valmin, ex.sliders[0].valmax)


def test_morph_sliders_set_z_to_the_morph_of_the_two_classes():
    means = np.arange(30, dtype=float).reshape(10, 3) / 10.0
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    morph = explorer.Morph(lambda a, b, alpha: means[a] + alpha * means[b], names, alpha_max=2.0, a=3, b=1)
    ex = explorer.Explorer(fake_decode, 3, scatter=scatter(3), morph=morph)
    np.testing.assert_allclose(ex.z, means[3])
    class_a, class_b, alpha = ex.morph_sliders
    assert class_a.valtext.get_text() == "Dress" and class_b.valtext.get_text() == "Trouser"
    alpha.set_val(1.5)
    np.testing.assert_allclose(ex.z, means[3] + 1.5 * means[1])
    np.testing.assert_allclose(shown_z(ex), ex.z, atol=1e-6)
    class_b.set_val(8)
    np.testing.assert_allclose(ex.z, means[3] + 1.5 * means[8])
    assert class_b.valtext.get_text() == "Bag"
    assert [s.val for s in ex.sliders] == pytest.approx(ex.z)  # z = (4.5, 4.75, 5.0), beyond [-3, 3]:
    assert [(s.valmin, s.valmax) for s in ex.sliders] == [(-5, 5), (-6, 6), (-6, 6)]  # ceil(|z| + 0.5)
    assert ex.image_ax.get_xlabel() == "mean(Dress) + α · mean(Bag), α = 1.50"


def test_colour_images_are_shown_in_colour():
    def rgb(z):
        return np.broadcast_to(np.array([1.0, 0.5, 0.0]), (len(z), 4, 4, 3))

    ex = explorer.Explorer(rgb, 2)
    assert ex.image.get_array().shape == (4, 4, 3)


def test_without_a_display_it_is_one_line(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")  # conftest unsets DISPLAY and WAYLAND_DISPLAY
    with pytest.raises(UserError) as e:
        explorer.use_gui_backend()
    assert str(e.value) == ("--explore opens a window, but there is no display (DISPLAY and WAYLAND_DISPLAY are "
                            "not set); use --explore web for the explorer in a browser, run it on a desktop or "
                            "over ssh -X, or drop --explore")


def test_an_agg_only_backend_is_one_line(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":12345")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    with pytest.raises(UserError) as e:
        explorer.use_gui_backend()
    assert str(e.value).startswith("--explore needs a window, but MPLBACKEND=Agg draws none;")


@pytest.mark.parametrize("script", ["mnist_2d_latent_space_and_generate.py", "mnist_3d_latent_space_and_generate.py",
                                    "mnist_generate.py", "cifar10_generate.py", "caltech101_generate.py",
                                    "fashion_mnist_morph.py"])
def test_explore_without_a_display_stops_before_loading_anything(script, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    code = run_script(script, "--explore", "--models-dir", tmp_path / "no-models", "--results-dir", tmp_path / "r")
    err = capsys.readouterr().err
    assert code == 2
    assert err == ("error: --explore opens a window, but there is no display (DISPLAY and WAYLAND_DISPLAY are not "
                   "set); use --explore web for the explorer in a browser, run it on a desktop or over ssh -X, "
                   "or drop --explore\n")


def test_the_2d_script_hands_the_decoder_and_the_test_codes_to_the_explorer(trained_mnist, tmp_path, monkeypatch):
    from vaelab.config import params as params_mod
    from vaelab.data.datasets import load_mnist
    from vaelab.config.experiments import MNIST
    from vaelab.api.trained import load_trained

    opened = Opened(monkeypatch)
    models, data, prefix = trained_mnist
    code = run_script("mnist_2d_latent_space_and_generate.py", "--explore", "--models-dir", models, "--data-dir", data,
                      "--results-dir", tmp_path, "--intermediate-dim", "32", "--epochs", "1", "--n", "3",
                      stdin="0 0\nq\n")
    assert code == 0 and len(opened.calls) == 1
    call = opened.calls[0]
    assert call["latent_dim"] == 2 and call["title"] == prefix and call["morph"] is None
    trained = load_trained(MNIST, params_mod.MnistParams(intermediate_dim=32, epochs=1), models)
    test = load_mnist(data)
    np.testing.assert_allclose(call["scatter"].z, trained.encode(test.x_test), atol=1e-6)
    np.testing.assert_array_equal(call["scatter"].labels, test.y_test)
    assert list(call["scatter"].class_names) == [str(d) for d in range(10)]
    z = np.array([[0.5, -1.0]])
    image = call["decode"](z)
    assert image.shape == (1, 28, 28, 1)
    np.testing.assert_allclose(image, trained.decode(z), atol=1e-6)
    assert not (tmp_path / f"{prefix}_z_0_0.png").exists()  # the explorer replaces the prompt
    assert (tmp_path / f"{prefix}_latent.png").exists()  # and comes after the usual figures


# --- a real window under Xvfb ---------------------------------------------------------------------


def read_xwd(data: bytes) -> np.ndarray:
    """An X window dump (``xwd -root``, ZPixmap, 24/32 bits per pixel) as an (H, W, 3) uint8 array."""
    header = np.frombuffer(data[:100], dtype=">u4")
    header_size, version, pixmap_format = int(header[0]), int(header[1]), int(header[2])
    width, height, byte_order, bpp, bytes_per_line = (int(header[i]) for i in (4, 5, 7, 11, 12))
    masks = [int(header[i]) for i in (14, 15, 16)]
    ncolors = int(header[19])
    assert version == 7 and pixmap_format == 2 and bpp == 32, (version, pixmap_format, bpp)
    start = header_size + 12 * ncolors
    rows = np.frombuffer(data[start:start + height * bytes_per_line], dtype=np.uint8).reshape(height, bytes_per_line)
    pixels = rows[:, :width * 4].copy().view("<u4" if byte_order == 0 else ">u4").reshape(height, width)
    channels = []
    for mask in masks:
        shift = (mask & -mask).bit_length() - 1
        channels.append(((pixels & mask) >> shift).astype(np.uint8))
    return np.stack(channels, axis=-1)


@pytest.fixture
def xvfb():
    """A virtual X display (``Xvfb``) for one test; skipped where Xvfb or xwd is not installed."""
    if not (shutil.which("Xvfb") and shutil.which("xwd")):
        pytest.skip("Xvfb and xwd are not installed (Debian: apt-get install xvfb x11-apps; .ci/run does it)")
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as fh:
            number = fh.readline().strip()
        assert number.isdigit(), "Xvfb did not report its display number"
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_real_explorer_window_under_xvfb_is_not_blank(xvfb, trained_mnist, tmp_path):
    """mnist_2d_latent_space_and_generate.py --explore opens a real window (the default GUI backend of this
    Python, TkAgg here); its screenshot shows the scatter and a decoded digit, not an empty screen."""
    from vaelab.core import artifacts
    from vaelab.models import saving

    trained_models, data, prefix = trained_mnist
    models = tmp_path / "models"  # the trained model, its decoder's output layer made random: a one-epoch
    shutil.copytree(trained_models, models)  # model decodes a flat grey, which would hide a blank image region
    decoder = saving.load_model(models / f"{prefix}_decoder.h5")
    out = decoder.get_layer("decoder").get_layer("x_hat")  # the decoder's last layer, before the sigmoid
    kernel, bias = out.get_weights()
    rng = np.random.default_rng(0)
    out.set_weights([rng.standard_normal(kernel.shape).astype("float32"),
                                    rng.standard_normal(bias.shape).astype("float32")])
    artifacts.save_model(decoder, models / f"{prefix}_decoder.h5")
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "WAYLAND_DISPLAY")}
    env.update(DISPLAY=xvfb, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, str(ROOT / "mnist_2d_latent_space_and_generate.py"), "--explore",
                             "--models-dir", str(models), "--data-dir", str(data), "--results-dir", str(tmp_path),
                             "--intermediate-dim", "32", "--epochs", "1", "--batch-size", "128", "--n", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            if line.startswith("explorer:") or time.monotonic() > deadline:
                break
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(2.0)  # let Tk map and draw the window
        dump = subprocess.run(["xwd", "-root", "-silent", "-display", xvfb], capture_output=True, timeout=30,
                              check=True).stdout
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    screen = read_xwd(dump)
    from PIL import Image

    Image.fromarray(screen).save(tmp_path / "explorer_screenshot.png")
    assert screen.shape == (1024, 1280, 3)
    grey = screen.astype(float).mean(axis=-1)
    assert grey.std() > 20  # a blank (black or white) screen has 0
    window = np.argwhere(grey > 0)  # the screen's background is black; the window is placed at its top left
    (top, left), (bottom, right) = window.min(axis=0), window.max(axis=0)
    assert right - left > 900 and bottom - top > 500  # the 11-inch figure at 100 dpi, with its toolbar
    # the decoded image: the right part of the figure's top half holds grey levels, not one colour
    img = grey[top + 60:top + (bottom - top) // 2, left + int(0.62 * (right - left)):left + int(0.94 * (right - left))]
    assert img.std() > 10 and len(np.unique(img.round())) > 20


def test_no_gui_toolkit_is_one_line(monkeypatch):
    import matplotlib.pyplot as plt

    def unavailable(name):
        raise ImportError(f"Failed to import any of the required Qt binding modules for {name}")

    monkeypatch.setenv("DISPLAY", ":12345")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.setattr(plt, "switch_backend", unavailable)
    with pytest.raises(UserError) as e:
        explorer.use_gui_backend()
    assert str(e.value) == ("--explore needs a GUI toolkit for matplotlib and found none (tried macosx, qtagg, "
                            "gtk4agg, gtk3agg, tkagg, wxagg); install Tk (e.g. apt-get install python3-tk) or "
                            "pip install PyQt6")


def test_a_conditional_model_gets_a_class_slider():
    """The class slider decodes the same z as another class; the slider shows the class's name."""
    calls = []

    def decode(z, labels):
        calls.append(list(labels))
        return np.full((len(z), 4, 4, 1), 0.1 + 0.2 * labels[0], np.float32)

    ex = explorer.Explorer(decode, 2, classes=["zero", "one", "two"])
    assert calls == [[0]] and ex.class_slider.valtext.get_text() == "zero"
    ex.class_slider.set_val(2)
    assert calls[-1] == [2] and ex.label == 2 and ex.class_slider.valtext.get_text() == "two"
    np.testing.assert_allclose(ex.image.get_array(), 0.5)
    ex.set_z([1.0, -1.0])
    assert calls[-1] == [2]
