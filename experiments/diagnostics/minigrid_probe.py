"""Probe a MiniGrid Memory run: whether the agent sees the cue, and whether it uses it.

Plays one episode per environment (greedy and sampled) with a checkpoint of a run on
"MiniGrid-MemoryS<N>" and splits success by what the agent saw. The cue (a ball or a key
in the start room's corner) is "seen" on a step where it is inside the agent's 3x3 view;
with a 3x3 view the agent sees it at the start only if it starts in the room's first
column, and otherwise has to turn back for it. Reports, per checkpoint and mode:
  - seen: the share of episodes in which the cue was in view at some step;
  - success_seen / success_unseen: success among episodes where it was / was not seen
    (0.5 is a guess; 1.0 with the cue seen means the memory is used);
  - seen_at_start: the share where it was in view on the first step;
  - length: mean episode length.

    python experiments/diagnostics/minigrid_probe.py runs/minigrid [--episodes 1000] [--all]
"""

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
from xminigrid.core.constants import Tiles

from gtrxl_jax.envs.functional import batch_reset, batch_step, reset_keys
from gtrxl_jax.envs.registry import make_jax_env
from gtrxl_jax.train.acting import act_on_timestep
from gtrxl_jax.train.saved_run import checkpoint_updates, load_run

ROOM_EDGE = 4  # the start room's door column: from here on, a ball or key in view is not the cue


def cue_in_view(task_state) -> jax.Array:
    """Whether (bool [N]) the start room's object is inside each agent's view."""
    tiles = task_state.observation[..., 0]
    objects = (tiles == Tiles.BALL) | (tiles == Tiles.KEY)
    in_room = task_state.state.agent.position[..., 1] <= ROOM_EDGE
    return objects.any(axis=(-1, -2)) & in_room


def play(agent, params, env, num_episodes: int, greedy: bool, seed: int) -> dict[str, float]:
    """One episode per environment; the probe's figures (see the module docstring)."""
    max_steps = env.max_steps + 1

    @jax.jit
    def run(params):
        env_state, timestep = batch_reset(env, reset_keys(seed, num_episodes))
        core_state = agent.refresh_state(params, agent.initial_state(num_episodes, cache=True))
        seen0 = cue_in_view(env_state.task)
        zeros = jnp.zeros(num_episodes, bool)
        carry = (env_state, timestep, core_state, jnp.zeros(num_episodes, jnp.int32),
                 jax.random.split(jax.random.PRNGKey(seed), num_episodes), zeros, seen0,
                 zeros, jnp.zeros(num_episodes, jnp.int32))

        def step(carry, _):
            env_state, timestep, core_state, prev, keys, done, seen, success, length = carry
            actions, core_state, keys = act_on_timestep(agent, params, timestep, prev,
                                                        core_state, keys, greedy)
            env_state, timestep = batch_step(env, env_state, actions)
            playing = ~done
            seen = seen | (playing & ~timestep.last & cue_in_view(env_state.task))
            success = jnp.where(playing & timestep.last, timestep.success, success)
            length = length + playing
            done = done | timestep.last
            return (env_state, timestep, core_state, actions, keys, done, seen, success,
                    length), None

        carry, _ = jax.lax.scan(step, carry, None, length=max_steps)
        return seen0, carry[6], carry[7], carry[8]

    seen0, seen, success, length = map(np.asarray, run(params))
    return {
        "seen": float(seen.mean()),
        "seen_at_start": float(seen0.mean()),
        "success": float(success.mean()),
        "success_seen": float(success[seen].mean()) if seen.any() else float("nan"),
        "success_unseen": float(success[~seen].mean()) if (~seen).any() else float("nan"),
        "length": float(length.mean()),
    }


def main() -> None:
    """Probe the latest checkpoint of a run (or all of them with --all)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--all", action="store_true", help="every checkpoint, not the latest")
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args()
    updates = checkpoint_updates(args.run) if args.all else [None]
    for update in updates:
        saved = load_run(args.run, update)
        env = make_jax_env(saved.tasks[0], **saved.config.env.options)
        for greedy in (True, False):
            figures = play(saved.agent, saved.params, env, args.episodes, greedy, args.seed)
            print(json.dumps({"update": saved.update, "env_steps": saved.env_steps,
                              "mode": "greedy" if greedy else "sampled",
                              **{k: round(v, 3) for k, v in figures.items()}}))


if __name__ == "__main__":
    main()
