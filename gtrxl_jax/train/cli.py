"""`gtrxl-train` / `python -m gtrxl_jax.train`: train an agent from a config file and overrides.

    python -m gtrxl_jax.train --config experiments/configs/tmaze.py learner.total_env_steps=1e6

Exit codes: 0 done; 2 a configuration error (an unknown key, an invalid value, a layout that
does not fit, a task the agent cannot play, an unwritable run.log_dir), reported before any
work starts, or run.wandb=true where W&B cannot be used (no wandb package, not logged in),
reported once the learner's state is built; 1 a checkpoint that cannot be resumed from or
written, too many non-finite updates in a row, a stalled actor or learner, or metrics that
cannot be written (each after a final checkpoint where one can be written; an actor's own
error ends the run with its traceback, also after a final checkpoint); 130 stopped by a
signal (after writing a final checkpoint).
"""

import argparse
import logging
import math
import os
import sys
import textwrap

from tqdm.contrib.logging import logging_redirect_tqdm

from gtrxl_jax.argtypes import Parser
from gtrxl_jax.config import ConfigError, TrainConfig, describe_fields, load_config
from gtrxl_jax.train.checkpoint import CheckpointError
from gtrxl_jax.train.handoff import Stalled
from gtrxl_jax.train.learning import NonFiniteError
from gtrxl_jax.train.loop import train
from gtrxl_jax.train.metrics import MetricsWriteError
from gtrxl_jax.train.shutdown import STOPPED_EXIT_STATUS

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _fields_help() -> str:
    """Every config key with its built-in default and description, for --help."""
    lines = ["config keys (key=value; the built-in defaults, which a --config file may change):"]
    for key, value, description in describe_fields(TrainConfig()):
        lines.append(f"  {key} = {value!r}")
        lines += textwrap.wrap(description, width=88, initial_indent=" " * 6,
                               subsequent_indent=" " * 6)
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="gtrxl-train",
        description="Train a GTrXL (or LSTM / feed-forward) agent with V-trace or PPO.",
        epilog=_fields_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", default=None,
                        help="a Python file defining get_config() -> TrainConfig "
                             "(default: the built-in defaults)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. env.task=TMaze-L32 learner.batch_size=64")
    return parser


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"gtrxl-train: error: {message}\n")
    return code


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, check the config, train, and report; returns the exit code."""
    args = _parser().parse_intermixed_args(argv)  # overrides may come before --config too
    # absl (imported by orbax) may already have put a handler on the root logger, which makes
    # basicConfig a no-op: set the level and format on whatever handlers there are, or every
    # INFO line (e.g. "Resuming from update ...") would be dropped.
    logging.basicConfig()
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in root.handlers:
        handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    for chatty in ("absl", "jax"):  # orbax's per-save lines, jax's platform probing
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        config = load_config(args.config, args.overrides)
        with logging_redirect_tqdm():
            result = train(config)  # checks the config before any work (ConfigError)
    except ConfigError as error:
        return _fail(str(error), 2)
    except (CheckpointError, NonFiniteError, Stalled, MetricsWriteError) as error:
        return _fail(str(error), 1)
    except KeyboardInterrupt:  # a second Ctrl-C, or one while starting up or evaluating
        sys.stderr.write("gtrxl-train: stopped at once by a signal: nothing after the last "
                         "checkpoint was saved; continue the run with the same command and "
                         "run.resume=true (if it has a checkpoint yet).\n")
        # The run's files are closed by now; XLA's threads may still be compiling, and the
        # interpreter's clean-up under them can crash (exit 139): leave without it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(STOPPED_EXIT_STATUS)
    lines = [f"{result.env_steps} env steps, {result.update} updates in "
             f"{result.wall_clock_s:.0f} s ({result.sps:.0f} steps/s); logs in {result.log_dir}"]
    for mode, values in result.eval.items():
        success = values["success"]
        success = "" if math.isnan(success) else f", success {success:.3f}"
        lines.append(f"eval {mode}: return {values['episode_return']:.3f}{success} over "
                     f"{values['episodes']} episodes")
    if result.interrupted:
        lines.append(f"stopped by a signal at update {result.update}, after its checkpoint: "
                     "continue the run with the same command and run.resume=true")
    sys.stdout.write("\n".join(lines) + "\n")
    return STOPPED_EXIT_STATUS if result.interrupted else 0
