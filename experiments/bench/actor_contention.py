"""How the actor's torso forward and the learner's backward slow each other down on a CPU.

On XLA:CPU every jitted computation of a process shares one intra-op thread pool, so an
actor's step can queue behind the learner's long convolution tasks. This times the IMPALA
ResNet forward over 32 Atari frames (an actor step of 32 environments) and the forward and
backward over `--learn-frames` frames (1,056 = the reference batch of 33 x 32) alone; then
the actor calls the forward in a loop for as long as one learner call runs. `--chunks` runs
the learner's frames in sequential chunks (lax.map), which makes each of its tasks shorter;
`--actor-process` runs the actor's loop in a spawned process (its own thread pool), as
`learner.actor_processes=true` runs actors.

    python experiments/bench/actor_contention.py --learn-frames 1056
    python experiments/bench/actor_contention.py --learn-frames 1056 --actor-process
"""

import argparse
import multiprocessing
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np

from gtrxl_jax.nn.torsos import ImpalaResNet

FRAME_SHAPE = (4, 84, 84)
ACTOR_FRAMES = 32


def random_frames(n: int) -> jax.Array:
    """[n, 4, 84, 84] uint8 random Atari frames."""
    return jnp.asarray(np.random.default_rng(n).integers(0, 256, (n, *FRAME_SHAPE), np.uint8))


def make_forward():
    """The jitted actor forward over 32 frames (compiled), as a no-argument call."""
    torso = ImpalaResNet(channels_first=True)
    frames = random_frames(ACTOR_FRAMES)
    params = torso.init(jax.random.PRNGKey(0), frames[:1])
    forward = jax.jit(torso.apply)
    jax.block_until_ready(forward(params, frames))
    return lambda: forward(params, frames)


def calls_until(fn, stop, limit: int = 10_000) -> np.ndarray:
    """Seconds of each call of fn (waited on), made until `stop` is set."""
    seconds = []
    while not stop.is_set() and len(seconds) < limit:
        start = time.perf_counter()
        jax.block_until_ready(fn())
        seconds.append(time.perf_counter() - start)
    return np.array(seconds)


def actor_process(ready, stop, results) -> None:
    """A process's actor loop: compile, say ready, call until stopped, send the seconds."""
    act = make_forward()
    ready.set()
    results.put(calls_until(act, stop))


def summary(seconds: np.ndarray) -> str:
    """Median, worst and total seconds of a series of calls."""
    return (f"{len(seconds)} calls, median {np.median(seconds):.3f} s, max {seconds.max():.3f} s, "
            f"total {seconds.sum():.2f} s")


def main() -> None:
    """Time each side alone, then the actor's calls during one learner call."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--learn-frames", type=int, default=1056)
    parser.add_argument("--chunks", type=int, default=1, help="must divide --learn-frames")
    parser.add_argument("--actor-process", action="store_true",
                        help="run the actor's loop in a process of its own")
    args = parser.parse_args()
    if args.learn_frames % args.chunks:
        parser.error("--chunks must divide --learn-frames")

    torso = ImpalaResNet(channels_first=True)
    learn_frames = random_frames(args.learn_frames)
    params = torso.init(jax.random.PRNGKey(0), learn_frames[:1])

    def chunked_apply(params, frames):
        if args.chunks == 1:
            return torso.apply(params, frames)  # as the learner runs it
        chunks = frames.reshape(args.chunks, -1, *FRAME_SHAPE)
        outputs = jax.lax.map(lambda chunk: torso.apply(params, chunk), chunks)
        return outputs.reshape(frames.shape[0], -1)

    backward = jax.jit(jax.grad(lambda p, x: jnp.mean(jnp.square(chunked_apply(p, x)))))
    jax.block_until_ready(backward(params, learn_frames))  # compile
    act = make_forward()

    def learn() -> float:
        start = time.perf_counter()
        jax.block_until_ready(backward(params, learn_frames))
        return time.perf_counter() - start

    alone = threading.Event()
    timer = threading.Timer(5.0, alone.set)
    timer.start()
    print(f"actor forward alone: {summary(calls_until(act, alone))}")
    print(f"learner fwd+bwd alone: {learn():.2f} s")

    if args.actor_process:
        context = multiprocessing.get_context("spawn")
        ready, stop, results = context.Event(), context.Event(), context.Queue()
        process = context.Process(target=actor_process, args=(ready, stop, results))
        process.start()
        ready.wait()
        learner_s = learn()
        stop.set()
        seconds = results.get()
        process.join()
        where = "in its own process"
    else:
        stop = threading.Event()
        box = []
        learner = threading.Thread(target=lambda: (box.append(learn()), stop.set()))
        learner.start()
        seconds = calls_until(act, stop)
        learner.join()
        learner_s = box[0]
        where = "in the learner's process"
    print(f"together, the actor {where}: learner fwd+bwd {learner_s:.2f} s; "
          f"actor forward {summary(seconds)}")


if __name__ == "__main__":
    main()
