"""The registry of named measurements and the session that runs them.

A measurement is a function `fn(session) -> Iterator[dict]` registered under a name; it
yields one JSON-ready record per figure. `requires` names measurements whose records it
reads (learn reads the ceiling's, to report its fraction of it), which run first. A
measurement that trains may register a `check(session)` that builds its runs' configs, so
that `check_measurements` refuses a bad setting before anything is measured.
"""

import dataclasses
import datetime
from collections.abc import Callable, Iterable, Iterator

from gtrxl_jax.bench.workloads import EndToEnd, OnDeviceComparison, Workload

Record = dict
MeasureFn = Callable[["Session"], Iterator[Record]]
CheckFn = Callable[["Session"], None]


@dataclasses.dataclass(frozen=True)
class Measurement:
    """A named measurement: `fn(session)` yields its records.

    `check(session)`, if set, raises ValueError for settings it cannot run.
    """

    name: str
    fn: MeasureFn
    requires: tuple[str, ...] = ()
    description: str = ""
    check: CheckFn | None = None


MEASUREMENTS: dict[str, Measurement] = {}


def register(
    name: str, requires: tuple[str, ...] = (), check: CheckFn | None = None
) -> Callable[[MeasureFn], MeasureFn]:
    """Decorator registering `fn(session) -> Iterator[Record]` as the measurement `name`.

    `check(session)`, if given, raises ValueError (e.g. a ConfigError) for settings that the
    measurement cannot run; `check_measurements` calls it before anything is measured.
    """

    def decorate(fn: MeasureFn) -> MeasureFn:
        if name in MEASUREMENTS:
            raise ValueError(f"measurement {name!r} is registered twice.")
        doc = (fn.__doc__ or "").strip().splitlines()
        MEASUREMENTS[name] = Measurement(name, fn, requires, doc[0] if doc else "", check)
        return fn

    return decorate


def register_unavailable(names: Iterable[str], reason: str) -> None:
    """Registers measurements that cannot run here: selecting one raises `reason`.

    So that `--list` still shows them, and choosing one says what to install instead of
    failing on an import.
    """
    for name in names:

        def unavailable(session: "Session", name: str = name) -> Iterator[Record]:
            raise RuntimeError(f"measurement {name!r} cannot run here: {reason}")

        MEASUREMENTS[name] = Measurement(name, unavailable, (), f"(unavailable: {reason})")


@dataclasses.dataclass
class Session:
    """The settings of one benchmark run and the records it has produced so far.

    Attributes:
      workload: what to time (its core config carries the compute dtype).
      repeats: timed calls per learner figure and per ceiling matmul (after warm-up).
      act_repeats: timed steps per acting figure (steps are short, so more of them).
      warmup: untimed calls before timing (end-to-end: learner updates left out of the
        steady state).
      e2e: the training runs of the end-to-end measurement.
      on_device: the training runs and the sweep of the on-device measurement.
      run_id: stamped on every record, so runs appended to one file stay apart.
      records: every record emitted so far (measurements read their requirements here).
    """

    workload: Workload
    repeats: int = 10
    act_repeats: int = 50
    warmup: int = 2
    e2e: EndToEnd = dataclasses.field(default_factory=EndToEnd)
    on_device: OnDeviceComparison = dataclasses.field(default_factory=OnDeviceComparison)
    run_id: str = dataclasses.field(
        default_factory=lambda: datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    )
    records: list[Record] = dataclasses.field(default_factory=list)

    def find(self, **fields) -> Record | None:
        """The latest record whose fields include all of `fields`, or None."""
        for record in reversed(self.records):
            if all(record.get(k) == v for k, v in fields.items()):
                return record
        return None


def _with_requirements(names: Iterable[str]) -> list[str]:
    """`names` in order, each preceded by what it requires (once)."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name not in MEASUREMENTS:
            raise ValueError(f"unknown measurement {name!r}; allowed: {tuple(MEASUREMENTS)}.")
        for required in MEASUREMENTS[name].requires:
            visit(required)
        if name not in ordered:
            ordered.append(name)

    for name in names:
        visit(name)
    return ordered


def check_measurements(session: Session, names: Iterable[str]) -> None:
    """Runs the checks of the named measurements and their requirements, measuring nothing.

    Raises:
      ValueError: the first setting a measurement cannot run (its message says which).
    """
    for name in _with_requirements(names):
        if MEASUREMENTS[name].check is not None:
            MEASUREMENTS[name].check(session)


def run_measurements(
    session: Session, names: Iterable[str], emit: Callable[[Record], None]
) -> list[Record]:
    """Runs the named measurements (and their requirements), emitting each record as it comes.

    Every record is stamped with the run id, the measurement and the workload names.

    Returns:
      The records of this call, in order.
    """
    produced = []
    for name in _with_requirements(names):
        for record in MEASUREMENTS[name].fn(session):
            stamped = {
                "run": session.run_id,
                "measurement": name,
                "workload": session.workload.name,
                **record,
            }
            session.records.append(stamped)
            produced.append(stamped)
            emit(stamped)
    return produced
