"""The benchmark suite: named suites of training runs, normalised scores, tables and plots.

    gtrxl-suite fast                    # (python -m gtrxl_jax.suite fast) the CPU suite

- suites.py: the suites (tasks x cores x seeds) and their expansion into TrainConfigs.
- runner.py: runs them through `gtrxl_jax.train.loop.train` (or an injected function),
  resumably, each task and core's seeds in one program with `together`
  (`gtrxl_jax.train.loop.train_seeds`), and writes the report.
- references.json / references.py: random and reference scores per task, with sources.
- scores.py: normalised scores; mean, median and capped-mean aggregates; failure to learn.
- intervals.py: IQM and optimality gap with stratified bootstrap intervals (rliable's).
- results.py, tables.py, plots.py: reading run folders; Markdown/CSV tables; curves.
- random_policy.py: measuring a random policy's score (host and JAX tasks);
  minigrid_memory.py: MiniGrid Memory's best expected return.
"""

from gtrxl_jax.suite.references import TaskReference, load_references
from gtrxl_jax.suite.runner import SuiteReport, run_suite, write_report
from gtrxl_jax.suite.scores import aggregate, failed_to_learn, normalized_score
from gtrxl_jax.suite.suites import SUITES, RunSpec, Suite, Variant, expand

__all__ = [
    "SUITES",
    "RunSpec",
    "Suite",
    "SuiteReport",
    "TaskReference",
    "Variant",
    "aggregate",
    "expand",
    "failed_to_learn",
    "load_references",
    "normalized_score",
    "run_suite",
    "write_report",
]
