"""The actor-learner training system (Sebulba-style): actors, learner, loop, checkpoints.

    from gtrxl_jax.config import load_config
    from gtrxl_jax.train.loop import train

    result = train(load_config("experiments/configs/tmaze.py", ["run.log_dir=runs/x"]))

or from the shell: `python -m gtrxl_jax.train --config experiments/configs/tmaze.py`.

Modules, in the order data flows:
  types       the Trajectory pytree (T+1 steps, overlapping by one) and batch assembly
  actor       actor threads: envs + jitted policy step -> trajectories
  actor_setup the agent and each actor (envs, seeds, key) from the config: an ActorPlan
  actor_process  an actor in a spawned process of its own (learner.actor_processes)
  handoff     the trajectory queues and the versioned parameter store between threads
  learner     the pmapped V-trace update (LearnerState), skipping non-finite updates
  loop        train(config) -> TrainResult: the recipe tying everything together
  layout      batch sizes over processes, actors, env groups and devices, checked up front
  devices     jax.distributed set-up and device placement
  checkpoint  orbax checkpoints, resuming, config compatibility
  metrics     metrics.jsonl, TensorBoard events, progress bar, summary
  evaluation  greedy and sampled evaluation episodes
  shutdown    SIGINT / SIGTERM -> a clean stop
  optimizer   the optax optimiser (RMSProp as IMPALA, or Adam)
  cli         `gtrxl-train` / `python -m gtrxl_jax.train`
"""
