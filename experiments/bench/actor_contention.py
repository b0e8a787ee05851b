"""How long the actor's torso forward takes while the learner's backward runs in the same process.

On XLA:CPU every jitted computation of a process shares one intra-op thread pool, so an
actor's step can queue behind the learner's long convolution tasks. This times the IMPALA
ResNet forward over 32 Atari frames (an actor step of 32 environments) alone, then while
another thread runs the forward and backward over `--learn-frames` frames (1,056 = the
reference batch of 33 x 32), optionally in `--chunks` sequential chunks (lax.map), which
makes each learner task shorter.

    python experiments/bench/actor_contention.py --learn-frames 1056 --chunks 1
"""

import argparse
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np

from gtrxl_jax.nn.torsos import ImpalaResNet

FRAME_SHAPE = (4, 84, 84)
ACTOR_FRAMES = 32


def timed_calls(fn, n: int) -> np.ndarray:
    """Seconds of n calls of fn, each waited on."""
    seconds = []
    for _ in range(n):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        seconds.append(time.perf_counter() - start)
    return np.array(seconds)


def summary(seconds: np.ndarray) -> str:
    """Median, worst and total seconds of a series of calls."""
    return (f"median {np.median(seconds):.3f} s, max {seconds.max():.3f} s, "
            f"total {seconds.sum():.2f} s over {len(seconds)} calls")


def main() -> None:
    """Time the actor's forward alone, then while a learner thread runs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--learn-frames", type=int, default=1056)
    parser.add_argument("--chunks", type=int, default=1, help="must divide --learn-frames")
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    if args.learn_frames % args.chunks:
        parser.error("--chunks must divide --learn-frames")

    torso = ImpalaResNet(channels_first=True)
    rng = np.random.default_rng(0)
    act_frames = jnp.asarray(rng.integers(0, 256, (ACTOR_FRAMES, *FRAME_SHAPE), np.uint8))
    learn_frames = jnp.asarray(rng.integers(0, 256, (args.learn_frames, *FRAME_SHAPE), np.uint8))
    params = torso.init(jax.random.PRNGKey(0), act_frames[:1])

    def chunked_apply(params, frames):
        if args.chunks == 1:
            return torso.apply(params, frames)  # as the learner runs it
        chunks = frames.reshape(args.chunks, -1, *FRAME_SHAPE)
        outputs = jax.lax.map(lambda chunk: torso.apply(params, chunk), chunks)
        return outputs.reshape(frames.shape[0], -1)

    forward = jax.jit(torso.apply)
    backward = jax.jit(jax.grad(lambda p, x: jnp.mean(jnp.square(chunked_apply(p, x)))))
    act = lambda: forward(params, act_frames)  # noqa: E731
    learn = lambda: backward(params, learn_frames)  # noqa: E731
    jax.block_until_ready((act(), learn()))  # compile both

    print(f"actor forward alone: {summary(timed_calls(act, args.calls))}")
    print(f"learner fwd+bwd alone: {timed_calls(learn, 1)[0]:.2f} s")
    stop = threading.Event()

    def learner_loop():
        while not stop.is_set():
            jax.block_until_ready(learn())

    learner = threading.Thread(target=learner_loop)
    learner.start()
    try:
        time.sleep(0.5)
        print(f"actor forward while the learner runs: {summary(timed_calls(act, args.calls))}")
    finally:
        stop.set()
        learner.join()


if __name__ == "__main__":
    main()
