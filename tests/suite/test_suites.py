import dataclasses

import pytest

from gtrxl_jax.config import ConfigError, TrainConfig
from gtrxl_jax.envs.registry import find_project_task, is_jax_task
from gtrxl_jax.suite.suites import (
    ALL_CORES,
    CORE_VARIANTS,
    PAPER_ABLATION,
    SUITES,
    Suite,
    expand,
    split_tasks,
    task_slug,
)


def suite_param(name: str):
    """A suite's name, marked `needs_envpool` where some of its tasks are envpool's."""
    tasks = [task for value in SUITES[name].tasks for task in split_tasks(value)]
    own = all(find_project_task(task) or is_jax_task(task) for task in tasks)
    return name if own else pytest.param(name, marks=pytest.mark.needs_envpool)


@pytest.mark.parametrize("name", [suite_param(name) for name in sorted(SUITES)])
def test_every_suite_expands_to_validated_configs(tmp_path, name):
    suite = SUITES[name]
    specs = expand(suite, tmp_path)
    rates = max(len(suite.learning_rates), 1)
    assert len(specs) == len(suite.tasks) * len(suite.variants) * rates * len(suite.seeds)
    assert len({s.run_dir for s in specs}) == len(specs)
    for spec in specs:
        config = spec.config
        assert isinstance(config, TrainConfig)
        assert config.env.task == spec.task
        assert config.run.seed == spec.seed
        assert config.run.log_dir == str(tmp_path / "runs" / spec.run_id)
        assert not config.run.resume
    assert suite.cost


def test_fast_suite_covers_every_core_on_two_tmaze_lengths(tmp_path):
    specs = expand(SUITES["fast"], tmp_path)
    assert {s.task for s in specs} == {"TMaze-L4", "TMaze-L16"}
    assert {s.variant for s in specs} == set(ALL_CORES)
    by_id = {s.run_id: s.config for s in specs}
    gru = by_id["TMaze-L16/gtrxl_gru/seed1"]
    assert gru.agent.core == "gtrxl" and gru.agent.transformer.gate == "gru"
    assert gru.agent.transformer.variant == "gtrxl"
    assert gru.learner.total_env_steps == 250_000
    assert by_id["TMaze-L4/lstm/seed0"].agent.core == "lstm"
    assert by_id["TMaze-L4/lstm/seed0"].learner.total_env_steps == 150_000
    assert by_id["TMaze-L4/trxl_i/seed0"].agent.transformer.variant == "trxl_i"
    assert by_id["TMaze-L4/feedforward/seed0"].agent.core == "feedforward"
    total = sum(s.config.learner.total_env_steps for s in specs)
    assert total == 6_000_000


def test_budget_scale_multiplies_every_runs_budget_and_nothing_else(tmp_path):
    plain = expand(SUITES["memory_horizon"], tmp_path, ["learner.total_env_steps=1000"])
    scaled = expand(SUITES["memory_horizon"], tmp_path, ["learner.total_env_steps=1000"],
                    budget_scale=2.5)
    assert [s.run_id for s in scaled] == [s.run_id for s in plain]
    for before, after in zip(plain, scaled, strict=True):
        assert after.config.learner.total_env_steps == 2500
        assert dataclasses.replace(after.config, learner=before.config.learner) == before.config
    budgets = {s.task: s.config.learner.total_env_steps
               for s in expand(SUITES["memory_horizon"], tmp_path, budget_scale=8)}
    assert budgets["TMaze-L15"] == 2_000_000 and budgets["TMaze-L127"] == 12_000_000


@pytest.mark.parametrize("scale", [0, -1, float("nan"), float("inf")])
def test_a_budget_scale_must_be_positive_and_finite(tmp_path, scale):
    with pytest.raises(ValueError, match="the budget scale must be a positive number"):
        expand(SUITES["fast"], tmp_path, budget_scale=scale)


def test_fast_ablation_suite_runs_every_paper_variant_at_the_fast_scale(tmp_path):
    suite = SUITES["fast_ablation"]
    specs = expand(suite, tmp_path)
    assert suite.ablation
    assert {s.variant for s in specs} == set(PAPER_ABLATION)
    fast_l16 = expand(SUITES["fast"], tmp_path, tasks=("TMaze-L16",), variants=("trxl",))
    config = {s.run_id: s.config for s in specs}["TMaze-L16/trxl/seed0"]
    assert config == fast_l16[0].config


@pytest.mark.needs_envpool
def test_ablation_suite_is_the_paper_configuration(tmp_path):
    specs = expand(SUITES["ablation"], tmp_path)
    assert {s.variant for s in specs} == set(PAPER_ABLATION)
    gates = {s.config.agent.transformer.gate for s in specs if s.config.agent.core == "gtrxl"}
    assert gates == {"input", "output", "highway", "sigmoid_tanh", "gru"}
    for spec in specs:
        t = spec.config.agent.transformer
        assert (t.num_layers, t.d_model, t.memory_len, t.num_heads, t.head_dim) == (
            12,
            256,
            512,
            8,
            64,
        )
    assert SUITES["ablation"].ablation


def test_multitask_suite_trains_tasks_together_with_popart(tmp_path):
    suite = SUITES["multitask"]
    specs = expand(suite, tmp_path)
    assert all(s.config.loss.popart for s in specs)
    assert {split_tasks(s.task) for s in specs} == {("TMaze-L4", "TMaze-L16")}
    assert suite.scored_tasks() == ("TMaze-L4", "TMaze-L16")
    assert specs[0].run_id.startswith("TMaze-L4+TMaze-L16/")


def test_filters_and_extra_overrides(tmp_path):
    specs = expand(
        SUITES["fast"],
        tmp_path,
        ["learner.total_env_steps=1000"],
        tasks=("TMaze-L4",),
        variants=("lstm", "gtrxl_gru"),
        seeds=(1,),
    )
    assert [s.run_id for s in specs] == ["TMaze-L4/gtrxl_gru/seed1", "TMaze-L4/lstm/seed1"]
    assert all(s.config.learner.total_env_steps == 1000 for s in specs)
    with pytest.raises(ValueError, match="not in this suite"):
        expand(SUITES["fast"], tmp_path, variants=("gru",))
    probe = expand(SUITES["fast"], tmp_path, tasks=("TMaze-L4",), variants=("lstm",),
                   seeds=(100,))
    assert [(s.run_id, s.config.run.seed) for s in probe] == [("TMaze-L4/lstm/seed100", 100)]
    with pytest.raises(ValueError, match="agent.core is what the suite sets for each run"):
        expand(SUITES["fast"], tmp_path, ["agent.core=lstm"])
    with pytest.raises(ValueError, match="optimizer.learning_rate .* the suite sweeps it"):
        expand(SUITES["memory_tuning"], tmp_path, ["optimizer.learning_rate=1e-3"])
    assert expand(SUITES["fast"], tmp_path, ["optimizer.learning_rate=1e-3"])
    with pytest.raises(ConfigError, match="learner.total_env_step"):
        expand(SUITES["fast"], tmp_path, ["learner.total_env_step=5"])


def test_suite_definitions_are_checked():
    with pytest.raises(ValueError, match="unknown variants"):
        Suite("x", "", ("TMaze-L4",), ("gtrxl",), (0,), (), {}, "")
    with pytest.raises(ValueError, match="not in the suite"):
        Suite("x", "", ("TMaze-L4",), ("lstm",), (0,), (), {"TMaze-L5": ()}, "")
    bad = Suite("x", "", ("TMaze-L4", "Pongg-v5"), ("lstm",), (0,), (), {}, "")
    with pytest.raises(ValueError, match="unknown task"):
        expand(bad, "out")


def test_variants_and_slugs():
    assert CORE_VARIANTS["gtrxl_sigmoid_tanh"].label == "GTrXL (sigmoid-tanh)"
    assert task_slug(" TMaze-L4, TMaze-L16") == "TMaze-L4+TMaze-L16"
