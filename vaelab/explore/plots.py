"""Figures: latent scatters, image grids, manifold slices and GIFs, saved atomically as files.

Headless by default (matplotlib's Agg backend); :func:`setup` with ``show=True`` keeps an interactive
backend when a display exists, and :func:`finish` then opens the windows.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from vaelab.core import artifacts

_SHOW = False


def setup(show: bool = False) -> bool:
    """Choose the matplotlib backend; returns whether windows will be shown."""
    global _SHOW
    import matplotlib

    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    _SHOW = bool(show and has_display)
    if not _SHOW:
        matplotlib.use("Agg")
    if show and not has_display:
        print("note: no display found; figures are saved as files only")
    return _SHOW


def _plt():
    import matplotlib

    if not _SHOW:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> Path:
    path = artifacts.save_figure(fig, path)
    if not _SHOW:
        _plt().close(fig)
    print(f"saved {path}")
    return path


def finish() -> None:
    """Show the figures when windows were asked for."""
    if _SHOW:
        _plt().show()


def _as_display(img: np.ndarray) -> tuple[np.ndarray, str | None]:
    img = np.clip(img, 0.0, 1.0)
    if img.ndim == 3 and img.shape[-1] == 1:
        return img[..., 0], "gray"
    return img, None


DENSITY_LEVELS = 6  # contour lines of a learned prior's density


def density_contours(ax, log_density, xs, ys, x_values=None, y_values=None, color: str = "black"):
    """Contour lines of ``exp(log_density)`` over the grid ``x_values`` x ``y_values`` of latent values, drawn
    at the plot positions ``xs``, ``ys`` (the same values when None): the prior a model was trained with,
    over its codes or its decoded manifold. The levels are fractions of the peak, 6 from 5 % to 90 %. Returns
    matplotlib's contour set (None when the density is 0 everywhere on the grid)."""
    xv = np.asarray(xs if x_values is None else x_values, dtype=float)
    yv = np.asarray(ys if y_values is None else y_values, dtype=float)
    gx, gy = np.meshgrid(xv, yv)
    density = np.exp(np.asarray(log_density(np.stack([gx.ravel(), gy.ravel()], axis=1))).reshape(gx.shape))
    peak = float(np.max(density))
    if not np.isfinite(peak) or peak <= 0:
        return None
    levels = peak * np.linspace(0.05, 0.9, DENSITY_LEVELS)
    return ax.contour(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float), density, levels=levels,
               colors=color, linewidths=1.2 if color != "black" else 0.8, alpha=0.9)


def latent_scatter(z: np.ndarray, y: np.ndarray, class_names, path, title: str = "",
                   log_density=None) -> Path:
    """Scatter of 2-D or 3-D latent codes coloured by class, with a labelled colour bar; ``log_density`` (2-D
    only): contour lines of that density (a learned prior's) over the codes."""
    plt = _plt()
    dim = z.shape[1]
    fig = plt.figure(figsize=(8, 7))
    cmap = plt.get_cmap("tab10", len(class_names))
    kwargs = dict(c=y, cmap=cmap, s=3, alpha=0.7, vmin=-0.5, vmax=len(class_names) - 0.5)
    if dim == 2:
        ax = fig.add_subplot(111)
        sc = ax.scatter(z[:, 0], z[:, 1], **kwargs)
        if log_density is not None:
            (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
            density_contours(ax, log_density, np.linspace(x0, x1, 120), np.linspace(y0, y1, 120))
            ax.set_xlim(x0, x1)
            ax.set_ylim(y0, y1)
    elif dim == 3:
        ax = fig.add_subplot(111, projection="3d")
        sc = ax.scatter(z[:, 0], z[:, 1], z[:, 2], **kwargs)
        ax.set_zlabel("z[2]")
    else:
        raise ValueError(f"a latent scatter needs 2 or 3 dimensions, got {dim}")
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    bar = fig.colorbar(sc, ax=ax, ticks=range(len(class_names)), shrink=0.8, pad=0.12 if dim == 3 else 0.05)
    bar.ax.set_yticklabels(class_names)
    ax.set_title(title)
    return _save(fig, path)


def image_grid(image: np.ndarray, path, title: str = "", ticks: tuple | None = None,
               max_size: float = 14.0, log_density=None) -> Path:
    """Show one tiled image; ``ticks=(xs, ys, x_values, y_values)`` labels grid cells with latent values, and
    with ``log_density`` (a learned prior's) contour lines of that density are drawn over the cells.

    ``max_size`` caps the figure width in inches (100 dpi): large colour grids stay near their native
    resolution instead of being upscaled into multi-MB PNGs.
    """
    plt = _plt()
    img, cmap = _as_display(image)
    size = max(4.0, min(max_size, img.shape[1] / 40))
    fig, ax = plt.subplots(figsize=(size, size * img.shape[0] / img.shape[1] + 0.4))
    ax.imshow(img, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    if ticks is None:
        ax.axis("off")
    else:
        xs, ys, xv, yv = ticks
        ax.set_xticks(xs, [f"{v:.2f}" for v in xv], rotation=90, fontsize=7)
        ax.set_yticks(ys, [f"{v:.2f}" for v in yv], fontsize=7)
        ax.set_xlabel("z[0]")
        ax.set_ylabel("z[1]")
        if log_density is not None:
            density_contours(ax, log_density, xs, ys, xv, yv, color="orange")  # seen over black digits
    if title:
        ax.set_title(title)
    return _save(fig, path)


def panels(images, path, titles=None, rows: int = 1, suptitle: str = "",
           panel_size: tuple[float, float] = (1.6, 1.8)) -> Path:
    """Images side by side in ``rows`` rows, each with an optional title."""
    plt = _plt()
    n = len(images)
    cols = int(np.ceil(n / rows))
    fig, axes = plt.subplots(rows, cols, figsize=(panel_size[0] * cols, panel_size[1] * rows), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < n:
            img, cmap = _as_display(images[i])
            ax.imshow(img, cmap=cmap, vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    return _save(fig, path)


def slices(tiles: list[np.ndarray], values, path, title: str = "") -> Path:
    """Several tiled manifolds in a square-ish figure, each titled with the value of the sliced axis."""
    rows = int(np.ceil(len(tiles) / np.ceil(np.sqrt(len(tiles)))))
    return panels(tiles, path, titles=[f"z[2] = {v:.2f}" for v in values], rows=rows, suptitle=title,
                  panel_size=(3.2, 3.4))


HISTORY_PANELS = (("loss", "loss"), ("reconstruction_loss", "reconstruction term"),
                  ("kl_loss", "KL term (nats)"))


def training_minutes(history: dict) -> np.ndarray | None:
    """The training wall time in minutes at the end of each epoch (the sum of ``epoch_seconds``, validation
    included, restarts' idle time not), or None when the history has no complete timing."""
    seconds = history.get("epoch_seconds") or []
    if not seconds or len(seconds) != len(history.get("loss") or []):
        return None
    return np.cumsum(np.asarray(seconds, dtype=float)) / 60.0


def history_figure(history: dict, title: str = ""):
    """One panel each for the loss, the reconstruction term and the KL term per epoch (training and validation),
    one for the validation loss (the negative bound) against training wall time when the epochs were timed
    (the curve to compare runs of different speeds by), and one for the learning rate when it changed."""
    plt = _plt()
    panels = [(key, label) for key, label in HISTORY_PANELS if history.get(key)]
    minutes = training_minutes(history)
    timed = minutes is not None and len(history.get("val_loss") or []) == len(minutes)
    rates = history.get("learning_rate") or []
    show_rate = len(set(np.round(np.asarray(rates, dtype=float), 15))) > 1
    extra = timed + show_rate
    fig, axes = plt.subplots(1, len(panels) + extra, figsize=(3.8 * (len(panels) + extra), 3.4), squeeze=False)
    axes = axes[0]
    for ax, (key, label) in zip(axes, panels):
        for name, values in (("training", history[key]), ("validation", history.get(f"val_{key}"))):
            if values:
                ax.plot(np.arange(1, len(values) + 1), values, marker="o" if len(values) <= 30 else None,
                        markersize=3, label=name)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    if timed:
        ax = axes[len(panels)]
        ax.plot(minutes, history["val_loss"], marker="o" if len(minutes) <= 30 else None, markersize=3,
                color="tab:orange")
        ax.set_title("validation loss against training time", fontsize=10)
        ax.set_xlabel("minutes (training and validation)")
    if show_rate:
        ax = axes[-1]
        ax.step(np.arange(1, len(rates) + 1), rates, where="post", color="tab:green")
        ax.set_yscale("log")
        ax.set_title("learning rate", fontsize=10)
        ax.set_xlabel("epoch")
    for i, ax in enumerate(axes):
        if not (timed and i == len(panels)):
            ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def training_history(history: dict, path, title: str = "") -> Path:
    """Save :func:`history_figure` (``<prefix>_history.png`` after every training)."""
    return _save(history_figure(history, title), path)


def gif(frames: list[np.ndarray], path, duration_ms: int = 120, colors: int = 16) -> Path:
    """An animated GIF of images in [0, 1] (grey or RGB), looping; ``colors`` levels keep the file small."""
    levels = max(1, 256 // colors)
    from PIL import Image

    pics = []
    for frame in frames:
        img, _ = _as_display(frame)
        pic = Image.fromarray((img * 255).round().astype(np.uint8))
        pics.append(pic.quantize(colors) if pic.mode == "RGB" else pic.point(lambda v: v // levels * levels))
    buf = io.BytesIO()
    pics[0].save(buf, format="GIF", save_all=True, append_images=pics[1:], duration=duration_ms, loop=0,
                 optimize=True)
    path = artifacts.write_bytes(path, buf.getvalue())
    print(f"saved {path}")
    return path
