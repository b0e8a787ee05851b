"""Results tables (Markdown and CSV): per task and core, aggregates per core, the ablation.

- results.md / results.csv: one row per (task, core): seeds, greedy and sampled return and
  success (mean ± std over seeds), the normalised score of each evaluation mode, and the
  env steps its training score took to reach TRAINING_THRESHOLD (`scores.steps_to_score`).
- aggregates.csv (and a section of results.md): per core, the mean, median and capped mean
  over tasks of the seed-averaged normalised score (the suite's headline mode), and over
  all runs the interquartile mean and the optimality gap with 95% stratified bootstrap
  intervals (`gtrxl_jax.suite.intervals`).
- ablation.md / ablation.csv (ablation suites): the GTrXL paper's layout, variant x mean /
  capped normalised score, the share of runs that failed to learn, and the paper's
  DMLab-30 numbers beside them.
- horizon.md / horizon.csv (horizon suites): success per core against the cue distance of
  each task (`gtrxl_jax.suite.suites.cue_distance`), mean ± std over seeds.
- tuning.md / tuning.csv (learning-rate sweeps): each core's score per task and rate, and
  the rate it gets on that task (`best_learning_rates`).
"""

import csv
import dataclasses
import math
from pathlib import Path

import numpy as np

from gtrxl_jax.suite.intervals import CONFIDENCE, STATISTICS, interval_estimates
from gtrxl_jax.suite.records import MAX_CURVE_POINTS
from gtrxl_jax.suite.references import References, TaskReference
from gtrxl_jax.suite.results import MODES, TaskResult
from gtrxl_jax.suite.scores import (
    FAILED_TO_LEARN_BELOW,
    SMOOTHING_RECORDS,
    TRAINING_THRESHOLD,
    aggregate,
    failure_share,
    mean_std,
    steps_to_score,
)
from gtrxl_jax.suite.suites import cue_distance, split_variant, variant_label

_STATS = ("episode_return", "success")
_REACHED_STEPS = f"steps_to_{TRAINING_THRESHOLD:g}_median"
_REACHED_SEEDS = f"seeds_reaching_{TRAINING_THRESHOLD:g}"


@dataclasses.dataclass(frozen=True)
class ResultRow:
    """The results of one (task, core) over its seeds.

    Attributes:
      task: the task.
      variant: the core variant.
      seeds: the seeds that finished.
      metric: the metric the normalised score uses.
      values: {"<mode>_<stat>": (mean, std)} for stat in episode_return, success.
      scores: {mode: [normalised score of each seed]}.
      env_steps: mean environment steps per run.
      wall_clock_s: mean training seconds per run.
      steps_to_threshold: [per seed] env steps at which its training score first reached
        TRAINING_THRESHOLD (`scores.steps_to_score`); NaN where it never did. None where a
        run's learning curve lacks the task's metric (they keep return and success, not
        e.g. the episode length HealthGathering is scored on), so none can say.
    """

    task: str
    variant: str
    seeds: tuple[int, ...]
    metric: str
    values: dict[str, tuple[float, float]]
    scores: dict[str, list[float]]
    env_steps: float
    wall_clock_s: float
    steps_to_threshold: list[float] | None

    def score(self, mode: str) -> tuple[float, float]:
        """Mean and std over seeds of the normalised score in one mode."""
        return mean_std(self.scores[mode])

    def median_steps_to_threshold(self) -> tuple[float, int] | None:
        """The median over the seeds that reached TRAINING_THRESHOLD, and how many did.

        None where the learning curves cannot say (`steps_to_threshold`).
        """
        if self.steps_to_threshold is None:
            return None
        reached = [steps for steps in self.steps_to_threshold if math.isfinite(steps)]
        return (float(np.median(reached)) if reached else math.nan), len(reached)


def result_rows(
    results: list[TaskResult],
    references: References,
    tasks: tuple[str, ...],
    variants: tuple[str, ...],
) -> list[ResultRow]:
    """Group task results by (task, core), in the given order, with normalised scores.

    Args:
      results: every finished task result.
      references: the reference data (every task must have an entry).
      tasks: the scored tasks, in table order.
      variants: the core variants, in table order.

    Returns:
      One row per (task, variant) that has at least one result.
    """
    rows = []
    for task in tasks:
        ref = references.for_task(task)
        for variant in variants:
            group = sorted(
                (r for r in results if r.task == task and r.variant == variant),
                key=lambda r: r.seed,
            )
            if not group:
                continue
            values = {
                f"{mode}_{stat}": mean_std(r.evals[mode].metric(stat) for r in group)
                for mode in MODES
                for stat in _STATS
            }
            scores = {
                mode: [ref.normalize(r.evals[mode].metric(ref.metric)) for r in group]
                for mode in MODES
            }
            rows.append(
                ResultRow(
                    task=task,
                    variant=variant,
                    seeds=tuple(r.seed for r in group),
                    metric=ref.metric,
                    values=values,
                    scores=scores,
                    env_steps=mean_std(r.env_steps for r in group)[0],
                    wall_clock_s=mean_std(r.wall_clock_s for r in group)[0],
                    steps_to_threshold=_steps_to_threshold(group, ref),
                )
            )
    return rows


def _steps_to_threshold(group: list[TaskResult], ref: TaskReference) -> list[float] | None:
    """`steps_to_score` of each run's training curve; None if a curve lacks the task's metric."""
    if not all(ref.metric in result.curve for result in group):
        return None
    return [steps_to_score(result.curve["env_steps"],
                           [ref.normalize(v) for v in result.curve[ref.metric]])
            for result in group]


def aggregates(rows: list[ResultRow], mode: str) -> dict[str, dict[str, float]]:
    """Per core: the aggregates of its normalised scores in one evaluation mode.

    Every core is aggregated over the same tasks, those every core has a score on
    (`shared_tasks`), so that the cores compare; a suite still running leaves the others out.

    Returns:
      {variant: {"mean", "median", "capped_mean", "tasks", "missing"}} over tasks of the
      seed-averaged score (`scores.aggregate`; "missing": the runs of these tasks without a
      score, e.g. an evaluation without the task's metric, which every statistic leaves
      out), and over all runs "iqm" and
      "optimality_gap" with their 95% stratified bootstrap intervals ("iqm_low",
      "iqm_high", ...; `intervals.interval_estimates`); {} if no task is shared.
    """
    shared = shared_tasks(rows, mode)
    by_variant: dict[str, list[ResultRow]] = {}
    for row in rows:
        if row.task in shared:
            by_variant.setdefault(row.variant, []).append(row)
    summary = {}
    for variant, group in by_variant.items():
        summary[variant] = aggregate(row.score(mode)[0] for row in group)
        summary[variant]["missing"] = sum(not math.isfinite(score) for row in group
                                          for score in row.scores[mode])
        estimates = interval_estimates({row.task: row.scores[mode] for row in group})
        for name, (point, low, high) in estimates.items():
            summary[variant].update({name: point, f"{name}_low": low, f"{name}_high": high})
    return summary


def shared_tasks(rows: list[ResultRow], mode: str) -> tuple[str, ...]:
    """The tasks (in row order) on which every core of `rows` has a score in `mode`."""
    tasks = {}
    for row in rows:
        scored = {row.variant} if math.isfinite(row.score(mode)[0]) else set()
        tasks.setdefault(row.task, set()).update(scored)
    variants = {row.variant for row in rows}
    return tuple(task for task, have in tasks.items() if have == variants)


_INTERVAL_KEYS = tuple(f"{n}{end}" for n in STATISTICS for end in ("", "_low", "_high"))


def reported_runs(out_dir: Path) -> set[tuple[str, str, int]]:
    """The (task, core, seed) of every run that out_dir's results.csv reports (none if absent)."""
    path = out_dir / "results.csv"
    if not path.exists():
        return set()
    with open(path) as file:
        return {(row["task"], row["core"], int(seed)) for row in csv.DictReader(file)
                for seed in row["seed_list"].split()}


def write_results(
    rows: list[ResultRow], out_dir: Path, mode: str, title: str, references: References,
    variants: tuple[str, ...] = (),
) -> dict[str, dict[str, float]]:
    """Write results.md, results.csv and aggregates.csv into out_dir; return the aggregates.

    The aggregates are those of `aggregates(rows, mode)`, per core. results.md ends with the
    published numbers that `references` holds for the table's tasks. `variants`: the
    suite's cores, so that results.md names those without any result yet.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    header = ["task", "core", "seeds", "metric"]
    for mode_ in MODES:
        for stat in _STATS:
            header += [f"{mode_}_{stat}_mean", f"{mode_}_{stat}_std"]
    for mode_ in MODES:
        header += [f"{mode_}_score_mean", f"{mode_}_score_std"]
    header += ["env_steps", "wall_clock_s", "seed_list", _REACHED_STEPS, _REACHED_SEEDS]
    with open(out_dir / "results.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for row in rows:
            line = [row.task, row.variant, len(row.seeds), row.metric]
            for mode_ in MODES:
                for stat in _STATS:
                    line += list(row.values[f"{mode_}_{stat}"])
            for mode_ in MODES:
                line += list(row.score(mode_))
            line += [row.env_steps, row.wall_clock_s, " ".join(map(str, row.seeds)),
                     *(row.median_steps_to_threshold() or (math.nan, math.nan))]
            writer.writerow([_csv(v) for v in line])

    summary = aggregates(rows, mode)
    with open(out_dir / "aggregates.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(
            ["core", "mode", "mean", "median", "capped_mean", "tasks", "missing", *_INTERVAL_KEYS]
        )
        for variant, agg in summary.items():
            writer.writerow(
                [
                    variant,
                    mode,
                    *(_csv(agg[k]) for k in ("mean", "median", "capped_mean")),
                    agg["tasks"],
                    agg["missing"],
                    *(_csv(agg[k]) for k in _INTERVAL_KEYS),
                ]
            )

    lines = [
        f"# {title}",
        "",
        "Mean ± std over seeds. Score: 100 × (agent − random) / (reference − random) on the "
        "task's metric (see gtrxl_jax/suite/references.json). Steps to "
        f"{TRAINING_THRESHOLD:g}: the env steps at which a run's training score (its learning "
        f"curve as kept, at most {MAX_CURVE_POINTS} evenly spaced records, smoothed over "
        f"{SMOOTHING_RECORDS} of them) first reached "
        f"{TRAINING_THRESHOLD:g}, the median over the seeds that reached it, and how many did.",
        "",
        "| task | core | seeds | greedy return | greedy success | sampled return | "
        f"sampled success | score (greedy) | score (sampled) | steps to {TRAINING_THRESHOLD:g} |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [row.task, row.variant, str(len(row.seeds))]
        cells += [_pm(*row.values[f"{m}_{s}"]) for m in MODES for s in _STATS]
        cells += [_pm(*row.score(m)) for m in MODES]
        cells.append(_steps_reached(row))
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"## Aggregates over tasks ({mode} evaluation)",
        "",
        "Capped mean: each task's score capped at 100 first (DMLab-30's convention). IQM "
        "(interquartile mean of all runs) and optimality gap (100 minus the mean of the runs' "
        f"scores capped at 100), with {CONFIDENCE:.0%} stratified bootstrap intervals "
        f"(rliable's method, Agarwal et al. 2021). {_shared_tasks_note(rows, variants, mode)}",
        "",
        "| core | tasks | mean | median | capped mean | IQM [95% CI] | optimality gap [95% CI] |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, agg in summary.items():
        tasks = f"{agg['tasks']}" + (f" ({agg['missing']} runs without a score)"
                                     if agg["missing"] else "")
        lines.append(
            f"| {variant} | {tasks} | {_fmt(agg['mean'])} | {_fmt(agg['median'])} | "
            f"{_fmt(agg['capped_mean'])} | {_interval(agg, 'iqm')} | "
            f"{_interval(agg, 'optimality_gap')} |"
        )
    lines += _published_section(rows, references)
    (out_dir / "results.md").write_text("\n".join(lines) + "\n")
    return summary


def _steps_reached(row: ResultRow) -> str:
    """A results.md cell: the median steps to the threshold and the seeds that reached it.

    E.g. "1.2M (2/3)", "— (0/3)" where no seed reached it, "n/a" where the learning curves
    cannot say.
    """
    if (median := row.median_steps_to_threshold()) is None:
        return "n/a"
    steps, reached = median
    figure = f"{steps / 1e6:.2g}M" if reached else "—"
    return f"{figure} ({reached}/{len(row.seeds)})"


def _published_section(rows: list[ResultRow], references: References) -> list[str]:
    """Markdown lines: each of the table's tasks' published numbers (none: no lines)."""
    tasks = [task for task in dict.fromkeys(row.task for row in rows)
             if references.published.get(task)]
    if not tasks:
        return []
    lines = ["", "## Published numbers for these tasks", "",
             "As gtrxl_jax/suite/references.json records them, with their sources. A "
             "number's metric may differ from this table's (POPGym reports MMER: the maximum "
             "over training of the mean episodic return, averaged over runs); a missing "
             "number is one that was looked for and not found.", ""]
    for task in tasks:
        for entry in references.published[task]:
            value = entry.get("value")
            figure = "no number found" if value is None else f"{value:g}"  # as recorded
            if value is not None and entry.get("sd") is not None:
                figure += f" ± {entry['sd']:g}"
            if entry.get("metric"):
                figure += f" ({entry['metric']})"
            lines.append(f"- {task}, {entry['agent']}: {figure}. Source: {entry['source']}")
    return lines


def _shared_tasks_note(rows: list[ResultRow], variants: tuple[str, ...], mode: str) -> str:
    """The sentences naming the tasks and cores the aggregates cover, and those left out.

    Tasks: `shared_tasks`. Cores: those of `variants` without any result are named.
    """
    shared = shared_tasks(rows, mode)
    note = f"Every core over the same tasks: {', '.join(shared) if shared else 'none yet'}"
    left = tuple(dict.fromkeys(row.task for row in rows if row.task not in shared))
    if left:
        note += f" (left out, as not every core has a score on them yet: {', '.join(left)})"
    absent = [variant for variant in variants if variant not in {row.variant for row in rows}]
    if absent:
        note += f". Not aggregated, as they have no result yet: {', '.join(absent)}"
    return note + "."


def write_ablation(rows: list[ResultRow], references: References, out_dir: Path, mode: str,
                   crashed: dict[str, int] | None = None) -> None:
    """Write ablation.md and ablation.csv in the GTrXL paper's layout.

    `crashed` counts each variant's runs that raised and have no result (a divergence that
    stopped a run): each counts as a run that failed to learn.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paper = references.ablation_paper.get("variants", {})
    summary = aggregates(rows, mode)
    crashed = crashed or {}
    table = []
    for variant in dict.fromkeys([*summary, *crashed]):  # a variant whose every run crashed too
        agg = summary.get(variant) or aggregate([])
        run_scores = [s for row in rows if row.variant == variant for s in row.scores[mode]]
        run_scores += [math.nan] * crashed.get(variant, 0)
        ref = paper.get(variant, {})
        table.append(
            {
                "variant": variant,
                "label": variant_label(variant),
                "runs": len(run_scores),
                "failed_pct": 100.0 * failure_share(run_scores),
                "mean": agg["mean"],
                "median": agg["median"],
                "capped_mean": agg["capped_mean"],
                "paper_mean": ref.get("mean", math.nan),
                "paper_capped": ref.get("capped", math.nan),
                "paper_divergence_pct": ref.get("divergence_pct", math.nan),
            }
        )
    _write_dict_rows(out_dir / "ablation.csv", table, empty_header="variant")
    lines = [
        "# Ablation (the GTrXL paper's layout)",
        "",
        f"Scores: {mode} evaluation, normalised per task, averaged over seeds, then over "
        "tasks. A run (one task, one seed) *failed to learn* when its final normalised "
        f"score is below {FAILED_TO_LEARN_BELOW:g} or missing; runs and failures count "
        "every task, runs that crashed included.",
        "Paper columns: DMLab-30 after 10B steps (V-MPO), and the share of 25 hyperparameter "
        "samples that diverged on DMLab's Memory Maze (Parisotto et al. 2019).",
        "",
        "| model | runs | mean | median | capped mean | failed to learn | paper mean | "
        "paper capped | paper divergence |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in table:
        lines.append(
            f"| {e['label']} | {e['runs']} | {_fmt(e['mean'])} | {_fmt(e['median'])} | "
            f"{_fmt(e['capped_mean'])} | {_fmt(e['failed_pct'])}% | {_fmt(e['paper_mean'])} | "
            f"{_fmt(e['paper_capped'])} | {_pct(e['paper_divergence_pct'])} |"
        )
    (out_dir / "ablation.md").write_text("\n".join(lines) + "\n")


def horizon_points(rows: list[ResultRow], mode: str) -> dict[str, list[tuple]]:
    """Per core: (cue distance, task, seeds, success mean, success std), by distance.

    Rows whose task has no cue distance are left out.
    """
    points: dict[str, list[tuple]] = {}
    for row in rows:
        distance = cue_distance(row.task)
        if distance is not None:
            mean, std = row.values[f"{mode}_success"]
            points.setdefault(row.variant, []).append(
                (distance, row.task, len(row.seeds), mean, std)
            )
    return {variant: sorted(p) for variant, p in points.items()}


def read_horizon(path: Path, mode: str) -> dict[str, list[tuple]]:
    """A horizon.csv's `mode` rows, as `horizon_points` returned them when it was written."""
    points: dict[str, list[tuple]] = {}
    with open(path, newline="") as file:
        for r in csv.DictReader(file):
            if r["mode"] == mode:
                points.setdefault(r["core"], []).append(
                    (int(r["cue_distance"]), r["task"], int(r["seeds"]),
                     float(r["success_mean"]), float(r["success_std"])))
    return {core: sorted(p) for core, p in points.items()}


def write_horizon(rows: list[ResultRow], out_dir: Path, mode: str) -> None:
    """Write horizon.md and horizon.csv: success against cue distance, per core."""
    out_dir.mkdir(parents=True, exist_ok=True)
    points = horizon_points(rows, mode)
    with open(out_dir / "horizon.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(
            ["core", "task", "cue_distance", "seeds", "mode", "success_mean", "success_std"]
        )
        for variant, entries in points.items():
            for distance, task, seeds, mean, std in entries:
                writer.writerow([variant, task, distance, seeds, mode, _csv(mean), _csv(std)])
    distances = sorted({(p[0], p[1]) for entries in points.values() for p in entries})
    lines = [
        "# Memory horizon: success against cue distance",
        "",
        f"{mode.capitalize()} evaluation, success rate, mean ± std over seeds; the cue lies "
        "L + 1 steps before the choice in TMaze-L<L>; chance is 0.5.",
        "",
        "| core | " + " | ".join(f"{d} ({task})" for d, task in distances) + " |",
        "|---|" + "---|" * len(distances),
    ]
    for variant, entries in points.items():
        by_distance = {p[0]: p for p in entries}
        cells = [_pm(*by_distance[d][3:]) if d in by_distance else "—" for d, _ in distances]
        lines.append(f"| {variant_label(variant)} | " + " | ".join(cells) + " |")
    (out_dir / "horizon.md").write_text("\n".join(lines) + "\n")


def best_learning_rates(
    rows: list[ResultRow], mode: str, grid: tuple[float, ...]
) -> dict[str, dict[str, float]]:
    """Each core's best rate on each task of a tuning sweep: its highest mean score.

    A core gets a pick on a task only once it has a result at every rate of `grid`: a
    sweep still running picks nothing for it (its best rate so far may not stay best).

    Args:
      rows: result rows whose variants are "<core>@lr<rate>" (`suites.swept_variant`).
      mode: the evaluation mode whose normalised scores (mean over seeds) decide.
      grid: the sweep's learning rates (`Suite.learning_rates`).

    Returns:
      {task: {core: learning rate}}; a tie goes to the rate listed first in `grid`.
    """
    return {task: {core: max(grid, key=by_rate.get) for core, by_rate in by_core.items()
                   if set(grid) <= set(by_rate)}
            for task, by_core in _swept_scores(rows, mode).items()}


def _swept_scores(rows: list[ResultRow], mode: str) -> dict[str, dict[str, dict[float, float]]]:
    """{task: {core: {rate: mean normalised score}}} of a sweep's rows (NaN as -inf)."""
    scores: dict[str, dict[str, dict[float, float]]] = {}
    for row in rows:
        core, rate = split_variant(row.variant)
        if rate is not None:
            score = row.score(mode)[0]
            by_rate = scores.setdefault(row.task, {}).setdefault(core, {})
            by_rate[rate] = score if math.isfinite(score) else -math.inf
    return scores


def write_tuning(rows: list[ResultRow], out_dir: Path, mode: str,
                 grid: tuple[float, ...]) -> None:
    """Write tuning.md and tuning.csv: each core's score per task and rate, and its pick.

    The pick (`best_learning_rates`) is, per task, the rate of `grid` with the highest
    seed-averaged normalised score in `mode`, made once the core has run at every rate.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    best, swept = best_learning_rates(rows, mode, grid), _swept_scores(rows, mode)
    table = []
    for row in rows:
        core, rate = split_variant(row.variant)
        mean, std = row.score(mode)
        table.append({"task": row.task, "core": core, "learning_rate": rate,
                      "seeds": len(row.seeds), "score_mean": mean, "score_std": std,
                      "chosen": best[row.task].get(core) == rate})
    _write_dict_rows(out_dir / "tuning.csv", table, empty_header="task")
    lines = [
        "# Learning-rate sweep",
        "",
        f"Normalised score ({mode} evaluation), mean ± std over seeds. A core's pick on a "
        "task (**bold**) is the rate with the highest mean; a tie goes to the rate listed first. "
        "A core gets its pick once it has run at every rate of the sweep "
        f"({', '.join(f'{rate:g}' for rate in grid)}).",
    ]
    for task in dict.fromkeys(entry["task"] for entry in table):
        lines += ["", f"## {task}", "", "| core | learning rate | seeds | score |",
                  "|---|---|---|---|"]
        for entry in (e for e in table if e["task"] == task):
            rate = f"{entry['learning_rate']:g}"
            cells = [variant_label(entry["core"]), f"**{rate}**" if entry["chosen"] else rate,
                     str(entry["seeds"]), _pm(entry["score_mean"], entry["score_std"])]
            lines.append("| " + " | ".join(cells) + " |")
        missing = {core: [rate for rate in grid if rate not in by_rate]
                   for core, by_rate in swept[task].items()}
        if any(missing.values()):
            lines += ["", "No pick yet (rates still to run): " + "; ".join(
                f"{variant_label(core)} ({', '.join(f'{rate:g}' for rate in rates)})"
                for core, rates in missing.items() if rates) + "."]
    (out_dir / "tuning.md").write_text("\n".join(lines) + "\n")


def _write_dict_rows(path: Path, table: list[dict], empty_header: str) -> None:
    """A CSV file with one row per dict, headed by the first dict's keys (or `empty_header`)."""
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(table[0]) if table else [empty_header])
        writer.writeheader()
        for entry in table:
            writer.writerow({k: _csv(v) for k, v in entry.items()})


def _interval(agg: dict[str, float], name: str) -> str:
    """The text "point [low, high]" of one interval estimate."""
    if not math.isfinite(agg[name]):
        return "—"
    return f"{_fmt(agg[name])} [{_fmt(agg[name + '_low'])}, {_fmt(agg[name + '_high'])}]"


def _decimals(x: float) -> int:
    x = abs(round(x, 2))
    return 0 if x >= 100 else 1 if x >= 10 else 2


def _fmt(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    return f"{x:.{_decimals(x)}f}"


def _pm(mean: float, std: float) -> str:
    """Mean ± std, both with the decimals that suit the mean."""
    if not math.isfinite(mean):
        return "—"
    return f"{mean:.{_decimals(mean)}f} ± {std:.{_decimals(mean)}f}"


def _pct(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{x:.0f}%"


def _csv(value: object) -> object:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else ""
    return value
