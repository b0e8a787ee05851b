"""The public modules refuse inputs of the wrong rank, dtype or width, memory from another
config and mismatched batch sizes, with chex-style messages that name the shapes.

The calls are traced (`jax.eval_shape`), as under jit, where the checks must work too.
"""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gtrxl_jax as gx
from gtrxl_jax import losses
from gtrxl_jax.agent import Agent, AgentInput

T, B, D, A = 3, 2, 16, 4
CORE = gx.GTrXLConfig(num_layers=1, d_model=D, num_heads=2, memory_len=4)
LSTM = gx.LSTMConfig(hidden_size=8)
ERRORS = (AssertionError, ValueError, TypeError)


@pytest.fixture(scope="module")
def m():
    """Each public module with parameters and good inputs, [T, B] = [3, 2]."""
    key = jax.random.PRNGKey(0)
    x, first = jnp.zeros((T, B, D)), jnp.zeros((T, B), bool)
    core, memory = gx.GTrXL(CORE), gx.init_memory(CORE, B)
    lstm, lstm_state = gx.make_core(LSTM), gx.init_memory(LSTM, B)
    agent = Agent(jax.ShapeDtypeStruct((3,), np.float32), A, CORE)
    inputs = AgentInput(observation=jnp.zeros((T, B, 3)), first=first,
                        prev_action=jnp.zeros((T, B), jnp.int32), prev_reward=jnp.zeros((T, B)))
    rng = np.random.default_rng(0)
    loss_args = dict(
        target_logits=rng.normal(size=(T, B, A)).astype(np.float32),
        values=np.zeros((T + 1, B), np.float32), actions=np.zeros((T, B), np.int32),
        behaviour_logits=rng.normal(size=(T, B, A)).astype(np.float32),
        rewards=np.zeros((T, B), np.float32), discounts=np.ones((T, B), np.float32),
        mask=np.ones((T, B), bool))
    return types.SimpleNamespace(
        x=x, first=first, core=core, memory=memory,
        core_params=jax.jit(core.init)(key, x, first, memory),  # one compile, not op by op
        lstm=lstm, lstm_state=lstm_state, lstm_params=jax.jit(lstm.init)(key, x, first, lstm_state),
        agent=agent, agent_params=jax.jit(agent.init)(key), inputs=inputs, loss_args=loss_args)


def gtrxl(m, x=None, first=None, memory=None):
    return m.core.apply(m.core_params, m.x if x is None else x,
                        m.first if first is None else first, m.memory if memory is None else memory)


def lstm(m, x=None, first=None, state=None):
    return m.lstm.apply(m.lstm_params, m.x if x is None else x,
                        m.first if first is None else first,
                        m.lstm_state if state is None else state)


def unroll(m, state=None, **fields):
    return m.agent.unroll(m.agent_params, m.inputs.replace(**fields),
                          m.agent.initial_state(B) if state is None else state)


def loss(m, **args):
    return losses.impala_loss(**{**m.loss_args, **args})


CASES = [
    # GTrXL core
    pytest.param(lambda m: gtrxl(m, x=m.x[0]), r"rank 2 .*\[inputs must be \[T, B, D\]\.\]",
                 id="gtrxl-inputs-rank"),
    pytest.param(lambda m: gtrxl(m, x=jnp.zeros((T, B, D), jnp.int32)),
                 "input 0 has type int32 but expected <class 'float'>", id="gtrxl-inputs-dtype"),
    pytest.param(lambda m: gtrxl(m, x=jnp.zeros((T, B, 8))),
                 r"inputs are \[T, B, D\] = \(3, 2, 8\); D must be d_model=16",
                 id="gtrxl-inputs-width"),
    pytest.param(lambda m: gtrxl(m, memory=gx.init_memory(CORE.__class__(
                     num_layers=2, d_model=D, num_heads=2, memory_len=7), B)),
                 r"memory.states has shape \(2, 2, 7, 16\); this config and batch need "
                 r"\[B, L, M, D\] = \(2, 1, 4, 16\)", id="gtrxl-memory-of-another-config"),
    pytest.param(lambda m: gtrxl(m, memory=gx.init_memory(CORE, 3)),
                 r"memory.states has shape \(3, 1, 4, 16\).*\(2, 1, 4, 16\)",
                 id="gtrxl-memory-batch"),
    pytest.param(lambda m: gtrxl(m, x=jnp.zeros((B, T, D)), first=jnp.zeros((B, T), bool)),
                 r"time-major \[T, B, \.\.\.\] \(here B = 3\): swap the first two axes",
                 id="gtrxl-batch-major-inputs"),
    pytest.param(lambda m: gx.make_core(gx.FeedForwardConfig(d_model=D)).apply(
                     {}, jnp.zeros((T, B, 8)), m.first, gx.init_memory(
                         gx.FeedForwardConfig(d_model=D), B)),
                 r"inputs are \[T, B, D\] = \(3, 2, 8\); D must be d_model=16",
                 id="feedforward-inputs-width"),
    pytest.param(lambda m: gtrxl(m, first=jnp.zeros((T, 5), bool)),
                 r"first has shape \(3, 5\); expected \[T, B\] = \(3, 2\)", id="gtrxl-first-batch"),
    pytest.param(lambda m: gtrxl(m, memory=m.lstm_state),
                 "memory must be a gtrxl_jax Memory, got LSTMState", id="gtrxl-lstm-state"),
    pytest.param(lambda m: gtrxl(m, first=jnp.zeros((T, B))), r"first.*bool",
                 id="gtrxl-first-dtype"),
    pytest.param(lambda m: gtrxl(m, memory=gx.init_memory(CORE.__class__(
                     num_layers=1, d_model=D, num_heads=4, memory_len=4), B, cache=True)),
                 r"memory.cache.*\(2, 4, 4, 4\)", id="gtrxl-cache-of-another-config"),
    # LSTM core
    pytest.param(lambda m: lstm(m, x=m.x[0]), r"rank 2 .*\[inputs must be \[T, B, D\]\.\]",
                 id="lstm-inputs-rank"),
    pytest.param(lambda m: lstm(m, first=jnp.zeros((T, 5), bool)),
                 r"first has shape \(3, 5\); expected \[T, B\] = \(3, 2\)", id="lstm-first-batch"),
    pytest.param(lambda m: lstm(m, x=jnp.zeros((T, B, D), jnp.int32)), r"int32.*float",
                 id="lstm-inputs-dtype"),
    pytest.param(lambda m: lstm(m, x=jnp.zeros((T, B, 5))), r"inputs.*\(3, 2, 5\)",
                 id="lstm-inputs-width"),
    pytest.param(lambda m: lstm(m, state=gx.init_memory(gx.LSTMConfig(hidden_size=4), B)),
                 r"state.*\(2, 1, 4\).*\(2, 1, 8\)", id="lstm-state-of-another-config"),
    pytest.param(lambda m: lstm(m, state=gx.init_memory(LSTM, 3)), r"state.*\(3, 1, 8\)",
                 id="lstm-state-batch"),
    pytest.param(lambda m: lstm(m, state=m.memory), "LSTMState", id="lstm-gtrxl-memory"),
    # Agent
    pytest.param(lambda m: unroll(m, state=m.agent.initial_state(3)),
                 r"memory.states has shape \(3, 1, 4, 16\)", id="agent-state-batch"),
    pytest.param(lambda m: unroll(m, observation=jnp.zeros((T, B))),
                 r"observation has shape \(3, 2\); .* = \(3, 2, 3\)", id="agent-observation-rank"),
    pytest.param(lambda m: unroll(m, observation=jnp.zeros((T, B, 5))),
                 r"observation.*\(3, 2, 5\).*\(3,\)",
                 id="agent-observation-width"),
    pytest.param(lambda m: unroll(m, observation=jnp.zeros((T, 3, 3))), r"observation.*\(3, 3, 3\)",
                 id="agent-observation-batch"),
    pytest.param(lambda m: unroll(m, first=jnp.zeros((T,), bool)), r"first.*\[T, B\]",
                 id="agent-first-rank"),
    pytest.param(lambda m: unroll(m, first=jnp.zeros((T, B))), r"first.*bool",
                 id="agent-first-dtype"),
    pytest.param(lambda m: unroll(m, prev_action=jnp.zeros((T, 3), jnp.int32)),
                 r"prev_action.*\(3, 3\)", id="agent-prev-action-batch"),
    pytest.param(lambda m: unroll(m, prev_reward=jnp.zeros((T, B, 1))),
                 r"prev_reward.*\(3, 2, 1\)", id="agent-prev-reward-shape"),
    pytest.param(lambda m: m.agent.step(m.agent_params, m.inputs, m.agent.initial_state(B)),
                 r"first.*\[B\]", id="agent-step-rank"),
    # V-trace loss
    pytest.param(lambda m: loss(m, values=np.zeros((T, B), np.float32)),
                 r"input 0 has shape \(3, 2\) but expected \(4, 2\)", id="loss-values-length"),
    pytest.param(lambda m: loss(m, actions=np.zeros((T, B, 1), np.int32)),
                 r"rank 3 \(shape \(3, 2, 1\)\) but expected 2", id="loss-actions-rank"),
    pytest.param(lambda m: loss(m, rewards=np.zeros((T, B + 1), np.float32)),
                 r"different shapes: \[\(3, 3\), \(3, 2\)", id="loss-batch-mismatch"),
    pytest.param(lambda m: loss(m, actions=np.zeros((T, B), np.float32)),
                 "has type float32 but expected <class 'int'>", id="loss-actions-dtype"),
]


@pytest.mark.parametrize("call, message", CASES)
def test_bad_inputs_are_refused_naming_the_shapes(m, call, message):
    with pytest.raises(ERRORS, match=message):
        jax.eval_shape(lambda: call(m))  # the checks are on shapes: tracing is enough
