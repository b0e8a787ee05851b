import numpy as np

from gtrxl_jax.suite.plots import mean_curve, plot_learning_curves


def test_mean_curve_interpolates_each_seed_within_its_range():
    a = (np.array([0.0, 100.0]), np.array([0.0, 1.0]))
    b = (np.array([0.0, 50.0, np.nan]), np.array([1.0, 1.0, 5.0]))
    grid, mean, std = mean_curve([a, b], grid_points=5)
    np.testing.assert_allclose(grid, [0, 25, 50, 75, 100])
    np.testing.assert_allclose(mean, [0.5, 0.625, 0.75, 0.75, 1.0])
    np.testing.assert_allclose(std, [0.5, 0.375, 0.25, 0.0, 0.0])
    assert mean_curve([(np.array([1.0]), np.array([np.nan]))])[0].size == 0


def test_plot_writes_a_png_only_when_there_is_data(tmp_path):
    curve = (np.array([0.0, 10.0]), np.array([0.5, 1.0]))
    path = tmp_path / "curves.png"
    assert plot_learning_curves({"T": {"lstm": [curve, curve]}}, "success", path, "t")
    assert path.read_bytes()[:4] == b"\x89PNG"
    empty = (np.array([0.0]), np.array([np.nan]))
    assert not plot_learning_curves({"T": {"lstm": [empty]}}, "success", tmp_path / "x.png", "t")
    assert not (tmp_path / "x.png").exists()
