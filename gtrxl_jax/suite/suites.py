"""The benchmark suites, defined in one place: tasks x cores x seeds, each a training run.

    suite = SUITES["fast"]
    runs = expand(suite, "runs/suites/fast")    # [RunSpec], each with a validated TrainConfig

Suites:

- "fast": the passive T-maze (corridor 4 and 16) on a 2-core CPU, every core, 3 seeds.
- "fast_ablation": the paper's ablation (every gate, TrXL, TrXL-I, LSTM) on TMaze-L16, on
  a 2-core CPU.
- "multitask": one agent on both T-mazes at once with PopArt; per-task scores.
- "standard": envpool tasks (MiniGrid Memory, ViZDoom, Procgen memory mode, five Atari
  games as the reactive control group), for a GPU machine.
- "memory_maze": Memory Maze 9x9 (the optional extra), for a GPU machine with many cores.
- "ablation": the GTrXL paper's ablation at DMLab scale (12 layers, d_model 256, memory
  512): TrXL, TrXL-I, GTrXL with each gate, LSTM, on the memory tasks envpool has.
- "memory": memory tasks in JAX, on device, on a 2-core CPU: MiniGrid Memory (xminigrid,
  3x3 view) and POPGym's card games at Easy and Medium, every core.
- "memory_horizon": the passive T-maze on device with the cue 16 to 128 steps back (0.5x to
  4x the learner's trajectory): success against cue distance per core (Ni et al. 2023).
- "memory_tuning": each core's learning rate, from a sweep of 3 rates on one task of a
  family: TMaze-L31 (for memory_horizon), RepeatPreviousEasy (the card games) and
  MiniGrid-MemoryS9 (MiniGrid Memory).

Each suite's `cost` says what it is expected to take. Core variants are named as in the
results tables: "gtrxl_gru" .. "gtrxl_sigmoid_tanh", "trxl_i", "trxl", "lstm", "feedforward".
"""

import dataclasses
import math
import re
from pathlib import Path

from gtrxl_jax.config import TrainConfig, apply_overrides
from gtrxl_jax.envs.registry import check_task_name
from gtrxl_jax.nn.gates import GATES


@dataclasses.dataclass(frozen=True)
class Variant:
    """A core configuration compared in a suite.

    Attributes:
      name: the variant's name in tables and folders ("gtrxl_gru", "lstm", ...).
      label: a readable name for plots ("GTrXL (GRU)").
      overrides: config overrides that select it (key=value strings).
    """

    name: str
    label: str
    overrides: tuple[str, ...]


CORE_VARIANTS: dict[str, Variant] = {
    **{
        f"gtrxl_{gate}": Variant(
            f"gtrxl_{gate}",
            f"GTrXL ({spec.label})",
            ("agent.core=gtrxl", f"agent.transformer.gate={gate}"),
        )
        for gate, spec in GATES.items()
    },
    "trxl_i": Variant("trxl_i", "TrXL-I", ("agent.core=trxl_i",)),
    "trxl": Variant("trxl", "TrXL", ("agent.core=trxl",)),
    "lstm": Variant("lstm", "LSTM", ("agent.core=lstm",)),
    "feedforward": Variant("feedforward", "Feed-forward", ("agent.core=feedforward",)),
}

ALL_CORES = ("gtrxl_gru", "trxl_i", "trxl", "lstm", "feedforward")
_AT_LEARNING_RATE = "@lr"


def swept_variant(core: str, learning_rate: float) -> str:
    """The name of a core at one learning rate of a tuning sweep ("lstm@lr0.002")."""
    return f"{core}{_AT_LEARNING_RATE}{learning_rate:g}"


def split_variant(name: str) -> tuple[str, float | None]:
    """A variant's core and swept learning rate: "lstm@lr0.002" -> ("lstm", 0.002)."""
    core, _, learning_rate = name.partition(_AT_LEARNING_RATE)
    return core, float(learning_rate) if learning_rate else None


def variant_label(name: str) -> str:
    """A readable name for plots and tables ("LSTM", "LSTM, lr 0.002")."""
    core, learning_rate = split_variant(name)
    label = CORE_VARIANTS[core].label if core in CORE_VARIANTS else core
    return label if learning_rate is None else f"{label}, lr {learning_rate:g}"


PAPER_ABLATION = (
    "trxl",
    "trxl_i",
    "gtrxl_input",
    "gtrxl_output",
    "gtrxl_highway",
    "gtrxl_sigmoid_tanh",
    "gtrxl_gru",
    "lstm",
)


@dataclasses.dataclass(frozen=True)
class Suite:
    """A named benchmark: every (task, variant, seed) is one training run.

    Attributes:
      name: the suite's name ("fast", ...).
      description: one line on what it measures.
      tasks: task names for env.task; a comma-separated name is one multi-task run whose
        tasks are scored separately.
      variants: names in CORE_VARIANTS.
      seeds: run.seed values.
      overrides: config overrides shared by every run (applied first).
      task_overrides: per-task overrides (budgets, env options), applied after `overrides`.
      task_core_overrides: {task: {core: overrides}}, for one core on one task (e.g. the
        learning rate a sweep picked for it on that task's family), applied after the
        core's own.
      learning_rates: a tuning sweep: every core runs at each of these learning rates, as
        variants named "<core>@lr<rate>" (`swept_variant`); empty: no sweep. A sweep also
        writes tuning.md, each core's best rate on each task.
      cost: the expected cost of the whole suite, and how it was estimated.
      score_mode: which evaluation ("greedy" or "sampled") the headline scores use.
      ablation: also write the paper-layout ablation table.
      horizon: also write the memory-horizon table and plot (success against the cue
        distance of each task, `cue_distance`); every task must have one.
    """

    name: str
    description: str
    tasks: tuple[str, ...]
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    overrides: tuple[str, ...]
    task_overrides: dict[str, tuple[str, ...]]
    cost: str
    task_core_overrides: dict[str, dict[str, tuple[str, ...]]] = dataclasses.field(
        default_factory=dict)
    learning_rates: tuple[float, ...] = ()
    score_mode: str = "sampled"
    ablation: bool = False
    horizon: bool = False

    def __post_init__(self):
        unknown = [v for v in self.variants if v not in CORE_VARIANTS]
        if unknown:
            raise ValueError(
                f"suite {self.name}: unknown variants {unknown}; known: {sorted(CORE_VARIANTS)}"
            )
        if self.score_mode not in ("greedy", "sampled"):
            raise ValueError(
                f"suite {self.name}: score_mode must be 'greedy' or 'sampled', "
                f"got {self.score_mode!r}"
            )
        extra = sorted(set(self.task_overrides) - set(self.tasks))
        if extra:
            raise ValueError(
                f"suite {self.name}: task_overrides for tasks not in the suite: {extra}"
            )
        extra = sorted(set(self.task_core_overrides) - set(self.tasks)) + sorted(
            {core for by_core in self.task_core_overrides.values() for core in by_core}
            - set(self.variants))
        if extra:
            raise ValueError(
                f"suite {self.name}: task_core_overrides for tasks or cores not in the "
                f"suite: {extra}"
            )
        no_distance = [t for t in self.scored_tasks() if cue_distance(t) is None]
        if self.horizon and no_distance:
            raise ValueError(
                f"suite {self.name}: a horizon suite needs tasks with a cue distance "
                f"('TMaze-L<N>'); {no_distance} have none"
            )

    def scored_tasks(self) -> tuple[str, ...]:
        """Every task that gets a score (multi-task runs contribute each of their tasks)."""
        return tuple(dict.fromkeys(t for task in self.tasks for t in split_tasks(task)))


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training run of a suite.

    Attributes:
      suite: the suite's name.
      task: env.task (possibly several comma-separated tasks).
      variant: the variant's name: the core's, or "<core>@lr<rate>" in a sweep.
      seed: run.seed.
      run_dir: the run's folder (run.log_dir).
      config: the validated TrainConfig.
    """

    suite: str
    task: str
    variant: str
    seed: int
    run_dir: Path
    config: TrainConfig

    @property
    def run_id(self) -> str:
        """The run's folder relative to the suite's runs/: "<task>/<variant>/seed<k>"."""
        return f"{task_slug(self.task)}/{self.variant}/seed{self.seed}"


def split_tasks(task: str) -> tuple[str, ...]:
    """The tasks of an env.task value ("TMaze-L4,TMaze-L16" -> both)."""
    return tuple(t.strip() for t in task.split(",") if t.strip())


def task_slug(task: str) -> str:
    """A folder name for an env.task value (multi-task names joined with "+")."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", "+".join(split_tasks(task)))


def cue_distance(task: str) -> int | None:
    """Steps from the cue to the choice of a passive T-maze ("TMaze-L<N>": N + 1), else None."""
    match = re.fullmatch(r"TMaze-L(\d+)", task)
    return int(match[1]) + 1 if match else None


def expand(
    suite: Suite,
    output_dir: str | Path,
    extra_overrides: tuple[str, ...] | list[str] = (),
    tasks: tuple[str, ...] | None = None,
    variants: tuple[str, ...] | None = None,
    seeds: tuple[int, ...] | None = None,
    budget_scale: float = 1.0,
) -> list[RunSpec]:
    """List a suite's runs, each with its validated TrainConfig.

    Args:
      suite: the suite.
      output_dir: the suite's folder; run i writes into <output_dir>/runs/<run_id>.
      extra_overrides: key=value overrides applied last, to every run (e.g. a smaller
        budget for a smoke test).
      tasks: keep only these env.task values (None: all of the suite's).
      variants: keep only these cores (None: all); a sweep keeps each at every rate.
      seeds: train these seeds (None: the suite's); seeds the suite does not list train
        too, e.g. probes on seeds that no reported run uses.
      budget_scale: multiplies every run's learner.total_env_steps (after the overrides),
        e.g. 8 to ask where a core stops given 8x the samples.

    Returns:
      RunSpecs in task, variant, seed order.

    Raises:
      ValueError: a filter names a task or variant the suite does not have, a task is
        unknown, an override sets what the suite sets per run (the task, core, seed or
        folder; the swept rate), or budget_scale is not positive.
      ConfigError: an override is not a valid config (naming the key).
    """
    if not (math.isfinite(budget_scale) and budget_scale > 0):
        raise ValueError(f"the budget scale must be a positive number, got {budget_scale}")
    _check_extra_overrides(suite, extra_overrides)
    chosen_tasks = _select("task", suite.tasks, tasks)
    chosen_variants = _select("variant", suite.variants, variants)
    chosen_seeds = suite.seeds if seeds is None else tuple(dict.fromkeys(seeds))
    for task in chosen_tasks:
        for name in split_tasks(task):
            check_task_name(name)
    runs_dir = Path(output_dir) / "runs"
    specs = []
    for task in chosen_tasks:
        for core in chosen_variants:
            for learning_rate in suite.learning_rates or (None,):
                if learning_rate is None:
                    variant, swept = core, ()
                else:
                    variant = swept_variant(core, learning_rate)
                    swept = (f"optimizer.learning_rate={learning_rate:g}",)
                for seed in chosen_seeds:
                    run_dir = runs_dir / task_slug(task) / variant / f"seed{seed}"
                    overrides = [
                        *suite.overrides,
                        f"env.task={task}",
                        *suite.task_overrides.get(task, ()),
                        *CORE_VARIANTS[core].overrides,
                        *suite.task_core_overrides.get(task, {}).get(core, ()),
                        *swept,
                        f"run.seed={seed}",
                        f"run.log_dir={run_dir}",
                        *extra_overrides,
                    ]
                    config = _scale_budget(apply_overrides(TrainConfig(), overrides),
                                           budget_scale)
                    specs.append(RunSpec(suite.name, task, variant, seed, run_dir, config))
    return specs


# The keys a suite sets for each run itself, and what to do instead of overriding them.
_PER_RUN_KEYS = {
    "env.task": "choose it with --tasks",
    "agent.core": "choose it with --cores",
    "agent.transformer.gate": "choose it with --cores",
    "run.seed": "choose it with --seeds",
    "run.log_dir": "choose it with --out",
}


def _check_extra_overrides(suite: Suite, extra_overrides: tuple[str, ...] | list[str]) -> None:
    """Raise ValueError if an override would replace what the suite sets per run."""
    per_run = dict(_PER_RUN_KEYS)
    if suite.learning_rates:
        per_run["optimizer.learning_rate"] = "the suite sweeps it; leave the override out"
    for override in extra_overrides:
        key = override.partition("=")[0].strip()
        if key in per_run:
            raise ValueError(f"{key} is what the suite sets for each run: {per_run[key]}")


def _scale_budget(config: TrainConfig, scale: float) -> TrainConfig:
    """`config` with learner.total_env_steps multiplied by `scale` (rounded, at least 1)."""
    if scale == 1:
        return config
    steps = max(1, round(config.learner.total_env_steps * scale))
    return apply_overrides(config, [f"learner.total_env_steps={steps}"])


def _select(kind: str, available: tuple, chosen: tuple | None) -> tuple:
    if chosen is None:
        return available
    unknown = [c for c in chosen if c not in available]
    if unknown:
        raise ValueError(f"{kind}(s) {unknown} not in this suite; it has {list(available)}")
    return tuple(c for c in available if c in chosen)


# --- The suites -----------------------------------------------------------------------------

_CPU_RUN = (
    "run.eval_episodes=100",
    "run.log_interval_updates=5",
    "run.checkpoint_interval_updates=50",
    "run.progress=false",
)

FAST = Suite(
    name="fast",
    description="Passive T-maze, corridor 4 and 16: which cores remember a cue, on a 2-core CPU.",
    tasks=("TMaze-L4", "TMaze-L16"),
    variants=ALL_CORES,
    seeds=(0, 1, 2),
    overrides=(
        "env.num_envs=32",
        "agent.transformer.num_layers=2",
        "agent.transformer.d_model=64",
        "agent.transformer.num_heads=4",
        "agent.transformer.memory_len=32",
        "agent.lstm.hidden_size=64",
        "learner.trajectory_len=32",
        "learner.batch_size=32",
        "optimizer.learning_rate=5e-4",
        *_CPU_RUN,
    ),
    task_overrides={
        "TMaze-L4": ("learner.total_env_steps=150000",),
        "TMaze-L16": ("learner.total_env_steps=250000",),
    },
    cost=(
        "30 runs (2 tasks x 5 cores x 3 seeds), 6M env steps in all. Measured on a 2-core "
        "CPU (2026-11-25): with 2 seeds the suite took 5 min 8 s while other jobs shared the "
        "cores (load 2-6); a run takes 5-26 s, its first compile included (the suite's "
        "compilation cache serves later runs with the same shapes). On a slower 2-core AMD "
        "EPYC (2026-12-01, idle) 3 seeds took 18 min 22 s, a run 12-83 s. Expect 8-20 min "
        "for 3 seeds, up to ~2x that on a busier machine."
    ),
)

MULTITASK = Suite(
    name="multitask",
    description="One agent on TMaze-L4 and TMaze-L16 at once, PopArt per task.",
    tasks=("TMaze-L4,TMaze-L16",),
    variants=("gtrxl_gru", "lstm"),
    seeds=(0, 1),
    overrides=(*FAST.overrides, "loss.popart=true", "learner.total_env_steps=400000"),
    task_overrides={},
    cost=(
        "4 runs of 400k env steps (half on each task) with the fast suite's model: "
        "~1.5 min each on a 2-core CPU, ~6 minutes for the suite."
    ),
)

FAST_ABLATION = Suite(
    name="fast_ablation",
    description=(
        "The GTrXL paper's ablation (TrXL, TrXL-I, GTrXL with each gate, LSTM) on TMaze-L16, "
        "at the fast suite's scale, on a 2-core CPU."
    ),
    tasks=("TMaze-L16",),
    variants=PAPER_ABLATION,
    seeds=(0, 1, 2),
    overrides=FAST.overrides,
    task_overrides={"TMaze-L16": FAST.task_overrides["TMaze-L16"]},
    ablation=True,
    cost=(
        "24 runs (8 variants x 3 seeds) of 250k env steps, 6M env steps in all, each 10-25 "
        "s on a 2-core CPU (as the fast suite's TMaze-L16 runs): ~8 min for the suite."
    ),
)

_MINIGRID = ("MiniGrid-MemoryS7-v0", "MiniGrid-MemoryS13Random-v0", "MiniGrid-MemoryS17Random-v0")
_VIZDOOM = ("MyWayHome-v1", "HealthGathering-v1")
_PROCGEN = ("MazeMemory-v0", "HeistMemory-v0")
_ATARI = ("Pong-v5", "Breakout-v5", "SpaceInvaders-v5", "MsPacman-v5", "Seaquest-v5")
_BUDGETS = {
    **dict.fromkeys(_MINIGRID, 20_000_000),
    **dict.fromkeys(_VIZDOOM, 20_000_000),
    **dict.fromkeys(_PROCGEN, 25_000_000),
    **dict.fromkeys(_ATARI, 10_000_000),
}

_GPU_RUN = (
    "env.num_envs=32",
    "learner.num_actor_threads=2",
    "learner.batch_size=64",
    "run.eval_episodes=100",
    "run.log_interval_updates=50",
    "run.checkpoint_interval_updates=1000",
    "run.progress=false",
)

STANDARD = Suite(
    name="standard",
    description="envpool memory tasks and reactive Atari controls, every core, on a GPU.",
    tasks=(*_MINIGRID, *_VIZDOOM, *_PROCGEN, *_ATARI),
    variants=ALL_CORES,
    seeds=(0, 1, 2),
    overrides=(
        "agent.transformer.num_layers=4",
        "agent.transformer.d_model=256",
        "agent.transformer.num_heads=8",
        "agent.transformer.memory_len=128",
        "agent.lstm.hidden_size=256",
        "learner.trajectory_len=64",
        *_GPU_RUN,
    ),
    task_overrides={
        task: (f"learner.total_env_steps={steps}",) for task, steps in _BUDGETS.items()
    },
    cost=(
        "180 runs (12 tasks x 5 cores x 3 seeds), 3.0B env steps in all. Estimated for one "
        "H100 with 16 CPU cores from the env rates measured on 2 CPU cores (scaled x8) and a "
        "learner bound of ~30k steps/s: MiniGrid ~11 min per 20M-step run, Procgen ~14 min "
        "per 25M, Atari ~11 min per 10M (~15k steps/s), ViZDoom ~40 min per 20M (env-bound, "
        "~8k steps/s): ~3.3 h per (core, seed), ~50 GPU-hours for the suite. Use --tasks, "
        "--cores and --seeds to run a slice."
    ),
)

MEMORY_MAZE = Suite(
    name="memory_maze",
    description="Memory Maze 9x9 (Pasukonis et al. 2022): long-horizon 3D memory, on a GPU.",
    tasks=("MemoryMaze-9x9",),
    variants=("gtrxl_gru", "trxl_i", "lstm"),
    seeds=(0, 1),
    overrides=(
        "agent.transformer.num_layers=4",
        "agent.transformer.d_model=256",
        "agent.transformer.num_heads=8",
        "agent.transformer.memory_len=256",
        "agent.lstm.hidden_size=256",
        "learner.trajectory_len=64",
        *_GPU_RUN,
        "learner.total_env_steps=20000000",
    ),
    task_overrides={},
    cost=(
        "6 runs of 20M env steps (the paper's IMPALA used 400M). Env-bound: ~36-50 steps/s "
        "per environment with MUJOCO_GL=osmesa (one CPU core each) and ~1.4 GB of RAM per "
        "environment, so 64 environments on 16 cores give ~600 steps/s: ~9 h per run, "
        "~55 h for the suite; MUJOCO_GL=egl on the GPU renders faster (not measured here). "
        "Needs the memory_maze extra."
    ),
)

_ABLATION_TASKS = (
    "MiniGrid-MemoryS13Random-v0",
    "MiniGrid-MemoryS17Random-v0",
    "MyWayHome-v1",
    "MazeMemory-v0",
    "HeistMemory-v0",
)

ABLATION = Suite(
    name="ablation",
    description=(
        "The GTrXL paper's ablation at DMLab scale: 12 layers, d_model 256, memory 512, 8 "
        "heads of 64; TrXL, TrXL-I, GTrXL with each gate, LSTM."
    ),
    tasks=_ABLATION_TASKS,
    variants=PAPER_ABLATION,
    seeds=(0, 1, 2),
    overrides=(
        "agent.transformer.num_layers=12",
        "agent.transformer.d_model=256",
        "agent.transformer.num_heads=8",
        "agent.transformer.head_dim=64",
        "agent.transformer.memory_len=512",
        "agent.transformer.dtype=bfloat16",
        "agent.lstm.hidden_size=256",
        "learner.trajectory_len=128",
        "learner.segment_len=64",
        *_GPU_RUN,
        "learner.total_env_steps=50000000",
    ),
    task_overrides={},
    ablation=True,
    cost=(
        "120 runs (5 tasks x 8 variants x 3 seeds) of 50M env steps, 6B steps in all. XLA's "
        "cost analysis (2026-11-25) puts the 12-layer GTrXL agent at ~0.18-0.24 GFLOP per env "
        "step forward (core ~0.12, the rest the ResNet torso) and ~0.5-0.7 GFLOP to learn, "
        "so ~45 PFLOP per run: compute is not the limit. Assuming ~20k learner steps/s on one "
        "H100 (bfloat16, Python-side overheads dominate) a run takes ~45 min, ViZDoom runs "
        "~1.7 h (env-bound at ~8k steps/s): ~110 GPU-hours for the suite. The paper's "
        "DMLab-30 numbers (10B steps) are the reference column, not a target here."
    ),
)

# Each core's learning rate on the T-maze: memory_tuning's picks on TMaze-L31
# (experiments/suites/results/memory_tuning/tuning.md). Every pick is the grid's highest
# rate; the LSTM and the feed-forward core stayed at chance at all three, so theirs is noise.
TUNED_LEARNING_RATES = {core: 2e-3 for core in ALL_CORES}
# Each core's learning rate on the card games: memory_tuning's picks on RepeatPreviousEasy
# (experiments/suites/results/memory_tuning_cards/tuning.md), swept for GTrXL and the LSTM:
# both picked 2e-3, the grid's highest, as every core did on the T-maze, whose picks the
# cores not swept on the cards take.
CARD_TUNED_LEARNING_RATES = {**TUNED_LEARNING_RATES, "gtrxl_gru": 2e-3, "lstm": 2e-3}
# Each core's learning rate on MiniGrid Memory (PPO, AMSGrad): memory_tuning's picks on
# MiniGrid-MemoryS9 (experiments/suites/results/memory_tuning_minigrid/tuning.md). GTrXL 5e-4
# (it solved the task at all three rates, each scoring 100, every evaluation episode solved;
# a tie goes to the first rate). Every other core stayed at walk-and-guess at every rate, so
# its pick is noise: the LSTM 5e-4, TrXL 2e-3, TrXL-I 5e-4, feed-forward 2e-3.
MINIGRID_TUNED_LEARNING_RATES = {
    "gtrxl_gru": 5e-4, "trxl_i": 5e-4, "trxl": 2e-3, "lstm": 5e-4, "feedforward": 2e-3}


def _tuned(tasks, rates: dict[str, float]) -> dict[str, dict[str, tuple[str, ...]]]:
    """Each task's per-core overrides: the core's tuned learning rate."""
    return {task: {core: (f"optimizer.learning_rate={rate:g}",)
                   for core, rate in rates.items()} for task in tasks}


# The memory suites train on device (learner.loop=on_device): the JAX environments step
# inside the compiled update, so every environment feeds every update (batch = num_envs).
# The model is the fast suite's; memory_len is set per task to reach the cue. Every core
# trains with the auxiliary reconstruction loss: without it no core learned MiniGrid
# Memory's match of a remembered cue, and solved T-mazes collapsed (docs/stability.md).
# The common learning rate, 5e-4, is what a suite's task trains at unless a tuned rate
# replaces it (memory_horizon's T-mazes, memory's card games: 2e-3).
_SMALL_ON_DEVICE = (
    "learner.loop=on_device",
    "env.num_envs=64",
    "learner.batch_size=64",
    "learner.trajectory_len=32",
    "agent.transformer.num_layers=2",
    "agent.transformer.d_model=64",
    "agent.transformer.num_heads=4",
    "agent.lstm.hidden_size=64",
    "optimizer.learning_rate=5e-4",
    "loss.reconstruction_cost=1.0",
    *_CPU_RUN,
)


def _budgets(budgets: dict[str, tuple[int, int]]) -> dict[str, tuple[str, ...]]:
    """Task overrides from {task: (env steps per run, memory_len)}."""
    return {
        task: (f"learner.total_env_steps={steps}", f"agent.transformer.memory_len={memory}")
        for task, (steps, memory) in budgets.items()
    }


# task: (env steps per run, memory_len). memory_len covers the span the task asks to
# recall: RepeatPrevious k (4, 32) back; RepeatFirst and CountRecall the whole episode
# (51 / 415 and 51 / 103 steps); Autoencode its whole episode (103 / 207); MiniGrid the walk
# from the cue to the junction (corridor size - 6; the episode itself runs to 5 size^2).
# MiniGrid Memory, with PPO: GTrXL reached 0.95 on S9 by 0.96-1.72M steps (3 seeds), on S13
# by 3.65-4.49M (2 seeds); S9 gets 3M (its target asks for 0.9 within 5M), S13 6M, S17,
# whose corridor is 4 cells longer than S13's, twice S13's: 12M (a guess: not measured). The
# card games pay +-1/(answers) a step, and learn late: at 250k steps no core learned
# RepeatPreviousEasy at any rate; with PopArt GTrXL took off at ~4.3M steps and the LSTM
# from ~2M, both learned by 5M (docs/suites.md). Easy gets those 5M, Medium twice them
# (a guess: not measured).
_MEMORY_BUDGETS = {
    "MiniGrid-MemoryS9": (3_000_000, 64),
    "MiniGrid-MemoryS13": (6_000_000, 64),
    "MiniGrid-MemoryS17": (12_000_000, 128),
    "RepeatPreviousEasy": (5_000_000, 32),
    "RepeatPreviousMedium": (10_000_000, 64),
    "RepeatFirstEasy": (5_000_000, 64),
    "RepeatFirstMedium": (10_000_000, 512),
    "AutoencodeEasy": (5_000_000, 128),
    "AutoencodeMedium": (10_000_000, 256),
    "CountRecallEasy": (5_000_000, 64),
    "CountRecallMedium": (10_000_000, 128),
}
# The card games' returns are sums of +-1/(answers): PopArt scales the advantages to them.
_MINIGRID_TASKS = tuple(task for task in _MEMORY_BUDGETS if task.startswith("MiniGrid"))
_CARD_GAMES = tuple(task for task in _MEMORY_BUDGETS if task not in _MINIGRID_TASKS)
# MiniGrid Memory trains as experiments/configs/minigrid_memory.py does: PPO on advantages in
# return units, AMSGrad, and each gradient bounded to 3x the running mean of the recent ones.
# V-trace with Adam solved MiniGrid-MemoryS9 in 3.5-8M steps and let solved runs collapse;
# these settings solved it in 0.96-1.72M steps and kept it, 3 of 3 (docs/stability.md,
# "PPO on MiniGrid Memory"). The card games keep V-trace, whose returns PopArt scales.
_MINIGRID_TRAINING = ("loss.name=ppo", "loss.ppo_normalise_advantages=false",
                      "optimizer.name=amsgrad", "optimizer.recent_norm_clip=3")
_MEMORY_TASK_OVERRIDES = {
    task: (*overrides,
           *(("loss.popart=true",) if task in _CARD_GAMES else _MINIGRID_TRAINING))
    for task, overrides in _budgets(_MEMORY_BUDGETS).items()
}

MEMORY = Suite(
    name="memory",
    description=(
        "Memory tasks beyond the T-maze, on device: MiniGrid Memory (xminigrid, 3x3 view) "
        "and POPGym's card games at Easy and Medium, every core."
    ),
    tasks=tuple(_MEMORY_BUDGETS),
    variants=ALL_CORES,
    seeds=(0, 1, 2),
    overrides=_SMALL_ON_DEVICE,
    task_overrides=_MEMORY_TASK_OVERRIDES,
    task_core_overrides={
        **_tuned(_CARD_GAMES, CARD_TUNED_LEARNING_RATES),
        **_tuned(_MINIGRID_TASKS, MINIGRID_TUNED_LEARNING_RATES),
    },
    cost=(
        "165 runs (11 tasks x 5 cores x 3 seeds), 1,215M env steps in all. Estimated, not "
        "measured as a suite. The JAX environments step at 0.5M (MiniGrid) to 1.7M (cards) "
        "steps/s with 64 environments (python -m gtrxl_jax.bench.env_throughput TASK --jax "
        "--num-envs 64 --steps 2000), so the agent sets the pace. V-trace runs of this model "
        "on a 2-core AMD EPYC with AVX-512, shared with other jobs, gave ~14k env steps/s for "
        "a transformer core with memory 64, ~10k with 128, ~6.7k with 256, ~4k with 512, ~60k "
        "for the LSTM and ~75k for the feed-forward core, and ~20 s of compilation per run; "
        "GTrXL's committed RepeatPreviousEasy runs took 220-225 s for 5M steps (the LSTM's "
        "59-62 s). PPO's 16 "
        "minibatch steps an update cost more: ~10k env steps/s for GTrXL on MiniGrid on that "
        "CPU; on a 2-core AMD EPYC with AVX2 only, GTrXL ran MiniGrid-MemoryS9's 3M steps in "
        "21-23 min (~2.4k env steps/s) and the LSTM at ~5k; on a 2-core Intel Xeon with "
        "AVX-512 and AMX, TrXL's and TrXL-I's 3 seeds of S13 trained --together in 1.4-1.8 h "
        "a group, one core each, and GTrXL's of CountRecallMedium (memory 128, V-trace) in "
        "1.4 h; GTrXL's groups of RepeatFirstMedium (memory 512) and AutoencodeMedium (256), "
        "trained at once, one core each, ran at ~680 and ~1,300 env steps/s a seed over the "
        "whole run: ~4.1 h and ~2.1 h a group (measured: 14,740 s and 7,686 s); GTrXL's "
        "MiniGrid-MemoryS17 group (memory 128, PPO) at ~490 env steps/s a seed over the whole "
        "run beside another job: 6.8 h (measured: 24,332 s). Hence ~64 h of training in all "
        "on these CPUs: the 162 runs finished by 2026-12-07 took 57.0 h (measured, the run "
        "records' wall clock, a --together group's counted once; TrXL's and "
        "TrXL-I's AutoencodeMedium groups 2.0 h and 2.1 h, the LSTM's and the feed-forward "
        "core's MiniGrid-MemoryS17 groups 1.4 h and 1.0 h, TrXL's and TrXL-I's "
        "RepeatFirstMedium 4.7 h and 4.9 h, TrXL's MiniGrid-MemoryS17 6.0 h, one core each), "
        "MiniGrid-MemoryS17's 3 TrXL-I runs of 12M steps still to train, ~6-7 h: a "
        "GPU's job "
        "(--together trains a task and core's seeds in one program), or slices: --tasks "
        "MiniGrid-MemoryS9, --tasks RepeatPreviousEasy (29 min of training in its 15 runs' "
        "records; 46 min measured for the five cores at 5e-4 on 2026-12-03)."
    ),
)

# corridor length L: (env steps per run, memory_len). The cue lies L + 1 steps before the
# choice (16, 32, 64, 128: 0.5x to 4x the 32-step trajectory); memory_len is the distance
# plus one segment (16), so a choice at any place in its segment still sees the cue.
# Budgets give each length ~11-15k episodes (an episode is L + 2 steps).
_HORIZON_BUDGETS = {
    f"TMaze-L{length}": budget
    for length, budget in {
        15: (250_000, 32),
        31: (400_000, 48),
        63: (800_000, 80),
        127: (1_500_000, 144),
    }.items()
}

MEMORY_HORIZON = Suite(
    name="memory_horizon",
    description=(
        "Passive T-maze on device with the cue 16 to 128 steps back (0.5x to 4x the "
        "32-step trajectory, segments of 16): success against cue distance (Ni et al. 2023)."
    ),
    tasks=tuple(_HORIZON_BUDGETS),
    variants=ALL_CORES,
    seeds=(0, 1, 2),
    overrides=(*_SMALL_ON_DEVICE, "learner.segment_len=16"),
    task_overrides=_budgets(_HORIZON_BUDGETS),
    task_core_overrides=_tuned(_HORIZON_BUDGETS, TUNED_LEARNING_RATES),
    horizon=True,
    cost=(
        "60 runs (4 corridor lengths x 5 cores x 3 seeds), 44M env steps in all. Measured as "
        "a suite: 61 min on a 2-core AMD EPYC (2026-12-03, part of it beside a CI run) and "
        "52 min on a 2-core Intel Xeon (2026-12-06, TMaze-L127 --together pinned to one core "
        "and the other three tasks to the other): ~1 h on a 2-core CPU. The JAX T-maze steps "
        "at ~6M steps/s, so the agent sets the pace (GTrXL ~15k env steps/s with memory 48, "
        "~8k with memory 144, on a shared EPYC)."
    ),
)

# The tuning sweep's tasks, each at the settings of the suite that reports it: TMaze-L31
# (the cue one trajectory back) for memory_horizon, RepeatPreviousEasy and
# MiniGrid-MemoryS9 (5M and 3M steps a run) for the card games and MiniGrid Memory of memory.
_TUNING_TASKS = {
    "TMaze-L31": (*_budgets(_HORIZON_BUDGETS)["TMaze-L31"], "learner.segment_len=16"),
    "RepeatPreviousEasy": _MEMORY_TASK_OVERRIDES["RepeatPreviousEasy"],
    "MiniGrid-MemoryS9": _MEMORY_TASK_OVERRIDES["MiniGrid-MemoryS9"],
}

MEMORY_TUNING = Suite(
    name="memory_tuning",
    description=(
        "Each core's learning rate: 3 rates on TMaze-L31 (for memory_horizon), on "
        "RepeatPreviousEasy and on MiniGrid-MemoryS9 (the card games and MiniGrid of memory), "
        "on seeds the reported runs do not use."
    ),
    tasks=tuple(_TUNING_TASKS),
    variants=ALL_CORES,
    seeds=(100, 101),
    overrides=_SMALL_ON_DEVICE,
    task_overrides=_TUNING_TASKS,
    learning_rates=(5e-4, 1e-3, 2e-3),
    cost=(
        "90 runs (3 tasks x 5 cores x 3 rates x 2 seeds), 252M env steps. TMaze-L31 "
        "measured 2026-12-03 on the 2-core AMD EPYC, shared with another run: 9-94 s a run, "
        "~25 min. RepeatPreviousEasy at 5M steps a run: ~4 min a transformer run, ~1 min "
        "an LSTM run, so ~1.5 h for the five cores; --tasks RepeatPreviousEasy --cores "
        "gtrxl_gru,lstm took ~30 min (measured). MiniGrid-MemoryS9 with PPO at 3M steps a "
        "run, on a 2-core AMD EPYC with AVX2 only: 21-23 min a GTrXL run, ~10 min an LSTM "
        "run (--tasks MiniGrid-MemoryS9 --cores gtrxl_gru,lstm --seeds 100, measured), so "
        "~8.5 h for the five cores and both seeds there, ~4x less on the AVX-512 EPYC."
    ),
)

SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        FAST,
        FAST_ABLATION,
        MULTITASK,
        STANDARD,
        MEMORY_MAZE,
        ABLATION,
        MEMORY,
        MEMORY_HORIZON,
        MEMORY_TUNING,
    )
}
