"""Training: the actor-learner (Sebulba) and on-device (Anakin) loops, and what they share.

    from gtrxl_jax.config import load_config
    from gtrxl_jax.train.loop import train

    result = train(load_config("experiments/configs/tmaze.py", ["run.log_dir=runs/x"]))

or from the shell: `python -m gtrxl_jax.train --config experiments/configs/tmaze.py`.

Modules:
  builder     all wiring from a TrainConfig, checked once: agent, learner, actors, state
  loop        train(config) -> TrainResult: picks the loop; the actor-learner recipe
  on_device   the on-device program (rollout + update in one jit) and its host loop
  result      how every run ends: evaluation, summary.json, TrainResult
  learning    the learner's pure update: V-trace or PPO loss, PopArt, finiteness checks,
              optimiser
  placement   the only code that knows devices: jax.distributed, device choice, the mesh,
              the data-parallel learner (jit over shard_map)
  acting      the policy step shared by actors, evaluation and the benchmarks
  actor       actor threads: envs + the policy step -> trajectories
  actor_process  an actor in a spawned process of its own (learner.actor_processes)
  handoff     the trajectory queues and the versioned parameter store between threads
  types       the Trajectory pytree (T+1 steps, overlapping by one) and batch assembly
  layout      batch sizes over processes, actors, env groups and devices, checked up front
  checkpoint  orbax checkpoints, resuming, config compatibility
  metrics     metrics.jsonl, TensorBoard events, progress bar, summary, actor telemetry
  nonfinite   skipped non-finite updates: the streak and what caused them
  update_log  the dispatched updates' metrics, read once the host has other work queued
  evaluation  greedy and sampled evaluation episodes (host and JAX tasks), periodic too
  eval_cli    `gtrxl-eval RUN_DIR`: evaluate a saved checkpoint, a video, an attention map
  saved_run   a run read back from its folder: config, agent, one checkpoint's parameters
  recording   one episode played and recorded (frames, agent inputs) for videos and maps
  attention_map  the attention weights over the memory for an episode, and their plot
  video       frames to an mp4 or gif
  shutdown    SIGINT / SIGTERM -> a clean stop
  optimizer   the optax optimiser (RMSProp as IMPALA, Adam or AMSGrad; gradient clips)
  cli         `gtrxl-train` / `python -m gtrxl_jax.train`
"""
