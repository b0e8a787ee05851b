"""Learning curves: environment steps vs return or success, one panel per task, one line per core.

Each line is the mean over seeds, with a band of ± one standard deviation; seeds are put on
a common grid of environment steps by linear interpolation, each only within its own range.
"""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import EngFormatter, MaxNLocator  # noqa: E402

from gtrxl_jax.suite.suites import CORE_VARIANTS  # noqa: E402

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
            label = CORE_VARIANTS[variant].label if variant in CORE_VARIANTS else variant
            (line,) = ax.plot(grid, mean, label=f"{label} ({len(seed_curves)})")
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
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
