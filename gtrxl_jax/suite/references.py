"""The reference data of normalised scores: random and reference scores per task, with sources.

All numbers live in one file, `references.json` beside this module:

- "tasks": per task (or task family, matched by "pattern"), the metric scored (a key of an
  evaluation entry in summary.json: "episode_return", "success" or "episode_length"), the
  random policy's score and the reference (human, published or the task's maximum), each
  with its source ("measured here" entries give the command).
- "published": other published scores (e.g. Memory Maze's IMPALA and Dreamer), listed
  beside the results tables; a null value records that no number was found, and the source
  says where it was looked for.
- "ablation_paper": the GTrXL paper's DMLab-30 scores per variant, the ablation table's
  reference column.

    refs = load_references()
    ref = refs.for_task("MiniGrid-MemoryS7-v0")
    ref.normalize(0.9)             # 100 * (0.9 - random) / (reference - random)
"""

import dataclasses
import json
import math
import re
from functools import cached_property
from pathlib import Path
from typing import Any

from gtrxl_jax.suite.scores import normalized_score

REFERENCES_PATH = Path(__file__).with_name("references.json")
METRICS = ("episode_return", "success", "episode_length")
REFERENCE_KINDS = ("human", "published", "max")


@dataclasses.dataclass(frozen=True)
class TaskReference:
    """How one task's scores are normalised.

    Attributes:
      task: the task name (or family, e.g. "TMaze-L<N>").
      metric: the evaluation key scored ("episode_return", "success", "episode_length").
      random: a uniformly random policy's score, or None if not measured.
      reference: the reference score (100 on the normalised scale).
      kind: what the reference is: "human", "published" or "max".
      random_source, reference_source: where the numbers come from.
    """

    task: str
    metric: str
    random: float | None
    reference: float
    kind: str
    random_source: str
    reference_source: str

    @property
    def complete(self) -> bool:
        """Both ends of the scale are known."""
        return self.random is not None and self.reference != self.random

    def normalize(self, value: float | None) -> float:
        """The normalised score of a raw value of this task's metric (NaN if unknown)."""
        if not self.complete:
            return math.nan
        return normalized_score(value, self.random, self.reference)


@dataclasses.dataclass(frozen=True)
class References:
    """The parsed reference file."""

    tasks: tuple[TaskReference, ...]
    patterns: tuple[tuple[re.Pattern[str], TaskReference], ...]
    published: dict[str, list[dict[str, Any]]]
    ablation_paper: dict[str, Any]

    @cached_property
    def _by_name(self) -> dict[str, TaskReference]:
        return {ref.task: ref for ref in self.tasks}

    def for_task(self, task: str) -> TaskReference:
        """The reference of a task: its own entry, else the family whose pattern matches.

        Raises:
          KeyError: no entry covers the task.
        """
        if task in self._by_name:
            return self._by_name[task]
        for pattern, ref in self.patterns:
            if pattern.fullmatch(task):
                return dataclasses.replace(ref, task=task)
        raise KeyError(
            f"no reference score for task {task!r} in {REFERENCES_PATH.name}; add "
            "its random and reference scores (with sources) there"
        )


def load_references(path: str | Path = REFERENCES_PATH) -> References:
    """Read and check the reference file.

    Raises:
      ValueError: a malformed entry (naming the task and what is wrong).
    """
    data = json.loads(Path(path).read_text())
    exact, patterns = [], []
    for entry in data["tasks"]:
        ref = _parse_task(entry)
        if "pattern" in entry:
            patterns.append((re.compile(entry["pattern"]), ref))
        else:
            exact.append(ref)
    return References(
        tasks=tuple(exact),
        patterns=tuple(patterns),
        published=data.get("published", {}),
        ablation_paper=data.get("ablation_paper", {}),
    )


def _parse_task(entry: dict[str, Any]) -> TaskReference:
    task = entry.get("task", "?")
    metric = entry.get("metric")
    if metric not in METRICS:
        raise ValueError(f"references: {task}: metric {metric!r} is not one of {METRICS}")
    random, reference = entry.get("random", {}), entry.get("reference", {})
    for name, part in (("random", random), ("reference", reference)):
        if not part.get("source"):
            raise ValueError(f"references: {task}: the {name} score needs a source")
    if not isinstance(reference.get("value"), int | float):
        raise ValueError(f"references: {task}: the reference score must be a number")
    if reference.get("kind") not in REFERENCE_KINDS:
        raise ValueError(
            f"references: {task}: reference kind {reference.get('kind')!r} is not "
            f"one of {REFERENCE_KINDS}"
        )
    random_value = random.get("value")
    if random_value is not None and not isinstance(random_value, int | float):
        raise ValueError(f"references: {task}: the random score must be a number or null")
    return TaskReference(
        task=task,
        metric=metric,
        random=None if random_value is None else float(random_value),
        reference=float(reference["value"]),
        kind=reference["kind"],
        random_source=random["source"],
        reference_source=reference["source"],
    )
