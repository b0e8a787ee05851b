"""gtrxl-eval: a checkpoint's evaluation, report, errors, attention maps and videos.

The module's run is a tiny GTrXL (one layer, TINY_AGENT) trained on device on TMaze-L3 until
it solves it (seeds 0, 1 and 2 pass 90% success by update 800 of its 1000; the updates take
seconds, compiling most of the time), so that its attention has something to show: at the
junction the cue step, step 0, draws the most weight.
"""

import importlib.util
import json
import subprocess
import sys
import time

import imageio.v3 as iio
import numpy as np
import pytest

from gtrxl_jax.envs.spec import PIXELS_CHW, PIXELS_HWC
from gtrxl_jax.train import builder
from gtrxl_jax.train.attention_map import attention_weights
from gtrxl_jax.train.eval_cli import main
from gtrxl_jax.train.loop import train
from gtrxl_jax.train.recording import JaxEnvOnHost, record_episodes
from gtrxl_jax.train.saved_run import load_run
from gtrxl_jax.train.video import frame_of, write_video
from tests.environment import REPO, child_env
from tests.train.helpers import tiny_config

UPDATES, STEPS_PER_UPDATE = 1000, 4 * 8
RUN = ["learner.loop=on_device", f"learner.total_env_steps={UPDATES * STEPS_PER_UPDATE}",
       "optimizer.learning_rate=5e-4",  # the rate its budget was measured with
       "run.eval_episodes=20", "run.log_interval_updates=100",
       "run.checkpoint_interval_updates=500"]  # and tiny_config's TMaze-L3, 4 envs, 8 steps
JUNCTION = 4  # TMaze-L3: the cue at step 0, the corridor at 1 .. 3, the choice at step 4


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(the run's folder, its end-of-run evaluation, seconds it took)."""
    log_dir = tmp_path_factory.mktemp("tmaze")
    start = time.monotonic()
    result = train(tiny_config(log_dir, *RUN))
    return log_dir, result.eval, time.monotonic() - start


@pytest.mark.slow
def test_the_latest_checkpoint_is_evaluated_as_the_run_ended(trained, tmp_path, capsys):
    log_dir, end_of_run, train_s = trained
    assert train_s < 120
    assert end_of_run["greedy"]["success"] >= 0.9, end_of_run  # it learned
    plot = tmp_path / "attention.png"
    assert main([str(log_dir), "--attention", str(plot)]) == 0
    report = json.loads((log_dir / f"eval_{UPDATES}.json").read_text())
    assert (report["checkpoint"], report["env_steps"]) == (UPDATES, UPDATES * STEPS_PER_UPDATE)
    for mode in ("greedy", "sampled"):
        values = report["eval"][mode]
        assert values["episodes"] == 20 and values["episode_length"] == 5.0
        assert values["success"] in {i / 20 for i in range(21)}
        assert values["episode_return"] == values["success"]  # the T-maze pays 1 for success
    # the run's own end-of-run evaluation: the same seed, the same episodes
    assert report["eval"]["greedy"] == end_of_run["greedy"]
    assert plot.stat().st_size > 0
    attention = report["attention"]
    assert attention["steps"] == JUNCTION + 1 and attention["complete"]
    assert attention["episode_return"] == 1.0
    junction = np.array(attention["last_step_weights"])  # [L, T] from the junction
    assert any(layer[:JUNCTION].argmax() == 0 for layer in junction), junction
    output = capsys.readouterr().out
    assert "greedy: return" in output and f"eval_{UPDATES}.json" in output


@pytest.mark.slow
def test_attention_at_the_junction_falls_most_on_the_cue(trained):
    """Both cues: the episode replayed in one call equals its steps, each query's weights
    sum to 1 over the steps up to it, and in some layer the junction's largest weight on an
    earlier step is on the cue (step 0)."""
    log_dir, _, _ = trained
    run = load_run(log_dir)
    episodes = record_episodes(run.agent, run.params,
                               JaxEnvOnHost(builder.make_jax_task(run.config), seed=7),
                               6, greedy=True, seed=7, max_steps=100)
    cues = {int(episode.inputs.observation[0, 0].argmax()) for episode in episodes}
    assert cues == {0, 1}, "both cues, left and right"
    for episode in episodes:
        outputs, _ = run.agent.unroll(run.params, episode.inputs, run.agent.initial_state(1))
        np.testing.assert_array_equal(np.asarray(outputs.logits[:, 0].argmax(-1)),
                                      episode.actions)
        weights = attention_weights(run.agent, run.params, episode.inputs)  # [L, T, T]
        assert weights.shape == (1, JUNCTION + 1, JUNCTION + 1)
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
        assert np.all(np.triu(weights, k=1) == 0)
        at_junction = weights[:, JUNCTION, :JUNCTION]  # [L, earlier steps]
        assert any(layer.argmax() == 0 for layer in at_junction), at_junction


@pytest.mark.slow
def test_an_earlier_checkpoint_and_one_mode(trained, capsys):
    log_dir, _, _ = trained
    assert main([str(log_dir), "--checkpoint", "500", "--episodes", "6", "--sampled"]) == 0
    report = json.loads((log_dir / "eval_500.json").read_text())
    assert report["checkpoint"] == 500 and list(report["eval"]) == ["sampled"]
    assert report["eval"]["sampled"]["episodes"] == 6
    assert "sampled: return" in capsys.readouterr().out


@pytest.mark.slow
def test_a_missing_checkpoint_or_output_is_a_one_line_error(trained, capsys):
    log_dir, _, _ = trained
    assert main([str(log_dir), "--checkpoint", "7"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no checkpoint of update 7; it has 500, 1000" in error
    assert main([str(log_dir), "--video", "out.mp4"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "nothing to render" in error


@pytest.mark.slow
def test_a_folder_it_cannot_write_is_read_but_not_evaluated(trained, capsys, monkeypatch):
    """load_run only reads (a run may still be training); gtrxl-eval writes its report there."""
    log_dir, _, _ = trained
    monkeypatch.setattr("os.access", lambda path, mode: False)  # root may write anywhere
    assert load_run(log_dir).update == UPDATES
    assert main([str(log_dir)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert f"{log_dir} is not writable by this user, and gtrxl-eval writes its report " \
           f"(eval_{UPDATES}.json) there" in error


def test_an_actor_learner_run_is_evaluated_on_host_environments(tmp_path):
    """Its checkpoint holds a LearnerState (not a RunnerState), and its T-maze is numpy's."""
    train(tiny_config(tmp_path, "learner.loop=actor_learner", "learner.total_env_steps=64",
                      "run.eval_episodes=3"))
    run = load_run(tmp_path)
    assert (run.loop, run.update) == ("actor_learner", 2)
    assert main([str(tmp_path), "--greedy", "--attention", str(tmp_path / "a.png")]) == 0
    report = json.loads((tmp_path / "eval_2.json").read_text())
    assert report["eval"]["greedy"]["episodes"] == 3
    assert report["attention"]["steps"] == JUNCTION + 1


@pytest.mark.parametrize("option, name, message", [
    ("--attention", "map.xyz", "--attention: writes one of "),
    ("--attention", "missing/map.png", "missing is not a folder: make it first"),
    ("--video", "missing/episode.mp4", "missing is not a folder: make it first"),
    ("--video", "episode.avi", "--video: writes one of .mp4, .gif, not "),
])
def test_an_output_it_could_not_write_is_refused_before_evaluating(tmp_path, capsys, option,
                                                                    name, message):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), option, str(tmp_path / name)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


def test_a_corrupt_config_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "config.json").write_text('{"env": ')
    assert main([str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert f"{tmp_path / 'config.json'} is not valid JSON" in error


def test_a_folder_that_is_not_a_run_is_a_one_line_error(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "gtrxl_jax.train.eval_cli", str(tmp_path)], cwd=REPO,
        env=child_env(), capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        f"gtrxl-eval: error: {tmp_path} is not a training run: it has no config.json "
        "(gtrxl-train writes one into its run.log_dir)."]


def test_frames_are_the_newest_of_a_stack_in_rgb():
    gray = np.arange(4 * 2 * 3, dtype=np.uint8).reshape(4, 2, 3)  # Atari: 4 gray frames
    np.testing.assert_array_equal(frame_of(gray, PIXELS_CHW), np.repeat(gray[-1, ..., None], 3, -1))
    rgb = np.arange(2 * 3 * 6, dtype=np.uint8).reshape(2, 3, 6)  # two RGB frames, HWC
    np.testing.assert_array_equal(frame_of(rgb, PIXELS_HWC), rgb[..., 3:])


NO_FFMPEG = pytest.mark.skipif(
    importlib.util.find_spec("imageio_ffmpeg") is None,
    reason="imageio-ffmpeg is not installed (requirements.txt installs it)")


@pytest.mark.parametrize("suffix", [".gif", pytest.param(".mp4", marks=NO_FFMPEG)])
@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # imread's ffmpeg, fork + exec
def test_a_video_holds_every_frame(tmp_path, suffix):
    frames = [np.full((84, 84, 3), 20 * i, np.uint8) for i in range(5)]
    write_video(frames, tmp_path / f"episode{suffix}")
    video = iio.imread(tmp_path / f"episode{suffix}")
    assert video.shape[0] == 5 and video.shape[1] % 84 == 0  # scaled up by a whole factor
