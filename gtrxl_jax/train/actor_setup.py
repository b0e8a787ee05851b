"""How a run makes its agent and each actor (environments, seeds, key) from its config.

An `ActorPlan` holds all an actor is made of, in picklable form, so that an actor process
(`gtrxl_jax.train.actor_process`) makes the same actor as a thread would: the same
environments, seeds and sampling key, hence the same data in reproducible mode.
"""

import dataclasses

import jax
import numpy as np

from gtrxl_jax.agent import Agent
from gtrxl_jax.config import TrainConfig
from gtrxl_jax.envs import EnvSpec, make_env
from gtrxl_jax.train.actor import ActingSteps, Actor, EnvGroup
from gtrxl_jax.train.handoff import ParamsStore
from gtrxl_jax.train.layout import Layout


def make_agent(config: TrainConfig, spec: EnvSpec, num_tasks: int) -> Agent:
    """The agent of a config for an environment spec, with one value output per task."""
    return Agent(
        spec.observation,
        spec.num_actions,
        config.agent.core_config(),
        torso_options=tuple(sorted(config.agent.torso_options.items())),
        use_prev_action_reward=config.agent.use_prev_action_reward,
        num_tasks=num_tasks,
    )


@dataclasses.dataclass(frozen=True)
class ActorPlan:
    """Everything one actor is made of (picklable).

    Attributes:
      config: the run's config.
      layout: the run's layout.
      spec: the environment spec the agent is built for.
      process_index: the JAX process (host) the actor belongs to.
      index: the actor's index within its host.
      run_key: the learner state's RNG key data ([2] uint32) at the (re)start; seeds derive
        from it, so a resumed run does not replay the same episodes.
      start_update: the learner's update count when the actors start.
      stall_timeout_s: how long the actor waits on the learner before raising Stalled.
    """

    config: TrainConfig
    layout: Layout
    spec: EnvSpec
    process_index: int
    index: int
    run_key: tuple[int, ...]
    start_update: int
    stall_timeout_s: float

    @property
    def name(self) -> str:
        """e.g. "actor 0.1": host 0, actor 1."""
        return f"actor {self.process_index}.{self.index}"

    def seeds(self) -> tuple[list[int], int]:
        """(one environment seed per group, the seed of the sampling key)."""
        num_groups = len(self.layout.tasks) * self.layout.groups_per_task
        seeds = np.random.SeedSequence(
            [*self.run_key, self.process_index, self.index]).generate_state(num_groups + 1)
        seeds = [int(seed) for seed in seeds % 2**31]
        return seeds[:num_groups], seeds[num_groups]


def build_actor(
    plan: ActorPlan,
    *,
    agent: Agent,
    acting: ActingSteps,
    params_store: ParamsStore,
    trajectory_queue,
    stop,
    device,
) -> Actor:
    """Make the actor of a plan (not started), with its environments.

    Args:
      plan: the actor's plan.
      agent: the agent (`make_agent` of the plan's config).
      acting: the agent's jitted acting functions (shared between a process's actors).
      params_store: where the learner's parameters come from.
      trajectory_queue: where trajectories go (anything with TrajectoryQueue's `put`).
      stop: the stop event the actor polls.
      device: the device its policy runs on.
    """
    layout, config = plan.layout, plan.config
    env_seeds, key_seed = plan.seeds()
    groups = []
    for task_id, task in enumerate(layout.tasks):
        for g in range(layout.groups_per_task):
            env = make_env(task, layout.envs_per_group, seed=env_seeds[
                task_id * layout.groups_per_task + g], training=True, **config.env.options)
            groups.append(EnvGroup(env=env, task_id=task_id))
    return Actor(
        plan.name, agent, groups,
        trajectory_len=config.learner.trajectory_len,
        params_store=params_store,
        trajectory_queue=trajectory_queue,
        stop=stop,
        key=jax.random.PRNGKey(key_seed),
        device=device,
        reproducible=config.learner.reproducible,
        start_update=plan.start_update,
        trajectories_per_update=layout.trajectories_per_update,
        timeout_s=plan.stall_timeout_s,
        acting=acting,
    )
