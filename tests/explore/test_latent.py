"""Latent-space helpers: quantile grids, class means, tiling, morphs and interpolations."""

import numpy as np
import pytest
from scipy.stats import norm

from vaelab.explore import latent


def test_normal_quantiles_are_norm_ppf():
    q = latent.normal_quantiles(5, scale=2.0)
    np.testing.assert_allclose(q, 2.0 * norm.ppf([0.05, 0.275, 0.5, 0.725, 0.95]), atol=1e-12)
    np.testing.assert_allclose(q, -q[::-1], atol=1e-12)


def test_manifold_latents_row_major_top_row_largest_z2():
    z = latent.manifold_latents(3)
    q = latent.normal_quantiles(3)
    assert z.shape == (9, 2)
    np.testing.assert_allclose(z[:3, 1], q[2])   # top row: largest z[1]
    np.testing.assert_allclose(z[0::3, 0], q[0])  # first column: smallest z[0]
    z3 = latent.manifold_latents(3, fixed=(0.7,))
    assert z3.shape == (9, 3) and np.all(z3[:, 2] == 0.7)


def test_class_means():
    z = np.array([[0, 0], [2, 2], [10, 10], [12, 14]], dtype=float)
    y = np.array([0, 0, 2, 2])
    m = latent.class_means(z, y, 3)
    np.testing.assert_allclose(m[0], [1, 1])
    np.testing.assert_allclose(m[2], [11, 12])
    assert np.all(np.isnan(m[1]))


def test_tile_places_images_row_by_row():
    imgs = np.arange(6, dtype=float).reshape(6, 1, 1, 1) * np.ones((6, 2, 3, 1))
    t = latent.tile(imgs, 2, 3)
    assert t.shape == (4, 9, 1)
    assert t[0, 0, 0] == 0 and t[0, 3, 0] == 1 and t[2, 0, 0] == 3 and t[3, 8, 0] == 5
    with pytest.raises(ValueError):
        latent.tile(imgs, 2, 2)


def test_morph_and_interpolate():
    a, b = np.array([1.0, 2.0]), np.array([-1.0, 4.0])
    m = latent.morph(a, b, [0.0, 0.5, 2.0])
    np.testing.assert_allclose(m, [[1, 2], [0.5, 4], [-1, 10]])
    i = latent.interpolate(a, b, [0.0, 0.25, 1.0])
    np.testing.assert_allclose(i, [[1, 2], [0.5, 2.5], [-1, 4]])


def test_slerp_keeps_the_ends_follows_the_great_circle_and_interpolates_the_norm():
    a, b = np.array([2.0, 0.0]), np.array([0.0, 4.0])
    path = latent.slerp(a, b, np.linspace(0, 1, 5))
    np.testing.assert_allclose(path[0], a, atol=1e-12)
    np.testing.assert_allclose(path[-1], b, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), [2.0, 2.5, 3.0, 3.5, 4.0])
    angles = np.arctan2(path[:, 1], path[:, 0])
    np.testing.assert_allclose(angles, np.linspace(0, np.pi / 2, 5))  # evenly along the arc
    np.testing.assert_allclose(latent.slerp(a, 3 * a, [0.5]), [[4.0, 0.0]])  # parallel: the line
