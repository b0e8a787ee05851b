"""The whole learner update: the agent's unroll, the V-trace loss, the optimiser and the checks.

update: one `Learner.update` on one device, an agent with vector observations around the
  workload's core, over a random batch of T + 1 steps by B rows (episode starts included),
  with the training's default optimiser (`make_optimizer("adam", ...)`: clipping, then Adam).
  Reports the first call's compile time (what a run waits before its first update) apart
  from the seconds per update. The batch's starting memory is on the learner's device
  before timing, as an actor's is in training (at the paper's scale it is 1.6 GB: copied
  from the host on every update, it would be timed as part of the update). `core`'s learn
  measures the core alone.
"""

import time
from collections.abc import Iterator

import jax
import numpy as np

from gtrxl_jax.agent import Agent, AgentInput
from gtrxl_jax.bench.core import config_fields
from gtrxl_jax.bench.registry import Record, Session, register
from gtrxl_jax.bench.timing import Timing, time_calls
from gtrxl_jax.config import LossConfig
from gtrxl_jax.train.learning import Learning
from gtrxl_jax.train.optimizer import make_optimizer
from gtrxl_jax.train.placement import Learner
from gtrxl_jax.train.types import Trajectory

OBSERVATION_DIM = 8
NUM_ACTIONS = 6


def random_trajectory(agent: Agent, T: int, B: int, seed: int = 0) -> Trajectory:
    """A random batch [T+1, B] for the agent's observations (episode starts included).

    Float observations are standard normal; uint8 ones (pixels) uniform over 0..255.
    """
    rng = np.random.default_rng(seed)
    spec = agent.observation_spec
    A = agent.num_actions
    if spec.dtype == np.uint8:
        observation = rng.integers(0, 256, (T + 1, B, *spec.shape), np.uint8)
    else:
        observation = rng.normal(size=(T + 1, B, *spec.shape)).astype(np.float32)
    first = rng.random((T + 1, B)) < 0.2
    first[0] = True
    return Trajectory(
        inputs=AgentInput(
            observation=observation,
            first=first,
            prev_action=rng.integers(0, A, (T + 1, B)).astype(np.int32),
            prev_reward=rng.normal(size=(T + 1, B)).astype(np.float32),
        ),
        actions=rng.integers(0, A, (T + 1, B)).astype(np.int32),
        behaviour_logits=rng.normal(size=(T + 1, B, A)).astype(np.float32),
        discount=(rng.random((T + 1, B)) > 0.1).astype(np.float32),
        task_id=np.zeros(B, np.int32),
        core_state=jax.device_get(agent.initial_state(B)),
        param_version=np.zeros(B, np.int32),
    )


def time_updates(learner: Learner, batch: Trajectory, repeats: int,
                 warmup: int) -> tuple[float, Timing]:
    """The first update's seconds (compile included) and the timing of later ones.

    Every update starts from the state the previous one returned (which it donates).
    """
    state = learner.replicate(learner.init_state(jax.random.PRNGKey(0)))
    start = time.perf_counter()
    state, _ = jax.block_until_ready(learner.update(state, batch))
    first_call_s = time.perf_counter() - start

    def step():
        nonlocal state
        state, metrics = learner.update(state, batch)
        return state, metrics

    return first_call_s, time_calls(step, repeats, warmup)


@register("update")
def update(session: Session) -> Iterator[Record]:
    """The learner's whole update on the workload's core: compile time and seconds per update."""
    workload = session.workload
    T, B = workload.unroll, workload.batch
    agent = Agent(jax.ShapeDtypeStruct((OBSERVATION_DIM,), np.float32), NUM_ACTIONS,
                  workload.core)
    learner = Learner(Learning(agent, LossConfig(), make_optimizer("adam", 1e-4)),
                      jax.local_devices()[:1], trajectory_len=T)
    batch = random_trajectory(agent, T, B)
    batch = batch.replace(core_state=jax.device_put(batch.core_state, learner.local_devices[0]))
    first_call_s, timing = time_updates(learner, batch, session.repeats, session.warmup)
    yield {
        "kind": "update",
        **config_fields(workload.core),
        "unroll": T,
        "batch": B,
        "optimizer": "adam",
        "core_state_on_device": True,
        "compile_s": first_call_s - timing.median_s,
        "first_call_s": first_call_s,
        **timing.fields(),
        "env_steps_per_s": T * B / timing.median_s,
    }
