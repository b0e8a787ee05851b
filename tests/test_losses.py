"""Tests of the V-trace loss against a plain NumPy IMPALA written from the paper's equations."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

from gtrxl_jax import losses

T, B, A = 8, 4, 3
GAMMA = 0.9
TERMINATION = (1, 3)  # (column, step): a last step with discount 0.
TRUNCATION = (2, 5)  # a last step with discount 1 (time limit).
LATE_TRUNCATION = (3, T - 1)  # its fake transition is the trajectory's last one.
EARLY_TERMINATION = (3, 2)


def _trajectory(seed=0):
    """Random T+1 dm_env-style steps with episode ends, turned into T transitions.

    Done as the learner does it: rewards[s] and discounts[s] come from step s+1, and
    mask[s] = not first[s+1].
    """
    rng = np.random.RandomState(seed)
    reward = rng.randn(T + 1, B).astype(np.float32)
    discount = np.ones((T + 1, B), np.float32)
    first = np.zeros((T + 1, B), bool)
    first[0, 0] = True
    for (b, t), env_discount in [(TERMINATION, 0.0), (TRUNCATION, 1.0),
                                 (LATE_TRUNCATION, 1.0), (EARLY_TERMINATION, 0.0)]:
        discount[t, b] = env_discount
        first[t + 1, b] = True
    reward[first] = 0.0
    target_logits = rng.randn(T, B, A).astype(np.float32)
    # Behaviour far enough from the target that the ratios cross every clipping level.
    behaviour_logits = (target_logits + 1.5 * rng.randn(T, B, A)).astype(np.float32)
    return dict(
        target_logits=target_logits,
        values=rng.randn(T + 1, B).astype(np.float32),
        actions=rng.randint(0, A, (T, B)).astype(np.int32),
        behaviour_logits=behaviour_logits,
        rewards=reward[1:],
        discounts=(GAMMA * discount[1:]).astype(np.float32),
        mask=~first[1:],
    )


def _np_log_softmax(logits):
    z = logits - logits.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _np_ratios(data):
    def log_prob(logits):
        return np.take_along_axis(_np_log_softmax(logits), data["actions"][..., None], -1)[..., 0]
    return np.exp(log_prob(data["target_logits"]) - log_prob(data["behaviour_logits"]))


def _np_vtrace(values, rewards, discounts, ratios, mask, rho_bar, c_bar, lambda_):
    """IMPALA eq. (1) and section 4.2, as written, one column and one step at a time.

    v_s = V(x_s) + sum_{t>=s} (prod_{i=s}^{t-1} gamma_i c_i) delta_t V,
    delta_t V = rho_t (r_t + gamma_t V(x_{t+1}) - V(x_t)), rho_t = min(rho_bar, pi/mu),
    c_i = lambda min(c_bar, pi/mu); the sum stops at a masked transition (it is no part of
    the trajectory), whose own target is V(x_s). Advantage: rho_s (r_s + gamma_s v_{s+1} - V).
    """
    vs = np.zeros_like(rewards, dtype=np.float64)
    advantages = np.zeros_like(vs)
    for b in range(rewards.shape[1]):
        for s in range(T):
            vs[s, b] = values[s, b]
            weight = 1.0
            for t in range(s, T):
                if not mask[t, b]:
                    break
                rho_t = min(rho_bar, ratios[t, b])
                delta = rho_t * (rewards[t, b] + discounts[t, b] * values[t + 1, b]
                                 - values[t, b])
                vs[s, b] += weight * delta
                weight *= discounts[t, b] * lambda_ * min(c_bar, ratios[t, b])
        for s in range(T):
            if mask[s, b]:
                v_next = vs[s + 1, b] if s + 1 < T else values[T, b]
                advantages[s, b] = min(rho_bar, ratios[s, b]) * (
                    rewards[s, b] + discounts[s, b] * v_next - values[s, b])
    return vs, advantages


def _np_loss(data, vs, advantages, baseline_cost, entropy_cost):
    mask = data["mask"]
    log_pi = _np_log_softmax(data["target_logits"].astype(np.float64))
    log_pi_a = np.take_along_axis(log_pi, data["actions"][..., None], -1)[..., 0]
    entropy = -(np.exp(log_pi) * log_pi).sum(-1)
    pg_loss = (-advantages * log_pi_a)[mask].mean()
    baseline_loss = (0.5 * (vs - data["values"][:-1]) ** 2)[mask].mean()
    entropy = entropy[mask].mean()
    loss = pg_loss + baseline_cost * baseline_loss - entropy_cost * entropy
    return dict(loss=loss, pg_loss=pg_loss, baseline_loss=baseline_loss, entropy=entropy)


LEVELS = [
    dict(rho_bar=1.0, c_bar=1.0, lambda_=1.0),  # IMPALA's defaults
    dict(rho_bar=2.0, c_bar=0.5, lambda_=0.9),
    dict(rho_bar=0.8, c_bar=1.3, lambda_=0.95),
]


def test_data_exercises_clipping_and_episode_ends():
    data = _trajectory()
    ratios = _np_ratios(data)[data["mask"]]
    assert (ratios > 2.0).any() and (ratios < 0.5).any()
    assert (data["discounts"] == 0).sum() == 2
    assert (~data["mask"]).sum() == 4
    assert not data["mask"][T - 1, LATE_TRUNCATION[0]]


@pytest.mark.parametrize("levels", LEVELS)
def test_vtrace_targets_match_numpy_reference(levels):
    data = _trajectory()
    ratios = losses.importance_ratios(data["target_logits"], data["behaviour_logits"],
                                      data["actions"], data["mask"])
    targets = jax.jit(lambda: losses.vtrace_targets(
        data["values"], data["rewards"], data["discounts"], ratios, data["mask"], **levels))()
    np_vs, np_adv = _np_vtrace(data["values"], data["rewards"], data["discounts"],
                               _np_ratios(data), data["mask"], **levels)
    np.testing.assert_allclose(targets.vs, np_vs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(targets.pg_advantages, np_adv, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("levels", LEVELS)
def test_loss_matches_numpy_reference(levels):
    data = _trajectory()
    loss, metrics = jax.jit(lambda d: losses.impala_loss(**d, **levels))(data)
    np_vs, np_adv = _np_vtrace(data["values"], data["rewards"], data["discounts"],
                               _np_ratios(data), data["mask"], **levels)
    expected = _np_loss(data, np_vs, np_adv, baseline_cost=0.5, entropy_cost=0.01)
    np.testing.assert_allclose(loss, expected["loss"], rtol=1e-5)
    for name, value in expected.items():
        np.testing.assert_allclose(metrics[name], value, rtol=1e-5, err_msg=name)
    ratios = _np_ratios(data)[data["mask"]]
    np.testing.assert_allclose(metrics["rho_mean"], ratios.mean(), rtol=1e-5)
    np.testing.assert_allclose(metrics["rho_clipped_fraction"],
                               (ratios > levels["rho_bar"]).mean(), rtol=1e-6)
    np.testing.assert_allclose(metrics["valid_fraction"], data["mask"].mean())


def test_defaults_agree_with_rlax_advantages():
    data = _trajectory()
    data["mask"] = np.ones_like(data["mask"])
    ratios = _np_ratios(data).astype(np.float32)
    targets = losses.vtrace_targets(data["values"], data["rewards"], data["discounts"],
                                    jnp.asarray(ratios), data["mask"])
    rlax_out = jax.vmap(rlax.vtrace_td_error_and_advantage, in_axes=1, out_axes=1)(
        data["values"][:-1], data["values"][1:], data["rewards"], data["discounts"], ratios)
    np.testing.assert_allclose(targets.vs, data["values"][:-1] + rlax_out.errors, atol=1e-5)
    np.testing.assert_allclose(targets.pg_advantages, rlax_out.pg_advantage, atol=1e-5)


def _targets(data, **levels):
    ratios = losses.importance_ratios(data["target_logits"], data["behaviour_logits"],
                                      data["actions"], data["mask"])
    return losses.vtrace_targets(data["values"], data["rewards"], data["discounts"], ratios,
                                 data["mask"], **levels)


@pytest.mark.parametrize("levels", LEVELS)
def test_truncation_bootstraps_from_last_step_and_ignores_next_episode(levels):
    """After a truncation the targets equal those of a trajectory that ends at the last step."""
    b, t_last = TRUNCATION
    data = _trajectory()
    full = _targets(data, **levels)
    # The episode cut at its last step: transitions 0..t_last-1, bootstrap V(x_{t_last}).
    ended = {k: v[:t_last, b:b + 1] for k, v in data.items() if k != "values"}
    ended["values"] = data["values"][:t_last + 1, b:b + 1]
    alone = _targets(ended, **levels)
    np.testing.assert_allclose(full.vs[:t_last, b], alone.vs[:, 0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(full.pg_advantages[:t_last, b], alone.pg_advantages[:, 0],
                               rtol=1e-6, atol=1e-6)
    # The truncated step's own target is its value, and the next episode cannot reach back.
    np.testing.assert_allclose(full.vs[t_last, b], data["values"][t_last, b])
    rng = np.random.RandomState(1)
    changed = {k: v.copy() for k, v in data.items()}
    for key in ("rewards", "discounts"):
        changed[key][t_last:, b] = rng.uniform(0, 5, T - t_last)
    changed["values"][t_last + 1:, b] += 100.0
    changed["behaviour_logits"][t_last:, b] += rng.randn(T - t_last, A).astype(np.float32)
    np.testing.assert_allclose(_targets(changed, **levels).vs[:t_last, b], full.vs[:t_last, b])


def test_trajectory_ending_on_fake_transition_ignores_bootstrap():
    b, t_last = LATE_TRUNCATION
    data = _trajectory()
    changed = {k: v.copy() for k, v in data.items()}
    changed["values"][T, b] += 100.0  # V(x_T) is the next episode's first step.
    np.testing.assert_allclose(_targets(changed).vs, _targets(data).vs)
    np.testing.assert_allclose(_targets(data).vs[t_last, b], data["values"][t_last, b])


def test_termination_cuts_the_trace():
    b, t_last = TERMINATION
    data = _trajectory()
    full = _targets(data)
    changed = {k: v.copy() for k, v in data.items()}
    changed["values"][t_last:, b] += 100.0  # the terminal step's value and everything after
    changed["rewards"][t_last:, b] += 100.0
    np.testing.assert_allclose(_targets(changed).vs[:t_last, b], full.vs[:t_last, b],
                               rtol=1e-6)


def test_masked_transitions_do_not_change_the_loss():
    data = _trajectory()
    loss, metrics = losses.impala_loss(**data)
    rng = np.random.RandomState(2)
    changed = {k: v.copy() for k, v in data.items()}
    masked = ~data["mask"]
    n = masked.sum()
    changed["actions"][masked] = (data["actions"][masked] + 1) % A
    changed["target_logits"][masked] = 10 * rng.randn(n, A)
    changed["behaviour_logits"][masked] = -10 * rng.randn(n, A)
    changed["rewards"][masked] = 1e3
    changed["discounts"][masked] = 1.0
    new_loss, new_metrics = losses.impala_loss(**changed)
    np.testing.assert_allclose(new_loss, loss, rtol=1e-6)
    chex.assert_trees_all_close(new_metrics, metrics, rtol=1e-6)


def test_gradients_are_finite_and_zero_on_masked_entries():
    data = _trajectory()

    def loss_fn(target_logits, values):
        return losses.impala_loss(**{**data, "target_logits": target_logits, "values": values})[0]

    grad_logits, grad_values = jax.jit(jax.grad(loss_fn, argnums=(0, 1)))(
        data["target_logits"], data["values"])
    assert np.isfinite(grad_logits).all() and np.isfinite(grad_values).all()
    np.testing.assert_array_equal(grad_logits[~data["mask"]], 0.0)
    np.testing.assert_array_equal(grad_values[:-1][~data["mask"]], 0.0)
    np.testing.assert_array_equal(grad_values[-1], 0.0)  # the bootstrap is a target only
    assert np.abs(grad_logits[data["mask"]]).sum() > 0
    assert np.abs(grad_values[:-1][data["mask"]]).min() > 0


def test_entropy_bonus_lowers_the_loss_and_pushes_toward_uniform():
    data = _trajectory()
    loss_0, metrics = losses.impala_loss(**data, entropy_cost=0.0)
    loss_1, _ = losses.impala_loss(**data, entropy_cost=1.0)
    np.testing.assert_allclose(loss_0 - loss_1, metrics["entropy"], rtol=1e-5)
    # With zero rewards and values the advantages vanish: only the entropy term moves logits.
    quiet = {**data, "rewards": np.zeros_like(data["rewards"]),
             "values": np.zeros_like(data["values"])}

    def loss_fn(logits):
        return losses.impala_loss(**{**quiet, "target_logits": logits}, entropy_cost=1.0)

    logits = jnp.asarray(data["target_logits"])
    grads = jax.jit(jax.grad(lambda x: loss_fn(x)[0]))(logits)
    entropy = jax.jit(lambda x: loss_fn(x)[1]["entropy"])
    assert entropy(logits - 0.1 * grads) > entropy(logits)


def test_all_masked_batch_gives_zero_loss():
    data = {**_trajectory(), "mask": np.zeros((T, B), bool)}
    loss, metrics = losses.impala_loss(**data)
    assert loss == 0.0 and metrics["valid_fraction"] == 0.0


def test_shape_and_argument_errors():
    data = _trajectory()
    with pytest.raises(AssertionError):
        losses.impala_loss(**{**data, "values": data["values"][:-1]})
    with pytest.raises(AssertionError):
        losses.impala_loss(**{**data, "actions": data["actions"][..., None]})
    with pytest.raises(ValueError, match="c_bar"):
        losses.impala_loss(**data, c_bar=0.0)
    with pytest.raises(ValueError, match="task_ids"):
        losses.impala_loss(**data, popart=losses.popart_init(2))


# PopArt.

def _popart_state(num_tasks=3):
    shift = jnp.array([0.5, -2.0, 10.0])[:num_tasks]
    scale = jnp.array([2.0, 0.5, 4.0])[:num_tasks]
    return losses.PopArtState(shift=shift, scale=scale, second_moment=scale**2 + shift**2)


def test_popart_normalize_and_unnormalize_invert_per_task():
    state = _popart_state()
    task_ids = jnp.array([2, 0, 0, 1])
    values = jnp.asarray(np.random.RandomState(3).randn(T + 1, B), jnp.float32)
    normalised = losses.popart_normalize(state, values, task_ids)
    np.testing.assert_allclose(
        normalised, (values - state.shift[task_ids]) / state.scale[task_ids], rtol=1e-6)
    np.testing.assert_allclose(losses.popart_unnormalize(state, normalised, task_ids), values,
                               rtol=1e-5, atol=1e-6)


def test_popart_statistics_move_toward_each_tasks_targets():
    state = losses.popart_init(3)
    task_ids = jnp.array([1, 1, 2, 2])
    mask = jnp.ones((T, B), bool).at[0, 0].set(False)
    targets = jnp.full((T, B), 4.0).at[:, 2:].set(-1.0).at[0, 0].set(1e6)
    beta = 0.1
    new = losses.popart_update(state, targets, task_ids, mask, step_size=beta)
    np.testing.assert_allclose(new.shift, [0.0, beta * 4.0, -beta], rtol=1e-6)
    np.testing.assert_allclose(new.second_moment,
                               [1.0, 1 + beta * (16 - 1), 1 + beta * (1 - 1)], rtol=1e-6)
    # Repeated, the statistics reach the targets' mean and standard deviation.
    update = jax.jit(lambda state, targets: losses.popart_update(
        state, targets, task_ids, mask, step_size=beta))
    rng = np.random.RandomState(4)
    for _ in range(300):
        state = update(state, jnp.asarray(3.0 + 2.0 * rng.randn(T, B), jnp.float32))
    np.testing.assert_allclose(state.shift[1:], [3.0, 3.0], atol=0.4)
    np.testing.assert_allclose(state.scale[1:], [2.0, 2.0], atol=0.4)
    np.testing.assert_allclose(state.shift[0], 0.0)
    np.testing.assert_allclose(state.scale[0], 1.0)


def test_popart_update_pools_devices():
    state = _popart_state()
    rng = np.random.RandomState(5)
    targets = jnp.asarray(rng.randn(2, T, B) * 3, jnp.float32)
    task_ids = jnp.array([[0, 1, 1, 2], [1, 1, 1, 0]])
    mask = jnp.asarray(rng.rand(2, T, B) > 0.2)
    pooled = jax.jit(jax.vmap(
        lambda x, i, m: losses.popart_update(state, x, i, m, step_size=0.2, axis_name="d"),
        axis_name="d"))(targets, task_ids, mask)
    single = losses.popart_update(
        state, jnp.concatenate(targets, axis=1), jnp.concatenate(task_ids),
        jnp.concatenate(mask, axis=1), step_size=0.2)
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[0], pooled), single, rtol=1e-5)
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[1], pooled), single, rtol=1e-5)


def test_popart_preserve_outputs_keeps_unnormalised_values():
    rng = np.random.RandomState(6)
    params = {"kernel": jnp.asarray(rng.randn(5, 3), jnp.float32),
              "bias": jnp.asarray(rng.randn(3), jnp.float32)}
    features = jnp.asarray(rng.randn(B, 5), jnp.float32)
    old = _popart_state()
    new = losses.popart_update(old, jnp.asarray(rng.randn(T, B) * 7, jnp.float32),
                               jnp.array([0, 1, 2, 2]), jnp.ones((T, B), bool), step_size=0.5)
    new_params = losses.popart_preserve_outputs(params, old, new)
    before = old.scale * (features @ params["kernel"] + params["bias"]) + old.shift
    after = new.scale * (features @ new_params["kernel"] + new_params["bias"]) + new.shift
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)


def test_popart_loss_selects_each_environments_task():
    data = _trajectory()
    state = _popart_state()
    task_ids = np.array([2, 0, 1, 0])
    mu, sigma = np.asarray(state.shift)[task_ids], np.asarray(state.scale)[task_ids]
    normalised = data["values"]
    loss, metrics = losses.impala_loss(**data, popart=state, task_ids=jnp.asarray(task_ids))
    # Reference: V-trace on V = sigma n + mu, value loss and advantages in normalised units.
    unnormalised = sigma * normalised.astype(np.float64) + mu
    np_vs, np_adv = _np_vtrace(unnormalised, data["rewards"], data["discounts"],
                               _np_ratios(data), data["mask"], 1.0, 1.0, 1.0)
    expected = _np_loss(data, (np_vs - mu) / sigma, np_adv / sigma, 0.5, 0.01)
    for name, value in expected.items():
        np.testing.assert_allclose(metrics[name], value, rtol=1e-5, err_msg=name)
    np.testing.assert_allclose(metrics["vs_mean"], np_vs[data["mask"]].mean(), rtol=1e-5)
    # Identity statistics give the plain loss.
    plain, _ = losses.impala_loss(**data)
    identity, _ = losses.impala_loss(**data, popart=losses.popart_init(3),
                                     task_ids=jnp.asarray(task_ids))
    np.testing.assert_allclose(identity, plain, rtol=1e-6)


def test_select_task_values_reads_each_environments_own_output():
    rng = np.random.RandomState(7)
    values = jnp.asarray(rng.randn(T + 1, B, 3), jnp.float32)
    task_ids = jnp.array([2, 0, 1, 0])
    selected = losses.select_task_values(values, task_ids)
    np.testing.assert_array_equal(selected, np.asarray(values)[:, np.arange(B), task_ids])
    # Only the selected outputs get a gradient: task i's output learns from task i's rows.
    grad = jax.grad(lambda v: jnp.sum(losses.select_task_values(v, task_ids)))(values)
    np.testing.assert_array_equal(grad, np.broadcast_to(jax.nn.one_hot(task_ids, 3), grad.shape))
    # A single-task head [T+1, B, 1] gives its only output.
    np.testing.assert_array_equal(
        losses.select_task_values(values[..., :1], jnp.zeros(B, jnp.int32)), values[..., 0])
    # An id with no output is NaN, which makes the loss non-finite instead of silently wrong.
    for wrong_id in (3, -1):
        selected = losses.select_task_values(values, jnp.array([0, wrong_id, 1, 0]))
        assert np.isnan(selected[:, 1]).all() and np.isfinite(selected[:, [0, 2, 3]]).all()
    with pytest.raises(ValueError, match=r"values \[..., B, N\] and task_ids \[B\]"):
        losses.select_task_values(values[:, :2], task_ids)


def test_per_task_popart_statistics_move_independently_and_pop_preserves_every_task():
    """Hessel et al. 2018, section 3: ART moves task i's statistics with task i's targets only;
    POP rescales output unit i with task i's statistics, so every task's unnormalised value
    sigma_i n_i(x) + mu_i is unchanged, whatever the other tasks' targets were."""
    rng = np.random.RandomState(8)
    old = _popart_state()
    task_ids = jnp.array([0, 0, 1, 1])  # task 2 is absent from the batch
    mask = jnp.ones((T, B), bool)
    targets = np.asarray(rng.randn(T, B), np.float32)
    targets[:, 2:] *= 1000.0  # task 1's returns are on a much larger scale
    new = losses.popart_update(old, jnp.asarray(targets), task_ids, mask, step_size=0.5)
    # Task 0's statistics do not depend on task 1's targets (bit for bit), and the reverse.
    other = targets.copy()
    other[:, 2:] = -other[:, 2:] + 7.0
    new_other = losses.popart_update(old, jnp.asarray(other), task_ids, mask, step_size=0.5)
    for field in ("shift", "scale", "second_moment"):
        a, b = np.asarray(getattr(new, field)), np.asarray(getattr(new_other, field))
        assert a[0] == b[0] and a[1] != b[1], field
    # Task 1's statistics follow task 1's scale, task 0's its own; task 2's do not move.
    assert float(new.scale[1]) > 100.0 * float(new.scale[0])
    for field in ("shift", "scale", "second_moment"):
        assert getattr(new, field)[2] == getattr(old, field)[2], field

    params = {"kernel": jnp.asarray(rng.randn(5, 3), jnp.float32),
              "bias": jnp.asarray(rng.randn(3), jnp.float32)}
    features = jnp.asarray(rng.randn(2 * B, 5), jnp.float32)
    new_params = losses.popart_preserve_outputs(params, old, new)

    def unnormalised(params, state):  # in float64, so only the layer's rounding is measured
        x, w, b = (np.asarray(a, np.float64) for a in (features, params["kernel"],
                                                          params["bias"]))
        return np.asarray(state.scale, np.float64) * (x @ w + b) + np.asarray(state.shift)

    before, after = unnormalised(params, old), unnormalised(new_params, new)
    # Every task's output is preserved, to float32 round-off relative to its own scale
    # (~8 ulp; 10 were seen on an H200, whose float32 division rounds less tightly).
    ulps = 8 if jax.default_backend() == "cpu" else 32
    np.testing.assert_allclose((after - before) / np.abs(before).max(0), 0.0,
                               atol=ulps * np.finfo(np.float32).eps)
    # The absent task's output unit is left as it was (w sigma / sigma: to round-off).
    np.testing.assert_allclose(new_params["kernel"][:, 2], params["kernel"][:, 2], rtol=1e-6)
    np.testing.assert_allclose(new_params["bias"][2], params["bias"][2], rtol=1e-6)
