"""The learner's update as a pure function of state and batch: loss, PopArt, checks, optimiser.

    learning = Learning(agent, loss_config, optimizer, segment_len=8)
    state = learning.init_state(key)
    state, metrics = learning.update(state, batch)                # on one device
    state, metrics = learning.update(state, batch, axis_name="d")  # per device, inside a
                                                                   # pmap / shard_map over "d"

With an `axis_name`, gradients, PopArt statistics and metrics are averaged over that axis, so
every device ends with the same state; where the devices sit is `placement`'s business.

An update whose loss, gradients, resulting parameters or PopArt statistics are not finite
changes nothing but the counters: the parameters, optimiser state and PopArt statistics stay
as they were, and `nonfinite_updates` counts it. The caller decides when too many in a row
end the run (`NonFiniteError`); `nonfinite_gradients` then says which parameters' gradients
were at fault.
"""

import dataclasses
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from gtrxl_jax import losses
from gtrxl_jax.agent import Agent
from gtrxl_jax.config import LossConfig
from gtrxl_jax.train.types import Trajectory, batch_major, rebuild, time_major


class NonFiniteError(FloatingPointError):
    """Too many consecutive updates had a non-finite loss, gradients or updated state."""


@struct.dataclass
class LearnerState:
    """Everything the learner carries from one update to the next (and checkpoints).

    Attributes:
      params: the agent's parameters.
      opt_state: the optimiser's state.
      popart: PopArt statistics per task (losses.PopArtState, each [N]) or None.
      update: int32 [], updates taken so far, skipped ones included: the parameter version.
      nonfinite_updates: int32 [], updates skipped because the loss, the gradients or the
        updated parameters or PopArt statistics were not finite.
      rng: uint32 [2], the run's PRNG key; advanced every update, it seeds the actors' keys
        and environments when a run (re)starts.
    """

    params: Any
    opt_state: Any
    popart: Any
    update: jax.Array
    nonfinite_updates: jax.Array
    rng: jax.Array


@dataclasses.dataclass(frozen=True)
class Learning:
    """The learner's update (V-trace or PPO) for one agent, optimiser and loss configuration.

    Attributes:
      agent: the agent.
      loss_config: the loss settings (V-trace or PPO, discount, truncation levels or
        clipping, costs, popart).
      optimizer: the optax optimiser.
      segment_len: the core's segment length (None: one segment of the whole trajectory);
        the unroll scans the trajectory's full segments and runs the bootstrap step apart.
      num_tasks: N, the number of tasks (batches' task ids are in [0, N)); the agent needs
        one value output per task, and PopArt keeps statistics per task.
      task_names: the N tasks' names in task-id order, which name their PopArt metrics as
        the episode metrics name them (None: by task id).
    """

    agent: Agent
    loss_config: LossConfig
    optimizer: optax.GradientTransformation
    segment_len: int | None = None
    num_tasks: int = 1
    task_names: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.task_names is not None and len(self.task_names) != self.num_tasks:
            raise ValueError(f"task_names {self.task_names} must name each of the "
                             f"num_tasks={self.num_tasks} tasks once.")
        if self.agent.num_tasks != self.num_tasks:
            raise ValueError(
                f"The learner trains on {self.num_tasks} task(s), but the agent has "
                f"{self.agent.num_tasks} value output(s); build the Agent with "
                f"num_tasks={self.num_tasks}, one value output per task.")

    def init_state(self, key: jax.Array) -> LearnerState:
        """Fresh parameters, optimiser state and PopArt statistics."""
        params_key, rng = jax.random.split(key)
        params = self.agent.init(params_key)
        popart = losses.popart_init(self.num_tasks) if self.loss_config.popart else None
        return LearnerState(
            params=params,
            opt_state=self.optimizer.init(params),
            popart=popart,
            update=jnp.zeros([], jnp.int32),
            nonfinite_updates=jnp.zeros([], jnp.int32),
            rng=rng,
        )

    def loss(self, params: Any, popart: Any, batch: Trajectory):
        """The V-trace (IMPALA) loss of a batch [T+1, B].

        Its aux is (metrics, the V-trace targets in return units). The targets come back so
        that PopArt's statistics move toward exactly the targets the gradient step used.
        """
        cfg = self.loss_config
        outputs, _ = self.agent.unroll(params, batch.inputs, batch.core_state,
                                       segment_len=self.segment_len)
        transition = transitions(batch, cfg.discount)
        task_ids = batch.task_id if popart is not None else None
        logits = outputs.logits[:-1]
        values = losses.select_task_values(outputs.values, batch.task_id)
        rhos = losses.importance_ratios(logits, batch.behaviour_logits[:-1], batch.actions[:-1],
                                        transition["mask"])
        unnormalised_values = losses.to_return_units(values, popart, task_ids)
        targets = losses.vtrace_targets(
            unnormalised_values, transition["rewards"], transition["discounts"], rhos,
            transition["mask"], rho_bar=cfg.rho_bar, c_bar=cfg.c_bar, lambda_=cfg.lambda_)
        loss, metrics = losses.vtrace_actor_critic_loss(
            logits, values, batch.actions[:-1], rhos, targets, transition["mask"],
            rho_bar=cfg.rho_bar, baseline_cost=cfg.baseline_cost,
            entropy_cost=cfg.entropy_cost, popart=popart, task_ids=task_ids,
            unnormalised_values=unnormalised_values)
        loss, metrics = self._with_reconstruction(loss, metrics, outputs, batch,
                                                  transition["mask"])
        return loss, (metrics, targets.vs)

    def _with_reconstruction(self, loss: jax.Array, metrics: dict, outputs: Any,
                             batch: Trajectory, mask: jax.Array) -> tuple[jax.Array, dict]:
        """Add `reconstruction_cost` x the reconstruction loss of the T transitions' steps.

        Over `mask` [T, B], the steps the other terms average over (the bootstrap step and
        steps whose action was ignored left out); the term is also a metric. Without a
        decoder the loss and metrics are returned as they are.
        """
        if outputs.reconstruction is None:
            return loss, metrics
        term = losses.reconstruction_loss(outputs.reconstruction[:-1],
                                          batch.inputs.observation[:-1], mask)
        loss = loss + self.loss_config.reconstruction_cost * term
        return loss, {**metrics, "loss": loss, "reconstruction_loss": term}

    def update(
        self, state: LearnerState, batch: Trajectory, axis_name: str | None = None
    ) -> tuple[LearnerState, dict]:
        """One learner update on a batch of trajectories [T+1, B].

        V-trace takes one gradient step on the batch; PPO `ppo_epochs` passes of
        `ppo_minibatches` steps, each on a minibatch of the batch's environments.

        Args:
          state: the learner state.
          batch: the trajectories (this device's part of the batch, inside a map over
            `axis_name`).
          axis_name: the mapped axis to average gradients, PopArt statistics and metrics
            over (None: this batch is the whole batch).

        Returns:
          The new state and metrics: the loss's metrics, grad_norm (before clipping; PPO:
          the mean over its steps), update_norm (the parameters' change over the update, 0
          where it was skipped) and param_norm (after it), nonfinite_loss, nonfinite_grads
          and nonfinite_params (1.0 where a loss, the gradients or the updated parameters
          (with PopArt, and its statistics) were not finite, which skips the whole update;
          PPO blames the loss or the gradients of the first of its steps that failed; the
          parameters are checked so that no checkpoint ever holds non-finite ones),
          policy_lag_mean / policy_lag_max (learner version minus acting version); with
          PopArt, each task's statistics after the update: popart_mu and
          popart_sigma (the returns' mean and spread; with several tasks popart_mu/<task>
          and popart_sigma/<task>, by `task_names`, else by task id).
        """
        chex.assert_rank(batch.actions, 2)
        steps = self._ppo_steps if self.loss_config.name == "ppo" else self._vtrace_step
        stepped = steps(state, batch, axis_name)
        # PopArt's statistics too: an infinite second moment (targets beyond ~1e19) leaves
        # the rescaled parameters finite, but turns the next update's scale into NaN.
        params_finite = all_finite((stepped.params, stepped.popart))
        finite = stepped.loss_finite & stepped.grads_finite & params_finite
        # One select of whole trees: a jnp.where per leaf costs XLA:CPU a kernel per leaf.
        params, opt_state, popart = jax.lax.cond(
            finite, lambda: (stepped.params, stepped.opt_state, stepped.popart),
            lambda: (state.params, state.opt_state, state.popart))
        lag = state.update.astype(jnp.float32) - batch.param_version.astype(jnp.float32)
        metrics = dict(stepped.metrics)
        metrics.update(
            grad_norm=stepped.grad_norm,
            update_norm=optax.global_norm(jax.tree.map(jnp.subtract, params, state.params)),
            param_norm=optax.global_norm(params),
            nonfinite_loss=(~stepped.loss_finite).astype(jnp.float32),
            nonfinite_grads=(~stepped.grads_finite).astype(jnp.float32),
            nonfinite_params=(~params_finite).astype(jnp.float32),
            policy_lag_mean=_pmean(lag.mean(), axis_name),
            policy_lag_max=lag.max() if axis_name is None else jax.lax.pmax(lag.max(), axis_name),
        )
        if popart is not None:
            metrics.update(_popart_metrics(popart, self.task_names))
        new_state = LearnerState(
            params=params,
            opt_state=opt_state,
            popart=popart,
            update=state.update + 1,
            nonfinite_updates=state.nonfinite_updates + (~finite).astype(jnp.int32),
            rng=jax.random.split(state.rng)[0],
        )
        return new_state, metrics

    def _vtrace_step(self, state: LearnerState, batch: Trajectory,
                     axis_name: str | None) -> "Stepped":
        """V-trace: one gradient step on the whole batch, then PopArt's."""
        weight = device_weight(batch, axis_name)

        def weighted_loss(params):
            loss, aux = self.loss(params, state.popart, batch)
            return loss * weight, aux

        grads, (metrics, value_targets) = jax.grad(weighted_loss, has_aux=True)(state.params)
        grads = _pmean(grads, axis_name)
        metrics = _weighted_pmean(metrics, weight, axis_name)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        params, popart = self._popart_step(params, state.popart, value_targets, batch,
                                           axis_name)
        return Stepped(params=params, opt_state=opt_state, popart=popart, metrics=metrics,
                       grad_norm=optax.global_norm(grads),
                       loss_finite=jnp.isfinite(metrics["loss"]),
                       grads_finite=all_finite(grads))

    def _ppo_steps(self, state: LearnerState, batch: Trajectory,
                   axis_name: str | None) -> "Stepped":
        """PPO: `ppo_epochs` passes of `ppo_minibatches` minibatch steps, then PopArt's.

        GAE targets come from the parameters before the update (see `_ppo_targets`); each
        pass shuffles the environments into minibatches. With PopArt its statistics move
        once per update, after the last step, toward the GAE value targets, as after
        V-trace's one step.
        """
        cfg = self.loss_config
        B, M = batch.batch_size, cfg.ppo_minibatches
        if B % M:
            raise ValueError(
                f"loss.ppo_minibatches={M} must divide the {B} environments of each learner "
                "device's batch; choose it (or learner.batch_size) to fit.")
        targets, value_targets = self._ppo_targets(state.params, state.popart, batch, axis_name)

        def minibatch_step(carry, rows):
            params, opt_state = carry
            minibatch = _take_rows(batch, rows)
            mb_targets = jax.tree.map(lambda x: jnp.take(x, rows, axis=1), targets)
            weight = device_weight(minibatch, axis_name)

            def weighted_loss(p):
                loss, metrics = self._ppo_loss(p, minibatch, mb_targets)
                return loss * weight, metrics

            grads, metrics = jax.grad(weighted_loss, has_aux=True)(params)
            grads = _pmean(grads, axis_name)
            updates, opt_state = self.optimizer.update(grads, opt_state, params)
            metrics = _weighted_pmean(metrics, weight, axis_name)
            metrics.update(grad_norm=optax.global_norm(grads),
                           grads_finite=all_finite(grads).astype(jnp.float32))
            return (optax.apply_updates(params, updates), opt_state), metrics

        keys = jax.random.split(jax.random.fold_in(state.rng, 1), cfg.ppo_epochs)
        rows = jax.vmap(lambda key: jax.random.permutation(key, B).reshape(M, B // M))(keys)
        (params, opt_state), per_step = jax.lax.scan(
            minibatch_step, (state.params, state.opt_state), rows.reshape(-1, B // M))
        metrics = {name: values.mean() for name, values in per_step.items()}
        grad_norm = metrics.pop("grad_norm")
        del metrics["grads_finite"]
        # Blame the first step that failed: a step's non-finite gradients make every later
        # step's parameters, and so its loss, non-finite too.
        steps = jnp.arange(per_step["loss"].shape[0])
        first_bad_loss = jnp.min(jnp.where(jnp.isfinite(per_step["loss"]), steps.size, steps))
        first_bad_grads = jnp.min(jnp.where(per_step["grads_finite"] == 1.0, steps.size, steps))
        loss_finite = (first_bad_loss == steps.size) | (first_bad_loss > first_bad_grads)
        params, popart = self._popart_step(params, state.popart, value_targets, batch,
                                           axis_name)
        return Stepped(params=params, opt_state=opt_state, popart=popart, metrics=metrics,
                       grad_norm=grad_norm, loss_finite=loss_finite,
                       grads_finite=first_bad_grads == steps.size)

    def _ppo_targets(self, params: Any, popart: Any, batch: Trajectory,
                     axis_name: str | None) -> tuple[losses.VTraceTargets, jax.Array]:
        """GAE targets of a batch [T+1, B] under `params`, as PPO's loss takes them.

        With PopArt, GAE runs on the values in return units and the loss takes normalised
        value targets and advantages divided by each task's sigma (`losses.popart_targets`).
        Then, with or without PopArt, the advantages are standardised over the whole batch
        (over `axis_name` too) unless `ppo_normalise_advantages` is false; only with it false
        do PopArt's advantages keep the returns' scale.

        Returns:
          The loss's targets [T, B] and the value targets in return units [T, B] (PopArt's
          statistics move toward them).
        """
        cfg = self.loss_config
        outputs, _ = self.agent.unroll(params, batch.inputs, batch.core_state,
                                       segment_len=self.segment_len)
        transition = transitions(batch, cfg.discount)
        task_ids = batch.task_id if popart is not None else None
        values = losses.to_return_units(losses.select_task_values(
            jax.lax.stop_gradient(outputs.values), batch.task_id), popart, task_ids)
        targets = losses.gae_targets(values, transition["rewards"], transition["discounts"],
                                     transition["mask"], lambda_=cfg.gae_lambda)
        loss_targets = losses.popart_targets(targets, popart, task_ids)
        if cfg.ppo_normalise_advantages:
            loss_targets = loss_targets._replace(pg_advantages=_normalise(
                loss_targets.pg_advantages, transition["mask"], axis_name))
        return loss_targets, targets.vs

    def _ppo_loss(self, params: Any, batch: Trajectory, targets: losses.VTraceTargets):
        """PPO's loss of a minibatch [T+1, B'] under `params` (see `losses.ppo_loss`)."""
        cfg = self.loss_config
        outputs, _ = self.agent.unroll(params, batch.inputs, batch.core_state,
                                       segment_len=self.segment_len)
        values = losses.select_task_values(outputs.values, batch.task_id)
        mask = transitions(batch, cfg.discount)["mask"]
        loss, metrics = losses.ppo_loss(
            outputs.logits[:-1], values, batch.actions[:-1], batch.behaviour_logits[:-1],
            targets, mask, clip=cfg.ppo_clip, baseline_cost=cfg.baseline_cost,
            entropy_cost=cfg.entropy_cost)
        return self._with_reconstruction(loss, metrics, outputs, batch, mask)

    def _popart_step(self, params: Any, popart: Any, value_targets: jax.Array,
                     batch: Trajectory, axis_name: str | None):
        """PopArt after the gradient steps: move the statistics (ART), then rescale (POP).

        Follows the recipe of `losses.popart_init`: the targets are the value targets in
        return units that the gradient steps used. Each task's statistics move with its own
        rows' targets, and POP rescales each task's value output with its own statistics.
        Without PopArt (`popart` None) the parameters come back as they are.
        """
        if popart is None:
            return params, None
        mask = transitions(batch, self.loss_config.discount)["mask"]
        new_popart = losses.popart_update(popart, value_targets, batch.task_id, mask,
                                          axis_name=axis_name)
        value_layer = losses.popart_preserve_outputs(self.agent.value_layer(params), popart,
                                                     new_popart)
        return self.agent.with_value_layer(params, value_layer), new_popart

    def nonfinite_gradients(self, params: Any, popart: Any, batch: Trajectory) -> list[str]:
        """The parameters whose gradient on a batch is not finite, for error messages.

        The gradient of the run's loss at `params`: V-trace's; for PPO, its loss on the
        whole batch as one minibatch, with the targets of `params` (the update's first step
        up to the minibatch's rows). Compiles when first called, so call it only to explain
        a failure.

        Returns:
          The paths (e.g. "['core']['params']['block_0']...") of non-finite gradient leaves.
        """
        if self.loss_config.name == "ppo":
            def loss(p, popart, batch):
                targets, _ = self._ppo_targets(params, popart, batch, None)
                return self._ppo_loss(p, batch, targets)
        else:
            loss = self.loss
        grads, _ = jax.jit(jax.grad(loss, has_aux=True))(params, popart, batch)
        grads = jax.device_get(grads)
        return [jax.tree_util.keystr(path)
                for path, leaf in jax.tree_util.tree_leaves_with_path(grads)
                if not np.all(np.isfinite(leaf))]


@struct.dataclass
class Stepped:
    """What one way of stepping (V-trace's single step, PPO's epochs) gives `update`."""

    params: Any
    opt_state: Any
    popart: Any
    metrics: dict
    grad_norm: jax.Array
    loss_finite: jax.Array
    grads_finite: jax.Array


def _weighted_pmean(metrics: dict, weight: jax.Array, axis_name: str | None) -> dict:
    """Metrics averaged over devices, each device weighted by its valid transitions."""
    return {name: _pmean(value if name == "valid_fraction" else value * weight, axis_name)
            for name, value in metrics.items()}


def _popart_metrics(popart: losses.PopArtState,
                    task_names: tuple[str, ...] | None) -> dict[str, jax.Array]:
    """Each task's PopArt mean and spread as scalars (keys suffixed /<task> if N > 1).

    A task is named by `task_names`, or by its id where there are none.
    """
    num_tasks = popart.shift.shape[0]
    names = task_names or tuple(map(str, range(num_tasks)))
    suffixes = [""] if num_tasks == 1 else [f"/{name}" for name in names]
    return {f"popart_{name}{suffix}": values[i]
            for name, values in (("mu", popart.shift), ("sigma", popart.scale))
            for i, suffix in enumerate(suffixes)}


def _normalise(advantages: jax.Array, mask: jax.Array, axis_name: str | None) -> jax.Array:
    """Advantages [T, B] standardised over the whole batch's unmasked transitions.

    The statistics cover all devices, so an update does not depend on how the batch is split.
    """
    valid = mask.astype(advantages.dtype)
    count = _psum(valid.sum(), axis_name)
    mean = _psum((advantages * valid).sum(), axis_name) / jnp.maximum(count, 1.0)
    var = _psum((jnp.square(advantages - mean) * valid).sum(), axis_name) / jnp.maximum(
        count, 1.0)
    return jnp.where(mask, (advantages - mean) / (jnp.sqrt(var) + 1e-8), 0.0)


def _take_rows(batch: Trajectory, rows: jax.Array) -> Trajectory:
    """The environments `rows` [B'] of a batch: time-major leaves [T+1, B'], batch-major [B']."""
    return rebuild(jax.tree.map(lambda x: jnp.take(x, rows, axis=1), time_major(batch)),
                   jax.tree.map(lambda x: jnp.take(x, rows, axis=0), batch_major(batch)))


def _psum(x: jax.Array, axis_name: str | None) -> jax.Array:
    """The sum over the mapped axis (x itself when there is none)."""
    return x if axis_name is None else jax.lax.psum(x, axis_name)


def _pmean(tree: Any, axis_name: str | None) -> Any:
    """The mean over the mapped axis (the tree itself when there is none)."""
    return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def all_finite(tree: Any) -> jax.Array:
    """Whether every element of every leaf of `tree` is finite (a bool [] array).

    One check over the leaves raveled into one vector: a check per leaf costs XLA:CPU one
    kernel per leaf to compile (~1 s for a 30-leaf agent), far more than the copy costs.
    """
    return jnp.all(jnp.isfinite(jnp.concatenate(
        [jnp.ravel(leaf) for leaf in jax.tree.leaves(tree)])))


def device_weight(batch: Trajectory, axis_name: str | None) -> jax.Array:
    """n_d / mean_d(n_d), n_d the valid transitions of this device's part of the batch.

    The loss is a mean over the valid transitions. Each device computes it over its own part,
    so the plain pmean of the devices' losses would weigh a transition on a device with few
    valid ones more. Weighting device d by n_d / mean(n) makes the pmean equal the mean over
    the whole batch, so an update does not depend on how the batch is split. 1 without an
    axis.
    """
    if axis_name is None:
        return jnp.ones([], jnp.float32)
    count = jnp.sum(~batch.inputs.first[1:]).astype(jnp.float32)
    return jax.lax.stop_gradient(count / jnp.maximum(jax.lax.pmean(count, axis_name), 1.0))


def transitions(batch: Trajectory, gamma: float) -> dict[str, jax.Array]:
    """The T transitions of a batch of T+1 steps: transition s goes from step s to s+1.

    Returns:
      rewards [T, B] (received on entering step s+1), discounts [T, B] (gamma times the
      environment's discount of step s+1) and mask [T, B] (False where step s+1 is a first
      step: the action at step s was ignored and the environment reset).
    """
    return {
        "rewards": batch.inputs.prev_reward[1:].astype(jnp.float32),
        "discounts": gamma * batch.discount[1:].astype(jnp.float32),
        "mask": ~batch.inputs.first[1:],
    }
