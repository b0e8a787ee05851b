"""experiments/suites/horizon_compare.py: one horizon figure from several suite folders."""

import subprocess
import sys

from tests.environment import REPO, child_env

SCRIPT = REPO / "experiments" / "suites" / "horizon_compare.py"
RESULTS = REPO / "experiments" / "suites" / "results"


def compare(tmp_path, *series: str):
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "h.png"), *series],
        capture_output=True, text=True, cwd=REPO, env=child_env(), timeout=300)


def test_draws_cores_of_several_folders_on_one_figure(tmp_path):
    result = compare(tmp_path,
                     "--series", str(RESULTS / "memory_horizon_xeon"), "gtrxl_gru", "GTrXL",
                     "--series", str(RESULTS / "memory_horizon_lstm_8x"), "lstm", "LSTM, 8x")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "h.png").stat().st_size > 10_000


def test_a_core_the_folder_lacks_is_one_line(tmp_path):
    result = compare(tmp_path, "--series", str(RESULTS / "memory_horizon_lstm_8x"),
                     "gtrxl_gru", "GTrXL")
    assert result.returncode != 0 and not (tmp_path / "h.png").exists()
    assert result.stderr.strip().endswith("has no sampled row for core 'gtrxl_gru'.")
    assert "Traceback" not in result.stderr
