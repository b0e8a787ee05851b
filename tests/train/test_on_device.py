"""The on-device loop: one update over 1 or 2 devices, a run's outputs, exact resume, eval."""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import jax
import numpy as np
import optax
import pytest

from gtrxl_jax.agent import Agent
from gtrxl_jax.config import ConfigError, LossConfig, RunsApartError
from gtrxl_jax.envs import make_jax_env
from gtrxl_jax.nn import GTrXLConfig
from gtrxl_jax.train import placement
from gtrxl_jax.train.checkpoint import Checkpointer
from gtrxl_jax.train.evaluation import evaluate_jax_task
from gtrxl_jax.train.learning import Learning
from gtrxl_jax.train.loop import train, train_seeds
from gtrxl_jax.train.on_device import OnDevice
from tests.environment import REPO, user_env
from tests.reliability.helpers import checkpoint_meta, checkpoint_updates, read_metrics
from tests.train.helpers import TINY_AGENT, tiny_config

N, T = 4, 8
ADAM = optax.adam(1e-3)
ON_DEVICE = ["learner.loop=on_device", "env.task=TMaze-L3", f"env.num_envs={N}",
             f"learner.batch_size={N}", f"learner.trajectory_len={T}"]


def program(num_devices: int, optimizer=ADAM) -> OnDevice:
    env = make_jax_env("TMaze-L3")
    spec = env.spec(N)
    agent = Agent(spec.observation, spec.num_actions,
                  GTrXLConfig(num_layers=1, d_model=16, num_heads=2, memory_len=8))
    learning = Learning(agent, LossConfig(popart=True), optimizer, segment_len=4)
    return OnDevice(learning, env, num_envs=N, trajectory_len=T,
                    mesh=placement.make_mesh(jax.local_devices()[:num_devices]))


def three_updates(num_devices: int, optimizer=ADAM):
    on_device = program(num_devices, optimizer)
    runner = on_device.init(jax.random.PRNGKey(0), seed=3)
    update = on_device.compile_update(runner)
    metrics = []
    for _ in range(3):
        runner, m = update(runner)
        metrics.append(jax.device_get(m))
    return jax.device_get(runner), metrics


@pytest.mark.needs_devices(2)
def test_two_devices_give_the_updates_of_one():
    """Every environment samples from its own key stream, so the data do not depend on the
    split; the updates then agree to float32 round-off (gradients averaged over devices).

    Plain SGD keeps what is compared the averaged gradient: Adam divides each gradient by
    its own running scale, which turns round-off in a near-zero gradient into a step of up
    to the learning rate (docs/reliability.md has both optimisers' margins)."""
    one, one_metrics = three_updates(1, optax.sgd(0.1))
    two, two_metrics = three_updates(2, optax.sgd(0.1))
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(two), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for m1, m2 in zip(one_metrics, two_metrics, strict=True):
        assert m1["episodes"] == m2["episodes"]
        np.testing.assert_allclose(m1["loss"], m2["loss"], rtol=1e-4, atol=1e-6)


@pytest.mark.needs_devices(2)
def test_seeds_trained_together_are_the_runs_trained_alone():
    """`compile_seeds_update` vmaps independent runs over a leading seeds axis (on 2 devices,
    each splitting its environments as one run does): each run's updates are its own alone,
    to the round-off of batched kernels, which three Adam steps carry into the parameters."""
    on_device, seeds = program(2), (3, 5)
    runners = on_device.init_seeds(list(seeds))
    update = on_device.compile_seeds_update(runners)
    for _ in range(3):
        runners, together_metrics = update(runners)
    runners, together_metrics = jax.device_get((runners, together_metrics))
    alone = on_device.compile_update(on_device.init(jax.random.PRNGKey(0), 0))
    for i, seed in enumerate(seeds):
        runner = on_device.init(jax.random.PRNGKey(seed), seed)
        for _ in range(3):
            runner, metrics = alone(runner)
        for a, b in zip(jax.tree.leaves(jax.device_get(runner)), jax.tree.leaves(runners),
                        strict=True):
            np.testing.assert_allclose(a, b[i], rtol=1e-3, atol=1e-4)
        assert together_metrics["episodes"][i] == metrics["episodes"] > 0
        np.testing.assert_allclose(together_metrics["loss"][i], metrics["loss"], rtol=1e-4,
                                   atol=1e-6)
    assert together_metrics["loss"][0] != together_metrics["loss"][1]  # two different runs


def test_the_rollout_is_on_policy_and_counts_the_episodes_that_end():
    _, metrics = three_updates(1)
    # 3 updates x 8 steps x 4 envs of 5-step T-maze episodes (reset step included)
    assert sum(m["episodes"] for m in metrics) == pytest.approx(3 * T * N / 6, abs=N)
    for m in metrics:
        assert m["rho_mean"] == pytest.approx(1.0, abs=1e-4)  # acting = learning, no lag
        assert m["policy_lag_mean"] == 0.0
        assert m["episode_length_sum"] == 5 * m["episodes"]  # L3: 5 actions per episode


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("on_device")
    return log_dir, train(tiny_config(log_dir, *ON_DEVICE))


def test_a_run_writes_the_outputs_of_any_run(run):
    log_dir, result = run
    assert (result.update, result.env_steps) == (4, 4 * N * T)
    records = read_metrics(log_dir)
    assert [r["update"] for r in records] == [1, 2, 3, 4]
    for key in ("episode_return", "episode_length", "success", "loss", "entropy", "grad_norm",
                "update_norm", "sps"):
        assert key in records[-1], key
    assert records[-1]["episodes"] > 0 and 0.0 <= records[-1]["success"] <= 1.0
    assert checkpoint_updates(log_dir) == [2, 4]
    summary = json.loads((log_dir / "summary.json").read_text())
    assert summary["eval"]["greedy"]["episodes"] == 4
    assert summary["eval"]["sampled"]["episode_length"] == 5.0


def test_auto_picks_the_on_device_loop_for_a_task_that_exists_only_in_jax(tmp_path):
    result = train(tiny_config(tmp_path, "env.task=RepeatPreviousEasy", f"env.num_envs={N}",
                               f"learner.batch_size={N}", "learner.total_env_steps=64",
                               "run.eval_episodes=2"))
    assert result.update == 2 and result.eval["greedy"]["episodes"] == 2
    assert np.isnan(result.eval["greedy"]["success"])  # POPGym tasks report returns only


def on_device_command(log_dir, *overrides):
    return [os.sys.executable, "-m", "gtrxl_jax.train", *ON_DEVICE, *TINY_AGENT,
            "run.eval_episodes=0", "run.progress=false", "run.log_interval_updates=2",
            "run.checkpoint_interval_updates=3", f"run.log_dir={log_dir}", *overrides]


def test_a_run_killed_and_resumed_equals_the_run_never_stopped_bit_for_bit(tmp_path):
    """The checkpoint holds the environments, the core state and the sampling keys too."""
    updates = 60  # the kill comes at the first checkpoint >= 6: ~50 updates of margin
    steps = f"learner.total_env_steps={updates * N * T}"
    whole = subprocess.run(on_device_command(tmp_path / "whole", steps, "run.keep_checkpoints=1"),
                           cwd=REPO, env=user_env(), capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-3000:]

    killed = tmp_path / "killed"
    process = subprocess.Popen(on_device_command(killed, steps), cwd=REPO, env=user_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not [u for u in checkpoint_updates(killed) if u >= 6] and process.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert max(checkpoint_updates(killed)) < updates, "the run ended before it could be killed"
    resumed = subprocess.run(on_device_command(killed, steps, "run.resume=true"), cwd=REPO,
                             env=user_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    def final(log_dir):
        import orbax.checkpoint as ocp
        return ocp.PyTreeCheckpointer().restore(log_dir / "checkpoints" / str(updates) / "state")

    for a, b in zip(jax.tree.leaves(final(tmp_path / "whole")), jax.tree.leaves(final(killed)),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    # Records every 2 updates and at each checkpoint (every 3): the resumed run's first
    # record after its checkpoint covers the same updates as the whole run's.
    def records(log_dir):
        return [(r["update"], r["loss"], r["episodes"]) for r in read_metrics(log_dir)]

    assert [update for update, _, _ in records(tmp_path / "whole")[:4]] == [2, 3, 4, 6]
    assert records(killed) == records(tmp_path / "whole")


def test_evaluation_on_device_plays_each_environments_first_episode():
    on_device = program(1)
    params = jax.device_get(on_device.init(jax.random.PRNGKey(0), seed=0).learner.params)
    result = evaluate_jax_task(on_device.agent, params, on_device.env, 6, greedy=True, seed=1)
    assert result["episodes"] == 6 and result["episode_length"] == 5.0
    assert result["success"] in {i / 6 for i in range(7)}
    assert result["episode_return"] == result["success"]  # the T-maze pays 1 for success


def test_seeds_trained_together_write_what_each_run_alone_writes(run, tmp_path):
    """`train_seeds`: one program trains the seeds; each folder holds its run's metrics,
    checkpoints and evaluation, and its parameters are the alone run's to round-off."""
    alone_dir, alone = run
    configs = [tiny_config(tmp_path / f"seed{seed}", *ON_DEVICE, f"run.seed={seed}")
               for seed in (0, 7)]
    results = train_seeds(configs)
    assert [r.log_dir for r in results] == [c.run.log_dir for c in configs]
    for result in results:
        assert (result.update, result.env_steps) == (4, 4 * N * T)
        assert checkpoint_updates(result.log_dir) == [2, 4]
        summary = json.loads((Path(result.log_dir) / "summary.json").read_text())
        assert summary["eval"]["greedy"]["episodes"] == 4
    for a, b in zip(jax.tree.leaves(alone.params), jax.tree.leaves(results[0].params),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    alone_records, records = read_metrics(alone_dir), read_metrics(configs[0].run.log_dir)
    assert [r["update"] for r in records] == [1, 2, 3, 4]
    for a, b in zip(alone_records, records, strict=True):
        assert a["episodes"] == b["episodes"]
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-4, atol=1e-6)
    assert results[0].metrics["loss"] != results[1].metrics["loss"]  # two different runs

    resumed = train_seeds([tiny_config(c.run.log_dir, *ON_DEVICE, f"run.seed={c.run.seed}",
                                       "learner.total_env_steps=256", "run.resume=true")
                           for c in configs])
    assert [r.update for r in resumed] == [8, 8]
    assert [r["update"] for r in read_metrics(configs[1].run.log_dir)] == list(range(1, 9))
    assert resumed[0].metrics["loss"] != resumed[1].metrics["loss"]  # each its own checkpoint
    for first, second in zip(results, resumed, strict=True):
        # The training time adds up: the checkpoint's (its time at update 4), then this run's.
        trained_before = checkpoint_meta(first.log_dir, 4)["wall_clock_s"]
        assert 0 < trained_before <= first.wall_clock_s < second.wall_clock_s
        summary = json.loads((Path(second.log_dir) / "summary.json").read_text())
        assert summary["wall_clock_s"] == second.wall_clock_s
        assert second.sps == pytest.approx(4 * N * T / (second.wall_clock_s - trained_before))
    # A resumed run and a fresh one start from different env steps: not one program.
    with pytest.raises(RunsApartError, match="same env step"):  # the suite then goes one by one
        train_seeds([tiny_config(configs[0].run.log_dir, *ON_DEVICE, "run.resume=true",
                                 "learner.total_env_steps=512"),
                     tiny_config(tmp_path / "fresh", *ON_DEVICE, "run.seed=3",
                                 "learner.total_env_steps=512")])


def test_seeds_resume_together_from_the_latest_checkpoint_they_all_have(tmp_path):
    """A kill while the seeds' checkpoints were written (each save is atomic on its own)
    can leave one seed a checkpoint ahead: they resume from the one they share, and a
    session that stops before the stale checkpoint still leaves each seed its own final
    one."""
    configs = [tiny_config(tmp_path / f"seed{seed}", *ON_DEVICE, f"run.seed={seed}")
               for seed in (0, 7)]
    train_seeds(configs)
    shutil.rmtree(Path(configs[1].run.log_dir) / "checkpoints" / "4")

    def resume(total_env_steps):
        return train_seeds([tiny_config(c.run.log_dir, *ON_DEVICE, f"run.seed={c.run.seed}",
                                        f"learner.total_env_steps={total_env_steps}",
                                        "run.resume=true") for c in configs])

    assert [r.update for r in resume(96)] == [3, 3]
    for c in configs:
        checkpointer = Checkpointer(c.run.log_dir, keep=c.run.keep_checkpoints)
        assert checkpointer.updates()[-1] == 3
        checkpointer.close()
    resumed = resume(256)
    assert [r.update for r in resumed] == [8, 8]
    for c in configs:
        assert [r["update"] for r in read_metrics(c.run.log_dir)] == list(range(1, 9))


def test_seeds_train_together_only_when_they_differ_in_nothing_else(tmp_path):
    with pytest.raises(ConfigError, match="at least one run"):
        train_seeds([])
    seed = tiny_config(tmp_path / "a", *ON_DEVICE)
    with pytest.raises(ConfigError, match=r"differs in optimizer\.learning_rate: 0\.0002 in "
                                          r".*/a, 0\.1 here\."):
        train_seeds([seed, tiny_config(tmp_path / "b", *ON_DEVICE, "run.seed=1",
                                       "optimizer.learning_rate=0.1")])
    with pytest.raises(ConfigError, match="folders of their own"):
        train_seeds([seed, tiny_config(tmp_path / "a", *ON_DEVICE, "run.seed=1")])
    with pytest.raises(ConfigError, match="only with the on-device loop"):
        train_seeds([tiny_config(tmp_path / "c"), tiny_config(tmp_path / "d", "run.seed=1")])
    assert not (tmp_path / "a").exists()  # refused before any run starts
