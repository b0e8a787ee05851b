"""The learner's losses on rlax: V-trace actor-critic (IMPALA), PopArt, PPO with GAE.

V-trace and the loss follow Espeholt et al. 2018, "IMPALA: Scalable Distributed Deep-RL with
Importance Weighted Actor-Learner Architectures", section 4 (https://arxiv.org/abs/1802.01561).
PopArt value normalisation follows Hessel et al. 2018, "Multi-task Deep Reinforcement Learning
with PopArt" (https://arxiv.org/abs/1809.04474), on rlax's PopArt. The value head has one
output per task ([..., N]); each environment's value is its own task's output
(`select_task_values`), so task i's output is trained only on task i's data, normalised with
task i's statistics, and rescaled by task i's POP step. PPO follows Schulman et al. 2017,
"Proximal Policy Optimization Algorithms" (https://arxiv.org/abs/1707.06347), with GAE
(https://arxiv.org/abs/1506.02438) computed as on-policy V-trace (`gae_targets`).

Inputs are time-major transitions built by the learner from T+1 environment steps: transition
s goes from step s to step s+1, so `rewards[s]` and `discounts[s]` (gamma times the
environment's discount) come from step s+1, and `values` [T+1, B] holds V(x_0)..V(x_T), the
last being the bootstrap.

Masking. `mask[s]` is False where the action at step s was taken on an episode's last step:
the environment ignored it and reset, so transition s crosses an episode boundary and is not
a transition at all. Such a transition contributes nothing to any loss term, and it must not
reach the V-trace recursion of earlier steps either: after a truncation (discount 1 on the
last step) the recursion from s-1 reads v_s - V(x_s). Setting rho_s = c_s = 0 (and r_s =
gamma_s = 0) there makes v_s = V(x_s) exactly, so step s-1 bootstraps from the value of the
truncated step, as it would in a trajectory that ended there. rlax's `sample_mask` is not
used for this: it carries the correction of step s+1 (the next episode) through step s.

Normalisation. Each term is a mean over the unmasked transitions of the batch, where IMPALA
(scalable_agent) sums over [T, B]. A mean keeps the loss scale, the gradient-norm clip and the
learning rate independent of the unroll length, the batch size and the share of masked
transitions; the sum scales them all with T x B.
"""

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import rlax

from gtrxl_jax.nn.config import check_positive_int

PopArtState = rlax.PopArtState


class VTraceTargets(NamedTuple):
    """V-trace targets of a batch of trajectories, all [T, B] and without gradient.

    Attributes:
      vs: v_s, the V-trace value targets (IMPALA eq. (1)); V(x_s) where the mask is False.
      pg_advantages: rho_s (r_s + gamma_s v_{s+1} - V(x_s)), the policy-gradient advantages
        with rho_s = min(rho_bar, pi/mu) (IMPALA section 4.2); 0 where the mask is False.
    """

    vs: jax.Array
    pg_advantages: jax.Array


def importance_ratios(
    target_logits: jax.Array,
    behaviour_logits: jax.Array,
    actions: jax.Array,
    mask: jax.Array,
) -> jax.Array:
    """Unclipped importance ratios pi(a_s|x_s) / mu(a_s|x_s) of the taken actions.

    Args:
      target_logits: [T, B, A] logits of the learner's policy pi at steps 0..T-1.
      behaviour_logits: [T, B, A] logits of the actors' policy mu at steps 0..T-1.
      actions: [T, B] int, the actions a_s taken by the actors.
      mask: [T, B] bool, False for transitions that cross an episode boundary.

    Returns:
      [T, B] float ratios, without gradient; 0 where the mask is False.
    """
    chex.assert_rank([target_logits, behaviour_logits, actions, mask], [3, 3, 2, 2])
    chex.assert_equal_shape([target_logits, behaviour_logits])
    chex.assert_equal_shape([actions, mask])
    chex.assert_equal_shape_prefix([target_logits, actions], 2)
    chex.assert_type([actions, mask], [int, bool])
    log_rhos = _log_prob(target_logits, actions) - _log_prob(behaviour_logits, actions)
    rhos = jnp.where(mask, jnp.exp(log_rhos), 0.0)
    return jax.lax.stop_gradient(rhos)


def vtrace_targets(
    values: jax.Array,
    rewards: jax.Array,
    discounts: jax.Array,
    rhos: jax.Array,
    mask: jax.Array,
    *,
    rho_bar: float = 1.0,
    c_bar: float = 1.0,
    lambda_: float = 1.0,
) -> VTraceTargets:
    """V-trace value targets and policy-gradient advantages (IMPALA section 4), on rlax.

    Args:
      values: [T+1, B] V(x_0)..V(x_T) in return units; values[T] is the bootstrap.
      rewards: [T, B] r_s, the reward received on entering step s+1.
      discounts: [T, B] gamma_s, gamma times the environment's discount of step s+1.
      rhos: [T, B] unclipped importance ratios pi/mu of the taken actions.
      mask: [T, B] bool, False for transitions that cross an episode boundary.
      rho_bar: truncation level of rho_s, in the TD errors and in the advantages.
      c_bar: truncation level of the trace coefficients c_s.
      lambda_: the trace discount lambda in c_s = lambda min(c_bar, pi/mu).

    Returns:
      VTraceTargets, all [T, B] and without gradient.
    """
    _check_vtrace_levels(rho_bar, c_bar, lambda_)
    chex.assert_rank([values, rewards, discounts, rhos, mask], 2)
    chex.assert_equal_shape([rewards, discounts, rhos, mask])
    chex.assert_shape(values, (rewards.shape[0] + 1, rewards.shape[1]))
    chex.assert_type([values, rewards, discounts, rhos, mask], [float, float, float, float, bool])
    values = jax.lax.stop_gradient(values)
    # A masked transition becomes a null one: rho_s = c_s = 0, so v_s = V(x_s).
    rhos = jnp.where(mask, rhos, 0.0)
    rewards = jnp.where(mask, rewards, 0.0)
    discounts = jnp.where(mask, discounts, 0.0)
    # rlax fixes c_s = lambda_s min(1, rho_s); this per-step lambda_s turns it into the
    # paper's c_s = lambda min(c_bar, rho_s) (and 0 where rho_s = 0).
    lambdas = lambda_ * jnp.minimum(c_bar, rhos) / jnp.maximum(
        jnp.minimum(1.0, rhos), jnp.finfo(rhos.dtype).tiny)
    vtrace = jax.vmap(rlax.vtrace, in_axes=(1, 1, 1, 1, 1, 1, None), out_axes=1)
    errors = vtrace(values[:-1], values[1:], rewards, discounts, rhos, lambdas, rho_bar)
    vs = values[:-1] + errors
    # IMPALA section 4.2: the advantage bootstraps from the next V-trace target v_{s+1}.
    vs_tp1 = jnp.concatenate([vs[1:], values[-1:]], axis=0)
    pg_advantages = jnp.minimum(rho_bar, rhos) * (rewards + discounts * vs_tp1 - values[:-1])
    return jax.lax.stop_gradient(VTraceTargets(vs=vs, pg_advantages=pg_advantages))


def impala_loss(
    target_logits: jax.Array,
    values: jax.Array,
    actions: jax.Array,
    behaviour_logits: jax.Array,
    rewards: jax.Array,
    discounts: jax.Array,
    mask: jax.Array,
    *,
    rho_bar: float = 1.0,
    c_bar: float = 1.0,
    lambda_: float = 1.0,
    baseline_cost: float = 0.5,
    entropy_cost: float = 0.01,
    popart: PopArtState | None = None,
    task_ids: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Compute the IMPALA loss: V-trace policy gradient, value loss and entropy bonus.

    loss = pg_loss + baseline_cost * baseline_loss - entropy_cost * entropy, with
      pg_loss = -mean[rho_s (r_s + gamma_s v_{s+1} - V(x_s)) log pi(a_s|x_s)],
      baseline_loss = mean[0.5 (v_s - V(x_s))^2],
      entropy = mean[-sum_a pi(a|x_s) log pi(a|x_s)],
    means over the unmasked transitions (see the module docstring), the targets v_s and the
    advantages held constant (IMPALA section 4.2). It is `importance_ratios`, then
    `vtrace_targets`, then `vtrace_actor_critic_loss`; a learner that needs the targets
    (PopArt's statistics) calls the three itself.

    With PopArt (Hessel et al. 2018, section 3), `values` are the normalised outputs n(x) of
    each environment's task: V(x) = sigma n(x) + mu with the statistics of `task_ids`. V-trace
    runs on V; the value loss regresses n(x_s) onto (v_s - mu) / sigma, and the advantages
    are divided by sigma, so every task's updates have a similar scale.

    Args:
      target_logits: [T, B, A] logits of the learner's policy pi at steps 0..T-1.
      values: [T+1, B] the learner's values at steps 0..T (values[T] is the bootstrap), each
        environment's own task's output (`select_task_values`); normalised values n(x) when
        `popart` is given.
      actions: [T, B] int, the actions a_s taken by the actors.
      behaviour_logits: [T, B, A] logits of the actors' policy mu at steps 0..T-1.
      rewards: [T, B] r_s, the reward received on entering step s+1.
      discounts: [T, B] gamma_s, gamma times the environment's discount of step s+1.
      mask: [T, B] bool, False for transitions that cross an episode boundary.
      rho_bar: truncation level of the importance ratios rho_s (IMPALA default 1).
      c_bar: truncation level of the trace coefficients c_s (IMPALA default 1).
      lambda_: the trace discount lambda in c_s = lambda min(c_bar, pi/mu) (default 1).
      baseline_cost: weight of the value loss (IMPALA default 0.5).
      entropy_cost: weight of the entropy bonus (default 0.01).
      popart: PopArt statistics [N] per task (from `popart_init`), or None for no PopArt.
      task_ids: [B] int in [0, N), each environment's task; required with `popart`.

    Returns:
      loss: scalar.
      metrics: dict of scalars (see `vtrace_actor_critic_loss`).
    """
    chex.assert_rank([target_logits, values, actions], [3, 2, 2])
    chex.assert_equal_shape_prefix([target_logits, actions], 2)
    rhos = importance_ratios(target_logits, behaviour_logits, actions, mask)
    unnormalised_values = to_return_units(values, popart, task_ids)
    targets = vtrace_targets(unnormalised_values, rewards, discounts, rhos, mask,
                             rho_bar=rho_bar, c_bar=c_bar, lambda_=lambda_)
    return vtrace_actor_critic_loss(
        target_logits, values, actions, rhos, targets, mask, rho_bar=rho_bar,
        baseline_cost=baseline_cost, entropy_cost=entropy_cost, popart=popart,
        task_ids=task_ids, unnormalised_values=unnormalised_values)


def to_return_units(
    values: jax.Array, popart: PopArtState | None, task_ids: jax.Array | None
) -> jax.Array:
    """Values [T+1, B] in return units: as they are without PopArt, else unnormalised."""
    if popart is None:
        return values
    _check_task_ids(task_ids, values.shape[1])
    return popart_unnormalize(popart, values, task_ids)


def popart_targets(
    targets: VTraceTargets, popart: PopArtState | None, task_ids: jax.Array | None
) -> VTraceTargets:
    """Targets in return units [T, B] as a loss on PopArt's normalised values takes them.

    The value targets are normalised, (v_s - mu) / sigma, and the advantages divided by
    sigma, with each environment's task's statistics (Hessel et al. 2018, section 3);
    without `popart` the targets are returned as they are.
    """
    if popart is None:
        return targets
    return VTraceTargets(vs=popart_normalize(popart, targets.vs, task_ids),
                         pg_advantages=targets.pg_advantages / popart.scale[task_ids])


def vtrace_actor_critic_loss(
    target_logits: jax.Array,
    values: jax.Array,
    actions: jax.Array,
    rhos: jax.Array,
    targets: VTraceTargets,
    mask: jax.Array,
    *,
    rho_bar: float = 1.0,
    baseline_cost: float = 0.5,
    entropy_cost: float = 0.01,
    popart: PopArtState | None = None,
    task_ids: jax.Array | None = None,
    unnormalised_values: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The IMPALA loss given the importance ratios and V-trace targets (see `impala_loss`).

    Args:
      target_logits: [T, B, A] logits of the learner's policy pi at steps 0..T-1.
      values: [T+1, B] the learner's values (normalised with PopArt), as in `impala_loss`.
      actions: [T, B] int, the actions a_s taken by the actors.
      rhos: [T, B] the unclipped importance ratios (`importance_ratios`).
      targets: the V-trace targets in return units (`vtrace_targets`).
      mask: [T, B] bool, False for transitions that cross an episode boundary.
      rho_bar: the truncation level the targets were computed with (for the metrics).
      baseline_cost: weight of the value loss.
      entropy_cost: weight of the entropy bonus.
      popart: PopArt statistics [N] per task, or None.
      task_ids: [B] int in [0, N), each environment's task; required with `popart`.
      unnormalised_values: `to_return_units(values, popart, task_ids)` if already computed.

    Returns:
      loss: scalar.
      metrics: dict of scalars: loss, pg_loss, baseline_loss, entropy, rho_mean,
        rho_clipped_fraction (share of rho_s above rho_bar), value_mean and vs_mean (in
        return units), pg_advantage_mean (as used, so normalised with PopArt) and
        valid_fraction (share of unmasked transitions).
    """
    chex.assert_rank([target_logits, values, actions], [3, 2, 2])
    if unnormalised_values is None:
        unnormalised_values = to_return_units(values, popart, task_ids)
    value_targets, pg_advantages = popart_targets(targets, popart, task_ids)

    pg_loss = _masked_mean(-pg_advantages * _log_prob(target_logits, actions), mask)
    loss, baseline_loss, entropy = _actor_critic_total(
        pg_loss, target_logits, values, value_targets, mask, baseline_cost, entropy_cost)

    metrics = {
        "loss": loss,
        "pg_loss": pg_loss,
        "baseline_loss": baseline_loss,
        "entropy": entropy,
        "rho_mean": _masked_mean(rhos, mask),
        "rho_clipped_fraction": _masked_mean((rhos > rho_bar).astype(rhos.dtype), mask),
        "value_mean": _masked_mean(jax.lax.stop_gradient(unnormalised_values[:-1]), mask),
        "vs_mean": _masked_mean(targets.vs, mask),
        "pg_advantage_mean": _masked_mean(pg_advantages, mask),
        "valid_fraction": jnp.mean(mask.astype(rhos.dtype)),
    }
    return loss, metrics


def gae_targets(
    values: jax.Array,
    rewards: jax.Array,
    discounts: jax.Array,
    mask: jax.Array,
    *,
    lambda_: float = 0.95,
) -> VTraceTargets:
    """GAE(lambda) advantages and lambda-returns (Schulman et al. 2016, arXiv:1506.02438).

    On-policy V-trace with every ratio 1 and trace coefficient c_s = lambda is exactly
    GAE: v_s - V(x_s) = sum_k (gamma lambda)^k delta_{s+k}. So this is `vtrace_targets`
    with rhos = 1 (masked transitions stay null transitions: advantage 0, target V(x_s)).

    Args:
      values: [T+1, B] V(x_0)..V(x_T); values[T] is the bootstrap.
      rewards: [T, B] r_s.
      discounts: [T, B] gamma_s.
      mask: [T, B] bool, False for transitions that cross an episode boundary.
      lambda_: GAE's lambda.

    Returns:
      VTraceTargets: vs = the lambda-returns (value targets), pg_advantages = the GAE
      advantages, all [T, B] and without gradient.
    """
    rhos = mask.astype(values.dtype)
    targets = vtrace_targets(values, rewards, discounts, rhos, mask, lambda_=lambda_)
    return VTraceTargets(vs=targets.vs, pg_advantages=jnp.where(mask, targets.vs - values[:-1],
                                                                 0.0))


def ppo_loss(
    target_logits: jax.Array,
    values: jax.Array,
    actions: jax.Array,
    behaviour_logits: jax.Array,
    targets: VTraceTargets,
    mask: jax.Array,
    *,
    clip: float = 0.2,
    baseline_cost: float = 0.5,
    entropy_cost: float = 0.01,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """PPO's clipped surrogate with a value loss and an entropy bonus (Schulman et al. 2017).

    loss = -mean[min(r_s A_s, clip(r_s, 1 - eps, 1 + eps) A_s)]
           + baseline_cost * mean[0.5 (G_s - V(x_s))^2] - entropy_cost * entropy,
    r_s = pi(a_s|x_s) / mu(a_s|x_s) against the acting policy mu, A_s the advantages
    (`targets.pg_advantages`, e.g. `gae_targets` normalised over the batch, held constant)
    and G_s the value targets (`targets.vs`), means over the unmasked transitions.

    Args:
      target_logits: [T, B, A] logits of the policy being updated, pi.
      values: [T+1, B] its values (values[T] unused).
      actions: [T, B] int, the actions taken.
      behaviour_logits: [T, B, A] logits of the acting policy mu.
      targets: advantages and value targets [T, B] from the values before the update.
      mask: [T, B] bool, False for transitions that cross an episode boundary.
      clip: eps.
      baseline_cost: weight of the value loss.
      entropy_cost: weight of the entropy bonus.

    Returns:
      loss: scalar.
      metrics: loss, pg_loss, baseline_loss, entropy, ratio_mean, clipped_fraction (share
        of ratios outside [1 - eps, 1 + eps]), approx_kl (mean of (r - 1) - log r),
        pg_advantage_mean, valid_fraction.
    """
    chex.assert_rank([target_logits, values, actions], [3, 2, 2])
    chex.assert_equal_shape([target_logits, behaviour_logits])
    log_ratio = _log_prob(target_logits, actions) - jax.lax.stop_gradient(
        _log_prob(behaviour_logits, actions))
    ratio = jnp.exp(log_ratio)
    advantages = jax.lax.stop_gradient(targets.pg_advantages)
    surrogate = jnp.minimum(ratio * advantages,
                            jnp.clip(ratio, 1.0 - clip, 1.0 + clip) * advantages)
    pg_loss = -_masked_mean(surrogate, mask)
    loss, baseline_loss, entropy = _actor_critic_total(
        pg_loss, target_logits, values, targets.vs, mask, baseline_cost, entropy_cost)
    metrics = {
        "loss": loss,
        "pg_loss": pg_loss,
        "baseline_loss": baseline_loss,
        "entropy": entropy,
        "ratio_mean": _masked_mean(ratio, mask),
        "clipped_fraction": _masked_mean(
            (jnp.abs(ratio - 1.0) > clip).astype(ratio.dtype), mask),
        "approx_kl": _masked_mean((ratio - 1.0) - log_ratio, mask),
        "pg_advantage_mean": _masked_mean(advantages, mask),
        "valid_fraction": jnp.mean(mask.astype(ratio.dtype)),
    }
    return loss, metrics


def reconstruction_loss(reconstruction: jax.Array, observation: jax.Array,
                        mask: jax.Array) -> jax.Array:
    """An auxiliary loss: the mean squared error of decoded observations.

    loss = mean over the unmasked steps of the mean over features of
    (decoded - observed)^2: the steps the other loss terms average over, so that the
    learner's weighting of devices by their valid transitions keeps an update independent
    of how the batch is split.

    Args:
      reconstruction: [T, B, O] float, observations decoded from the core's outputs.
      observation: [T, B, O] the observations (cast to float32).
      mask: [T, B] bool, the steps that count.

    Returns:
      The loss, a scalar.
    """
    chex.assert_rank([reconstruction, mask], [3, 2])
    chex.assert_equal_shape([reconstruction, observation])
    error = jnp.mean(jnp.square(reconstruction - observation.astype(jnp.float32)), axis=-1)
    return _masked_mean(error, mask)


def select_task_values(values: jax.Array, task_ids: jax.Array) -> jax.Array:
    """Each environment's value from the output of its own task (Hessel et al. 2018, sec. 3).

    Args:
      values: [..., B, N] the value head's outputs, one per task, e.g. [T+1, B, N].
      task_ids: [B] int in [0, N), the task of each environment.

    Returns:
      [..., B] values[..., b, task_ids[b]]; the gradient reaches only the selected outputs.
      An id outside [0, N) selects NaN (ids cannot be checked inside jit), so a wrong id
      makes the loss non-finite instead of training another task's output.
    """
    chex.assert_rank(task_ids, 1)
    chex.assert_type(task_ids, int)
    if values.ndim < 2 or values.shape[-2] != task_ids.shape[0]:
        raise ValueError(
            f"select_task_values takes values [..., B, N] and task_ids [B], got values of shape "
            f"{values.shape} and task_ids of shape {task_ids.shape}.")
    # A negative id would wrap to a task from the end; send it out of range instead.
    in_range_or_past = jnp.where(task_ids < 0, values.shape[-1], task_ids)
    indices = jnp.broadcast_to(in_range_or_past[:, None], (*values.shape[:-1], 1))
    return jnp.take_along_axis(values, indices, axis=-1, mode="fill", fill_value=jnp.nan)[..., 0]


def popart_init(num_tasks: int) -> PopArtState:
    """Make the initial PopArt statistics: shift mu = 0, scale sigma = 1 for each of N tasks.

    The statistics are state: the learner carries them (and checkpoints them) beside the
    parameters, identical on every device. Per learner update:
      1. the gradient step uses them as they are (`impala_loss(..., popart=state,
         task_ids=task_ids)`, `values` being each environment's own task's normalised
         output, `select_task_values(head_values, task_ids)`);
      2. `popart_update` moves them toward the batch's targets in return units,
         `vtrace_targets(popart_unnormalize(state, values, task_ids), rewards, discounts,
         importance_ratios(...), mask, <the loss's rho_bar, c_bar, lambda_>).vs`;
      3. `popart_preserve_outputs` rescales the updated value layer so V(x) is unchanged.

    Args:
      num_tasks: N, the number of tasks (1 for single-task PopArt).

    Returns:
      PopArtState with shift, scale and second_moment, each [N] float32.
    """
    check_positive_int("popart_init: num_tasks", num_tasks)
    return PopArtState(shift=jnp.zeros([num_tasks]), scale=jnp.ones([num_tasks]),
                       second_moment=jnp.ones([num_tasks]))


def popart_normalize(state: PopArtState, values: jax.Array, task_ids: jax.Array) -> jax.Array:
    """Normalise values in return units: (values - mu) / sigma, per environment's task.

    Args:
      state: PopArt statistics, each [N].
      values: [..., B] values in return units, e.g. [T, B] targets.
      task_ids: [B] int in [0, N), the task of each environment.

    Returns:
      [..., B] normalised values.
    """
    _check_task_ids(task_ids, values.shape[-1])
    return rlax.normalize(state, values, jnp.broadcast_to(task_ids, values.shape))


def popart_unnormalize(state: PopArtState, values: jax.Array, task_ids: jax.Array) -> jax.Array:
    """Map normalised values back to return units: sigma n + mu, per environment's task.

    Args:
      state: PopArt statistics, each [N].
      values: [..., B] normalised values, e.g. the value head's [T+1, B] outputs.
      task_ids: [B] int in [0, N), the task of each environment.

    Returns:
      [..., B] values in return units.
    """
    _check_task_ids(task_ids, values.shape[-1])
    return rlax.unnormalize(state, values, jnp.broadcast_to(task_ids, values.shape))


def popart_update(
    state: PopArtState,
    targets: jax.Array,
    task_ids: jax.Array,
    mask: jax.Array,
    *,
    step_size: float = 3e-4,
    scale_lb: float = 1e-4,
    scale_ub: float = 1e6,
    axis_name: Any = None,
) -> PopArtState:
    """Move each task's statistics one step toward the first two moments of its targets.

    For each task i present in the batch (PopArt's ART step, with beta = step_size):
      mu_i <- mu_i + beta (mean_i[v_s] - mu_i),  nu_i <- nu_i + beta (mean_i[v_s^2] - nu_i),
      sigma_i = sqrt(clip(nu_i - mu_i^2, scale_lb^2, scale_ub^2)),
    means over the task's unmasked targets. rlax.art sums one beta-step per target, so its
    step would grow with T x B; each target is weighted by 1 / (its task's count) here, which
    makes beta a per-update rate whatever the batch size. Tasks absent from the batch keep
    their statistics. Follow with `popart_preserve_outputs` on the value layer.

    Args:
      state: PopArt statistics, each [N].
      targets: [T, B] value targets v_s in return units (`vtrace_targets(...).vs`).
      task_ids: [B] int in [0, N), the task of each environment.
      mask: [T, B] bool, False for transitions that cross an episode boundary (ignored).
      step_size: beta, the rate of the moving moments.
      scale_lb: lower bound of sigma.
      scale_ub: upper bound of sigma.
      axis_name: pmap/vmap axis name(s) over which to pool the batch (devices), or None.

    Returns:
      The new PopArtState, without gradient.
    """
    chex.assert_rank([targets, task_ids, mask], [2, 1, 2])
    chex.assert_equal_shape([targets, mask])
    _check_task_ids(task_ids, targets.shape[1])
    indices = jnp.broadcast_to(task_ids, targets.shape)
    counts = jnp.zeros_like(state.shift).at[indices].add(mask.astype(state.shift.dtype))
    if axis_name is not None:
        counts = jax.lax.psum(counts, axis_name)
    step_sizes = jnp.where(mask, step_size / jnp.maximum(counts[indices], 1.0), 0.0)
    targets = jnp.where(mask, jax.lax.stop_gradient(targets), 0.0)
    return rlax.art(state, targets, indices, step_sizes, scale_lb, scale_ub, axis_name)


def popart_preserve_outputs(
    params: dict[str, jax.Array], old_state: PopArtState, new_state: PopArtState
) -> dict[str, jax.Array]:
    """Rescale the value layer so that its unnormalised outputs are unchanged (PopArt's POP).

    Args:
      params: a flax Dense layer's parameters, {"kernel": [D, N], "bias": [N]}, whose N
        outputs are the normalised values of the N tasks.
      old_state: the statistics the layer was trained under.
      new_state: the statistics from `popart_update`.

    Returns:
      {"kernel": [D, N], "bias": [N]} such that sigma' n'(x) + mu' = sigma n(x) + mu.
    """
    chex.assert_rank([params["kernel"], params["bias"]], [2, 1])
    chex.assert_equal_shape([params["bias"], old_state.shift, new_state.shift])
    new = rlax.pop({"w": params["kernel"], "b": params["bias"]}, old_state, new_state)
    return {"kernel": new["w"], "bias": new["b"]}


def _actor_critic_total(
    pg_loss: jax.Array, target_logits: jax.Array, values: jax.Array, value_targets: jax.Array,
    mask: jax.Array, baseline_cost: float, entropy_cost: float,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """pg_loss + baseline_cost * baseline_loss - entropy_cost * entropy, and the two terms.

    baseline_loss = mean[0.5 (v_s - V(x_s))^2] with the targets v_s [T, B] held constant;
    entropy = mean[-sum_a pi log pi] of `target_logits` [T, B, A]; means over `mask`.
    """
    baseline_loss = _masked_mean(
        0.5 * jnp.square(jax.lax.stop_gradient(value_targets) - values[:-1]), mask)
    log_pi = jax.nn.log_softmax(target_logits)
    entropy = _masked_mean(-jnp.sum(jnp.exp(log_pi) * log_pi, axis=-1), mask)
    return pg_loss + baseline_cost * baseline_loss - entropy_cost * entropy, baseline_loss, entropy


def _log_prob(logits: jax.Array, actions: jax.Array) -> jax.Array:
    """Return log pi(a) for [T, B, A] logits and [T, B] actions."""
    log_probs = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(log_probs, actions[..., None], axis=-1)[..., 0]


def _masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    """Average x over the True entries of mask (0 when there are none)."""
    total = jnp.sum(jnp.where(mask, x, 0.0))
    return total / jnp.maximum(jnp.sum(mask), 1).astype(total.dtype)


def _check_vtrace_levels(rho_bar: float, c_bar: float, lambda_: float) -> None:
    if not rho_bar > 0:
        raise ValueError(f"rho_bar must be > 0, got {rho_bar}.")
    if not c_bar > 0:
        raise ValueError(f"c_bar must be > 0, got {c_bar}.")
    if not 0 <= lambda_ <= 1:
        raise ValueError(f"lambda_ must be in [0, 1], got {lambda_}.")


def _check_task_ids(task_ids: jax.Array | None, batch_size: int) -> None:
    if task_ids is None:
        raise ValueError("PopArt needs task_ids [B], the task of each environment; got None.")
    chex.assert_shape(task_ids, (batch_size,))
    chex.assert_type(task_ids, int)
