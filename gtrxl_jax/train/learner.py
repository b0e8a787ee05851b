"""The learner: a pmapped V-trace update over the learner devices, skipping non-finite steps.

    learner = Learner(agent, loss_config, optimizer, devices, trajectory_len=32)
    state = learner.replicate(learner.init_state(key))       # one copy per device
    state, metrics = learner.update(state, trajectory)        # trajectory [T+1, B_local]

The batch is split evenly over the local learner devices; gradients, PopArt statistics and
metrics are averaged with `jax.lax.pmean` over the pmap axis. In a multi-process run
(jax.distributed) the pmap axis spans every process's devices, so the same pmean averages
across hosts and the parameters stay identical everywhere.

An update whose loss, gradients or resulting parameters are not finite changes nothing but
the counters: the parameters, optimiser state and PopArt statistics stay as they were, and
`nonfinite_updates` counts it. The caller decides when too many in a row end the run
(`NonFiniteError`); `nonfinite_gradients` then says which parameters' gradients were at fault.
"""

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
from gtrxl_jax.train.types import Trajectory, split_for_devices

AXIS = "learner_devices"


class NonFiniteError(FloatingPointError):
    """Too many consecutive updates had a non-finite loss or non-finite gradients."""


@struct.dataclass
class LearnerState:
    """Everything the learner carries from one update to the next (and checkpoints).

    Attributes:
      params: the agent's parameters.
      opt_state: the optimiser's state.
      popart: PopArt statistics per task (losses.PopArtState, each [N]) or None.
      update: int32 [], updates taken so far, skipped ones included: the parameter version.
      nonfinite_updates: int32 [], updates skipped because of a non-finite loss or gradient.
      rng: uint32 [2], the run's PRNG key; advanced every update, it seeds the actors' keys
        and environments when a run (re)starts.
    """

    params: Any
    opt_state: Any
    popart: Any
    update: jax.Array
    nonfinite_updates: jax.Array
    rng: jax.Array


class Learner:
    """The pmapped learner step of one agent over a set of local devices."""

    def __init__(
        self,
        agent: Agent,
        loss_config: LossConfig,
        optimizer: optax.GradientTransformation,
        devices: list,
        *,
        trajectory_len: int,
        segment_len: int | None = None,
        num_tasks: int = 1,
    ):
        """Build the update function (compiled on first use).

        Args:
          agent: the agent.
          loss_config: the V-trace loss settings (discount, truncation levels, costs, popart).
          optimizer: the optax optimiser.
          devices: the learner devices of every process, the same list on each process (see
            `devices.learner_devices`); each process splits its batch evenly over its own.
          trajectory_len: T, the V-trace horizon; batches hold T+1 steps.
          segment_len: the core's segment length (None: one segment of T); the unroll scans
            the T // segment_len full segments and runs the bootstrap step as a remainder.
          num_tasks: N, the number of tasks (batches' task ids are in [0, N)); the agent needs
            one value output per task, and PopArt keeps statistics per task.
        """
        if agent.num_tasks != num_tasks:
            raise ValueError(
                f"The learner trains on {num_tasks} task(s), but the agent has "
                f"{agent.num_tasks} value output(s); build the Agent with "
                f"num_tasks={num_tasks}, one value output per task.")
        self.agent = agent
        self.devices = list(devices)
        self.local_devices = [d for d in self.devices if d.process_index == jax.process_index()]
        self._loss = loss_config
        self._optimizer = optimizer
        self._T = trajectory_len
        self._segment_len = segment_len or trajectory_len
        self._num_tasks = num_tasks
        self._pmapped_update = jax.pmap(
            self._update, axis_name=AXIS, devices=self.devices, donate_argnums=(0,))
        # Places host arrays exactly as the update's outputs are placed, so that the first
        # update and every later one see the same input layout (and compile only once).
        self._to_devices = jax.pmap(lambda tree: tree, axis_name=AXIS, devices=self.devices)

    @property
    def num_devices(self) -> int:
        """D, the number of this process's learner devices."""
        return len(self.local_devices)

    def init_state(self, key: jax.Array) -> LearnerState:
        """Fresh parameters, optimiser state and PopArt statistics (one copy, on the host)."""
        return jax.device_get(jax.jit(self._init_state)(key))

    def _init_state(self, key: jax.Array) -> LearnerState:
        params_key, rng = jax.random.split(key)
        params = self.agent.init(params_key)
        popart = losses.popart_init(self._num_tasks) if self._loss.popart else None
        return LearnerState(
            params=params,
            opt_state=self._optimizer.init(params),
            popart=popart,
            update=jnp.zeros([], jnp.int32),
            nonfinite_updates=jnp.zeros([], jnp.int32),
            rng=rng,
        )

    def replicate(self, state: LearnerState) -> LearnerState:
        """One copy of the state per learner device (leading device axis), for `update`."""
        stacked = jax.tree.map(lambda x: np.stack([np.asarray(x)] * self.num_devices), state)
        return self._to_devices(stacked)

    def unreplicate(self, state: LearnerState) -> LearnerState:
        """The state of the first local device, as host numpy arrays."""
        return jax.device_get(first_replica(state))

    def update(self, state: LearnerState, batch: Trajectory) -> tuple[LearnerState, dict]:
        """One learner update on a batch of trajectories; donates `state`.

        Args:
          state: the replicated state (from `replicate` or a previous update).
          batch: this process's trajectories, host arrays [T+1, B_local] with B_local a
            multiple of the number of learner devices.

        Returns:
          The new replicated state and the metrics (device arrays [D], equal on every
          device; see `_update`).
        """
        if batch.length != self._T:
            raise ValueError(f"The learner takes trajectories of {self._T} transitions, got "
                             f"{batch.length}.")
        return self._pmapped_update(state, split_for_devices(batch, self.num_devices))

    def nonfinite_gradients(self, state: LearnerState, batch: Trajectory) -> list[str]:
        """The parameters whose gradient on a batch is not finite, for error messages.

        Runs the loss's gradient on the first local device, outside pmap (it compiles when
        first called, so call it only to explain a failure).

        Args:
          state: the replicated state (as `update` takes it).
          batch: the trajectories [T+1, B_local] whose update was skipped.

        Returns:
          The paths (e.g. "['core']['params']['block_0']...") of non-finite gradient leaves.
        """
        params, popart = first_replica(state.params), first_replica(state.popart)
        grads, _ = jax.jit(jax.grad(self._loss_fn, has_aux=True))(params, popart, batch)
        grads = jax.device_get(grads)
        return [jax.tree_util.keystr(path)
                for path, leaf in jax.tree_util.tree_leaves_with_path(grads)
                if not np.all(np.isfinite(leaf))]

    def _loss_fn(self, params: Any, popart: Any, batch: Trajectory):
        """The IMPALA loss of one device's batch [T+1, B/D]; aux: (metrics, AgentOutput)."""
        outputs, _ = self.agent.unroll(params, batch.inputs, batch.core_state,
                                       segment_len=self._segment_len)
        transition = _transitions(batch, self._loss.discount)
        loss, metrics = losses.impala_loss(
            outputs.logits[:-1],
            losses.select_task_values(outputs.values, batch.task_id),
            batch.actions[:-1],
            batch.behaviour_logits[:-1],
            transition["rewards"],
            transition["discounts"],
            transition["mask"],
            rho_bar=self._loss.rho_bar,
            c_bar=self._loss.c_bar,
            lambda_=self._loss.lambda_,
            baseline_cost=self._loss.baseline_cost,
            entropy_cost=self._loss.entropy_cost,
            popart=popart,
            task_ids=batch.task_id if popart is not None else None,
        )
        return loss, (metrics, jax.lax.stop_gradient(outputs))

    def _weighted_loss(self, params: Any, popart: Any, batch: Trajectory, weight: jax.Array):
        """Return this device's loss times its weight, so that the pmean of gradients is exact."""
        loss, aux = self._loss_fn(params, popart, batch)
        return loss * weight, aux

    def _update(self, state: LearnerState, batch: Trajectory) -> tuple[LearnerState, dict]:
        """The per-device update (inside pmap over AXIS).

        Returns:
          The new state and metrics: the loss's metrics, grad_norm (before clipping),
          update_norm (the optimiser's step, the parameters' change) and param_norm (after it),
          nonfinite_loss, nonfinite_grads and nonfinite_params (1.0 where the loss, the
          gradients or the updated parameters were not finite, which skips the update; the
          parameters are checked so that no checkpoint ever holds non-finite ones),
          policy_lag_mean / policy_lag_max (learner version minus acting version).
        """
        chex.assert_rank(batch.actions, 2)
        weight = _device_weight(batch)
        grads, (metrics, outputs) = jax.grad(self._weighted_loss, has_aux=True)(
            state.params, state.popart, batch, weight)
        grads = jax.lax.pmean(grads, AXIS)
        metrics = {name: jax.lax.pmean(value if name == "valid_fraction" else value * weight, AXIS)
                   for name, value in metrics.items()}
        loss_finite = jnp.isfinite(metrics["loss"])
        grads_finite = _all_finite(grads)

        updates, opt_state = self._optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        popart = state.popart
        if popart is not None:
            params, popart = self._popart_step(params, popart, outputs, batch)
        params_finite = _all_finite(params)
        finite = loss_finite & grads_finite & params_finite
        # One select of whole trees: a jnp.where per leaf costs XLA:CPU a kernel per leaf.
        params, opt_state, popart = jax.lax.cond(
            finite, lambda: (params, opt_state, popart),
            lambda: (state.params, state.opt_state, state.popart))
        version = state.update.astype(jnp.float32)
        lag = version - batch.param_version.astype(jnp.float32)
        metrics.update(
            grad_norm=optax.global_norm(grads),
            update_norm=optax.global_norm(updates),
            param_norm=optax.global_norm(params),
            nonfinite_loss=(~loss_finite).astype(jnp.float32),
            nonfinite_grads=(~grads_finite).astype(jnp.float32),
            nonfinite_params=(~params_finite).astype(jnp.float32),
            policy_lag_mean=jax.lax.pmean(lag.mean(), AXIS),
            policy_lag_max=jax.lax.pmax(lag.max(), AXIS),
        )
        new_state = LearnerState(
            params=params,
            opt_state=opt_state,
            popart=popart,
            update=state.update + 1,
            nonfinite_updates=state.nonfinite_updates + (~finite).astype(jnp.int32),
            rng=jax.random.split(state.rng)[0],
        )
        return new_state, metrics

    def _popart_step(self, params: Any, popart: Any, outputs: Any, batch: Trajectory):
        """PopArt after the gradient step: move the statistics (ART), then rescale (POP).

        Follows the recipe of `losses.popart_init`: the targets are the V-trace targets in
        return units under the statistics the gradient step used. Each task's statistics move
        with its own rows' targets, and POP rescales each task's value output with its own
        statistics (value kernel [D, N], bias [N]).
        """
        transition = _transitions(batch, self._loss.discount)
        rhos = losses.importance_ratios(outputs.logits[:-1], batch.behaviour_logits[:-1],
                                        batch.actions[:-1], transition["mask"])
        values = losses.popart_unnormalize(
            popart, losses.select_task_values(outputs.values, batch.task_id), batch.task_id)
        targets = losses.vtrace_targets(
            values, transition["rewards"], transition["discounts"], rhos, transition["mask"],
            rho_bar=self._loss.rho_bar, c_bar=self._loss.c_bar, lambda_=self._loss.lambda_).vs
        new_popart = losses.popart_update(popart, targets, batch.task_id, transition["mask"],
                                          axis_name=AXIS)
        head = params["head"]["params"]
        value_layer = losses.popart_preserve_outputs(head["value"], popart, new_popart)
        params = {**params, "head": {**params["head"], "params": {**head, "value": value_layer}}}
        return params, new_popart


def _all_finite(tree: Any) -> jax.Array:
    """Whether every element of every leaf of `tree` is finite (a bool [] array).

    One check over the leaves raveled into one vector: a check per leaf costs XLA:CPU one
    kernel per leaf to compile (~1 s for a 30-leaf agent), far more than the copy costs.
    """
    return jnp.all(jnp.isfinite(jnp.concatenate(
        [jnp.ravel(leaf) for leaf in jax.tree.leaves(tree)])))


def _device_weight(batch: Trajectory) -> jax.Array:
    """n_d / mean_d(n_d), n_d the valid transitions of this device's part of the batch.

    The loss is a mean over the valid transitions. Each device computes it over its own part,
    so the plain pmean of the devices' losses would weigh a transition on a device with few
    valid ones more. Weighting device d by n_d / mean(n) makes the pmean equal the mean over
    the whole batch, so an update does not depend on how the batch is split.
    """
    count = jnp.sum(~batch.inputs.first[1:]).astype(jnp.float32)
    return jax.lax.stop_gradient(count / jnp.maximum(jax.lax.pmean(count, AXIS), 1.0))


def _transitions(batch: Trajectory, gamma: float) -> dict[str, jax.Array]:
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


def first_replica(tree: Any) -> Any:
    """The first local device's copy of a replicated pytree (fresh buffers, safe from donation)."""
    return jax.tree.map(lambda x: x.addressable_data(0)[0], tree)
