import numpy as np

from gtrxl_jax.suite.plots import mean_curve, plot_horizon, plot_intervals, plot_learning_curves


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


def test_horizon_and_interval_plots_need_a_finite_point(tmp_path):
    points = {"lstm": [(16, "TMaze-L15", 3, 0.9, 0.1), (32, "TMaze-L31", 3, float("nan"), 0.0)]}
    assert plot_horizon(points, tmp_path / "h.png", "t", trajectory_len=32)
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
    assert not plot_horizon(
        {"lstm": [(16, "TMaze-L15", 1, float("nan"), 0.0)]}, tmp_path / "x.png", "t"
    )
    summary = {
        "lstm": dict.fromkeys(("iqm", "iqm_low", "iqm_high"), 50.0)
        | dict.fromkeys(("optimality_gap", "optimality_gap_low", "optimality_gap_high"), 50.0)
    }
    assert plot_intervals(summary, tmp_path / "a.png", "t")
    assert not plot_intervals({"lstm": {"iqm": float("nan")}}, tmp_path / "y.png", "t")
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()
