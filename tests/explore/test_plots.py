"""The figures: the density contours of a learned prior (where its lines are drawn, on the scatter and the
manifold) and the history figure's validation loss against training wall time."""

from __future__ import annotations

import math

import numpy as np

from vaelab.explore import plots


def _gaussian(center):
    center = np.asarray(center, dtype=float)
    return lambda z: -0.5 * np.sum((np.asarray(z) - center) ** 2, axis=1) - math.log(2 * math.pi)


def _level_radii(contours, center, to_values=lambda p: p):
    """Per level, the distances of its line's vertices from ``center`` (in latent values)."""
    out = []
    for segments in contours.allsegs:
        points = np.concatenate([to_values(s) for s in segments])
        out.append(np.linalg.norm(points - np.asarray(center), axis=1))
    return out


def test_contours_of_a_unit_gaussian_are_circles_at_the_levels_radii():
    """exp(-r^2 / 2) = f of the peak at r = sqrt(-2 ln f): each of the 6 levels from 5 % to 90 % of the peak is
    a circle of that radius around the mean."""
    plt = plots._plt()
    fig, ax = plt.subplots()
    grid = np.linspace(-4, 6, 241)
    contours = plots.density_contours(ax, _gaussian((1.0, -1.0)), grid, grid - 2.0)
    fractions = np.linspace(0.05, 0.9, plots.DENSITY_LEVELS)
    for f, radii in zip(fractions, _level_radii(contours, (1.0, -1.0))):
        np.testing.assert_allclose(radii, math.sqrt(-2 * math.log(f)), atol=0.03)
    plt.close(fig)


def test_on_a_manifold_the_lines_are_drawn_in_pixels_at_the_cells_latent_values():
    """The manifold's cells sit at pixel positions xs, ys and show latent values xv, yv (top row: largest z2):
    the contour lines must be where those values are, mapped back through the same positions."""
    plt = plots._plt()
    fig, ax = plt.subplots()
    xv = np.linspace(-3, 3, 61)
    yv = xv[::-1]
    xs, ys = 14 + 28 * np.arange(61), 14 + 28 * np.arange(61)

    def to_values(p):
        return np.stack([np.interp(p[:, 0], xs, xv), np.interp(p[:, 1], ys, yv)], axis=1)

    contours = plots.density_contours(ax, _gaussian((0.5, 1.0)), xs, ys, xv, yv)
    radii = _level_radii(contours, (0.5, 1.0), to_values)
    np.testing.assert_allclose(radii[2], math.sqrt(-2 * math.log(np.linspace(0.05, 0.9, 6)[2])), atol=0.03)
    plt.close(fig)


def test_a_density_that_is_zero_on_the_grid_draws_nothing():
    plt = plots._plt()
    fig, ax = plt.subplots()
    far = _gaussian((1e3, 1e3))
    assert plots.density_contours(ax, far, np.linspace(-1, 1, 5), np.linspace(-1, 1, 5)) is None
    plt.close(fig)


def test_history_figure_draws_the_validation_loss_against_cumulative_training_minutes():
    history = {"loss": [3.0, 2.0, 1.5], "val_loss": [3.5, 2.5, 2.0], "epoch_seconds": [30.0, 60.0, 90.0],
               "learning_rate": [1e-3, 1e-3, 1e-4]}
    fig = plots.history_figure(history)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "validation loss against training time", "learning rate"]
    (line,) = fig.axes[1].get_lines()
    np.testing.assert_allclose(line.get_xdata(), [0.5, 1.5, 3.0])  # minutes at the end of each epoch
    assert list(line.get_ydata()) == history["val_loss"]
    # no panel without a complete timing (an old log, or a resumed one that lost it) or without validation
    assert plots.training_minutes({"loss": [1.0, 2.0], "epoch_seconds": [3.0]}) is None
    for partial in ({**history, "epoch_seconds": [30.0]}, {k: v for k, v in history.items() if k != "val_loss"}):
        assert "validation loss against training time" not in [ax.get_title() for ax in
                                                               plots.history_figure(partial).axes]
    plots._plt().close("all")
