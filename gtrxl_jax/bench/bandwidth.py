"""The machine's memory read bandwidth, the ceiling of steps that stream their data (acting).

An acting step at long memory does little arithmetic per byte: each layer reads its cached
keys and values once ([B, H, M, Dh] each) for one query per row. Its limit is how fast the
machine reads memory, not its matmul FLOP/s, so `act` reports its bytes per second as a
fraction of this ceiling. The buffer is larger than any CPU cache, so every call reads it
from main memory (or an accelerator's HBM).
"""

from collections.abc import Iterator

import jax
import jax.numpy as jnp

from gtrxl_jax.bench.registry import Record, Session, register
from gtrxl_jax.bench.timing import compile_jit, time_calls

# The buffer is read as _BLOCKS blocks (more than a CPU has threads, so XLA can give each
# thread its share) of rows of _ROW float32 each, summed down the rows: wide vector adds
# over contiguous memory. On a 2-core AMD EPYC this read as fast as any layout tried, and
# the most steadily: 21.0-21.6 GB/s in three runs, against 5-25 GB/s for the others (the
# column sums of one block, with 256-, 1024- or 8192-wide rows; the row sums; the total;
# the max).
_BLOCKS, _ROW = 64, 1024


def read_all(buffer: jax.Array) -> jax.Array:
    """Reads every element of `buffer` [N] once (N a multiple of 64 * 1024): [64, 1024] sums."""
    return jnp.sum(buffer.reshape(_BLOCKS, -1, _ROW), axis=1)


@register("bandwidth")
def bandwidth(session: Session) -> Iterator[Record]:
    """Memory read bandwidth: GB/s of a reduction over a buffer larger than the caches."""
    num_bytes = session.workload.stream_bytes
    unit = _BLOCKS * _ROW
    buffer = jnp.ones((max(num_bytes // 4 // unit, 1) * unit,), jnp.float32)
    compiled, _ = compile_jit(read_all, (buffer,))
    timing = time_calls(lambda: compiled(buffer), session.repeats, session.warmup)
    yield {
        "kind": "bandwidth",
        "access": "read",
        "bytes": buffer.nbytes,
        "gb_per_s": buffer.nbytes / timing.median_s / 1e9,
        **timing.fields(),
    }


def bandwidth_gbs(session: Session) -> float | None:
    """The read GB/s measured in this session, if measured."""
    record = session.find(measurement="bandwidth", access="read")
    return record["gb_per_s"] if record else None
