"""The live latent explorer: a matplotlib window where the decoded image follows the mouse and the sliders.

It knows nothing about models: it takes ``decode(z) -> images`` (``z`` of shape (n, d), images (n, H, W, C)
in [0, 1]), the latent size, and optionally the test set's codes to scatter and class-morph controls.

- **Scatter** (latent codes of 2 or 3 dimensions, coloured by class): a click or a drag sets ``z[0]``,
  ``z[1]`` to the point under the mouse and keeps the other dimensions at their slider values. A 3-D space
  is shown as its ``(z[0], z[1])`` projection; the codes whose ``z[2]`` lies near the ``z[2]`` slider are
  drawn opaque and the others faint, so the scatter shows the slice the image is decoded from.
- **Sliders**, one per latent dimension up to :data:`MAX_SLIDERS`, spanning [-3, 3] or the scatter's
  range (and widened when a morph or a random draw goes further); dimensions beyond them stay at 0 until
  "random" draws a whole vector. "random" draws ``z ~ N(0, I)`` from a generator seeded once (so a session
  repeats), "zero" sets every dimension to 0.
- **Morph** (:class:`Morph`): sliders for class A, class B and alpha; each change sets ``z`` to
  ``morph(a, b, alpha)`` and moves the latent sliders there.

Every change decodes one vector; drags on the scatter are throttled to one decode per ``min_interval``
seconds, and the last position is decoded when the button is released. :func:`open_explorer` needs a
display: without one it raises a one-line :class:`~vaelab.core.errors.UserError`. :class:`Explorer` itself draws
on any backend (the tests use Agg and send it real matplotlib events).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from vaelab.core.errors import UserError

MAX_SLIDERS = 16
PRIOR_RANGE = 3.0  # sliders span at least [-3, 3]: 99.7 % of the prior N(0, 1) per dimension
# GUI backends tried in order when MPLBACKEND names none (matplotlib's own order of preference).
GUI_BACKENDS = ("macosx", "qtagg", "gtk4agg", "gtk3agg", "tkagg", "wxagg")


@dataclass
class Scatter:
    """Latent codes (N, 2) or (N, 3) with their integer labels and the class names."""

    z: np.ndarray
    labels: np.ndarray
    class_names: Sequence[str] = ()


@dataclass
class Morph:
    """Class-morph controls: ``fn(a, b, alpha) -> z`` (one latent vector) for class indices ``a``, ``b``."""

    fn: Callable[[int, int, float], np.ndarray]
    class_names: Sequence[str]
    alpha_max: float = 1.0
    a: int = 0
    b: int = 1
    alpha: float = 0.0
    formula: str = "mean({a}) + α · mean({b})"


def slider_ranges(n: int, scatter: Scatter | None = None) -> list[tuple[float, float]]:
    """The ranges of the first ``n`` latent sliders: [-3, 3] per dimension, widened to hold 99 % of the
    scatter's codes along its dimensions (the window and the web explorer both use these)."""
    ranges = [(-PRIOR_RANGE, PRIOR_RANGE)] * n
    if scatter is not None:
        for i in range(min(n, scatter.z.shape[1])):
            lo, hi = np.percentile(scatter.z[:, i], [0.5, 99.5])
            pad = 0.05 * (hi - lo)
            ranges[i] = (float(min(-PRIOR_RANGE, lo - pad)), float(max(PRIOR_RANGE, hi + pad)))
    return ranges


def widened_range(lo: float, hi: float, value: float) -> tuple[float, float]:
    """A slider range that holds ``value``: widened to +-ceil(|value| + 0.5) when ``value`` lies outside it."""
    if lo <= value <= hi:
        return lo, hi
    reach = float(np.ceil(abs(value) + 0.5))
    return min(lo, -reach), max(hi, reach)


def slice_half_width(scatter: Scatter) -> float:
    """Half the width of the z[2] slice drawn opaque in a 3-D scatter: a quarter of z[2]'s spread."""
    return 0.25 * float(np.std(scatter.z[:, 2]) or 1.0)


def has_display() -> bool:
    """Whether a window can open: X11/Wayland on Linux and the BSDs; macOS and Windows always have one."""
    if sys.platform == "darwin" or sys.platform.startswith("win"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def require_display() -> None:
    """One-line :class:`UserError` when no window can open (checked before any model or data is loaded)."""
    if not has_display():
        raise UserError("--explore opens a window, but there is no display (DISPLAY and WAYLAND_DISPLAY are "
                        "not set); use --explore web for the explorer in a browser, run it on a desktop or over "
                        "ssh -X, or drop --explore")


def _is_interactive(backend: str) -> bool:
    from matplotlib.backends import BackendFilter, backend_registry

    return backend.lower() in backend_registry.list_builtin(BackendFilter.INTERACTIVE) or backend.startswith("module:")


def use_gui_backend() -> str:
    """Switch pyplot to a GUI backend (``MPLBACKEND`` if it names one, else the first that works)."""
    import matplotlib
    import matplotlib.pyplot as plt

    require_display()
    current = matplotlib.get_backend()
    if _is_interactive(current):
        return current
    wanted = os.environ.get("MPLBACKEND", "")
    if wanted and not _is_interactive(wanted):
        raise UserError(f"--explore needs a window, but MPLBACKEND={wanted} draws none; unset MPLBACKEND or set "
                        "it to a GUI backend such as TkAgg or QtAgg")
    for name in ([wanted] if wanted else GUI_BACKENDS):
        try:
            plt.switch_backend(name)
            return name
        except (ImportError, RuntimeError, ValueError):
            continue
    raise UserError("--explore needs a GUI toolkit for matplotlib and found none (tried "
                    f"{', '.join(GUI_BACKENDS)}); install Tk (e.g. apt-get install python3-tk) or "
                    "pip install PyQt6")


class Explorer:
    """The explorer's figure and its callbacks; ``z`` is the vector shown, ``image`` the decoded picture."""

    def __init__(self, decode: Callable[[np.ndarray], np.ndarray], latent_dim: int, scatter: Scatter | None = None,
                 morph: Morph | None = None, title: str = "", seed: int = 0, min_interval: float = 0.03,
                 clock: Callable[[], float] = time.monotonic, classes: Sequence[str] | None = None):
        import matplotlib.pyplot as plt
        from matplotlib.widgets import Button, Slider

        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        if scatter is not None and (scatter.z.ndim != 2 or scatter.z.shape[1] not in (2, 3)
                                    or scatter.z.shape[1] > latent_dim):
            raise ValueError(f"a scatter needs codes of 2 or 3 dimensions, got shape {scatter.z.shape}")
        self.decode_fn, self.latent_dim, self.scatter, self.morph = decode, int(latent_dim), scatter, morph
        # A conditional model: ``decode(z, labels)``, the class chosen on its own slider.
        self.classes, self.label = (list(classes) if classes else None), 0
        self.rng = np.random.default_rng(seed)
        self.min_interval, self.clock = float(min_interval), clock
        self.z = np.zeros(self.latent_dim)
        self.decodes = 0  # decode calls so far (each decodes one vector)
        self._last_decode = -np.inf
        self._pending: tuple[float, float] | None = None
        self._dragging = False
        self._quiet = False  # set while sliders are moved by code, so they do not decode once each

        n_sliders = min(self.latent_dim, MAX_SLIDERS)
        ranges = slider_ranges(n_sliders, scatter)
        cols = 1 if n_sliders <= 6 else 2
        rows = -(-n_sliders // cols) + (3 if morph else 0) + (1 if self.classes else 0)
        row_h, plots_h, buttons_h = 0.32, 4.6, 0.55
        height = plots_h + rows * row_h + buttons_h + 0.55
        width = 11.0 if scatter is not None else 7.0
        self.fig = fig = plt.figure(figsize=(width, height))
        if title and fig.canvas.manager is not None:
            fig.canvas.manager.set_window_title(f"vaelab explorer: {title}")

        def y_of(inches: float) -> float:  # figure fraction of a height measured from the bottom
            return inches / height

        top = y_of(buttons_h + rows * row_h + 0.35)
        plot_h = 1.0 - top - y_of(0.75)  # room above for the model's name and the axes' titles
        if scatter is not None:
            self.scatter_ax = fig.add_axes((0.07, top, 0.46, plot_h))
            self.image_ax = fig.add_axes((0.60, top, 0.36, plot_h))
            self._draw_scatter(ranges)
        else:
            self.scatter_ax = None
            self.image_ax = fig.add_axes((0.15, top, 0.7, plot_h))
        self.image_ax.set_xticks([])
        self.image_ax.set_yticks([])
        if morph is not None:
            self.z = np.asarray(morph.fn(morph.a, morph.b, float(morph.alpha)), dtype=float).reshape(-1)
        first = self._decode_one(self.z)
        self._last_decode = self.clock()
        self.image = self.image_ax.imshow(first, cmap="gray" if first.ndim == 2 else None, vmin=0, vmax=1,
                                          interpolation="nearest")
        if title:
            fig.suptitle(title, y=1.0 - y_of(0.08), va="top")

        self.sliders: list = []
        col_w = 0.86 / cols
        for i in range(n_sliders):
            row, col = i % -(-n_sliders // cols), i // -(-n_sliders // cols)
            ax = fig.add_axes((0.08 + col * col_w, y_of(buttons_h + (rows - 1 - row) * row_h + 0.06),
                               col_w - 0.14, y_of(row_h * 0.6)))
            lo, hi = ranges[i]
            slider = Slider(ax, f"z[{i}]", lo, hi, valinit=0.0, valfmt="%+.2f")
            slider.on_changed(lambda v, i=i: self._slider_moved(i, v))
            self.sliders.append(slider)

        self.morph_sliders: list = []
        if morph is not None:
            last = len(morph.class_names) - 1
            specs = (("class A", 0, last, morph.a, 1), ("class B", 0, last, morph.b, 1),
                     ("alpha", 0.0, morph.alpha_max, morph.alpha, None))
            for k, (label, lo, hi, init, step) in enumerate(specs):
                ax = fig.add_axes((0.15, y_of(buttons_h + (2 - k) * row_h + 0.06), 0.62, y_of(row_h * 0.6)))
                slider = Slider(ax, label, lo, hi, valinit=init, valstep=step, valfmt="%.2f", color="tab:orange")
                slider.on_changed(lambda v: self._morph_moved())
                self.morph_sliders.append(slider)

        self.class_slider = None
        if self.classes:
            ax = fig.add_axes((0.15, y_of(buttons_h + 0.06), 0.62, y_of(row_h * 0.6)))
            self.class_slider = Slider(ax, "class", 0, len(self.classes) - 1, valinit=0, valstep=1, color="tab:green")
            self.class_slider.on_changed(lambda v: self.set_class(int(v)))
            self.class_slider.valtext.set_text(self.classes[0])

        self.random_button = Button(fig.add_axes((0.30, y_of(0.1), 0.16, y_of(0.36))), "random")
        self.random_button.on_clicked(lambda event: self.randomize())
        self.zero_button = Button(fig.add_axes((0.54, y_of(0.1), 0.16, y_of(0.36))), "zero")
        self.zero_button.on_clicked(lambda event: self.set_z(np.zeros(self.latent_dim)))
        if self.latent_dim > MAX_SLIDERS:
            fig.text(0.02, y_of(0.2), f"z[{MAX_SLIDERS}:{self.latent_dim}]: no sliders (0, or\nthe last random draw)",
                     fontsize=7)

        for name in ("button_press_event", "motion_notify_event", "button_release_event"):
            fig.canvas.mpl_connect(name, self._mouse)
        self._sync_sliders()
        self._decorate()

    # --- layout helpers ---------------------------------------------------------------------------

    def _draw_scatter(self, ranges) -> None:
        import matplotlib.pyplot as plt

        s, ax = self.scatter, self.scatter_ax
        n_classes = max(len(s.class_names), int(np.max(s.labels)) + 1 if len(s.labels) else 1)
        cmap = plt.get_cmap("tab10" if n_classes <= 10 else "tab20", n_classes)
        self.points = ax.scatter(s.z[:, 0], s.z[:, 1], c=s.labels, cmap=cmap, s=4, alpha=0.6,
                                 vmin=-0.5, vmax=n_classes - 0.5)
        ax.set_xlim(*ranges[0])
        ax.set_ylim(*ranges[1])
        ax.set_xlabel("z[0]")
        ax.set_ylabel("z[1]")
        how = "click or drag to set z[0], z[1]"
        ax.set_title(how if s.z.shape[1] == 2 else f"{how}; opaque: codes near the z[2] slider", fontsize=9)
        if len(s.class_names):
            bar = self.fig.colorbar(self.points, ax=ax, ticks=range(len(s.class_names)), fraction=0.05, pad=0.02)
            bar.ax.set_yticklabels(s.class_names, fontsize=7)
        (self.marker,) = ax.plot([0], [0], marker="+", color="red", markersize=18, markeredgewidth=2.5)
        if s.z.shape[1] == 3:
            self.slice_half_width = slice_half_width(s)

    # --- the state ----------------------------------------------------------------------------------

    def _decode_one(self, z: np.ndarray) -> np.ndarray:
        self.decodes += 1
        z = np.asarray(z, dtype=np.float32)[None, :]
        img = np.asarray(self.decode_fn(z) if self.classes is None else self.decode_fn(z, [self.label]))[0]
        img = np.clip(img, 0.0, 1.0)
        return img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img

    def set_class(self, label: int) -> None:
        """Decode the current ``z`` as class ``label`` (a conditional model)."""
        self.label = int(label)
        if self.class_slider is not None:
            self.class_slider.valtext.set_text(self.classes[self.label])
        self._show()

    def _show(self) -> None:
        """Decode ``self.z`` and show it."""
        self.image.set_data(self._decode_one(self.z))
        self._last_decode = self.clock()
        self._decorate()

    def _decorate(self) -> None:
        """Title, marker, the 3-D slice and the morph's formula for ``self.z``; then redraw."""
        shown = ", ".join(f"{v:+.2f}" for v in self.z[:6]) + (", …" if self.latent_dim > 6 else "")
        self.image_ax.set_title(f"z = ({shown})", fontsize=9)
        if self.scatter is not None:
            self.marker.set_data([self.z[0]], [self.z[1]])
            if self.scatter.z.shape[1] == 3:
                near = np.abs(self.scatter.z[:, 2] - self.z[2]) <= self.slice_half_width
                self.points.set_alpha(np.where(near, 0.9, 0.06))
        if self.morph is not None:
            a, b, alpha = self._morph_values()
            names = self.morph.class_names
            for slider, c in zip(self.morph_sliders, (a, b)):
                slider.valtext.set_text(names[c])
            self.image_ax.set_xlabel(f"{self.morph.formula.format(a=names[a], b=names[b])}, α = {alpha:.2f}",
                                     fontsize=8)
        self.fig.canvas.draw_idle()

    def _sync_sliders(self) -> None:
        """Move the sliders to ``self.z`` without decoding, widening a slider's range that does not hold it."""
        self._quiet = True
        try:
            for i, slider in enumerate(self.sliders):
                value = float(self.z[i])
                if not slider.valmin <= value <= slider.valmax:
                    slider.valmin, slider.valmax = widened_range(slider.valmin, slider.valmax, value)
                    slider.ax.set_xlim(slider.valmin, slider.valmax)
                slider.set_val(value)
        finally:
            self._quiet = False

    def set_z(self, z) -> None:
        """Show the latent vector ``z`` (length ``latent_dim``) and move the sliders to it."""
        z = np.asarray(z, dtype=float).reshape(-1)
        if z.shape != (self.latent_dim,):
            raise ValueError(f"expected {self.latent_dim} numbers, got {z.shape[0]}")
        self.z = z.copy()
        self._sync_sliders()
        self._show()

    def randomize(self) -> None:
        """``z ~ N(0, I)``, every dimension (also those without a slider)."""
        self.set_z(self.rng.standard_normal(self.latent_dim))

    def set_point(self, x: float, y: float) -> None:
        """``z[0], z[1] = x, y``; the other dimensions keep their values."""
        z = self.z.copy()
        z[0], z[1] = x, y
        self.set_z(z)

    # --- callbacks ----------------------------------------------------------------------------------

    def _slider_moved(self, i: int, value: float) -> None:
        if self._quiet:
            return
        self.z[i] = value
        self._show()

    def _morph_values(self) -> tuple[int, int, float]:
        a, b, alpha = (s.val for s in self.morph_sliders)
        return int(round(a)), int(round(b)), float(alpha)

    def _morph_moved(self) -> None:
        self.set_z(self.morph.fn(*self._morph_values()))

    def _toolbar_busy(self) -> bool:
        toolbar = getattr(self.fig.canvas, "toolbar", None)
        return bool(toolbar is not None and getattr(toolbar, "mode", ""))

    def _mouse(self, event) -> None:
        if self.scatter_ax is None:
            return
        if event.name == "button_release_event":
            if self._dragging and self._pending is not None:
                self.set_point(*self._pending)
            self._dragging, self._pending = False, None
            return
        if event.inaxes is not self.scatter_ax or event.xdata is None or self._toolbar_busy():
            return
        if event.name == "button_press_event":
            if event.button != 1:
                return
            self._dragging, self._pending = True, None
            self.set_point(event.xdata, event.ydata)
        elif self._dragging:  # motion with the button held
            if self.clock() - self._last_decode < self.min_interval:
                self._pending = (event.xdata, event.ydata)
                return
            self._pending = None
            self.set_point(event.xdata, event.ydata)


def open_explorer(decode, latent_dim: int, scatter: Scatter | None = None, morph: Morph | None = None,
                  title: str = "", seed: int = 0, classes: Sequence[str] | None = None) -> Explorer:
    """Open the explorer in a window and return when it is closed (a one-line error without a display);
    ``classes``: a conditional model's, chosen on a slider (``decode(z, labels)``)."""
    use_gui_backend()
    import matplotlib.pyplot as plt

    explorer = Explorer(decode, latent_dim, scatter=scatter, morph=morph, title=title, seed=seed, classes=classes)
    print("explorer: click or drag on the scatter, move the sliders; close the window to finish")
    plt.show()
    return explorer
