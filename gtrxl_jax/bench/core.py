"""Learner and actor steps of the GTrXL core: update time, acting step time, memory scaling.

learn: one jitted update, jax.grad of a scalar loss of the core's outputs with respect to the
  parameters, over an unroll [T, B] from a full memory (every slot valid, no episode start:
  the most attention there can be); the memory is an input, not differentiated.
act: one jitted step (T = 1) of B sequences carrying a full memory, as an actor runs it: each
  step takes the memory the previous one returned. With the acting cache the memory's keys
  and values are read; without it they are re-projected. The memory is donated, as actors
  donate it, so a step writes its one ring slot in place instead of copying the memory.
  Acting streams more bytes than it computes on, so it is also given against the machine's
  read bandwidth: the least it must read (the parameters, and the memory's cached keys and
  values, or its states without the cache) over this run's measured read ceiling is the
  fastest the step could be. Its dense projections alone, each timed at its own B-row
  shape (`ceiling.matmul_floor`), estimate the share of the step that is matmuls, and what
  is left for its other operations.
scaling: act (cached and not) and learn at each memory length of the workload's sweep.
"""

import dataclasses
from collections.abc import Iterator

import jax
import jax.numpy as jnp

from gtrxl_jax.bench import flops
from gtrxl_jax.bench.bandwidth import bandwidth_gbs
from gtrxl_jax.bench.ceiling import ceiling_gflops, matmul_floor
from gtrxl_jax.bench.machine import available_memory_bytes
from gtrxl_jax.bench.peaks import peak_flops
from gtrxl_jax.bench.registry import Record, Session, register
from gtrxl_jax.bench.timing import (
    compile_jit,
    memory_fields,
    time_calls,
    xla_bytes_accessed,
    xla_flops,
)
from gtrxl_jax.bench.workloads import Workload
from gtrxl_jax.nn.config import GTrXLConfig
from gtrxl_jax.nn.gtrxl import GTrXL
from gtrxl_jax.nn.memory import Memory, init_gtrxl_memory


def config_fields(config: GTrXLConfig) -> dict:
    """The configuration's figures as flat record fields."""
    return {
        "dtype": config.dtype,
        "variant": config.variant,
        "gate": config.gate,
        "layers": config.num_layers,
        "d_model": config.d_model,
        "heads": config.num_heads,
        "head_dim": config.resolved_head_dim,
        "d_ff": config.resolved_d_ff,
        "memory_len": config.memory_len,
    }


@dataclasses.dataclass(frozen=True)
class Problem:
    """A core with parameters, a sequence and a full memory to time it on.

    Attributes:
      core: the GTrXL module.
      params: its parameters.
      inputs: [T, B, D] float32 standard normal.
      first: [T, B] bool, all False (no episode starts inside the unroll).
      memory: Memory with states [B, L, M, D] standard normal and every slot valid.
    """

    core: GTrXL
    params: dict
    inputs: jax.Array
    first: jax.Array
    memory: Memory


def make_problem(config: GTrXLConfig, T: int, B: int, seed: int = 0) -> Problem:
    """Random inputs and a full memory for the core of `config` over [T, B]."""
    key_inputs, key_states, key_params = jax.random.split(jax.random.PRNGKey(seed), 3)
    core = GTrXL(config)
    inputs = jax.random.normal(key_inputs, (T, B, config.d_model))
    first = jnp.zeros((T, B), bool)
    empty = init_gtrxl_memory(config, B)
    memory = empty.replace(
        states=jax.random.normal(key_states, empty.states.shape),
        valid=jnp.ones_like(empty.valid),
    )
    params = jax.jit(core.init)(key_params, inputs, first, memory)  # one compile, not op by op
    return Problem(core, params, inputs, first, memory)


def too_big(compiled) -> str | None:
    """Why the compiled step should not run here (its buffers exceed free memory), or None."""
    planned = memory_fields(compiled)
    if planned["temp_bytes"] is None:
        return None
    need = planned["argument_bytes"] + planned["output_bytes"] + planned["temp_bytes"]
    free = available_memory_bytes()
    if free is None or need <= free:
        return None
    return f"needs {need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free"


def _rates(session: Session, config: GTrXLConfig, flop_count: float, seconds: float) -> dict:
    """Achieved GFLOP/s, its fraction of this run's matmul ceiling, and MFU (compute dtype).

    MFU needs the chip's vendor peak (`peaks.PEAK_TFLOPS`), so it is None on CPUs and on
    accelerators not listed there.
    """
    gflops = flop_count / seconds / 1e9
    ceiling = ceiling_gflops(session, config.dtype)
    peak = peak_flops(jax.devices()[0].device_kind, config.dtype)
    return {
        "gflop_per_s": gflops,
        "ceiling_gflop_per_s": ceiling,
        "fraction_of_ceiling": gflops / ceiling if ceiling else None,
        "peak_gflop_per_s": peak / 1e9 if peak else None,
        "mfu": gflops * 1e9 / peak if peak else None,
    }


def _read_rates(session: Session, read_bytes: int, seconds: float) -> dict:
    """Bytes the step must read, its GB/s of them, and the floor this run's read ceiling sets."""
    ceiling = bandwidth_gbs(session)
    floor_s = _read_floor_s(ceiling, read_bytes)
    return {
        "read_bytes_min": read_bytes,
        "read_gb_per_s": read_bytes / seconds / 1e9,
        "ceiling_read_gb_per_s": ceiling,
        "read_floor_s": floor_s,
        "fraction_of_read_ceiling": floor_s / seconds if floor_s else None,
    }


def measure_learn(session: Session, workload: Workload) -> Record:
    """Times one learner update (forward and backward) over [T, B] from a full memory."""
    config, T, B = workload.core, workload.unroll, workload.batch
    problem = make_problem(config, T, B)
    core = problem.core

    def loss(params, inputs, first, memory):
        outputs, _ = core.apply(params, inputs, first, memory)
        return jnp.mean(jnp.square(outputs))

    args = (problem.params, problem.inputs, problem.first, problem.memory)
    update, compile_s = compile_jit(jax.grad(loss), args)
    record = {
        "kind": "learn",
        **config_fields(config),
        "unroll": T,
        "batch": B,
        "compile_s": compile_s,
        **memory_fields(update),
        "bytes_accessed_xla": xla_bytes_accessed(update),  # known before it runs, or fits
    }
    if reason := too_big(update):
        return {**record, "skipped": reason}
    timing = time_calls(lambda: update(*args), session.repeats, session.warmup)
    analytic = flops.learn_flops(config, T, B)
    counted = xla_flops(update)
    return {
        **record,
        **timing.fields(),
        "tokens_per_s": T * B / timing.median_s,
        "flops": analytic,
        "flops_source": "analytic (gtrxl_jax.bench.flops)",
        "flops_xla": counted,
        "gflop_per_s_xla": counted / timing.median_s / 1e9 if counted else None,
        **_rates(session, config, analytic, timing.median_s),
        **_traffic(session, record["bytes_accessed_xla"], timing.median_s),
    }


def _read_floor_s(ceiling_gbs: float | None, num_bytes: float) -> float | None:
    """Seconds a read bandwidth of `ceiling_gbs` needs for `num_bytes` (None: unmeasured)."""
    return num_bytes / (ceiling_gbs * 1e9) if ceiling_gbs else None


def _traffic(session: Session, bytes_accessed: float | None, seconds: float) -> dict:
    """The memory traffic XLA planned for a step and the time this run's ceiling needs for it.

    The traffic is the bytes its kernels read and write; where the floor is near the step's
    own time, the step is bound by memory, not matmuls (one that writes its attention scores
    out and reads them back, say).
    """
    floor_s = _read_floor_s(bandwidth_gbs(session), bytes_accessed) if bytes_accessed else None
    return {
        "traffic_floor_s": floor_s,
        "fraction_of_traffic_floor": floor_s / seconds if floor_s else None,
    }


def measure_act(session: Session, workload: Workload, cached: bool) -> Record:
    """Times one acting step (T = 1) of B sequences carrying a full memory."""
    config, B = workload.core, workload.batch
    problem = make_problem(config, 1, B)
    core, params = problem.core, problem.params
    memory = problem.memory
    if cached:
        memory = core.apply(params, memory.replace(cache=None), method=GTrXL.refresh_cache)
    inputs, first = problem.inputs, problem.first
    step, compile_s = compile_jit(core.apply, (params, inputs, first, memory), donate_argnums=3)
    record = {
        "kind": "act",
        **config_fields(config),
        "cached": cached,
        "batch": B,
        "compile_s": compile_s,
        **memory_fields(step),
    }
    if reason := too_big(step):
        return {**record, "skipped": reason}

    def act():
        nonlocal memory
        outputs, memory = step(params, inputs, first, memory)
        return outputs

    # Read before timing: the donated steps delete the memory passed in.
    streamed = memory.cache if cached else memory.states
    read_bytes = sum(x.nbytes for x in jax.tree.leaves((params, streamed)))
    timing = time_calls(act, session.act_repeats, session.warmup)
    analytic = flops.forward_flops(config, 1, B, cached=cached)
    floor = matmul_floor(session, config, 1, B, cached)
    return {
        **record,
        **timing.fields(),
        "steps_per_s": 1.0 / timing.median_s,
        "flops": analytic,
        "flops_source": "analytic (gtrxl_jax.bench.flops)",
        **_rates(session, config, analytic, timing.median_s),
        **_read_rates(session, read_bytes, timing.median_s),
        **floor,
        "fraction_of_matmul_floor": floor["matmul_floor_s"] / timing.median_s,
    }


@register("learn", requires=("ceiling", "bandwidth"))
def learn(session: Session) -> Iterator[Record]:
    """Learner update on the workload: seconds, tokens/s, GFLOP/s and fraction of the ceiling."""
    yield measure_learn(session, session.workload)


@register("act", requires=("ceiling", "bandwidth"))
def act(session: Session) -> Iterator[Record]:
    """Acting step on the workload, with the acting cache and without it."""
    for cached in (True, False):
        yield measure_act(session, session.workload, cached)


@register("scaling", requires=("ceiling", "bandwidth"))
def scaling(session: Session) -> Iterator[Record]:
    """Acting steps (cached and not) and the learner update at each memory length of the sweep."""
    for memory_len in session.workload.memory_lens:
        workload = session.workload.with_memory(memory_len)
        for cached in (True, False):
            yield measure_act(session, workload, cached)
        yield measure_learn(session, workload)
