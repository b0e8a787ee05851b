"""`gtrxl-bench`: times the GTrXL core and the machine's ceilings, one JSON line per figure.

  gtrxl-bench                                   # ceiling, learn, act, scaling on "reference"
  gtrxl-bench --only learn,act --dtype bfloat16 --out runs/bench.jsonl
  gtrxl-bench --config paper --only learn --repeats 2 --warmup 1
  gtrxl-bench --only e2e --e2e-steps 200000     # training runs: Pong, MiniGrid x GTrXL, FF
  gtrxl-bench --only on_device                  # T-maze on device vs actor-learner, N sweep
  gtrxl-bench --only on_device --on-device-steps 200000 --on-device-envs 64,256
  gtrxl-bench --only on_device_envs --on-device-envs 1024,4096   # the N sweep alone
  gtrxl-bench --list                            # the registered measurements
  gtrxl-bench --summarize runs/bench.jsonl      # one short line per record of a file

The first line of a run is a machine record (CPU, cores, backend, versions, load, date);
every record carries the run id. Figures are medians of repeated calls after warm-up;
compile time is reported apart. Measurements that report a fraction of a ceiling run
"ceiling" (matmul FLOP/s) and "bandwidth" (memory read GB/s) first. "e2e" trains for
minutes and is not in the default set; its steady state starts after --warmup learner
updates. "on_device" trains the main job's T-maze config on the actor-learner and on device
(steady env steps/s, seconds to 95% success, compile included), then times the on-device
update at each --on-device-envs; it also takes minutes and is not in the default set
("on_device_envs" is that sweep alone).
"""

import argparse
import contextlib
import dataclasses
import json
import pathlib
import sys
from collections.abc import Sequence

from gtrxl_jax.argtypes import Parser, name_list, positive_int, positive_int_list
from gtrxl_jax.bench import MEASUREMENTS, WORKLOADS, Session, check_measurements, run_measurements
from gtrxl_jax.bench.machine import machine_info
from gtrxl_jax.bench.registry import Record
from gtrxl_jax.bench.summary import summarize
from gtrxl_jax.bench.workloads import EndToEnd, OnDeviceComparison, Workload

DEFAULT_MEASUREMENTS = ("ceiling", "learn", "act", "scaling")


def _measurement_names(text: str) -> tuple[str, ...]:
    names = name_list(text)
    return tuple(MEASUREMENTS) if names == ("all",) else names


def build_parser() -> argparse.ArgumentParser:
    """The command-line options of gtrxl-bench."""
    parser = Parser(
        prog="gtrxl-bench",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--only",
        type=_measurement_names,
        default=DEFAULT_MEASUREMENTS,
        help=f"comma-separated measurements, or 'all' (default: {','.join(DEFAULT_MEASUREMENTS)})",
    )
    parser.add_argument("--config", choices=sorted(WORKLOADS), default="reference")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--repeats", type=positive_int, default=10,
                        help="timed calls per learner figure")
    parser.add_argument("--act-repeats", type=positive_int, default=50,
                        help="timed steps per act figure")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls before timing")
    parser.add_argument("--unroll", type=positive_int, help="override the workload's unroll T")
    parser.add_argument("--batch", type=positive_int, help="override the workload's batch B")
    parser.add_argument(
        "--memory-lens", type=positive_int_list, help="override the scaling sweep, e.g. 32,64,128"
    )
    e2e = parser.add_argument_group("end-to-end (e2e) training runs")
    e2e.add_argument("--e2e-tasks", type=name_list, help="comma-separated task names "
                     f"(default: {','.join(EndToEnd.tasks)})")
    e2e.add_argument("--e2e-cores", type=name_list, help="comma-separated agent.core values "
                     f"(default: {','.join(EndToEnd.cores)})")
    e2e.add_argument("--e2e-steps", type=positive_int, help="env steps per run "
                     f"(default: {EndToEnd.env_steps})")
    e2e.add_argument("--e2e-envs", type=positive_int, help="env.num_envs (default: the batch)")
    e2e.add_argument("--e2e-set", action="append", default=[], metavar="KEY=VALUE",
                     help="a further TrainConfig override, e.g. learner.reproducible=false "
                     "(repeatable)")
    on_device = parser.add_argument_group(
        "on-device (on_device) runs: the main job's T-maze config on both training paths")
    on_device.add_argument("--on-device-steps", type=positive_int, help="env steps of each "
                           "time-to-solve run (default: the config's, 500k)")
    on_device.add_argument("--on-device-envs", type=positive_int_list,
                           help="comma-separated N of the on-device sweep, env.num_envs = "
                           "learner.batch_size = N (default: "
                           f"{','.join(map(str, OnDeviceComparison.num_envs))})")
    on_device.add_argument("--on-device-set", action="append", default=[], metavar="KEY=VALUE",
                           help="a further TrainConfig override of every on_device run "
                           "(repeatable)")
    parser.add_argument("--out", help="append the JSON records to this JSONL file")
    parser.add_argument("--summarize", metavar="JSONL", help="print one short line per record "
                        "of a file written with --out, and exit")
    parser.add_argument("--list", action="store_true", help="list the measurements and exit")
    return parser


def make_workload(args: argparse.Namespace) -> Workload:
    """The named workload with the command line's dtype and overrides applied."""
    workload = WORKLOADS[args.config].with_dtype(args.dtype)
    overrides = {
        "unroll": args.unroll,
        "batch": args.batch,
        "memory_lens": args.memory_lens,
    }
    return dataclasses.replace(workload, **{k: v for k, v in overrides.items() if v is not None})


def make_end_to_end(args: argparse.Namespace) -> EndToEnd:
    """The end-to-end runs with the command line's choices (defaults where it has none)."""
    choices = {
        "tasks": args.e2e_tasks,
        "cores": args.e2e_cores,
        "env_steps": args.e2e_steps,
        "num_envs": args.e2e_envs,
    }
    return EndToEnd(overrides=tuple(args.e2e_set),
                    **{k: v for k, v in choices.items() if v is not None})


def make_on_device(args: argparse.Namespace) -> OnDeviceComparison:
    """The on-device runs with the command line's choices (defaults where it has none)."""
    sweep = {} if args.on_device_envs is None else {"num_envs": args.on_device_envs}
    return OnDeviceComparison(env_steps=args.on_device_steps,
                              overrides=tuple(args.on_device_set), **sweep)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the selected measurements, printing (and optionally appending) JSON records."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        for measurement in MEASUREMENTS.values():
            print(f"{measurement.name:10s} {measurement.description}")
        return 0
    if args.summarize:
        if not pathlib.Path(args.summarize).is_file():
            parser.error(f"--summarize {args.summarize}: no such file (write one with --out)")
        try:
            print("\n".join(summarize(args.summarize)))
        except ValueError as error:
            parser.error(str(error))
        return 0
    unknown = [name for name in args.only if name not in MEASUREMENTS]
    if unknown:
        parser.error(f"unknown measurement(s) {unknown}; choose from {sorted(MEASUREMENTS)}")
    session = Session(
        make_workload(args),
        repeats=args.repeats,
        act_repeats=args.act_repeats,
        warmup=args.warmup,
        e2e=make_end_to_end(args),
        on_device=make_on_device(args),
    )
    try:  # a bad --e2e-set fails now, not after minutes of earlier measurements
        check_measurements(session, args.only)
    except ValueError as error:  # a ConfigError is one
        parser.error(str(error))
    if args.out:
        try:
            pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            open(args.out, "a").close()  # noqa: SIM115 (a folder or an unwritable path fails now)
        except OSError as error:
            parser.error(f"--out {args.out}: cannot append to it ({error.strerror}); name a "
                         "writable .jsonl file")
    with open(args.out, "a") if args.out else contextlib.nullcontext() as out:

        def emit(record: Record) -> None:
            line = json.dumps(record)
            print(line, flush=True)
            if out:
                out.write(line + "\n")
                out.flush()

        emit({"run": session.run_id, "kind": "machine", **machine_info()})
        run_measurements(session, args.only, emit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
