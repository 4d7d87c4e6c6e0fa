"""The web explorer: its answers over real HTTP (a server on a free port in a thread), every bad request a 4xx
with a short message and the server alive after it, the page in a real headless chromium (a click on the scatter
shows the decoder's image for that point), and a generate script's ``--explore web`` that serves and stops."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

from vaelab.core.errors import UserError
from vaelab.explore import explorer, webexplorer

CHROMIUM = "/usr/bin/chromium"
NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def fake_decode(z):
    """A 2 x d grey image whose pixel j is (z[j] + 10) / 20: the image says which z was decoded."""
    z = np.asarray(z, dtype=np.float64)
    return np.repeat(((z + 10.0) / 20.0)[:, None, :, None], 2, axis=1)


def expected_pixels(decode, z) -> np.ndarray:
    """The uint8 pixels a PNG of ``decode``'s image of ``z`` must hold."""
    img = np.asarray(decode(np.asarray(z, dtype=np.float32)[None, :]))[0]
    return np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8)[..., 0]


def png_pixels(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def scatter(dim: int, n: int = 200, seed: int = 0) -> explorer.Scatter:
    rng = np.random.default_rng(seed)
    return explorer.Scatter(rng.standard_normal((n, dim)), rng.integers(0, 10, n), [str(c) for c in range(10)])


def _local(url, *a, **k):  # conftest turns urlopen off for the network; these requests stay on this machine
    return urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, *a, **k)


class Served:
    """A web explorer on 127.0.0.1 and a free port, served by a thread for one test."""

    def __init__(self, ex: webexplorer.WebExplorer):
        self.explorer = ex
        self.server = webexplorer.make_server(ex, "127.0.0.1", 0)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def get(self, path):
        return self.request(path)

    def post(self, path, body, raw: bool = False):
        return self.request(path, body if raw else json.dumps(body).encode())

    def request(self, path, data: bytes | None = None, method: str | None = None):
        """(status, answer): the JSON decoded, or the bytes when it is not JSON."""
        req = urllib.request.Request(self.url + path, data=data, method=method)
        try:
            with _local(req, timeout=10) as r:
                status, body, kind = r.status, r.read(), r.headers["Content-Type"]
        except urllib.error.HTTPError as e:
            status, body, kind = e.code, e.read(), e.headers["Content-Type"]
        return status, (json.loads(body) if kind == "application/json" else body)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def served():
    made = []

    def make(*args, **kwargs):
        made.append(Served(webexplorer.WebExplorer(*args, **kwargs)))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_info_holds_the_sliders_scatter_and_morph(served):
    sc = scatter(3)
    means = np.arange(30, dtype=float).reshape(10, 3) / 10.0
    morph = explorer.Morph(lambda a, b, alpha: means[a] + alpha * means[b], NAMES, alpha_max=2.0, a=3, b=1)
    s = served(fake_decode, 3, scatter=sc, morph=morph, title="m", seed=0)
    status, info = s.get("/api/info")
    assert status == 200
    assert info["latent_dim"] == 3 and info["title"] == "m" and info["classes"] is None
    np.testing.assert_allclose(info["ranges"], explorer.slider_ranges(3, sc), atol=1e-4)  # one source of truth
    got = info["scatter"]
    assert got["dims"] == 3 and got["labels"] == sc.labels.tolist() and got["class_names"] == sc.class_names
    np.testing.assert_allclose(np.reshape(got["points"], (-1, 3)), sc.z, atol=5e-4)
    assert got["slice_half_width"] == pytest.approx(explorer.slice_half_width(sc))
    assert info["morph"] == {"class_names": NAMES, "alpha_max": 2.0, "a": 3, "b": 1, "alpha": 0.0,
                             "formula": "mean({a}) + α · mean({b})"}
    np.testing.assert_allclose(info["start"], means[3])  # the morph's first point, as in the window
    status, page = s.get("/")
    assert status == 200 and b'<canvas id="scatter"' in page and b"/api/decode" in page


def test_decode_answers_the_decoders_image_as_png(served):
    s = served(fake_decode, 4)
    z = [1.5, -2.0, 0.25, 9.0]
    status, answer = s.post("/api/decode", {"z": z})
    assert status == 200 and answer["z"] == z
    np.testing.assert_array_equal(png_pixels(answer["png"]), expected_pixels(fake_decode, z))
    status, png = s.post("/api/decode?format=png", {"z": z})
    assert status == 200 and png.startswith(b"\x89PNG")
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), expected_pixels(fake_decode, z))
    assert s.explorer.decodes == 2


def test_colour_images_come_back_in_colour(served):
    s = served(lambda z: np.broadcast_to(np.array([1.0, 0.5, 0.0]), (len(z), 3, 5, 3)), 2)
    pixels = png_pixels(s.post("/api/decode", {"z": [0, 0]})[1]["png"])
    assert pixels.shape == (3, 5, 3) and pixels[0, 0].tolist() == [255, 128, 0]


def test_random_draws_from_the_seeded_normal_and_morph_follows_the_classes(served):
    means = np.arange(30, dtype=float).reshape(10, 3) / 10.0
    morph = explorer.Morph(lambda a, b, alpha: means[a] + alpha * means[b], NAMES, alpha_max=2.0)
    s = served(fake_decode, 3, morph=morph, seed=7)
    rng = np.random.default_rng(7)
    for _ in range(2):
        status, answer = s.get("/api/random")
        expected = rng.standard_normal(3)
        assert status == 200
        np.testing.assert_allclose(answer["z"], expected)
        np.testing.assert_array_equal(png_pixels(answer["png"]), expected_pixels(fake_decode, expected))
    status, answer = s.post("/api/morph", {"a": 3, "b": 8, "alpha": 1.5})
    assert status == 200
    np.testing.assert_allclose(answer["z"], means[3] + 1.5 * means[8])
    np.testing.assert_array_equal(png_pixels(answer["png"]), expected_pixels(fake_decode, answer["z"]))


BAD = [  # (path, raw body, status, message)
    ("/api/decode", b"{not json", 400, "the body is not JSON"),
    ("/api/decode", b"\xff\xfe", 400, "the body is not JSON"),
    ("/api/decode", b"[1, 2]", 400, "the body must be a JSON object"),
    ("/api/decode", b'{"x": [1, 2]}', 400, 'give "z": a list of numbers'),
    ("/api/decode", b'{"z": [1]}', 400, '"z" must have 2 numbers, got 1'),
    ("/api/decode", b'{"z": [1, 2, 3]}', 400, '"z" must have 2 numbers, got 3'),
    ("/api/decode", b'{"z": [1, NaN]}', 400, '"z" must be finite (no NaN or infinity)'),
    ("/api/decode", b'{"z": [Infinity, 0]}', 400, '"z" must be finite (no NaN or infinity)'),
    ("/api/decode", b'{"z": [1e999, 0]}', 400, '"z" must be finite (no NaN or infinity)'),
    ("/api/decode", b'{"z": ["1", 2]}', 400, '"z" must be a list of numbers'),
    ("/api/decode", b'{"z": [true, 2]}', 400, '"z" must be a list of numbers'),
    ("/api/decode", b'{"z": "0,0"}', 400, '"z" must be a list of numbers'),
    ("/api/decode", b'{"z": [0, 0], "class": 3}', 400, 'this model is not conditional; drop "class"'),
    ("/api/morph", b'{"a": 0, "b": 1, "alpha": 0.5}', 404, "this explorer has no class morph"),
    ("/api/nothing", b"{}", 404, "no such page: /api/nothing"),
]


@pytest.mark.parametrize("path, body, status, message", BAD, ids=[b[3] for b in BAD])
def test_a_bad_request_is_a_4xx_with_a_short_message_and_the_server_goes_on(served, path, body, status, message):
    s = served(fake_decode, 2)
    assert s.post(path, body, raw=True) == (status, {"error": message})
    status, answer = s.post("/api/decode", {"z": [0.5, 0.5]})  # still serving
    assert status == 200 and answer["z"] == [0.5, 0.5]


def test_unknown_pages_methods_huge_bodies_and_missing_lengths_are_4xx(served):
    s = served(fake_decode, 2)
    assert s.get("/etc/passwd") == (404, {"error": "no such page: /etc/passwd"})
    assert s.get("/api/decode") == (405, {"error": "GET is not allowed on /api/decode"})
    assert s.request("/api/info", b"{}", method="DELETE") == (405, {"error": "DELETE is not allowed on /api/info"})
    huge = json.dumps({"z": [0.0] * 40000}).encode()
    assert len(huge) > webexplorer.MAX_BODY
    assert s.post("/api/decode", huge, raw=True) == (413, {"error": f"the body is over {webexplorer.MAX_BODY} bytes"})
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock:  # a POST without Content-Length
        sock.sendall(b"POST /api/decode HTTP/1.1\r\nHost: x\r\n\r\n")
        head = b""
        while chunk := sock.recv(4096):  # the headers and the body may come in separate packets
            head += chunk
        head = head.decode()
    assert head.startswith("HTTP/1.0 411") and '{"error": "a POST needs a Content-Length"}' in head
    assert s.get("/api/info")[0] == 200


def test_morph_requests_are_checked(served):
    morph = explorer.Morph(lambda a, b, alpha: np.zeros(2) + a + alpha * b, NAMES, alpha_max=2.0)
    s = served(fake_decode, 2, morph=morph)
    assert s.post("/api/morph", {"a": 10, "b": 1, "alpha": 0}) == (400, {"error": '"a" must be a class index 0-9, '
                                                                                   "got 10"})
    assert s.post("/api/morph", {"a": 0, "b": "x", "alpha": 0})[0] == 400
    assert s.post("/api/morph", {"a": 0, "b": 1, "alpha": 2.5}) == (400, {"error": '"alpha" must be a number in '
                                                                                   "[0, 2], got 2.5"})
    assert s.post("/api/morph", {"a": 0, "b": 1})[0] == 400
    assert s.post("/api/morph", {"a": 2, "b": 1, "alpha": 1.0})[1]["z"] == [3.0, 3.0]


def test_a_conditional_model_gets_its_class_and_an_unknown_class_is_a_400(served):
    calls = []

    def decode(z, labels):
        calls.append(labels.tolist())
        return fake_decode(z + labels[:, None])

    s = served(decode, 2, classes=[str(d) for d in range(10)], seed=1)
    assert s.get("/api/info")[1]["classes"] == [str(d) for d in range(10)]
    status, answer = s.post("/api/decode", {"z": [0.5, 1.0], "class": 7})
    assert status == 200 and calls == [[7]]
    np.testing.assert_array_equal(png_pixels(answer["png"]), expected_pixels(fake_decode, [7.5, 8.0]))
    for bad, message in ((10, "unknown class 10; classes are 0-9"), (-1, "unknown class -1; classes are 0-9"),
                         ("cat", "unknown class 'cat'; classes are 0-9"), (2.5, "unknown class 2.5; classes are 0-9"),
                         (None, 'this model is conditional: give "class" (0-9)')):
        body = {"z": [0, 0]} if bad is None else {"z": [0, 0], "class": bad}
        assert s.post("/api/decode", body) == (400, {"error": message})
    assert s.get("/api/random?class=3")[0] == 200 and calls[-1] == [3]
    assert s.get("/api/random?class=12") == (400, {"error": "unknown class 12; classes are 0-9"})
    assert len(calls) == 2


def test_a_failing_decoder_is_a_500_and_the_server_goes_on(served, capsys):
    def decode(z):
        if z[0, 0] > 0:
            raise RuntimeError("boom")
        return fake_decode(z)

    s = served(decode, 2)
    assert s.post("/api/decode", {"z": [1, 0]}) == (500, {"error": "internal error: RuntimeError"})
    assert s.post("/api/decode", {"z": [-1, 0]})[0] == 200
    assert "explorer: POST /api/decode failed: RuntimeError: boom" in capsys.readouterr().err


def test_decodes_are_serialised(served):
    active, most = [0], [0]

    def slow(z):
        active[0] += 1
        most[0] = max(most[0], active[0])
        time.sleep(0.02)
        active[0] -= 1
        return fake_decode(z)

    s = served(slow, 2)
    threads = [threading.Thread(target=s.post, args=("/api/decode", {"z": [i, 0]})) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert s.explorer.decodes == 6 and most[0] == 1


def test_a_port_in_use_is_one_line_and_the_start_prints_the_url_and_the_ssh_hint(served):
    s = served(fake_decode, 2)
    with pytest.raises(UserError) as e:
        webexplorer.check_port("127.0.0.1", s.port)
    assert str(e.value) == (f"port {s.port} on 127.0.0.1 is in use (another explorer?); pass --port N, or --port 0 "
                            "for any free one")
    assert webexplorer.url_lines(s.server) == [
        f"explorer: http://localhost:{s.port}/ (Ctrl-C to stop)",
        (f"on a remote machine, forward the port from your own: ssh -L {s.port}:localhost:{s.port} USER@SERVER, "
         f"then open http://localhost:{s.port}/")]


def test_the_page_is_in_the_wheel(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(tmp_path)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("vaelab-*.whl")
    with zipfile.ZipFile(wheel) as z:
        assert z.read("vaelab/explore/web/index.html") == webexplorer.PAGE.read_bytes()


# --- a real browser --------------------------------------------------------------------------------------------


def chromium_dom(url: str, tmp_path) -> str:
    """The page's DOM after its scripts ran (chromium waits for virtual time, so for the fetches too)."""
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=8000", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)")
def test_a_click_on_the_scatter_in_chromium_shows_the_decoders_image_of_that_point(served, tmp_path):
    sc = scatter(2)
    sc.z[:, 0] *= 2.5  # so that the x range is not the y range
    s = served(fake_decode, 2, scatter=sc)
    px, py = 100, 320  # canvas pixels: 460 x 460, the plot inside a margin of 30 (index.html)
    dom = chromium_dom(f"{s.url}/?click={px},{py}", tmp_path)
    img = re.search(r'<img id="image"[^>]*>', dom).group(0)
    (x0, x1), (y0, y1) = explorer.slider_ranges(2, sc)
    z = np.array([x0 + (px - 30) / 400 * (x1 - x0), y1 - (py - 30) / 400 * (y1 - y0)])
    shown_z = json.loads(re.search(r'data-z="([^"]*)"', img).group(1).replace("&quot;", '"'))
    np.testing.assert_allclose(shown_z, z, atol=1e-3)  # the page turned the click into this point
    pixels = png_pixels(re.search(r'src="data:image/png;base64,([^"]+)"', img).group(1))
    expected = expected_pixels(fake_decode, z)
    np.testing.assert_array_equal(pixels, expected)  # the image shown is the decoder's for it
    assert int(re.search(r'data-sum="(\d+)"', img).group(1)) == 3 * int(expected.astype(int).sum())  # as drawn
    assert 'data-shown="2"' in dom  # the first image (z = 0), then the click's: the image changed
    assert not np.array_equal(expected, expected_pixels(fake_decode, [0, 0]))
    assert s.explorer.decodes == 2


# --- a generate script with --explore web -----------------------------------------------------------------------


def test_a_generate_script_serves_with_explore_web_and_stops_on_sigterm(trained_mnist, tmp_path):
    models, data, prefix = trained_mnist
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "mnist_2d_latent_space_and_generate.py"), "--explore", "web",
                             "--port", "0", "--models-dir", models, "--data-dir", data, "--results-dir", tmp_path,
                             "--intermediate-dim", "32", "--epochs", "1", "--n", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=env)
    lines, url = [], None
    try:
        deadline = time.monotonic() + 240
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.match(r"explorer: (http://localhost:\d+/) \(Ctrl-C to stop\)", line)
            url = m and m.group(1)
        assert url, "".join(lines)
        with _local(url + "api/info", timeout=30) as r:
            info = json.loads(r.read())
        assert info["latent_dim"] == 2 and info["title"] == prefix and len(info["scatter"]["labels"]) == 128
        req = urllib.request.Request(url + "api/decode", data=json.dumps({"z": [0.5, -1.0]}).encode())
        with _local(req, timeout=30) as r:  # the real Keras decoder, called from a server thread
            decoded = png_pixels(json.loads(r.read())["png"])
        port = url.rsplit(":", 1)[1].strip("/")
        assert proc.stdout.readline().startswith(f"on a remote machine, forward the port from your own: ssh -L "
                                                 f"{port}:localhost:{port} USER@SERVER")
        proc.send_signal(signal.SIGTERM)  # a plain kill stops it as Ctrl-C does
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and "explorer: stopped" in out
    from vaelab.api.trained import load_trained
    from vaelab.config import params as params_mod
    from vaelab.config.experiments import MNIST

    trained = load_trained(MNIST, params_mod.MnistParams(intermediate_dim=32, epochs=1), models)
    expected = expected_pixels(trained.decode, [0.5, -1.0]).astype(int)
    assert decoded.shape == (28, 28) and np.abs(decoded.astype(int) - expected).max() <= 1
    assert (tmp_path / f"{prefix}_latent.png").exists()  # the figures came first
    assert not (tmp_path / f"{prefix}_z_0_0.png").exists()  # and the explorer replaced the prompt
