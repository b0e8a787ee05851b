"""`gtrxl-eval`: evaluate a checkpoint of a training run; optionally film it or map its attention.

    gtrxl-eval runs/tmaze                                 # the latest checkpoint
    python -m gtrxl_jax.train.eval_cli runs/tmaze         # the same
    gtrxl-eval runs/tmaze --checkpoint 500 --episodes 200 --greedy
    gtrxl-eval runs/pong --video pong.mp4                 # pixel tasks: a few episodes
    gtrxl-eval runs/tmaze --attention attention.png       # transformer cores

It evaluates as the run's own end-of-run evaluation does (`evaluation.evaluate` for host
tasks, `evaluate_on_device` for JAX tasks, the same seed by default, so the latest
checkpoint of a finished run gives its summary.json's numbers), prints a summary and writes
RUN_DIR/eval_<update>.json. Videos and attention maps come from episodes played one at a time
with the same policy step (`recording`); a multi-task run's come from its first task.

Exit codes: 0 done; 2 a folder that is not a run, a checkpoint it does not have (the
message lists those it has), or a video or attention map the run cannot give (a task
without pixels, a core without attention); 1 a checkpoint that cannot be read.
"""

import argparse
import contextlib
import json
import logging
import math
import os
import sys
from pathlib import Path

from gtrxl_jax.argtypes import Parser, positive_int
from gtrxl_jax.config import ConfigError
from gtrxl_jax.envs import make_env
from gtrxl_jax.strict_json import strict_json
from gtrxl_jax.train import builder
from gtrxl_jax.train.attention_map import (
    attention_weights,
    has_attention,
    image_formats,
    plot_attention,
)
from gtrxl_jax.train.checkpoint import CheckpointError
from gtrxl_jax.train.evaluation import MODES, evaluate, evaluate_on_device, evaluation_seed
from gtrxl_jax.train.recording import JaxEnvOnHost, record_episodes
from gtrxl_jax.train.saved_run import RunFolderError, SavedRun, load_run
from gtrxl_jax.train.video import PIXEL_KINDS, VIDEO_SUFFIXES, frame_of, write_video


class UnavailableError(Exception):
    """A video or an attention map that the run cannot give."""


VIDEO_EPISODES = 3
VIDEO_MAX_STEPS = 3_000  # frames in all, so that a long Atari game stays a short file
ATTENTION_MAX_STEPS = 256  # a longer episode is mapped over its first steps


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="gtrxl-eval", description="Evaluate a checkpoint of a gtrxl-train run.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run's folder (its run.log_dir)")
    parser.add_argument("--checkpoint", type=int, metavar="N",
                        help="the update of the checkpoint (default: the latest)")
    parser.add_argument("--episodes", type=positive_int, metavar="K",
                        help="episodes per mode (default: the run's run.eval_episodes, or 100)")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--greedy", action="store_true", help="only the greedy policy")
    modes.add_argument("--sampled", action="store_true", help="only the sampled policy")
    parser.add_argument("--seed", type=int,
                        help="seeds the environments and sampling (default: the run's "
                             "end-of-run evaluation seed)")
    parser.add_argument("--video", metavar="OUT.mp4|OUT.gif",
                        help=f"film {VIDEO_EPISODES} episodes (pixel tasks)")
    parser.add_argument("--attention", metavar="OUT.png",
                        help="plot the attention weights over one greedy episode "
                             "(GTrXL, TrXL, TrXL-I cores)")
    return parser


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"gtrxl-eval: error: {message}\n")
    return code


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, evaluate, write and report; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.episodes is not None and args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    for option, path, suffixes in (("--video", args.video, VIDEO_SUFFIXES),
                                   ("--attention", args.attention, image_formats())):
        if path and (message := _output_file_problem(path, suffixes)):
            parser.error(f"{option}: {message}")
    logging.basicConfig(level=logging.WARNING)
    for chatty in ("absl", "jax"):  # orbax's notes on a read-only folder, jax's probing
        logging.getLogger(chatty).setLevel(logging.ERROR)
    try:
        run = load_run(args.run_dir, args.checkpoint)
        _check_outputs(run, args)
    except (RunFolderError, ConfigError, UnavailableError) as error:
        return _fail(str(error), 2)
    except CheckpointError as error:
        return _fail(str(error), 1)
    report = evaluate_checkpoint(run, args)
    out = run.folder / f"eval_{run.update}.json"
    out.write_text(json.dumps(strict_json(report), indent=2) + "\n")
    sys.stdout.write(_summary(report, out) + "\n")
    return 0


def _output_file_problem(path: str, suffixes: tuple[str, ...]) -> str | None:
    """What keeps `path` from being written as one of `suffixes`, or None."""
    if Path(path).suffix.lower() not in suffixes:
        return f"writes one of {', '.join(suffixes)}, not {path!r}"
    if not Path(path).absolute().parent.is_dir():
        return f"{Path(path).parent} is not a folder: make it first, or name another file"
    return None


def _check_outputs(run: SavedRun, args: argparse.Namespace) -> None:
    """Raise UnavailableError for a report, video or attention map that cannot be made.

    The report cannot be written into a folder this user may not write; a video needs
    pixel observations, an attention map a transformer core.
    """
    if not os.access(run.folder, os.W_OK | os.X_OK):
        raise UnavailableError(
            f"{run.folder} is not writable by this user, and gtrxl-eval writes its report "
            f"(eval_{run.update}.json) there: make the folder writable, or evaluate a copy.")
    if args.video and run.spec.observation_kind not in PIXEL_KINDS:
        raise UnavailableError(
            f"--video: {run.tasks[0]} observes {run.spec.observation_kind}, not pixels: there "
            "is nothing to render. Videos are for pixel tasks (Atari, ViZDoom, Procgen, "
            "Memory Maze).")
    if args.attention and not has_attention(run.agent):
        raise UnavailableError(f"--attention: the run's core is {run.config.agent.core}, which "
                               "has no attention; attention maps need gtrxl, trxl or trxl_i.")


def evaluate_checkpoint(run: SavedRun, args: argparse.Namespace) -> dict:
    """Evaluate, and film or map attention as asked; returns the eval_<update>.json report."""
    modes = ("greedy",) if args.greedy else ("sampled",) if args.sampled else MODES
    episodes = args.episodes or run.config.run.eval_episodes or 100
    seed = evaluation_seed(run.config.run.seed) if args.seed is None else args.seed
    if run.loop == "on_device":
        results = evaluate_on_device(run.agent, run.params, builder.make_jax_task(run.config),
                                     episodes, seed=seed, modes=modes)
    else:
        results = evaluate(run.agent, run.params, run.tasks, episodes, seed=seed,
                           env_options=run.config.env.options, modes=modes)
    report = {"run": str(run.folder), "checkpoint": run.update, "env_steps": run.env_steps,
              "episodes": episodes, "seed": seed, "eval": results}
    if args.video:
        with contextlib.closing(_one_env(run, seed)) as env:
            played = record_episodes(run.agent, run.params, env, VIDEO_EPISODES,
                                     greedy=not args.sampled, seed=seed,
                                     max_steps=VIDEO_MAX_STEPS)
        frames = [frame_of(observation, run.spec.observation_kind)
                  for episode in played for observation in episode.observations()]
        write_video(frames, args.video)
        report["video"] = {"file": args.video, "episodes": len(played), "frames": len(frames),
                           "returns": [episode.episode_return for episode in played]}
    if args.attention:
        report["attention"] = map_attention(run, seed, args.attention)
    return report


def map_attention(run: SavedRun, seed: int, path: str) -> dict:
    """Plot the attention over one greedy episode; returns what the report says of it.

    Returns:
      {"file", "steps" (T), "complete" (the episode ended within ATTENTION_MAX_STEPS),
      "episode_return", "last_step_weights": per layer, the weights [T] that the
      episode's last decision (the T-maze's junction) puts on each of its steps}.
    """
    with contextlib.closing(_one_env(run, seed)) as env:
        (episode,) = record_episodes(run.agent, run.params, env, 1, greedy=True, seed=seed,
                                     max_steps=ATTENTION_MAX_STEPS)
    weights = attention_weights(run.agent, run.params, episode.inputs)
    steps = len(episode.actions)
    plot_attention(weights, path, title=(
        f"{run.tasks[0]}, update {run.update}\na greedy episode of {steps} steps"
        f"{'' if episode.complete else ' (cut)'}, return {episode.episode_return:g}"))
    return {"file": path, "steps": steps, "complete": episode.complete,
            "episode_return": episode.episode_return,
            "last_step_weights": [[round(float(w), 4) for w in layer] for layer in weights[:, -1]]}


def _one_env(run: SavedRun, seed: int):
    """One environment of the run's (first) task, as evaluation makes it."""
    if run.loop == "on_device":
        return JaxEnvOnHost(builder.make_jax_task(run.config), seed)
    return make_env(run.tasks[0], 1, seed=seed, training=False, **run.config.env.options)


def _summary(report: dict, out: Path) -> str:
    lines = [f"{report['run']}: update {report['checkpoint']} ({report['env_steps']} env steps)"]
    for mode, values in report["eval"].items():
        success = values["success"]
        success = "" if math.isnan(success) else f", success {success:.3f}"
        lines.append(f"  {mode}: return {values['episode_return']:.3f}{success}, length "
                     f"{values['episode_length']:.1f} over {values['episodes']} episodes")
    if "video" in report:
        lines.append(f"  video: {report['video']['file']}")
    if "attention" in report:
        lines.append(f"  attention: {report['attention']['file']}")
    lines.append(f"  written to {out}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
