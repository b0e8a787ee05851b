"""The project's own and the JAX tasks need no envpool: a Python without it makes them."""

import subprocess
import sys

from tests.environment import REPO, child_env

SCRIPT = """
import sys
sys.modules["envpool"] = None  # `import envpool` fails, as where it is not installed
import numpy as np
from gtrxl_jax.envs import batch_reset, make_env, make_jax_env, reset_keys
env = make_env("TMaze-L4", num_envs=2, seed=0)
print("host", env.reset().observation.shape)
states, timestep = batch_reset(make_jax_env("TMaze-L10"), reset_keys(seed=0, num_envs=3))
print("jax", timestep.observation.shape)
make_jax_env("RepeatFirstEasy")
try:
    make_env("Pong-v5", num_envs=1)
except ValueError as error:
    print("error", error)
try:
    from gtrxl_jax.envs import EnvpoolEnv
except ImportError:
    print("EnvpoolEnv needs envpool")
"""


def test_tasks_without_envpool_build_and_envpool_tasks_say_what_to_install():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            cwd=REPO, env=child_env(), timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("host (2,") and lines[1].startswith("jax (3,")
    assert lines[2].startswith("error unknown task 'Pong-v5'")
    assert "envpool is not installed" in lines[2] and "pip install" in lines[2]
    assert lines[3] == "EnvpoolEnv needs envpool"
