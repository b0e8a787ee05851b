"""A gymnasium vector environment behind the project's `VectorEnv` interface.

For training on your own environment without editing the package: a factory named by
`env.factory` returns a `gymnasium.vector.VectorEnv` and `gtrxl_jax.envs.make_env` wraps it
here. Supported: a Discrete action space (actions 0 .. n-1), a Box observation that a torso
reads (a float vector [D], or uint8 pixels [H, W, C] / [C, H, W]), and gymnasium's default
auto-reset, `AutoresetMode.NEXT_STEP`, which is the project's convention: the step after a
last step ignores its action and returns the new episode's first observation with reward 0.
Float observations are given to the agent as float32. A last step's `info["success"]`, when
the environment sets it, is the episode's success (pass `has_success=True`; a factory that
wants it returns this wrapper itself). Observations are copied: a vector environment made
with `copy=False` (wrapped or not) hands out a buffer that its next step overwrites, and a
trajectory holds every step's.
"""

from typing import Any

import gymnasium
import numpy as np

from gtrxl_jax.envs.base import RawStep, VectorEnv
from gtrxl_jax.envs.spec import EnvSpec, array_spec, infer_observation_kind


class GymnasiumVectorEnv(VectorEnv):
    """N environments of a `gymnasium.vector.VectorEnv`, stepped together (synchronous)."""

    def __init__(self, env: gymnasium.vector.VectorEnv, task: str, seed: int = 0,
                 has_success: bool = False):
        """Wrap a gymnasium vector environment.

        Args:
          env: the environments, not yet reset; closed by `close`.
          task: the task name to put in the spec (e.g. the factory's "mypkg.envs:make").
          seed: the seed of the first reset (gymnasium seeds environment i with seed + i).
          has_success: whether last steps report `info["success"]`.

        Raises:
          ValueError: an action space other than Discrete from 0, an observation space no
            torso reads, or an auto-reset mode other than NEXT_STEP.
        """
        action_space = env.single_action_space
        if not isinstance(action_space, gymnasium.spaces.Discrete) or action_space.start != 0:
            raise ValueError(f"{task}: the action space must be Discrete(n) starting at 0, "
                             f"got {action_space}")
        observation_space = env.single_observation_space
        if not isinstance(observation_space, gymnasium.spaces.Box):
            raise ValueError(f"{task}: the observation space must be a Box, got "
                             f"{observation_space}")
        dtype = observation_space.dtype
        if np.issubdtype(dtype, np.floating):
            dtype = np.float32
        observation = array_spec(observation_space.shape, dtype)
        mode = env.metadata.get("autoreset_mode", gymnasium.vector.AutoresetMode.NEXT_STEP)
        if mode != gymnasium.vector.AutoresetMode.NEXT_STEP:
            raise ValueError(f"{task}: the vector environment auto-resets with {mode}; make it "
                             "with autoreset_mode=gymnasium.vector.AutoresetMode.NEXT_STEP "
                             "(gymnasium's default)")
        spec = EnvSpec(task=task, family="gymnasium", observation=observation,
                       observation_kind=infer_observation_kind(observation),
                       num_actions=int(action_space.n), num_envs=env.num_envs,
                       batch_size=env.num_envs, has_success=has_success)
        super().__init__(spec)
        self._env, self._seed = env, seed
        self._pending: RawStep | None = None  # the result the next `_recv` returns

    def close(self) -> None:
        """Close the gymnasium environments."""
        self._env.close()

    def _async_reset(self) -> None:
        observation, _ = self._env.reset(seed=self._seed)
        self._seed = None  # later resets continue the environments' random streams
        none = np.zeros(self._spec.num_envs, dtype=bool)
        self._pending = self._raw(observation, np.zeros(self._spec.num_envs), none, none, {})

    def _send(self, actions: np.ndarray, env_ids: np.ndarray) -> None:
        del env_ids  # synchronous: every environment, in env-id order
        self._pending = self._raw(*self._env.step(actions))

    def _recv(self) -> RawStep:
        if self._pending is None:
            raise RuntimeError("recv() needs a reset or a step first")
        raw, self._pending = self._pending, None
        return raw

    def _raw(self, observation: Any, reward: Any, terminated: Any, truncated: Any,
             info: dict) -> RawStep:
        terminated, truncated = np.asarray(terminated, bool), np.asarray(truncated, bool)
        reward = np.asarray(reward, np.float32)
        success = None
        if self._spec.has_success:
            success = np.asarray(info.get("success", np.zeros_like(terminated)), bool)
        return RawStep(
            observation=np.array(observation, self._spec.observation.dtype),  # a copy
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            env_ids=self._all_env_ids,
            score=reward,
            episode_over=terminated | truncated,
            success=success,
        )
