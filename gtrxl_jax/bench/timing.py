"""Timing of jitted calls: compile time apart, then the median of repeated runs after warm-up."""

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax


@dataclasses.dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of repeated calls, each waited on until its results are ready.

    Attributes:
      median_s: the median, the figure every rate is computed from.
      min_s, max_s: the fastest and slowest call (the spread shows how noisy the machine was).
      cpu_median_s: the median CPU time of this process per call, all its threads together;
        on a machine shared with other jobs it changes less than the wall-clock time.
      repeats: how many calls were timed (after the warm-up calls).
    """

    median_s: float
    min_s: float
    max_s: float
    cpu_median_s: float
    repeats: int

    def fields(self) -> dict[str, float | int]:
        """The timing as flat record fields."""
        return dataclasses.asdict(self)


def compile_jit(
    fn: Callable, args: Sequence[Any], donate_argnums: int | tuple[int, ...] = ()
) -> tuple[Callable, float]:
    """Traces and compiles `jax.jit(fn, donate_argnums=donate_argnums)` for `args`.

    Returns:
      The compiled executable (call it with `args`) and the seconds tracing plus XLA
      compilation took.
    """
    start = time.perf_counter()
    compiled = jax.jit(fn, donate_argnums=donate_argnums).lower(*args).compile()
    return compiled, time.perf_counter() - start


def time_calls(call: Callable[[], Any], repeats: int, warmup: int) -> Timing:
    """Times `call()` (which runs a compiled step) `repeats` times after `warmup` calls."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}.")
    for _ in range(warmup):
        jax.block_until_ready(call())
    samples, cpu_samples = [], []
    for _ in range(repeats):
        cpu_start, start = time.process_time(), time.perf_counter()
        jax.block_until_ready(call())
        samples.append(time.perf_counter() - start)
        cpu_samples.append(time.process_time() - cpu_start)
    return Timing(
        median_s=statistics.median(samples),
        min_s=min(samples),
        max_s=max(samples),
        cpu_median_s=statistics.median(cpu_samples),
        repeats=repeats,
    )


def xla_flops(compiled: Any) -> float | None:
    """The FLOP count of a compiled executable by XLA's cost analysis, if the backend has one."""
    return xla_cost(compiled, "flops")


def xla_bytes_accessed(compiled: Any) -> float | None:
    """The bytes a compiled executable reads and writes in memory, by XLA's cost analysis.

    After fusion: what stays inside a fused kernel is not counted. None where the backend
    gives no such figure.
    """
    return xla_cost(compiled, "bytes accessed")


def xla_cost(compiled: Any, name: str) -> float | None:
    """One figure of XLA's cost analysis of a compiled executable (None: not given)."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list | tuple):  # older jax returned one dict per device program
        analysis = analysis[0] if analysis else None
    if not analysis or name not in analysis:
        return None
    return float(analysis[name])


def memory_fields(compiled: Any) -> dict[str, int | None]:
    """The buffer sizes XLA planned for a compiled executable: arguments, outputs, temporaries."""
    stats = compiled.memory_analysis()
    if stats is None:
        return {"argument_bytes": None, "output_bytes": None, "temp_bytes": None}
    return {
        "argument_bytes": stats.argument_size_in_bytes,
        "output_bytes": stats.output_size_in_bytes,
        "temp_bytes": stats.temp_size_in_bytes,
    }
