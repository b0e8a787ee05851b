"""Task names: the project's own tasks, envpool's tasks, and errors that suggest close names.

The project's own tasks are families of names matched by a pattern, e.g.
"TMaze-L<corridor_length>" ("TMaze-L10", "TMaze-L100") and "MemoryMaze-<size>"
("MemoryMaze-9x9", an optional extra). Every other name must be one of
`envpool.list_all_envs()`.
"""

import dataclasses
import difflib
import re
from collections.abc import Callable
from typing import Any

import envpool

from gtrxl_jax.envs.base import VectorEnv
from gtrxl_jax.envs.memory_maze import MemoryMaze
from gtrxl_jax.envs.tmaze import TMaze


@dataclasses.dataclass(frozen=True)
class ProjectTask:
    """A family of the project's own tasks.

    Attributes:
      pattern: the names it accepts (whole-name match); its groups parametrise the task.
      examples: names to list and to suggest for misspelt names.
      build: (match, num_envs, seed, training, options) -> the environment.
    """

    pattern: re.Pattern[str]
    examples: tuple[str, ...]
    build: Callable[[re.Match[str], int, int, bool, dict[str, Any]], VectorEnv]


def check_options(task: str, options: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """Raise ValueError naming any option that `task` does not take."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"{task} does not take the option(s) {unknown}; it takes {sorted(allowed)}"
        )


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


_PROJECT_TASKS = (
    ProjectTask(
        pattern=re.compile(r"TMaze-L(\d+)"),
        examples=("TMaze-L10", "TMaze-L50", "TMaze-L100", "TMaze-L250", "TMaze-L500"),
        build=_build_tmaze,
    ),
    ProjectTask(
        pattern=re.compile(r"MemoryMaze-(9x9|11x11|13x13|15x15)"),
        examples=("MemoryMaze-9x9", "MemoryMaze-11x11", "MemoryMaze-13x13", "MemoryMaze-15x15"),
        build=_build_memory_maze,
    ),
)

# Example names of the project's own tasks ("TMaze-L<N>" takes any corridor length N).
PROJECT_TASKS: tuple[str, ...] = tuple(n for t in _PROJECT_TASKS for n in t.examples)


def find_project_task(task: str) -> tuple[ProjectTask, re.Match[str]] | None:
    """Find the project task family whose pattern matches `task` (with the match), or None."""
    for project_task in _PROJECT_TASKS:
        match = project_task.pattern.fullmatch(task)
        if match:
            return project_task, match
    return None


def is_envpool_task(task: str) -> bool:
    """Tell whether envpool registers a task of this exact name."""
    return task in envpool.registration.registry.specs


def unknown_task_error(task: str) -> ValueError:
    """Build a ValueError for an unknown task name that suggests the closest known names."""
    names = [*PROJECT_TASKS, *envpool.list_all_envs()]
    by_lower = {name.lower(): name for name in names}
    close = difflib.get_close_matches(task.lower(), by_lower, n=5, cutoff=0.6)
    hint = (
        f"did you mean {', '.join(repr(by_lower[c]) for c in close)}?"
        if close
        else "see envpool.list_all_envs() and gtrxl_jax.envs.PROJECT_TASKS"
    )
    return ValueError(f"unknown task {task!r}; {hint} (T-maze names: 'TMaze-L<length>')")
