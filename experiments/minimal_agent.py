"""A minimal agent of its own around `gtrxl_jax.nn`: how another JAX agent uses the core.

The task is cue recall: a cue (+1 or -1) is shown on the first step of an episode, then
`delay` blank steps, then the agent must choose the action matching the cue (reward 1, else
0). Only a core with memory can beat 50%. The agent acts one step at a time with the cached
memory (as an actor would) and learns with one unroll over the episodes (as a learner would),
with REINFORCE and a value baseline. Nothing from gtrxl_jax but `gtrxl_jax.nn` is imported.

    python experiments/minimal_agent.py --updates 200
"""

import argparse

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from gtrxl_jax import nn as gnn


class CueRecallAgent(nn.Module):
    """Embedding -> GTrXL core -> policy logits and value."""

    core_config: gnn.GTrXLConfig
    num_actions: int = 2

    @nn.compact
    def __call__(self, observations, first, memory):
        """Maps observations [T, B, 1], first [T, B] to logits [T, B, A], values [T, B], memory."""
        x = nn.Dense(self.core_config.d_model)(observations)
        y, memory = gnn.GTrXL(self.core_config)(x, first, memory)
        return nn.Dense(self.num_actions)(y), nn.Dense(1)(y)[..., 0], memory


def episode_observations(key, batch, delay):
    """Cue on step 0, zeros after: observations [delay + 2, B, 1] and cues [B] in {0, 1}."""
    cues = jax.random.bernoulli(key, 0.5, (batch,)).astype(jnp.int32)
    observations = jnp.zeros((delay + 2, batch, 1)).at[0, :, 0].set(2.0 * cues - 1.0)
    return observations, cues


def make_functions(agent, delay, batch):
    """Jitted acting (one step, cached memory) and learning (one unroll) functions."""
    T = delay + 2

    @jax.jit
    def collect(params, key):
        """Plays one episode per env step by step; returns observations, actions, rewards."""
        key_cue, key_act = jax.random.split(key)
        observations, cues = episode_observations(key_cue, batch, delay)
        first = jnp.zeros((T, batch), bool).at[0].set(True)
        memory = gnn.init_memory(agent.core_config, batch, cache=True)

        def act(memory, step):
            obs, f, k = step
            logits, _, memory = agent.apply(params, obs[None], f[None], memory)
            return memory, jax.random.categorical(k, logits[0])

        _, actions = jax.lax.scan(act, memory, (observations, first, jax.random.split(key_act, T)))
        rewards = (actions[-1] == cues).astype(jnp.float32)  # only the last choice counts
        return observations, first, actions, rewards

    @jax.jit
    def update(params, opt_state, observations, first, actions, rewards):
        def loss_fn(params):
            memory = gnn.init_memory(agent.core_config, batch)
            logits, values, _ = agent.apply(params, observations, first, memory)
            log_prob = jax.nn.log_softmax(logits[-1])[jnp.arange(batch), actions[-1]]
            advantage = jax.lax.stop_gradient(rewards - values[-1])
            return -jnp.mean(log_prob * advantage) + 0.5 * jnp.mean((rewards - values[-1]) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    optimizer = optax.adam(3e-4)
    return collect, update, optimizer


def main(argv=None) -> float:
    """Trains the agent and returns the final success rate."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--delay", type=int, default=6)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    config = gnn.GTrXLConfig(num_layers=1, d_model=32, num_heads=2, memory_len=args.delay + 2)
    agent = CueRecallAgent(config)
    collect, update, optimizer = make_functions(agent, args.delay, args.batch)
    T = args.delay + 2
    params = agent.init(
        jax.random.PRNGKey(0),
        jnp.zeros((T, args.batch, 1)),
        jnp.ones((T, args.batch), bool),
        gnn.init_memory(config, args.batch),
    )
    opt_state = optimizer.init(params)
    key = jax.random.PRNGKey(1)
    success = 0.0
    for i in range(args.updates):
        key, sub = jax.random.split(key)
        observations, first, actions, rewards = collect(params, sub)
        params, opt_state, loss = update(params, opt_state, observations, first, actions, rewards)
        success = float(rewards.mean())
        if i % 25 == 0 or i == args.updates - 1:
            print(f"update {i:4d}  success {success:.2f}  loss {float(loss):.3f}")
    return success


if __name__ == "__main__":
    main()
