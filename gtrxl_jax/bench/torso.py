"""The IMPALA ResNet torso on Atari frames: the learner's backward pass and the actor's forward.

torso: for each way of computing the convolutions' kernel gradients (XLA's convolution, or
  a matmul of image patches, `gtrxl_jax.nn.conv`) and the max-pools' gradients (XLA's
  select-and-scatter, or elementwise masks, `gtrxl_jax.nn.pooling`), one jitted forward +
  backward over
  8 * B frames of 84x84x4 uint8 (a slice of the learner's (T + 1) * B frames: the full
  1,056 take ~30 s a call on a 2-core CPU), and one forward over B frames (an actor's step).
"""

from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from gtrxl_jax.bench.registry import Record, Session, register
from gtrxl_jax.bench.timing import compile_jit, time_calls
from gtrxl_jax.nn.torsos import ImpalaResNet

FRAME_SHAPE = (4, 84, 84)  # envpool's stacked Atari frames, channels first
LEARN_FRAMES_PER_BATCH_ROW = 8


def measure_torso(session: Session, matmul_kernel_grad: bool, elementwise_pool_grad: bool,
                  backward: bool) -> Record:
    """Times the default ImpalaResNet's forward (+ backward) over a batch of random frames."""
    B = session.workload.batch
    frames = B * LEARN_FRAMES_PER_BATCH_ROW if backward else B
    torso = ImpalaResNet(
        channels_first=True,
        dtype=session.workload.core.dtype,
        matmul_kernel_grad=matmul_kernel_grad,
        elementwise_pool_grad=elementwise_pool_grad,
    )
    pixels = np.random.default_rng(0).integers(0, 256, (frames, *FRAME_SHAPE), np.uint8)
    pixels = jnp.asarray(pixels)
    params = torso.init(jax.random.PRNGKey(0), pixels[:1])
    if backward:
        fn = jax.grad(lambda params, x: jnp.mean(jnp.square(torso.apply(params, x))))
    else:
        fn = torso.apply
    compiled, compile_s = compile_jit(fn, (params, pixels))
    timing = time_calls(lambda: compiled(params, pixels), session.repeats, session.warmup)
    return {
        "kind": "torso_learn" if backward else "torso_act",
        "dtype": session.workload.core.dtype,
        "kernel_grad": "matmul" if matmul_kernel_grad else "xla",
        "pool_grad": "elementwise" if elementwise_pool_grad else "xla",
        "frames": frames,
        "compile_s": compile_s,
        **timing.fields(),
    }


@register("torso")
def torso(session: Session) -> Iterator[Record]:
    """IMPALA ResNet fwd+bwd (8B frames) with each gradient method, and fwd (B frames)."""
    for matmul_kernel_grad in (False, True):
        for elementwise_pool_grad in (False, True):
            yield measure_torso(session, matmul_kernel_grad, elementwise_pool_grad, backward=True)
    yield measure_torso(session, False, False, backward=False)  # the same forward either way
