"""Task names: host tasks (`make_env`), JAX tasks (`make_jax_env`), errors that suggest names.

Host tasks are `VectorEnv`s stepped from Python: the project's own families of names
matched by a pattern, e.g. "TMaze-L<corridor_length>" ("TMaze-L10", "TMaze-L100") and
"MemoryMaze-<size>" ("MemoryMaze-9x9", an optional extra), and every name of
`envpool.list_all_envs()` (envpool is imported on first use: the project's own tasks and the
JAX tasks need no envpool installed).

Your own environments are named by their factory, "package.module:function"
(`gtrxl_jax.envs.factories`), host or JAX.

JAX tasks are `JaxEnv`s (`gtrxl_jax.envs.functional`), for loops that step the
environments inside jit:

- "TMaze-L<corridor_length>": the passive T-maze, equal step for step to the host one;
- "MiniGrid-MemoryS<size>" (size >= 7): xminigrid's MiniGrid Memory, a 3x3 view (the host
  "MiniGrid-MemoryS<size>-v0" is envpool's, with a 7x7 view);
- "MemoryChain-L<memory_length>" (>= 1): bsuite's MemoryChain from gymnax;
- POPGym's card games at three levels: "RepeatFirstEasy" .. "CountRecallHard"
  (`gtrxl_jax.envs.popgym_tasks`).

xminigrid and gymnax are imported only when one of their tasks is built.
"""

import dataclasses
import difflib
import functools
import re
from collections.abc import Callable
from typing import Any

from gtrxl_jax.envs.base import VectorEnv
from gtrxl_jax.envs.factories import is_factory, make_jax_envs, makes_host_envs
from gtrxl_jax.envs.functional import JaxEnv
from gtrxl_jax.envs.memory_maze import MemoryMaze
from gtrxl_jax.envs.popgym_tasks import LEVELS, POPGYM_TASKS, make_popgym_task
from gtrxl_jax.envs.tmaze import TMaze
from gtrxl_jax.envs.tmaze_jax import TMazeJax


@dataclasses.dataclass(frozen=True)
class TaskFamily:
    """A family of tasks whose names match one pattern.

    Attributes:
      pattern: the names it accepts (whole-name match); its groups parametrise the task.
      examples: names to list and to suggest for misspelt names.
      build: host families: (match, num_envs, seed, training, options) -> `VectorEnv`;
        JAX families: (match) -> `JaxEnv`.
    """

    pattern: re.Pattern[str]
    examples: tuple[str, ...]
    build: Callable[..., Any]


def check_options(task: str, options: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """Raise ValueError naming any option that `task` does not take."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        takes = f"it takes {sorted(allowed)}" if allowed else "it takes no options"
        raise ValueError(f"{task} does not take the option(s) {unknown}; {takes}")


def _build_tmaze(
    match: re.Match[str], num_envs: int, seed: int, training: bool, options: dict[str, Any]
) -> VectorEnv:
    del training  # the T-maze is the same in training and evaluation
    check_options(match[0], options, allowed=("batch_size",))
    return TMaze(int(match[1]), num_envs, seed=seed, task=match[0], **options)


def _build_memory_maze(
    match: re.Match[str], num_envs: int, seed: int, training: bool, options: dict[str, Any]
) -> VectorEnv:
    del training  # the same mazes in training and evaluation
    check_options(match[0], options, allowed=("batch_size", "mujoco_gl"))
    return MemoryMaze(match[1], num_envs, seed=seed, task=match[0], **options)


# The T-maze has a host and a JAX implementation under the same names.
_TMAZE_PATTERN = re.compile(r"TMaze-L(\d+)")
_TMAZE_EXAMPLES = ("TMaze-L10", "TMaze-L50", "TMaze-L100", "TMaze-L250", "TMaze-L500")

_PROJECT_TASKS = (
    TaskFamily(
        pattern=_TMAZE_PATTERN,
        examples=_TMAZE_EXAMPLES,
        build=_build_tmaze,
    ),
    TaskFamily(
        pattern=re.compile(r"MemoryMaze-(9x9|11x11|13x13|15x15)"),
        examples=("MemoryMaze-9x9", "MemoryMaze-11x11", "MemoryMaze-13x13", "MemoryMaze-15x15"),
        build=_build_memory_maze,
    ),
)

# Example names of the project's own tasks ("TMaze-L<N>" takes any corridor length N).
PROJECT_TASKS: tuple[str, ...] = tuple(n for t in _PROJECT_TASKS for n in t.examples)


def _build_xminigrid_memory(match: re.Match[str]) -> JaxEnv:
    from gtrxl_jax.envs.xminigrid_env import XMiniGridMemory  # imports xminigrid

    return XMiniGridMemory(int(match[1]), task=match[0])


def _build_memory_chain(match: re.Match[str]) -> JaxEnv:
    from gtrxl_jax.envs.gymnax_env import make_memory_chain  # imports gymnax

    return make_memory_chain(int(match[1]), task=match[0])


_JAX_TASKS = (
    TaskFamily(
        pattern=_TMAZE_PATTERN,
        examples=_TMAZE_EXAMPLES,
        build=lambda match: TMazeJax(int(match[1]), task=match[0]),
    ),
    TaskFamily(
        pattern=re.compile(r"MiniGrid-MemoryS(\d+)"),
        examples=("MiniGrid-MemoryS9", "MiniGrid-MemoryS13", "MiniGrid-MemoryS17"),
        build=_build_xminigrid_memory,
    ),
    TaskFamily(
        pattern=re.compile(r"MemoryChain-L(\d+)"),
        examples=("MemoryChain-L10", "MemoryChain-L50", "MemoryChain-L100"),
        build=_build_memory_chain,
    ),
    TaskFamily(
        pattern=re.compile("|".join(POPGYM_TASKS)),
        examples=tuple(POPGYM_TASKS),
        build=lambda match: make_popgym_task(match[0]),
    ),
)

# Example names of the JAX tasks ("TMaze-L<N>", "MiniGrid-MemoryS<N>" and
# "MemoryChain-L<N>" take any N in range).
JAX_TASKS: tuple[str, ...] = tuple(n for t in _JAX_TASKS for n in t.examples)
_JAX_NAME_FORMS = (
    "'TMaze-L<length>', 'MiniGrid-MemoryS<size>', 'MemoryChain-L<length>', "
    f"'<RepeatFirst|RepeatPrevious|Autoencode|CountRecall><{'|'.join(LEVELS)}>'"
)


def _find(families: tuple[TaskFamily, ...], task: str) -> tuple[TaskFamily, re.Match[str]] | None:
    """The family whose pattern matches `task` (with the match), or None."""
    for family in families:
        match = family.pattern.fullmatch(task)
        if match:
            return family, match
    return None


def find_project_task(task: str) -> tuple[TaskFamily, re.Match[str]] | None:
    """Find the project task family whose pattern matches `task` (with the match), or None."""
    return _find(_PROJECT_TASKS, task)


@functools.cache
def envpool_task_names() -> frozenset[str] | None:
    """Every task envpool registers; None where envpool is not installed."""
    try:
        import envpool
    except ImportError:
        return None
    return frozenset(envpool.list_all_envs())


def is_envpool_task(task: str) -> bool:
    """Tell whether envpool registers a task of this exact name."""
    return task in (envpool_task_names() or ())


def is_host_task(task: str) -> bool:
    """Tell whether `task` names a host task (`make_env`).

    The project's own, envpool's, or a host factory's (`gtrxl_jax.envs.factories`).
    """
    if is_factory(task):
        return makes_host_envs(task)
    return find_project_task(task) is not None or is_envpool_task(task)


def is_jax_task(task: str) -> bool:
    """Tell whether `task` names a JAX task (`make_jax_env` may still refuse its parameter).

    Raises:
      ValueError: a factory name whose module or function cannot be found.
    """
    if is_factory(task):
        return not makes_host_envs(task)
    return _find(_JAX_TASKS, task) is not None


def make_jax_env(task: str, **options: Any) -> JaxEnv:
    """Make one JAX environment of a task, by name; batch it with `jax.vmap`.

    Args:
      task: a JAX task name ("TMaze-L10", "MiniGrid-MemoryS9", "MemoryChain-L50",
        "RepeatPreviousEasy", ...; see the module doc), or a JAX factory's
        "package.module:function" (`gtrxl_jax.envs.factories`).
      **options: task options (no JAX task takes any yet; a factory gets them all).

    Returns:
      The environment (`gtrxl_jax.envs.functional.JaxEnv`).

    Raises:
      ValueError: an unknown task (with close names, host ones included), an option the
        task does not take, or a parameter out of range (e.g. "MiniGrid-MemoryS5").
    """
    if is_factory(task):
        return make_jax_envs(task, options)
    found = _find(_JAX_TASKS, task)
    if found is None:
        raise unknown_task_error(task, jax=True)
    check_options(task, options, allowed=())
    family, match = found
    return family.build(match)


def check_task_name(task: str) -> None:
    """Raise ValueError (with close names) unless `task` is a host or a JAX task.

    A JAX-only task is built once (`make_jax_env`), so a parameter out of range
    ("MiniGrid-MemoryS5") is refused before any run starts.
    """
    if find_project_task(task) is not None or is_envpool_task(task):
        return
    if not is_jax_task(task):
        raise unknown_task_error(task)
    make_jax_env(task)


def unknown_task_error(task: str, jax: bool = False) -> ValueError:
    """Build a ValueError for an unknown task name that suggests the closest known names.

    Args:
      task: the name asked for.
      jax: whether a JAX task (`make_jax_env`) was asked for, not a host one (`make_env`).
        Close names of the other kind are suggested after the names of the kind asked for.

    Returns:
      The error, to raise.
    """
    host_names = [*PROJECT_TASKS, *sorted(envpool_task_names() or ())]
    if jax:
        names, others, other_kind, other_maker = JAX_TASKS, host_names, "host", "make_env"
        default = "see gtrxl_jax.envs.JAX_TASKS"
        unknown, forms = "unknown JAX task", f"names: {_JAX_NAME_FORMS}"
        other_exists = find_project_task(task) is not None or is_envpool_task(task)
    else:
        names, others, other_kind, other_maker = host_names, JAX_TASKS, "JAX", "make_jax_env"
        default = "see envpool.list_all_envs() and gtrxl_jax.envs.PROJECT_TASKS"
        unknown, forms = "unknown task", "T-maze names: 'TMaze-L<length>'"
        other_exists = is_jax_task(task)
    close = _close_names(task, names, 5)
    hint = f"did you mean {', '.join(map(repr, close))}?" if close else default
    message = f"{unknown} {task!r}; {hint} ({forms})"
    if other_exists:
        message += f"; {task!r} is a {other_kind} task: make it with {other_maker}"
    elif close_others := [n for n in _close_names(task, others, 3) if n not in close]:
        listed = ", ".join(map(repr, close_others))
        message += f"; close {other_kind} tasks (for {other_maker}): {listed}"
    if not jax and envpool_task_names() is None:
        message += ("; envpool is not installed, so none of its tasks (Atari, ViZDoom, MiniGrid, "
                    "...) is known here: pip install -r requirements.txt")
    return ValueError(message)


def _close_names(task: str, names: list[str] | tuple[str, ...], count: int) -> list[str]:
    """Up to `count` of `names` closest to `task` (case-insensitive), best first."""
    by_lower = {name.lower(): name for name in names}
    close = difflib.get_close_matches(task.lower(), by_lower, n=count, cutoff=0.6)
    return [by_lower[c] for c in close]
