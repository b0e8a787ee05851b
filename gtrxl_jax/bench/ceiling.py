"""The machine's matmul ceiling, measured in the same run as the model so figures compare.

Two precisions: float32, and bfloat16 inputs accumulated in float32
(`jnp.matmul(a, b, preferred_element_type=jnp.float32)`, what AMX and tensor cores run fast).
Shapes: one large square matmul (the ceiling proper), and the shapes of the model's own
projections at the learner's batch of N = T * B rows. An acting step's projections have only
B rows, where XLA's kernels run well below that ceiling: `matmul_floor` times each of them at
its own shape, what a step's matmuls alone cost.
"""

from collections.abc import Iterator

import jax
import jax.numpy as jnp

from gtrxl_jax.bench import flops
from gtrxl_jax.bench.registry import Record, Session, register
from gtrxl_jax.bench.timing import compile_jit, time_calls
from gtrxl_jax.nn.config import GTrXLConfig

PRECISIONS = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def matmul_shapes(session: Session) -> dict[str, tuple[int, int, int]]:
    """(m, k, n) of the square ceiling matmul and of the model's projections at N = T * B."""
    workload = session.workload
    cfg = workload.core
    N, D, F = workload.unroll * workload.batch, cfg.d_model, cfg.resolved_d_ff
    attention_width = cfg.num_heads * cfg.resolved_head_dim
    return {
        "square": (workload.square, workload.square, workload.square),
        "query_projection": (N, D, attention_width),
        "gate_projection": (N, D, 3 * D),
        "mlp_hidden": (N, D, F),
        "mlp_output": (N, F, D),
    }


def _operands(m: int, k: int, n: int, dtype: str) -> tuple[jax.Array, jax.Array]:
    """Standard normal [m, k] and [k, n] matmul operands in `dtype`, the same every call."""
    key_a, key_b = jax.random.split(jax.random.PRNGKey(0))
    return (jax.random.normal(key_a, (m, k), PRECISIONS[dtype]),
            jax.random.normal(key_b, (k, n), PRECISIONS[dtype]))


def measure_matmul(session: Session, m: int, k: int, n: int, dtype: str) -> Record:
    """Times [m, k] @ [k, n] with `dtype` inputs and float32 accumulation and output."""
    a, b = _operands(m, k, n, dtype)
    compiled, _ = compile_jit(
        lambda a, b: jnp.matmul(a, b, preferred_element_type=jnp.float32), (a, b)
    )
    timing = time_calls(lambda: compiled(a, b), session.repeats, session.warmup)
    flops = 2 * m * k * n
    return {
        "dtype": dtype,
        "accumulation": "float32",
        "m": m,
        "k": k,
        "n": n,
        "flops": flops,
        "gflop_per_s": flops / timing.median_s / 1e9,
        **timing.fields(),
    }


@register("ceiling")
def ceiling(session: Session) -> Iterator[Record]:
    """Matmul FLOP/s of the machine: a large square and the model's shapes, in both precisions."""
    for dtype in PRECISIONS:
        for shape, (m, k, n) in matmul_shapes(session).items():
            yield {"shape": shape, **measure_matmul(session, m, k, n, dtype)}


def ceiling_gflops(session: Session, dtype: str) -> float | None:
    """The square-matmul GFLOP/s measured for `dtype` in this session, if measured."""
    record = session.find(measurement="ceiling", shape="square", dtype=dtype)
    return record["gflop_per_s"] if record else None


def chained_matmul_s(session: Session, m: int, k: int, n: int, dtype: str,
                     chain: int = 16) -> float:
    """Seconds per [m, k] @ [k, n] matmul (`dtype` inputs, float32 out) when run back to back.

    `chain` dependent matmuls run in one program, so the figure leaves out the per-call
    dispatch that a single small matmul's own timing would carry, as a matmul inside a
    compiled step does.
    """
    a, b = _operands(m, k, n, dtype)

    def chained(a, b):
        def body(i, total):  # scaling a by the step keeps XLA from hoisting the matmul
            scaled = (a * (1 + i).astype(a.dtype)).astype(a.dtype)
            return total + jnp.matmul(scaled, b, preferred_element_type=jnp.float32)
        return jax.lax.fori_loop(0, chain, body, jnp.zeros((m, n), jnp.float32))

    compiled, _ = compile_jit(chained, (a, b))
    return time_calls(lambda: compiled(a, b), session.repeats, session.warmup).median_s / chain


def matmul_floor(session: Session, config: GTrXLConfig, T: int, B: int,
                 cached: bool) -> dict[str, float]:
    """The seconds a forward call's dense projections alone take, each timed at its shape.

    Sums `chained_matmul_s` over the projections of `flops.projection_shapes` and the L
    layers (the attention's score and value products, a few percent of the FLOPs, are left
    out). Over the step's own time it estimates the share of the step that is matmuls, the
    rest being its other operations; an estimate, not a bound, since XLA may overlap
    independent operations on several cores.

    Returns:
      {"matmul_floor_s": the sum, "matmul_floor_parts_s": {projection name: seconds}}.
    """
    seconds = {}
    parts = {}
    for name, shapes in flops.projection_shapes(config, T, B, cached).items():
        for shape in shapes:
            if shape not in seconds:
                seconds[shape] = chained_matmul_s(session, *shape, config.dtype)
        parts[name] = config.num_layers * sum(seconds[shape] for shape in shapes)
    return {"matmul_floor_s": sum(parts.values()), "matmul_floor_parts_s": parts}
