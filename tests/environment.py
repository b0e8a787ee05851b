"""How the tests' processes run: the repository root, XLA's flags, subprocess environments.

On the CPU (this project's machines and CI), the tests' own compiles use XLA's backend
optimisation level 0 and XLA:CPU's classic fusion emitters instead of its MLIR ones: most
of a test's time is XLA:CPU compiling, which each of the two roughly halves (measured in
docs/reliability.md), and what the tests check (results, shapes, equalities between two
programs, errors) holds with any code generator. Programs run ~2x slower, which the unit
tests, with their tiny models, do not feel. The learning tests train as a user would, at
XLA's defaults (`user_env`); so does the main job.

On a GPU (or TPU) host the same tests run on the accelerator, with what it needs to hold
them to the CPU's standard (`TEST_ENV`): float32 matmuls in float32, deterministic kernels,
memory taken as needed, at most two devices. Level 0 is left out there: XLA:GPU refuses to
generate unoptimised code.
"""

import importlib.util
import os
from importlib.metadata import entry_points
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def may_use_an_accelerator() -> bool:
    """Whether jax may pick a GPU or TPU as its default backend here, decided without
    starting jax: JAX_PLATFORMS names one first, or names nothing while a GPU or TPU plugin
    is installed (a plugin without its device leaves jax on the CPU: tests run as on one)."""
    platforms = [p.strip() for p in os.environ.get("JAX_PLATFORMS", "").split(",") if p.strip()]
    if platforms:
        return platforms[0] != "cpu"
    return bool(entry_points(group="jax_plugins")) or any(
        importlib.util.find_spec(name) is not None for name in ("jax_plugins", "libtpu"))


# Two forced CPU devices make the multi-device paths run on a CPU host; the flag concerns
# only XLA's CPU backend, so an accelerator host keeps its own devices.
_TWO_CPU_DEVICES = "--xla_force_host_platform_device_count=2"
# Bit-for-bit tests (reproducible runs, an exact resume) need run-to-run determinism, which
# XLA:GPU gives only when asked: deterministic scatters and reductions, no autotuning.
_DETERMINISTIC_GPU = "--xla_gpu_deterministic_ops=true"
ON_ACCELERATOR = may_use_an_accelerator()
_CHEAP_CPU_COMPILES = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
TEST_XLA_FLAGS = (f"{_TWO_CPU_DEVICES} {_DETERMINISTIC_GPU}" if ON_ACCELERATOR
                  else f"{_TWO_CPU_DEVICES} {_CHEAP_CPU_COMPILES}")

# Why a test of envpool's tasks is skipped where envpool is not installed.
ENVPOOL_MISSING = ("envpool is not installed (`pip install -r requirements.txt` installs it; "
                   "a GPU machine's own Python may lack it)")

# The test processes' environment (tests/conftest.py sets each value a user has not set).
TEST_ENV = {
    "XLA_FLAGS": TEST_XLA_FLAGS,
    # Float32 matmuls and convolutions in float32 on every backend: A100 and H100 GPUs
    # otherwise take TF32 (10-bit mantissas), beyond the float32 tolerances of the equality
    # tests. XLA:CPU computes float32 in float32 at any setting.
    "JAX_DEFAULT_MATMUL_PRECISION": "highest",
    # Every pytest worker and subprocess shares the GPU: each takes memory as it needs it,
    # instead of 75% of the GPU at its start.
    "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
    # The tests' batches split over at most two devices (the CPU's two); CUDA makes
    # visible those of the listed GPUs that exist.
    "CUDA_VISIBLE_DEVICES": "0,1",
}


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess of the tests: the tests' XLA flags, this checkout."""
    return {**TEST_ENV, **os.environ, "XLA_FLAGS": TEST_XLA_FLAGS, "PYTHONPATH": python_path(),
            **extra}


def user_env() -> dict[str, str]:
    """The environment of a subprocess that trains as a user's would: XLA's defaults, one
    CPU device (no XLA_FLAGS), this checkout, the test session's compilation cache (which
    changes no result). On an accelerator it keeps the tests' shared GPU memory and
    devices, and asks for deterministic kernels (as a user who wants reproducible runs
    would)."""
    env = {name: value for name, value in {**TEST_ENV, **os.environ}.items()
           if name not in ("XLA_FLAGS", "JAX_DEFAULT_MATMUL_PRECISION")}
    if ON_ACCELERATOR:
        env["XLA_FLAGS"] = _DETERMINISTIC_GPU
    return {**env, "PYTHONPATH": python_path()}


def python_path() -> str:
    """This checkout first, then the PYTHONPATH the tests run with (packages installed
    there, e.g. wheels on a GPU machine, stay importable in subprocesses)."""
    inherited = os.environ.get("PYTHONPATH")
    return os.pathsep.join([str(REPO), inherited] if inherited else [str(REPO)])
