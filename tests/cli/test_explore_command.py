"""``--explore [window|web]`` on the command line and ``vaelab explore DATASET``: which explorer opens, with what,
and the one-line errors (no display for a window, a port in use, a bad mode or port)."""

from __future__ import annotations

import socket
import sys

import numpy as np
import pytest

from vaelab.cli import options as cli
from vaelab.cli.main import main
from vaelab.explore import explorer, webexplorer


def explore_parser():
    p = cli.OneLineErrorParser(prog="x")
    cli.add_explore_option(p)
    return p


def test_bare_explore_is_the_window_and_explore_web_needs_no_display(monkeypatch, capsys):
    monkeypatch.setattr(sys, "platform", "linux")  # conftest unsets DISPLAY and WAYLAND_DISPLAY
    args = explore_parser().parse_args(["--explore", "web", "--port", "0"])
    assert (args.explore, args.host, args.port) == ("web", "127.0.0.1", 0)
    assert explore_parser().parse_args([]).explore is False
    monkeypatch.setenv("DISPLAY", ":0")
    args = explore_parser().parse_args(["--explore"])
    assert (args.explore, args.port) == ("window", webexplorer.DEFAULT_PORT)
    for argv, message in ((["--explore", "browser"], "error: --explore takes window or web, got 'browser'; see x --help"),
                          (["--port", "70000"], "error: argument --port: a port is 0-65535, got 70000; see x --help")):
        with pytest.raises(SystemExit) as e:
            explore_parser().parse_args(argv)
        assert e.value.code == 2 and capsys.readouterr().err.strip() == message


class Served:
    """Stands in for :func:`vaelab.explore.webexplorer.serve` (and the window): records what it is handed."""

    def __init__(self, monkeypatch):
        self.calls = []
        monkeypatch.setattr(webexplorer, "serve", lambda *a, **k: self.calls.append(("web", a, k)))
        monkeypatch.setattr(explorer, "open_explorer", lambda *a, **k: self.calls.append(("window", a, k)))


def vaelab(*argv) -> int:
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    return e.value.code


def test_vaelab_explore_serves_the_web_page_where_there_is_no_display(trained_mnist, monkeypatch, capsys):
    from vaelab.api.trained import load_trained
    from vaelab.config import params as params_mod
    from vaelab.config.experiments import MNIST
    from vaelab.data.datasets import load_mnist

    monkeypatch.setattr(sys, "platform", "linux")
    served = Served(monkeypatch)
    models, data, prefix = trained_mnist
    assert vaelab("explore", "mnist", "--models-dir", models, "--model", prefix, "--data-dir", data,
                  "--port", "0") == 0
    assert capsys.readouterr().out.startswith("note: no display here; serving the web explorer instead "
                                              "(--window insists on a window)\n")
    ((kind, (decode, latent_dim), kw),) = served.calls
    assert kind == "web" and latent_dim == 2 and kw["title"] == prefix and (kw["host"], kw["port"]) == ("127.0.0.1", 0)
    trained = load_trained(MNIST, params_mod.MnistParams(intermediate_dim=32, epochs=1), models)
    np.testing.assert_allclose(kw["scatter"].z, trained.encode(load_mnist(data).x_test), atol=1e-6)
    z = np.array([[0.5, -1.0]])
    np.testing.assert_allclose(decode(z), trained.decode(z), atol=1e-6)
    assert kw["morph"] is None

    # --no-scatter reads no data (VAELAB_DATA_DIR is an empty folder here); an explicit --web prints no note
    assert vaelab("explore", "mnist", "--models-dir", models, "--model", prefix, "--web", "--no-scatter") == 0
    assert "note:" not in capsys.readouterr().out
    assert served.calls[-1][0] == "web" and served.calls[-1][2]["scatter"] is None

    monkeypatch.setenv("DISPLAY", ":0")
    assert vaelab("explore", "mnist", "--models-dir", models, "--model", prefix, "--no-scatter") == 0
    assert served.calls[-1][0] == "window" and served.calls[-1][1][1] == 2


def test_vaelab_explore_errors_are_one_line_and_come_before_loading(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "platform", "linux")
    assert vaelab("explore", "mnist", "--window", "--models-dir", tmp_path / "none") == 2
    assert capsys.readouterr().err.startswith("error: --explore opens a window, but there is no display")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert vaelab("explore", "mnist", "--web", "--port", port, "--models-dir", tmp_path / "none") == 2
    assert capsys.readouterr().err == (f"error: port {port} on 127.0.0.1 is in use (another explorer?); pass "
                                       "--port N, or --port 0 for any free one\n")
    assert vaelab("explore") == 2
    assert "error: vaelab explore needs a dataset first" in capsys.readouterr().err


def test_vaelab_explore_fashion_mnist_has_the_class_morph_over_the_test_means(tmp_path, monkeypatch):
    from conftest import ROOT
    from test_fashion import write_fashion_idx

    from vaelab.api.trained import load_trained
    from vaelab.config import params as params_mod
    from vaelab.config.experiments import FASHION_MNIST
    from vaelab.data.datasets import FASHION_CLASSES, load_fashion_mnist
    from vaelab.explore.latent import class_means

    served = Served(monkeypatch)
    data, _ = write_fashion_idx(tmp_path / "data", n_train=20, n_test=100)
    shipped, prefix = ROOT / "vaelab" / "pretrained", "fashion_mnist_ld_3_e_12"
    assert vaelab("explore", "fashion_mnist", "--web", "--models-dir", shipped, "--model", prefix,
                  "--data-dir", data, "--alpha-max", "1.5") == 0
    ((kind, (_, latent_dim), kw),) = served.calls
    morph = kw["morph"]
    assert kind == "web" and latent_dim == 3 and kw["scatter"].z.shape == (100, 3)
    assert (morph.a, morph.b, morph.alpha_max) == (0, 3, 1.5) and list(morph.class_names) == list(FASHION_CLASSES)
    trained = load_trained(FASHION_MNIST, params_mod.FashionMnistParams(), shipped, prefix)
    ds = load_fashion_mnist(data)
    means = class_means(trained.encode(ds.x_test), ds.y_test, 10)
    np.testing.assert_allclose(morph.fn(7, 9, 0.5), means[7] + 0.5 * means[9], atol=1e-5)
