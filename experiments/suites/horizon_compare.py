r"""One memory-horizon figure from the horizon.csv of several suite folders.

The horizon suite gives every core one budget; slices trained beside it (another budget,
another trajectory length) live in folders of their own. This draws chosen cores of each
folder on one success-against-cue-distance plot, each line with a label of its own:

    python experiments/suites/horizon_compare.py horizon_compare.png \
        --series experiments/suites/results/memory_horizon_xeon gtrxl_gru GTrXL \
        --series experiments/suites/results/memory_horizon_lstm_8x lstm "LSTM, 8x steps"

Sampled evaluation, as the suite's own horizon table.
"""

import argparse
from pathlib import Path

from gtrxl_jax.suite.plots import plot_horizon
from gtrxl_jax.suite.tables import read_horizon


def read_series(folder: Path, core: str) -> list[tuple]:
    """A core's sampled points in a suite folder's horizon.csv (`read_horizon`'s tuples).

    Raises:
      SystemExit: the folder has no horizon.csv, or no sampled row for `core`.
    """
    path = folder / "horizon.csv"
    if not path.is_file():
        raise SystemExit(f"{path} not found: train a horizon suite into {folder} first.")
    points = read_horizon(path, "sampled").get(core)
    if not points:
        raise SystemExit(f"{path} has no sampled row for core {core!r}.")
    return points


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, draw the figure; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--series", nargs=3, action="append", required=True,
                        metavar=("FOLDER", "CORE", "LABEL"),
                        help="a line: CORE's points in FOLDER/horizon.csv, named LABEL")
    parser.add_argument("--title", default="Memory horizon: passive T-maze")
    parser.add_argument("--trajectory-len", type=int, default=32,
                        help="the learner's trajectory length, marked on the axis")
    args = parser.parse_args(argv)
    points = {label: read_series(Path(folder), core) for folder, core, label in args.series}
    if len(points) < len(args.series):
        parser.error("each --series needs a label of its own")
    plot_horizon(points, args.out, args.title, args.trajectory_len)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
