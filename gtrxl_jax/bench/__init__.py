"""Performance measurements of gtrxl_jax (the `gtrxl-bench` command).

Each measurement is a named entry of `registry.MEASUREMENTS` that yields JSON records; the
modules imported here register theirs. To add one, write a module with a function decorated
by `registry.register(...)` and import it below.
"""

# Imported for their side effect: each module registers its measurements.
from gtrxl_jax.bench import bandwidth, ceiling, core, e2e, learner, segments, torso  # noqa: F401
from gtrxl_jax.bench.registry import MEASUREMENTS, Session, register, run_measurements
from gtrxl_jax.bench.workloads import WORKLOADS, Workload

__all__ = ["MEASUREMENTS", "WORKLOADS", "Session", "Workload", "register", "run_measurements"]
