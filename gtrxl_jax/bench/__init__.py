"""Performance measurements of gtrxl_jax (the `gtrxl-bench` command).

Each measurement is a named entry of `registry.MEASUREMENTS` that yields JSON records; the
modules imported here register theirs. To add one, write a module with a function decorated
by `registry.register(...)` and import it below.
"""

# Imported for their side effect: each module registers its measurements. The core's and
# the machine's need only JAX and Flax, so they also run where the training stack (rlax,
# optax, orbax, ...) is not installed, such as a GPU machine's own Python.
from gtrxl_jax.bench import bandwidth, ceiling, core, segments, torso  # noqa: F401
from gtrxl_jax.bench.registry import (
    MEASUREMENTS,
    Session,
    check_measurements,
    register,
    register_unavailable,
    run_measurements,
)
from gtrxl_jax.bench.workloads import WORKLOADS, Workload

try:
    from gtrxl_jax.bench import e2e, learner, on_device  # noqa: F401
except ImportError as error:
    register_unavailable(
        ("e2e", "update", "on_device", "on_device_envs"),
        f"it needs the training stack, and importing it failed ({error}); "
        "install requirements.txt",
    )

__all__ = ["MEASUREMENTS", "WORKLOADS", "Session", "Workload", "check_measurements", "register",
           "run_measurements"]
