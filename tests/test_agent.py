"""The agent: acting == learning, and the segment-scanned unroll (Transformer-XL style)."""

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

import gtrxl_jax as gx
from gtrxl_jax.agent import Agent, AgentInput

VECTOR_SPEC = jax.ShapeDtypeStruct((5,), jnp.float32)
NUM_ACTIONS = 3


def gtrxl(memory_len, **kw):
    return gx.GTrXLConfig(num_layers=2, d_model=16, num_heads=2, memory_len=memory_len, **kw)


def random_inputs(N, B, seed=0, first_at=()):
    keys = jax.random.split(jax.random.PRNGKey(seed), 4)
    first = jax.random.bernoulli(keys[0], 0.1, (N, B)).at[0].set(True)
    for t in first_at:
        first = first.at[t].set(True)
    return AgentInput(
        observation=jax.random.normal(keys[1], (N, B, 5)),
        first=first,
        prev_action=jax.random.randint(keys[2], (N, B), 0, NUM_ACTIONS),
        prev_reward=jax.random.normal(keys[3], (N, B)),
    )


def assert_trees_close(a, b, atol=2e-5):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, atol=atol, rtol=1e-5)


def make(core_config):
    agent = Agent(VECTOR_SPEC, NUM_ACTIONS, core_config)
    return agent, jax.jit(agent.init)(jax.random.PRNGKey(0))  # one compile, not op by op


def unroll(agent, *args, **kwargs):
    """agent.unroll, jitted (compiling the program once is faster than running it op by op)."""
    return jax.jit(agent.unroll, static_argnames="segment_len")(*args, **kwargs)


@pytest.mark.parametrize(
    "core_config",
    [gtrxl(4), gx.LSTMConfig(hidden_size=16), gx.FeedForwardConfig(d_model=16)],
    ids=["gtrxl", "lstm", "feedforward"],
)
def test_acting_steps_equal_the_learner_unroll(core_config):
    agent, params = make(core_config)
    N, B = 9, 3
    inputs = random_inputs(N, B)
    expected, expected_state = unroll(agent, params, inputs, agent.initial_state(B))
    state = agent.refresh_state(params, agent.initial_state(B, cache=True))
    step = jax.jit(agent.step, donate_argnums=2)  # as actors run it: the state updated in place
    outputs = []
    for t in range(N):
        out, state = step(params, jax.tree.map(lambda a, t=t: a[t], inputs), state)
        outputs.append(out)
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *outputs)
    assert_trees_close(stacked, expected)
    if isinstance(core_config, gx.GTrXLConfig):
        state = state.without_cache().in_order()  # N > M steps: the ring has wrapped
    assert_trees_close(state, expected_state)


# M < T, M = T and M > T for T = 4; episode starts inside segments (t = 5) and on a
# segment boundary (t = 8).
@pytest.mark.parametrize("memory_len", [2, 4, 7])
def test_segments_equal_one_call_and_single_steps(memory_len):
    agent, params = make(gtrxl(memory_len))
    T, K, B = 4, 3, 2
    inputs = random_inputs(K * T, B, seed=1, first_at=(5, 8))
    state = agent.initial_state(B)
    one_call, one_state = unroll(agent, params, inputs, state)
    segmented, seg_state = unroll(agent, params, inputs, state, segment_len=T)
    assert_trees_close(segmented, one_call)
    assert_trees_close(seg_state, one_state)
    singles, single_state = unroll(agent, params, inputs, state, segment_len=1)
    assert_trees_close(singles, one_call)
    assert_trees_close(single_state.in_order(), one_state)  # one-step calls: ring order


def test_trajectory_with_bootstrap_step_runs_a_remainder_call():
    """K*T + 1 steps (a trajectory plus its bootstrap step): K scanned segments and one step."""
    agent, params = make(gtrxl(3))
    inputs = random_inputs(2 * 4 + 1, 2, seed=2)
    state = agent.initial_state(2)
    expected, _ = unroll(agent, params, inputs, state)
    got, _ = unroll(agent, params, inputs, state, segment_len=4)
    assert_trees_close(got, expected)


def test_segment_gradient_equals_gradient_of_the_segment_alone():
    """stop_gradient between segments: the loss on segment k differentiates like segment k
    run alone from the same incoming memory."""
    agent, params = make(gtrxl(3))
    T, K, B, k = 4, 3, 2, 1
    inputs = random_inputs(K * T, B, seed=3)
    state = agent.initial_state(B)

    def loss_on_segment_k(params):
        out, _ = unroll(agent, params, inputs, state, segment_len=T)
        return jnp.sum(out.values[k * T : (k + 1) * T] ** 2)

    _, incoming = unroll(agent, params, jax.tree.map(lambda a: a[: k * T], inputs), state)
    segment_k = jax.tree.map(lambda a: a[k * T : (k + 1) * T], inputs)

    def loss_alone(params):
        out, _ = unroll(agent, params, segment_k, incoming)
        return jnp.sum(out.values**2)

    grads = [jax.jit(jax.grad(loss))(params) for loss in (loss_on_segment_k, loss_alone)]
    assert_trees_close(*grads, 1e-5)


@pytest.mark.needs_devices(2)
def test_segments_under_pmap_and_bfloat16():
    agent, params = make(gtrxl(3, dtype="bfloat16"))
    T, K, B = 4, 2, 4
    inputs = random_inputs(K * T, B, seed=4)
    state = agent.initial_state(B)
    expected, _ = unroll(agent, params, inputs, state)
    split_time_major = lambda tree: jax.tree.map(  # noqa: E731
        lambda a: jnp.stack(jnp.split(a, 2, axis=1)), tree
    )
    split_batch = lambda tree: jax.tree.map(lambda a: jnp.stack(jnp.split(a, 2)), tree)  # noqa: E731
    out, _ = jax.pmap(lambda p, i, s: agent.unroll(p, i, s, segment_len=T), in_axes=(None, 0, 0))(
        params, split_time_major(inputs), split_batch(state)
    )
    logits = jnp.concatenate(list(out.logits), axis=1)
    np.testing.assert_allclose(logits, expected.logits, atol=5e-3)


def _dot_output_dtypes(jaxpr) -> set:
    """The output dtypes of every dot_general in a jaxpr, its sub-jaxprs included."""
    dtypes = {eqn.outvars[0].aval.dtype for eqn in jaxpr.eqns
              if eqn.primitive.name == "dot_general"}
    for sub in jax.extend.core.subjaxprs(jaxpr):
        dtypes |= _dot_output_dtypes(sub)
    return dtypes


def test_under_bfloat16_no_matmul_of_the_learners_gradient_returns_bfloat16():
    """Every layer (embedding, torso, core, heads) accumulates and returns float32: a
    bfloat16-out matmul is slow on XLA:CPU and loses precision (`nn.precision`)."""
    agent, params = make(gtrxl(3, dtype="bfloat16"))
    inputs = random_inputs(4, 2)

    def loss(params):
        out, _ = agent.unroll(params, inputs, agent.initial_state(2))
        return jnp.sum(out.logits) + jnp.sum(out.values)

    assert _dot_output_dtypes(jax.make_jaxpr(jax.grad(loss))(params).jaxpr) == {
        jnp.dtype(jnp.float32)}


def test_pixel_agent_shapes_and_prev_action_masking():
    spec = jax.ShapeDtypeStruct((4, 16, 16), jnp.uint8)  # channels-first, like envpool Atari
    agent = Agent(spec, 6, gx.LSTMConfig(hidden_size=8), torso_options=(("channels_first", True),))
    params = jax.jit(agent.init)(jax.random.PRNGKey(0))
    inputs = agent.dummy_inputs(3, 2)
    out, _ = unroll(agent, params, inputs, agent.initial_state(2))
    assert out.logits.shape == (3, 2, 6) and out.values.shape == (3, 2, 1)
    # On a first step the previous action and reward are ignored.
    changed = inputs.replace(prev_action=inputs.prev_action + 2, prev_reward=inputs.prev_reward + 1)
    out2, _ = unroll(agent, params, changed, agent.initial_state(2))
    assert_trees_close(out2, out)


def test_the_torso_follows_the_observation_kind_given_or_read_off_the_spec():
    spec = jax.ShapeDtypeStruct((4, 16, 16), jnp.uint8)
    core = gx.LSTMConfig(hidden_size=8)
    assert Agent(spec, 6, core).embedding.torso.channels_first  # inferred: [C, H, W]
    assert not Agent(spec, 6, core, observation_kind="pixels_hwc").embedding.torso.channels_first
    with pytest.raises(ValueError, match="kind='image' is not one of"):
        Agent(spec, 6, core, observation_kind="image")


def test_a_multi_task_agent_has_one_value_output_per_task_and_shares_the_rest():
    single = Agent(VECTOR_SPEC, NUM_ACTIONS, gtrxl(2))
    multi = Agent(VECTOR_SPEC, NUM_ACTIONS, gtrxl(2), num_tasks=3)
    params = jax.jit(multi.init)(jax.random.PRNGKey(0))
    single_params = jax.eval_shape(single.init, jax.random.PRNGKey(0))
    inputs, state = random_inputs(5, 2), multi.initial_state(2)
    out, _ = unroll(multi, params, inputs, state)
    assert out.values.shape == (5, 2, 3) and out.logits.shape == (5, 2, NUM_ACTIONS)
    step, _ = multi.step(params, jax.tree.map(lambda a: a[0], inputs), state)
    assert step.values.shape == (2, 3)
    shapes = lambda tree: jax.tree.map(jnp.shape, tree)  # noqa: E731
    value_shapes = shapes(params["head"]["params"].pop("value"))
    assert value_shapes == {"kernel": (gtrxl(2).output_dim, 3), "bias": (3,)}
    single_params["head"]["params"].pop("value")
    assert shapes(params) == shapes(single_params)  # only the value layer grows with N


def test_errors():
    with pytest.raises(ValueError, match="num_actions must be a positive int"):
        Agent(VECTOR_SPEC, 0, gtrxl(2))
    with pytest.raises(ValueError, match="num_tasks must be a positive int"):
        Agent(VECTOR_SPEC, 2, gtrxl(2), num_tasks=0)
    with pytest.raises(ValueError, match="make_torso cannot encode"):
        Agent(jax.ShapeDtypeStruct((3, 3), jnp.float32), 2, gtrxl(2))
    agent, params = make(gtrxl(2))
    with pytest.raises(ValueError, match="segment_len must be a positive int"):
        unroll(agent, params, random_inputs(4, 1), agent.initial_state(1), segment_len=0)
