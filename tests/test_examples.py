"""The standalone example: another JAX agent using only gtrxl_jax.nn."""

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "experiments" / "minimal_agent.py"

PROBE = f"""
import runpy, sys
sys.argv = ["minimal_agent.py", "--updates", "200"]
namespace = runpy.run_path({str(EXAMPLE)!r})
success = namespace["main"](["--updates", "200"])
print("SUCCESS", success)
print("MODULES", sorted(m for m in sys.modules if m.startswith("gtrxl_jax")))
"""


def test_minimal_agent_learns_with_only_gtrxl_jax_nn():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, check=True
    ).stdout
    success = float(out.split("SUCCESS ")[1].split()[0])
    modules = out.split("MODULES ")[1]
    assert success >= 0.9, out
    for forbidden in ("gtrxl_jax.agent", "gtrxl_jax.train", "gtrxl_jax.envs", "gtrxl_jax.losses"):
        assert forbidden not in modules, modules
