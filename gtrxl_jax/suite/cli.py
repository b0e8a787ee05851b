"""`gtrxl-suite`: run a named benchmark suite, resumably, and write its tables and plots.

    gtrxl-suite --list                                  # the suites, their size and cost
    gtrxl-suite fast                                    # train every run, then the report
    gtrxl-suite fast --dry-run                          # the runs it would train
    gtrxl-suite fast --cores gtrxl_gru,lstm --seeds 0   # a slice
    gtrxl-suite fast --set learner.total_env_steps=20000 --out runs/suites/smoke
    gtrxl-suite fast --report-only                      # tables and plots from what finished
    gtrxl-suite memory_horizon --cores lstm --budget-scale 8 --out runs/suites/lstm_8x
    gtrxl-suite memory --tasks MiniGrid-MemoryS13 --together   # a core's seeds in one program

Outputs go to --out (default runs/suites/<suite>); see gtrxl_jax.suite.runner. Runs that
already finished with the settings asked for are not trained again, so an interrupted suite
continues where it stopped; a run finished with other settings (another --set, a changed
suite) is trained again. --dry-run says which is which. --tasks, --cores and --seeds choose
what to train; the report always covers every run of the suite finished in --out (with the
--set values), so slices trained one after another build one table.
"""

import argparse
import logging
from pathlib import Path

from gtrxl_jax.argtypes import Parser, int_list, name_list
from gtrxl_jax.suite.records import (
    RECORDS_FILE,
    describe_differences,
    has_finished,
    read_records,
    stale_settings,
)
from gtrxl_jax.suite.runner import run_suite, write_report
from gtrxl_jax.suite.suites import CORE_VARIANTS, SUITES, RunSpec, Suite, expand
from gtrxl_jax.train.shutdown import STOPPED_EXIT_STATUS

logger = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="gtrxl-suite",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    parser.add_argument("suite", nargs="?", choices=sorted(SUITES), help="the suite to run")
    parser.add_argument("--list", action="store_true", help="list the suites and exit")
    parser.add_argument("--out", type=Path, help="output folder (default runs/suites/<suite>)")
    parser.add_argument(
        "--tasks", type=name_list, help="only these tasks (comma-separated, as in --dry-run)"
    )
    parser.add_argument(
        "--cores", type=name_list,
        help=f"only these core variants (of {', '.join(sorted(CORE_VARIANTS))})")
    parser.add_argument(
        "--seeds", type=int_list,
        help="only these seeds, e.g. 0,1 (seeds the suite does not list train too, e.g. 100 "
        "for a probe on a seed no reported run uses)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for every run (repeatable)",
    )
    parser.add_argument(
        "--budget-scale",
        type=float,
        default=1.0,
        metavar="K",
        help="train every run for K times its env-step budget (after --set); e.g. 8 to see "
        "where a core stops given more samples",
    )
    parser.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="write the tables and plots from every run finished in --out; train nothing",
    )
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first failed run")
    parser.add_argument(
        "--together",
        action="store_true",
        help="train each task and core's seeds at once in one program (on-device suites; "
        "cheap on an accelerator)",
    )
    parser.add_argument(
        "--compile-cache",
        type=Path,
        help="JAX persistent compilation cache (default <out>/jax_cache): runs "
        "with the same shapes compile once",
    )
    parser.add_argument("--no-compile-cache", action="store_true")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="log everything at INFO (default: the suite's progress, and "
        "warnings from everything else)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (1: a run failed; 130: a signal)."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s: %(message)s",
    )
    logging.getLogger("gtrxl_jax.suite").setLevel(logging.INFO)
    if args.list:
        for suite in SUITES.values():
            print(
                f"{suite.name:12s} {len(expand(suite, '.')):4d} runs  {suite.description}\n"
                f"{'':12s} cost: {suite.cost}\n"
            )
        return 0
    if args.suite is None:
        parser.error("name a suite (or use --list)")
    suite = SUITES[args.suite]
    out = args.out or Path("runs/suites") / suite.name
    if out.exists() and not out.is_dir():
        parser.error(f"--out {out} is a file; name a folder for the suite's runs and report.")
    if args.report_only:
        _check_report_only(parser, args, out)
    try:  # an unknown filter or --set key: one line, no traceback
        specs = expand(suite, out, args.overrides, args.tasks, args.cores, args.seeds,
                       args.budget_scale)
    except ValueError as error:
        parser.error(str(error))
    if args.together:
        _check_on_device(parser, specs)
    if args.dry_run:
        _print_plan(suite, out, specs)
        return 0
    everything = expand(suite, out, args.overrides, budget_scale=args.budget_scale)
    if args.report_only:
        for path in write_report(suite, out, everything):
            print(path)
        return 0
    if not args.no_compile_cache:
        cache = args.compile_cache or out / "jax_cache"
        try:
            _enable_compile_cache(cache)
        except OSError as error:
            parser.error(f"--compile-cache {cache}: cannot make it a folder ({error.strerror}); "
                         "name another or pass --no-compile-cache")
    report = run_suite(suite, out, specs=specs, keep_going=not args.fail_fast,
                       together=args.together, report_specs=everything)
    stopped = f", stopped by a signal at {report.interrupted}" if report.interrupted else ""
    logger.info(
        "%s: %d trained, %d already finished, %d failed%s; report: %s",
        suite.name,
        len(report.trained),
        len(report.skipped),
        len(report.failed),
        stopped,
        out / "results.md",
    )
    for run_id, error in report.failed.items():
        logger.error("failed: %s: %s", run_id, error)
    if report.interrupted:
        return STOPPED_EXIT_STATUS
    return 1 if report.failed else 0


def _check_report_only(parser: argparse.ArgumentParser, args: argparse.Namespace,
                       out: Path) -> None:
    """Exit with a usage error unless --report-only has runs to report in `out`."""
    if args.tasks or args.cores or args.seeds:
        parser.error("--report-only covers every run finished in --out; leave out --tasks, "
                     "--cores and --seeds.")
    if not (out / "runs").is_dir() and not (out / RECORDS_FILE).is_file():
        parser.error(f"no runs of {args.suite!r} in {out}: name the folder the suite trained "
                     f"into with --out.")


def _print_plan(suite: Suite, out: Path, specs: list[RunSpec]) -> None:
    """Print each run with its budget and status, then what is left to train."""
    records = read_records(out)
    to_train = []
    for spec in specs:
        if has_finished(spec, records):
            status = "finished"
        else:
            to_train.append(spec)
            changed = stale_settings(spec, records)
            status = f"to train again: {describe_differences(changed)}" if changed else "to train"
        print(f"{spec.run_id:60s} {spec.config.learner.total_env_steps:>12,d} env steps  "
              f"{status}")
    print(
        f"{len(specs)} runs, {len(to_train)} to train "
        f"({sum(s.config.learner.total_env_steps for s in to_train):,d} env steps); "
        f"cost of the whole suite: {suite.cost}"
    )


def _check_on_device(parser: argparse.ArgumentParser, specs: list[RunSpec]) -> None:
    """Exit with a usage error unless every run trains on device (what --together needs)."""
    from gtrxl_jax.train.builder import resolve_loop

    if host := [s.run_id for s in specs if resolve_loop(s.config) != "on_device"]:
        parser.error(f"--together trains on-device runs only (JAX tasks); {len(host)} of "
                     f"these runs train with actors, e.g. {host[0]}. Leave --together out.")


def _enable_compile_cache(directory: Path) -> None:
    import jax

    directory.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(directory.absolute()))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


if __name__ == "__main__":
    raise SystemExit(main())
