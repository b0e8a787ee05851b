"""Learner time per step against trajectory length: K scanned segments vs one call."""

import functools
from collections.abc import Iterator

import jax
import jax.numpy as jnp

from gtrxl_jax.bench.core import config_fields, make_problem
from gtrxl_jax.bench.registry import Record, Session, register
from gtrxl_jax.bench.timing import compile_jit, memory_fields, time_calls
from gtrxl_jax.nn.segments import scan_segments

SEGMENT_COUNTS = (1, 2, 4, 8)


def measure_trajectory(session: Session, K: int, scanned: bool) -> Record:
    """Times one learner update (forward + backward) over K * T steps, scanned or in one call."""
    workload = session.workload
    config, T, B = workload.core, workload.unroll, workload.batch
    problem = make_problem(config, K * T, B)
    segment_len = T if scanned else None

    def loss(params, inputs, first, memory):
        core_fn = functools.partial(problem.core.apply, params)
        outputs, _ = scan_segments(core_fn, inputs, first, memory, segment_len)
        return jnp.mean(jnp.square(outputs))

    args = (problem.params, problem.inputs, problem.first, problem.memory)
    update, compile_s = compile_jit(jax.grad(loss), args)
    timing = time_calls(lambda: update(*args), session.repeats, session.warmup)
    return {
        "kind": "segments",
        **config_fields(config),
        "segment_len": T,
        "segments": K,
        "trajectory_len": K * T,
        "scanned": scanned,
        "batch": B,
        "compile_s": compile_s,
        **memory_fields(update),
        **timing.fields(),
        "s_per_step": timing.median_s / (K * T),
    }


@register("segments")
def segments(session: Session) -> Iterator[Record]:
    """Learn time per step for K = 1, 2, 4, 8 segments of T, scanned and as one call."""
    for K in SEGMENT_COUNTS:
        for scanned in (True, False):
            yield measure_trajectory(session, K, scanned)
