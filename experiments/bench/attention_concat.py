"""The learning attention's two layouts of [memory ; segment], timed fwd+bwd on this machine.

`scores`: the memory's and the segment's scores concatenated ([B, H, T, S], float32) and the
weights split again for two value matmuls (gtrxl_jax's attention before 2026-12-04);
`keys`: keys and values concatenated ([B, H, S, Dh]) and scored with one matmul each (since
then). Both compute the same relative attention (`relative_shift`, mask, softmax); prints each
one's median and minimum time over alternating calls, XLA's planned traffic and its largest
gradient difference from `scores`.

    python experiments/bench/attention_concat.py --batch 16 --dtype float32   # paper's shapes
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from gtrxl_jax.nn.attention import relative_shift


def layouts(B: int, M: int, T: int, H: int, Dh: int, dtype):
    """The two formulations as functions of (queries [B, H, T, Dh], positions [M + 1, H, Dh]).

    Their memory's and segment's keys and values are random, [B, H, M or T, Dh].
    """
    matmul = lambda eq, a, b: jnp.einsum(eq, a, b, preferred_element_type=jnp.float32)  # noqa: E731
    keys = jax.random.split(jax.random.PRNGKey(1), 4)
    k_mem, v_mem = (jax.random.normal(k, (B, H, M, Dh), dtype) for k in keys[:2])
    k_seg, v_seg = (jax.random.normal(k, (B, H, T, Dh), dtype) for k in keys[2:])
    i, j = np.arange(T)[:, None], np.arange(M + T)[None]
    mask = jnp.asarray((j >= i) & (j <= M + i))[None, None]

    def weights(content, q, r):
        logits = (content + relative_shift(matmul("bhid,rhd->bhir", q, r), M + T))
        logits = jnp.where(mask, logits / np.sqrt(Dh), jnp.finfo(jnp.float32).min)
        return jax.nn.softmax(logits, -1).astype(dtype)

    def scores(q, r):
        content = jnp.concatenate([matmul("bhid,bhjd->bhij", q, k) for k in (k_mem, k_seg)], -1)
        w = weights(content, q, r)
        return (matmul("bhij,bhjd->bihd", w[..., :M], v_mem)
                + matmul("bhij,bhjd->bihd", w[..., M:], v_seg))

    def keys_values(q, r):
        k, v = jnp.concatenate([k_mem, k_seg], 2), jnp.concatenate([v_mem, v_seg], 2)
        return matmul("bhij,bhjd->bihd", weights(matmul("bhid,bhjd->bhij", q, k), q, r), v)

    return {"scores": scores, "keys": keys_values}


def main() -> None:
    """Times both layouts' fwd+bwd, alternating, and prints one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--unroll", type=int, default=80)
    parser.add_argument("--memory", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    dtype = jnp.dtype(args.dtype)
    shape = (args.batch, args.heads, args.unroll, args.head_dim)
    q = jax.random.normal(jax.random.PRNGKey(0), shape, dtype)
    r = jax.random.normal(jax.random.PRNGKey(2), (args.memory + 1, args.heads, args.head_dim),
                          dtype)
    steps, grads, traffic, times = {}, {}, {}, {}
    for name, attend in layouts(args.batch, args.memory, args.unroll, args.heads, args.head_dim,
                                dtype).items():
        loss = lambda q, r, attend=attend: jnp.sum(jnp.square(attend(q, r)))  # noqa: E731
        steps[name] = jax.jit(jax.grad(loss, (0, 1)))
        cost = steps[name].lower(q, r).compile().cost_analysis()
        traffic[name] = (cost[0] if isinstance(cost, list) else cost).get("bytes accessed", 0)
        grads[name] = jax.block_until_ready(steps[name](q, r))
        times[name] = []
    for _ in range(args.rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            jax.block_until_ready(step(q, r))
            times[name].append(time.perf_counter() - start)
    for name in steps:
        error = max(float(jnp.max(jnp.abs(a.astype(jnp.float32) - b.astype(jnp.float32))))
                    for a, b in zip(grads[name], grads["scores"], strict=True))
        print(f"{name:6s} {np.median(times[name]) * 1e3:8.1f} ms median, "
              f"{min(times[name]) * 1e3:8.1f} ms min, {traffic[name] / 1e9:6.2f} GB planned, "
              f"max |grad - scores' grad| {error:.2e}")


if __name__ == "__main__":
    main()
