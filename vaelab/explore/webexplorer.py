"""The live latent explorer as a local web page, for machines without a display (a GPU server over ssh).

The same explorer as :mod:`vaelab.explore.explorer` (scatter, one slider per latent dimension up to
:data:`~vaelab.explore.explorer.MAX_SLIDERS`, random and zero, the class-morph sliders), served by the standard
library's ``ThreadingHTTPServer``: the page (``web/index.html``, plain JavaScript and a canvas) draws, and every
decode happens here, in the Python process, on the ``decode`` callable it is given.

Endpoints (JSON in and out; every bad request is a 4xx with ``{"error": "<short message>"}``):

- ``GET /``: the page. ``GET /api/info``: latent size, slider ranges, the scatter (points as one flat list,
  labels, class names), the morph's classes, the conditional classes.
- ``POST /api/decode`` ``{"z": [...], "class": k}`` -> ``{"z": [...], "png": "<base64>"}`` (``?format=png``:
  the image/png itself). ``class`` only for a conditional model (``classes`` given), and then required.
- ``POST /api/morph`` ``{"a": i, "b": j, "alpha": t}`` -> the same, for ``z = morph(i, j, t)``.
- ``GET /api/random`` (``?class=k``) -> the same, for ``z ~ N(0, I)`` from a generator seeded once.

Decodes are serialised by a lock (Keras models are not thread-safe); an exception in a handler answers
500 and the server goes on. A conditional model's ``decode`` is called as ``decode(z, labels)``.
"""

from __future__ import annotations

import base64
import errno
import io
import json
import math
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np

from vaelab.core.errors import UserError
from vaelab.explore.explorer import MAX_SLIDERS, Morph, Scatter, slice_half_width, slider_ranges

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050
MAX_BODY = 64 * 1024  # bytes: a latent vector of thousands of numbers fits; anything bigger is refused
PAGE = Path(__file__).with_name("web") / "index.html"


class BadRequest(Exception):
    """A request the explorer cannot answer: becomes ``status`` with ``{"error": message}``."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def png_bytes(image: np.ndarray) -> bytes:
    """An (H, W), (H, W, 1) or (H, W, 3) image in [0, 1] as PNG (grey or RGB): ``round(255 * clip(x))``."""
    from PIL import Image

    pixels = np.rint(np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    out = io.BytesIO()
    Image.fromarray(pixels, mode="L" if pixels.ndim == 2 else "RGB").save(out, format="PNG")
    return out.getvalue()


class WebExplorer:
    """What the server answers, without the HTTP: validation, decoding, the seeded random draws.

    ``decode(z) -> images`` (``z`` (n, d); images (n, H, W, C) in [0, 1]); with ``classes`` (a conditional
    model) ``decode(z, labels)`` with integer ``labels`` of shape (n,).
    """

    def __init__(self, decode: Callable, latent_dim: int, scatter: Scatter | None = None,
                 morph: Morph | None = None, classes: Sequence[str] | None = None, title: str = "", seed: int = 0):
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        self.decode_fn, self.latent_dim, self.scatter, self.morph = decode, int(latent_dim), scatter, morph
        self.classes = list(classes) if classes else None
        self.title = title
        self.rng = np.random.default_rng(seed)
        self.lock = threading.Lock()
        self.decodes = 0

    def info(self) -> dict:
        n = min(self.latent_dim, MAX_SLIDERS)
        out = {"title": self.title, "latent_dim": self.latent_dim, "max_sliders": MAX_SLIDERS,
               "ranges": [[round(lo, 4), round(hi, 4)] for lo, hi in slider_ranges(n, self.scatter)],
               "scatter": None, "morph": None, "classes": self.classes, "start": [0.0] * self.latent_dim}
        s = self.scatter
        if s is not None:
            out["scatter"] = {"dims": int(s.z.shape[1]), "points": [round(float(v), 3) for v in s.z.reshape(-1)],
                              "labels": [int(v) for v in np.asarray(s.labels).reshape(-1)],
                              "class_names": [str(c) for c in s.class_names],
                              "slice_half_width": slice_half_width(s) if s.z.shape[1] == 3 else None}
        m = self.morph
        if m is not None:
            out["morph"] = {"class_names": [str(c) for c in m.class_names], "alpha_max": float(m.alpha_max),
                            "a": int(m.a), "b": int(m.b), "alpha": float(m.alpha), "formula": m.formula}
            out["start"] = self.morph_z(m.a, m.b, m.alpha).tolist()
        return out

    # --- validation ---------------------------------------------------------------------------------

    def latent(self, value) -> np.ndarray:
        """``value`` as a finite latent vector of the right length, else :class:`BadRequest`."""
        if not isinstance(value, list) or not all(_is_number(v) for v in value):
            raise BadRequest('"z" must be a list of numbers')
        if len(value) != self.latent_dim:
            raise BadRequest(f'"z" must have {self.latent_dim} numbers, got {len(value)}')
        z = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(z)):
            raise BadRequest('"z" must be finite (no NaN or infinity)')
        return z

    def label(self, value) -> int | None:
        """The class of a decode request: required for a conditional model, refused for any other."""
        if self.classes is None:
            if value is not None:
                raise BadRequest("this model is not conditional; drop \"class\"")
            return None
        last = len(self.classes) - 1
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        elif isinstance(value, str) and value in self.classes:
            value = self.classes.index(value)
        if value is None:
            raise BadRequest(f'this model is conditional: give "class" (0-{last})')
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= last:
            raise BadRequest(f"unknown class {value!r}; classes are 0-{last}")
        return value

    def _class_index(self, body: dict, key: str) -> int:
        value, last = body.get(key), len(self.morph.class_names) - 1
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= last:
            raise BadRequest(f'"{key}" must be a class index 0-{last}, got {value!r}')
        return value

    # --- answers ------------------------------------------------------------------------------------

    def decode_png(self, z: np.ndarray, label: int | None = None) -> bytes:
        """The PNG of the image decoded from ``z`` (one call of ``decode`` under the lock)."""
        batch = np.asarray(z, dtype=np.float32)[None, :]
        with self.lock:
            self.decodes += 1
            if label is None:
                images = self.decode_fn(batch)
            else:
                images = self.decode_fn(batch, np.array([label], dtype=np.int64))
        return png_bytes(np.asarray(images)[0])

    def answer(self, z: np.ndarray, label: int | None) -> dict:
        png = self.decode_png(z, label)
        return {"z": [float(v) for v in z], "png": base64.b64encode(png).decode("ascii")}

    def decode_request(self, body) -> tuple[np.ndarray, int | None]:
        body = _object(body)
        if "z" not in body:
            raise BadRequest('give "z": a list of numbers')
        return self.latent(body["z"]), self.label(body.get("class"))

    def morph_z(self, a: int, b: int, alpha: float) -> np.ndarray:
        z = np.asarray(self.morph.fn(int(a), int(b), float(alpha)), dtype=np.float64).reshape(-1)
        if z.shape != (self.latent_dim,):
            raise ValueError(f"the morph gave {z.shape[0]} numbers for a latent of {self.latent_dim}")
        return z

    def morph_request(self, body) -> tuple[np.ndarray, int | None]:
        if self.morph is None:
            raise BadRequest("this explorer has no class morph", HTTPStatus.NOT_FOUND)
        body = _object(body)
        a, b = self._class_index(body, "a"), self._class_index(body, "b")
        alpha = body.get("alpha")
        if not _is_number(alpha) or not 0.0 <= float(alpha) <= self.morph.alpha_max:
            raise BadRequest(f'"alpha" must be a number in [0, {self.morph.alpha_max:g}], got {alpha!r}')
        z = self.morph_z(a, b, float(alpha))
        if not np.all(np.isfinite(z)):
            raise BadRequest(f"class {a} or {b} has no codes to average")
        return z, self.label(body.get("class"))

    def random_z(self) -> np.ndarray:
        with self.lock:
            return self.rng.standard_normal(self.latent_dim)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _object(body) -> dict:
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


class Handler(BaseHTTPRequestHandler):
    """One request: routes, the body's size and JSON checks, and the error answers."""

    server_version = "vaelab-explorer"
    explorer: WebExplorer  # set on the subclass make_server builds

    def log_message(self, format, *args):  # no line per request; errors are answered, not logged
        pass

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(payload)

    def _json(self, status: int, obj) -> None:
        self._send(status, json.dumps(obj, allow_nan=False).encode(), "application/json")

    def _body(self):
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            raise BadRequest("a POST needs a Content-Length", HTTPStatus.LENGTH_REQUIRED)
        if int(length) > MAX_BODY:
            self.close_connection = True
            left = min(int(length), 64 * MAX_BODY)  # read (and drop) a big body, so the client hears the 413
            while left > 0:
                chunk = self.rfile.read(min(left, MAX_BODY))
                if not chunk:
                    break
                left -= len(chunk)
            raise BadRequest(f"the body is over {MAX_BODY} bytes", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        raw = self.rfile.read(int(length))
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=lambda name: math.nan)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BadRequest("the body is not JSON") from None

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        ex = self.explorer
        try:
            routes = {("GET", "/"), ("GET", "/index.html"), ("GET", "/api/info"), ("GET", "/api/random"),
                      ("POST", "/api/decode"), ("POST", "/api/morph")}
            if (method, url.path) not in routes:
                known = {path for _, path in routes}
                if url.path in known:
                    raise BadRequest(f"{method} is not allowed on {url.path}", HTTPStatus.METHOD_NOT_ALLOWED)
                raise BadRequest(f"no such page: {url.path}", HTTPStatus.NOT_FOUND)
            if url.path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, PAGE.read_bytes(), "text/html; charset=utf-8")
                return
            if url.path == "/api/info":
                self._json(HTTPStatus.OK, ex.info())
                return
            if url.path == "/api/random":
                z, label = ex.random_z(), ex.label(query.get("class", [None])[0])
            elif url.path == "/api/decode":
                z, label = ex.decode_request(self._body())
            else:
                z, label = ex.morph_request(self._body())
            if query.get("format") == ["png"]:
                self._send(HTTPStatus.OK, ex.decode_png(z, label), "image/png")
            else:
                self._json(HTTPStatus.OK, ex.answer(z, label))
        except BadRequest as e:
            self._json(e.status, {"error": str(e)})
        except Exception as e:  # noqa: BLE001 -- a bug or a failing decoder: answered, and the server goes on
            print(f"explorer: {method} {url.path} failed: {type(e).__name__}: {e}", file=sys.stderr)
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {type(e).__name__}"})

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")


def make_server(explorer: WebExplorer, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> ThreadingHTTPServer:
    """A bound server (not yet serving) for ``explorer``; a port in use is a one-line :class:`UserError`."""
    handler = type("ExplorerHandler", (Handler,), {"explorer": explorer})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is in use (another explorer?); pass --port N, or --port 0 "
                            "for any free one") from None
        raise UserError(f"cannot serve the explorer on {host}:{port}: {e.strerror or e}") from None
    server.daemon_threads = True
    return server


def check_port(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Fail early (before a model loads) with the one-line error :func:`make_server` would give later."""
    make_server(WebExplorer(lambda z: z, 1), host, port).server_close()


def url_lines(server: ThreadingHTTPServer) -> list[str]:
    """What a user is told on start: the URL and the ssh command that forwards the port from a laptop."""
    host, port = server.server_address[:2]
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::", "::1") else host
    lines = [f"explorer: http://{shown}:{port}/ (Ctrl-C to stop)"]
    lines.append(f"on a remote machine, forward the port from your own: ssh -L {port}:localhost:{port} USER@SERVER, "
                 f"then open http://localhost:{port}/")
    if host not in ("127.0.0.1", "localhost", "::1"):
        lines.append(f"note: bound to {host}: anyone who reaches this machine can use the explorer")
    return lines


def serve(decode: Callable, latent_dim: int, scatter: Scatter | None = None, morph: Morph | None = None,
          classes: Sequence[str] | None = None, title: str = "", seed: int = 0, host: str = DEFAULT_HOST,
          port: int = DEFAULT_PORT) -> WebExplorer:
    """Serve the explorer until Ctrl-C or SIGTERM; prints the URL and the ssh hint, and opens nothing."""
    explorer = WebExplorer(decode, latent_dim, scatter=scatter, morph=morph, classes=classes, title=title, seed=seed)
    server = make_server(explorer, host, port)
    for line in url_lines(server):
        print(line, flush=True)
    main = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print("explorer: stopped", flush=True)
    finally:
        server.server_close()
        if main:
            signal.signal(signal.SIGTERM, before)
    return explorer


def _interrupt(signum, frame):
    """SIGTERM (a plain ``kill``) stops the server as Ctrl-C does."""
    raise KeyboardInterrupt
