"""The suite's figures: learning curves, aggregate intervals, the memory horizon.

- Learning curves: environment steps vs return or success, one panel per task, one line per
  core. Each line is the mean over seeds, with a band of ± one standard deviation; seeds
  are put on a common grid of environment steps by linear interpolation, each only within
  its own range.
- Aggregate intervals: per core, the IQM and the optimality gap of the normalised scores
  with their 95% stratified bootstrap intervals (rliable's interval plot).
- Memory horizon: success against the cue distance, one line per core, as in Ni et al.
  2023 ("When Do Transformers Shine in RL?", https://arxiv.org/abs/2307.03864).
"""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import EngFormatter, MaxNLocator  # noqa: E402

from gtrxl_jax.suite.suites import variant_label  # noqa: E402

Curve = tuple[np.ndarray, np.ndarray]  # (env_steps [N], values [N])
_GRID_POINTS = 200
_LABELS = {"episode_return": "episode return", "success": "success rate"}


def mean_curve(curves: list[Curve], grid_points: int = _GRID_POINTS) -> tuple[np.ndarray, ...]:
    """Mean and std over seeds on a common step grid.

    Args:
      curves: one (env_steps, values) pair per seed; NaN values are dropped.
      grid_points: points of the common grid (0 .. the longest run's last step).

    Returns:
      (grid, mean, std), NaN where no seed covers a grid point; empty arrays if no seed
      has a finite value.
    """
    cleaned = []
    for steps, values in curves:
        keep = np.isfinite(steps) & np.isfinite(values)
        if keep.any():
            order = np.argsort(steps[keep])
            cleaned.append((steps[keep][order], values[keep][order]))
    if not cleaned:
        return np.empty(0), np.empty(0), np.empty(0)
    grid = np.linspace(min(s[0] for s, _ in cleaned), max(s[-1] for s, _ in cleaned), grid_points)
    stacked = np.stack(
        [
            np.where((grid >= s[0]) & (grid <= s[-1]), np.interp(grid, s, v), np.nan)
            for s, v in cleaned
        ]
    )
    covered = np.isfinite(stacked).any(axis=0)
    mean = np.full(grid.shape, np.nan)
    std = np.full(grid.shape, np.nan)
    mean[covered] = np.nanmean(stacked[:, covered], axis=0)
    std[covered] = np.nanstd(stacked[:, covered], axis=0)
    return grid, mean, std


def plot_learning_curves(
    curves: dict[str, dict[str, list[Curve]]], metric: str, path: Path, title: str
) -> bool:
    """Plot one panel per task, one line per core, and save a PNG.

    Args:
      curves: {task: {variant: [curve per seed]}} for this metric.
      metric: "episode_return" or "success" (the y-axis label).
      path: the PNG to write.
      title: the figure's title.

    Returns:
      Whether a figure was written (False when no task has a finite value).
    """
    tasks = [
        t
        for t, by_variant in curves.items()
        if any(mean_curve(c)[0].size for c in by_variant.values())
    ]
    if not tasks:
        return False
    cols = min(3, len(tasks))
    rows = math.ceil(len(tasks) / cols)
    figsize = (max(5 * cols, 7), 3.6 * rows + 0.4)
    fig, axes = plt.subplots(rows, cols, figsize=figsize, squeeze=False)
    for ax, task in zip(axes.flat, tasks, strict=False):
        for variant, seed_curves in curves[task].items():
            grid, mean, std = mean_curve(seed_curves)
            if not grid.size:
                continue
            (line,) = ax.plot(grid, mean, label=f"{variant_label(variant)} ({len(seed_curves)})")
            ax.fill_between(
                grid, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0
            )
        ax.set_title(task)
        ax.set_xlabel("environment steps")
        ax.xaxis.set_major_locator(MaxNLocator(6))
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_ylabel(_LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes.flat[len(tasks) :]:
        ax.set_visible(False)
    fig.suptitle(f"{title}\nmean ± std over seeds (number of seeds in brackets)")
    return _save(fig, path)


def plot_intervals(summary: dict[str, dict[str, float]], path: Path, title: str) -> bool:
    """Plot the IQM and the optimality gap of each core with their intervals; save a PNG.

    Args:
      summary: {variant: {"iqm", "iqm_low", "iqm_high", "optimality_gap", ...}}, as
        `gtrxl_jax.suite.tables.aggregates` returns it.
      path: the PNG to write.
      title: the figure's title.

    Returns:
      Whether a figure was written (False when no core has a finite IQM).
    """
    variants = [v for v, agg in summary.items() if math.isfinite(agg.get("iqm", math.nan))]
    if not variants:
        return False
    stats = (("iqm", "IQM (higher is better)"), ("optimality_gap", "optimality gap (lower)"))
    fig, axes = plt.subplots(1, 2, figsize=(10, 1.2 + 0.45 * len(variants)), squeeze=False)
    rows = np.arange(len(variants))
    for ax, (name, label) in zip(axes[0], stats, strict=True):
        points = np.array([summary[v][name] for v in variants])
        low = points - np.array([summary[v][f"{name}_low"] for v in variants])
        high = np.array([summary[v][f"{name}_high"] for v in variants]) - points
        ax.errorbar(points, rows, xerr=[low, high], fmt="o", capsize=4)
        ax.set_yticks(rows, [variant_label(v) for v in variants])
        ax.invert_yaxis()
        ax.set_xlabel(f"{label}, normalised score")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"{title}\npoint estimate and 95% stratified bootstrap interval over runs")
    return _save(fig, path)


def plot_horizon(
    points: dict[str, list[tuple]], path: Path, title: str, trajectory_len: int | None = None
) -> bool:
    """Plot success against cue distance, one line per core (Ni et al. 2023); save a PNG.

    Args:
      points: {variant: [(cue distance, task, seeds, success mean, success std)]}, as
        `gtrxl_jax.suite.tables.horizon_points` returns them.
      path: the PNG to write.
      title: the figure's title.
      trajectory_len: the learner's trajectory length, marked on the distance axis.

    Returns:
      Whether a figure was written (False when no point has a finite success).
    """
    finite = {v: [p for p in entries if math.isfinite(p[3])] for v, entries in points.items()}
    finite = {v: entries for v, entries in finite.items() if entries}
    if not finite:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for variant, entries in finite.items():
        distance, _, seeds, mean, std = (np.array(column) for column in zip(*entries, strict=True))
        ax.errorbar(
            distance,
            mean,
            yerr=std,
            marker="o",
            capsize=3,
            label=f"{variant_label(variant)} ({seeds.max()})",
        )
    distances = sorted({p[0] for entries in finite.values() for p in entries})
    ax.set_xscale("log", base=2)
    ax.set_xticks(distances, [str(d) for d in distances])
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1, label="chance")
    if trajectory_len:
        ax.axvline(
            trajectory_len,
            color="grey",
            linestyle="--",
            linewidth=1,
            label=f"trajectory length ({trajectory_len})",
        )
    ax.set_xlabel("cue distance (steps from the cue to the choice)")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(f"{title}\nmean ± std over seeds (number of seeds in brackets)")
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> bool:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
