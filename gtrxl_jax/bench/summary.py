"""One short line per record of a gtrxl-bench JSONL file: the figures a person reads first."""

import json
from pathlib import Path

# What a record measured (printed as key=value) and what it found (formatted), in order.
IDENTITY = ("workload", "kind", "path", "shape", "dtype", "memory_len", "cached", "task", "core",
            "num_envs", "kernel_grad", "pool_grad", "overrides")
FIGURES = {
    "median_s": "{:.4g} s",
    "compile_s": "compile {:.3g} s",
    "tokens_per_s": "{:,.0f} tokens/s",
    "gflop_per_s": "{:,.1f} GFLOP/s",
    "fraction_of_ceiling": "{:.0%} of the matmul ceiling",
    "mfu": "MFU {:.1%}",
    "gb_per_s": "{:,.1f} GB/s",
    "fraction_of_read_ceiling": "{:.0%} of the speed the read bandwidth allows",
    "fraction_of_traffic_floor": "its memory traffic alone {:.0%} of that time",
    "fraction_of_matmul_floor": "its projections alone {:.0%} of that time",
    "sps": "{:,.1f} env steps/s",
    "learner_wait_share": "learner waits {:.1%}",
    "learner_s_per_1k_frames": "learner {:.3g} s per 1,000 frames",
    "sps_vs_actor_learner": "{:.2f}x the actor-learner",
    "seconds_to_95": "95% success after {:,.0f} s",
    "env_steps_to_95": "and {:,} env steps",
}


def summary_line(record: dict) -> str:
    """The record as one line: what it measured, then its main figures."""
    if record.get("kind") == "machine":
        return (f"machine: {record.get('devices')} {record.get('cpu')}, jax {record.get('jax')}, "
                f"{record.get('date')}")
    identity = " ".join([record.get("measurement", "?")] + [
        f"{k}={record[k]}" for k in IDENTITY if record.get(k) not in (None, [])])
    if "skipped" in record:
        return f"{identity}: skipped ({record['skipped']})"
    figures = [fmt.format(record[k]) for k, fmt in FIGURES.items() if record.get(k) is not None]
    return f"{identity}: {', '.join(figures)}"


def summarize(path: str | Path) -> list[str]:
    """A summary line for each record of the JSONL file at `path`.

    Raises:
      ValueError: a line is not a JSON object (naming the file and line).
    """
    lines = []
    with open(path) as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if not isinstance(record, dict):
                raise ValueError(f"{path}, line {number}: not a JSON record; --summarize reads "
                                 "the JSONL files that --out writes")
            lines.append(summary_line(record))
    return lines
