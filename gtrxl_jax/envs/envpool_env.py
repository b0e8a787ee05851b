"""One adapter that makes any envpool task by name and returns the TimeStep pytree.

Per-family defaults (any envpool option passed by name overrides them):

- Atari: gray 84x84 frames, 4 stacked ([4, 84, 84] uint8); with `training=True`
  rewards are clipped to [-1, 1] and a lost life ends the learner's episode
  (episodic life); with `training=False` neither. Episode statistics always use the
  unclipped reward and whole games.
- ViZDoom: 84x84 RGB frames, 4 stacked ([12, 84, 84] uint8), and
  `use_combined_action=True`, envpool's Discrete action space (its default is a Box).
- MiniGrid: observation {"image": [7, 7, 3] uint8, "direction": [] int32}; the
  mission string is dropped.
- Procgen: [3, 64, 64] uint8; the distribution mode is part of envpool's task name
  ("MazeMemory-v0", "HeistMemory-v0", "CoinrunHard-v0"). Needs the Qt 5 runtime
  (Debian: `apt-get install libqt5gui5`).
- Classic control (e.g. "CartPole-v1"): a float32 vector.

Only tasks that gtrxl_jax has a torso and a policy head for are accepted: see
`spec.SUPPORTED_OBSERVATIONS`, and a single Discrete action. Everything is checked
from envpool's spec before any environment is started.

Success (in the episode statistics) is reported for MiniGrid, Procgen's maze and
heist, and ViZDoom's MyWayHome: the episode terminated on a positive reward
(reached the goal).
"""

import warnings
from typing import Any

import envpool
import gymnasium
import jax
import numpy as np

from gtrxl_jax.envs import registry
from gtrxl_jax.envs.base import RawStep, VectorEnv
from gtrxl_jax.envs.spec import (
    MINIGRID,
    PIXELS_CHW,
    PIXELS_HWC,
    SUPPORTED_OBSERVATIONS,
    VECTOR,
    EnvSpec,
    array_spec,
    check_batch_layout,
)

_PROCGEN_GOAL_GAMES = ("maze", "heist")
_NOT_OPTIONS = ("num_envs", "batch_size", "seed", "env_seed", "gym_reset_return_info")


def family_of(task: str) -> str:
    """Return the envpool family of a task: "atari", "vizdoom", "minigrid", "procgen", ..."""
    import_path = envpool.registration.registry.specs[task][0]
    return import_path.removeprefix("envpool.")


def default_options(family: str, training: bool) -> dict[str, Any]:
    """Return the envpool options gtrxl_jax uses for a family (see the module docstring)."""
    if family == "atari":
        return {
            "img_height": 84,
            "img_width": 84,
            "gray_scale": True,
            "stack_num": 4,
            "episodic_life": training,
            "reward_clip": training,
        }
    if family == "vizdoom":
        return {"img_height": 84, "img_width": 84, "use_combined_action": True}
    return {}


def observation_layout(task: str, family: str, spec: Any) -> tuple[Any, str]:
    """Derive one environment's observation spec and kind from an envpool spec.

    Args:
      task: the task name, for error messages.
      family: the task's envpool family.
      spec: the envpool EnvSpec.

    Returns:
      (observation, kind): a pytree of `jax.ShapeDtypeStruct` and one of the
      observation kinds of `gtrxl_jax.envs.spec`.

    Raises:
      ValueError: the observation has no torso in gtrxl_jax.
    """
    obs = {
        key.removeprefix("obs").removeprefix(":"): value
        for key, value in spec.state_array_spec.items()
        if key == "obs" or key.startswith("obs:")
    }
    if family == "minigrid":
        return {
            "image": array_spec(obs["image"].shape, np.uint8),
            "direction": array_spec((), np.int32),
        }, MINIGRID
    if list(obs) == [""]:
        shape, dtype = tuple(obs[""].shape), np.dtype(obs[""].dtype)
        if dtype == np.uint8 and len(shape) == 3:
            if shape[0] < min(shape[1:]):
                return array_spec(shape, dtype), PIXELS_CHW
            if shape[2] < min(shape[:2]):
                return array_spec(shape, dtype), PIXELS_HWC
        if len(shape) == 1 and np.issubdtype(dtype, np.floating):
            return array_spec(shape, np.float32), VECTOR
    found = {key or "obs": (tuple(v.shape), np.dtype(v.dtype).name) for key, v in obs.items()}
    raise ValueError(
        f"{task}: its observation {found} has no torso in gtrxl_jax; supported observations "
        f"are {SUPPORTED_OBSERVATIONS}"
    )


def num_discrete_actions(task: str, family: str, spec: Any) -> int:
    """Return the size n of a task's Discrete(n) action space, from an envpool spec.

    Raises:
      ValueError: the action space is continuous (Box) or has more than one dimension.
    """
    space = spec.action_space
    if isinstance(space, gymnasium.spaces.Discrete) and int(space.start) == 0:
        return int(space.n)
    kind = "a continuous (Box)" if isinstance(space, gymnasium.spaces.Box) else "this"
    hint = " (for ViZDoom keep use_combined_action=True)" if family == "vizdoom" else ""
    raise ValueError(
        f"{task}: {kind} action space {space} is not supported; gtrxl_jax's policy is "
        f"categorical and needs a single Discrete(n) action{hint}"
    )


def has_success(family: str, config: Any) -> bool:
    """Tell whether a task reports success: it terminates on a positive reward at its goal."""
    if family == "minigrid":
        return True
    if family == "procgen":
        return config.env_name in _PROCGEN_GOAL_GAMES
    if family == "vizdoom":
        return config.cfg_path.endswith("my_way_home.cfg")
    return False


def _make_envpool_spec(task: str, family: str, **kwargs: Any) -> Any:
    try:
        return envpool.make_spec(task, **kwargs)
    except ImportError as error:
        if family == "procgen":
            raise ImportError(
                f"{task} needs the Qt 5 runtime; on Debian/Ubuntu: apt-get install libqt5gui5"
            ) from error
        raise


def _check_option_names(task: str, family: str, options: dict[str, Any]) -> None:
    reserved = sorted(set(options) & set(_NOT_OPTIONS))
    if reserved:
        raise ValueError(
            f"{reserved} are set by make_env's own arguments (num_envs, seed, batch_size), "
            "not as envpool options"
        )
    known = _make_envpool_spec(task, family).config._fields
    registry.check_options(task, options, allowed=tuple(k for k in known if k not in _NOT_OPTIONS))


class EnvpoolEnv(VectorEnv):
    """N environments of one envpool task behind gtrxl_jax's `VectorEnv` interface."""

    def __init__(
        self,
        task: str,
        num_envs: int,
        seed: int = 0,
        training: bool = True,
        batch_size: int | None = None,
        **options: Any,
    ):
        """Check the task and the options, then start the environments.

        Args:
          task: an envpool task name, e.g. "Pong-v5", "MiniGrid-MemoryS7-v0".
          num_envs: N >= 1.
          seed: base seed; environment i is seeded with seed + i by envpool.
          training: Atari only: clip rewards and end the learner's episode on a lost life.
          batch_size: rows per `recv` (default N: synchronous use).
          **options: envpool options, overriding the family defaults
            (e.g. max_episode_steps=1000, num_threads=2).
        """
        if not registry.is_envpool_task(task):
            raise registry.unknown_task_error(task)
        batch_size = num_envs if batch_size is None else batch_size
        check_batch_layout(num_envs, batch_size)
        family = family_of(task)
        _check_option_names(task, family, options)
        options = {**default_options(family, training), **options}
        make_kwargs = dict(num_envs=num_envs, batch_size=batch_size, seed=seed, **options)
        envpool_spec = _make_envpool_spec(task, family, **make_kwargs)
        observation, kind = observation_layout(task, family, envpool_spec)
        spec = EnvSpec(
            task=task,
            family=family,
            observation=observation,
            observation_kind=kind,
            num_actions=num_discrete_actions(task, family, envpool_spec),
            num_envs=num_envs,
            batch_size=batch_size,
            has_success=has_success(family, envpool_spec.config),
        )
        super().__init__(spec)
        # envpool's ViZDoom reward counts game-variable changes only, so MyWayHome's vest
        # pays 0; there, ending before the time limit is the success.
        self._success_needs_reward = family != "vizdoom"
        # Atari's info carries the unclipped reward and whether the game (not a life) ended.
        self._atari = family == "atari"
        self._pool = envpool.make_gymnasium(task, **make_kwargs)
        # envpool builds (and caches) a gymnasium space on the first recv; building it
        # here keeps gymnasium's harmless float64-bounds warning out of the user's logs.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*precision lowered", category=UserWarning)
            _ = self._pool.observation_space

    def close(self) -> None:
        """Stop the environments."""
        self._pool.close()

    def _async_reset(self) -> None:
        self._pool.async_reset()

    def _send(self, actions: np.ndarray, env_ids: np.ndarray) -> None:
        self._pool.send(actions, env_ids)

    def _recv(self) -> RawStep:
        observation, reward, terminated, truncated, info = self._pool.recv()
        observation = self._convert_observation(observation)
        env_ids = info["env_id"]
        if self._atari:
            score = info["reward"]
            episode_over = info["terminated"].astype(bool) | truncated
        else:
            score = reward
            episode_over = terminated | truncated
        rows = (observation, reward, terminated, truncated, env_ids, score, episode_over)
        if np.any(env_ids[1:] <= env_ids[:-1]):
            order = np.argsort(env_ids)
            rows = jax.tree.map(lambda x: x[order], rows)
        observation, reward, terminated, truncated, env_ids, score, episode_over = rows
        return RawStep(
            observation=observation,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            env_ids=env_ids,
            score=score,
            episode_over=episode_over,
            success=self._success(terminated, score),
        )

    def _success(self, terminated: np.ndarray, score: np.ndarray) -> np.ndarray | None:
        if not self._spec.has_success:
            return None
        return terminated & (score > 0) if self._success_needs_reward else terminated

    def _convert_observation(self, observation: Any) -> Any:
        if self._spec.observation_kind == MINIGRID:
            return {"image": observation["image"], "direction": observation["direction"]}
        if self._spec.observation_kind == VECTOR:
            return observation.astype(np.float32, copy=False)
        return observation
