"""The learner's optimiser on optax: gradient clipping, then RMSProp, Adam or AMSGrad.

The RMSProp defaults reproduce the optimiser of IMPALA (Espeholt et al. 2018,
https://arxiv.org/abs/1802.01561) as its reference code (scalable_agent) ran it, TensorFlow 1's
RMSPropOptimizer: decay 0.99, epsilon 0.1 added inside the square root, no momentum, the
mean square started at 1, and a learning rate decayed linearly to 0 over training
(scalable_agent's default rate is 4.8e-4). optax's own rmsprop starts the mean square at 0,
which makes its first updates up to ~3.3x larger with eps 0.1. Adam (Kingma & Ba 2014,
https://arxiv.org/abs/1412.6980) uses optax's defaults.

The gradients are clipped to a global norm of `max_grad_norm` (40 in common IMPALA setups)
before the optimiser sees them.
"""

import math
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from gtrxl_jax.config import OPTIMIZERS, SCHEDULES
from gtrxl_jax.nn.config import check_positive_int

_DEFAULT_EPS = {"rmsprop": 0.1, "adam": 1e-8, "amsgrad": 1e-8}


class RecentNormState(NamedTuple):
    """`clip_by_recent_norm`'s state: a bias-corrected running mean of the gradient norms."""

    norm_mean: jax.Array  # float32 [], the running mean (before bias correction)
    count: jax.Array  # int32 [], updates seen


def clip_by_recent_norm(factor: float, decay: float = 0.99) -> optax.GradientTransformation:
    """Clip each gradient's global norm to `factor` times the running mean of recent norms.

    Adam divides by its second-moment estimate, which decays while the gradients are small
    (a task solved for hundreds of updates); one rare batch (a failure in a near-
    deterministic policy) then gives a gradient 50-100x the recent ones, and Adam turns it
    into a step ~20x the recent ones, carried for ~10 updates by its momentum: the late
    collapse of solved T-mazes (docs/stability.md). Bounding each gradient relative to the
    recent ones bounds that step, without a scale that depends on the task.

    Args:
      factor: the largest allowed ratio of a gradient's norm to the running mean, > 1.
      decay: the running mean's decay per update (0.99: ~100 updates).

    Returns:
      An optax transformation; the first update (no history yet) is not clipped.
    """
    if not factor > 1:
        raise ValueError(f"factor must be > 1, got {factor!r}.")

    def init(params):
        del params
        return RecentNormState(norm_mean=jnp.zeros([], jnp.float32),
                               count=jnp.zeros([], jnp.int32))

    def update(grads, state, params=None):
        del params
        norm = optax.global_norm(grads)
        recent = state.norm_mean / (1.0 - decay ** state.count.astype(jnp.float32))
        limit = jnp.where(state.count > 0, factor * recent, jnp.inf)
        scale = jnp.minimum(1.0, limit / jnp.maximum(norm, jnp.finfo(jnp.float32).tiny))
        grads = jax.tree.map(lambda g: g * scale.astype(g.dtype), grads)
        norm_mean = decay * state.norm_mean + (1.0 - decay) * norm * scale
        return grads, RecentNormState(norm_mean=norm_mean, count=state.count + 1)

    return optax.GradientTransformation(init, update)


def make_schedule(
    learning_rate: float, schedule: str = "constant", total_steps: int | None = None
) -> optax.Schedule:
    """Make the learning rate as a function of the optimiser's step count.

    Args:
      learning_rate: the initial learning rate, > 0.
      schedule: "constant", or "linear" (decay to 0 at `total_steps`, then stay at 0).
      total_steps: the optimiser steps of the run (learner updates x
        `LossConfig.optimizer_steps_per_update`); required for "linear".

    Returns:
      An optax schedule: step count -> learning rate.
    """
    _check_positive("learning_rate", learning_rate)
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}.")
    if total_steps is not None:
        check_positive_int("total_steps", total_steps)
    if schedule == "constant":
        return optax.constant_schedule(learning_rate)
    if total_steps is None:
        raise ValueError("total_steps is required with schedule='linear' (the optimiser step "
                         "at which the learning rate reaches 0), got None.")
    return optax.linear_schedule(learning_rate, 0.0, total_steps)


def make_optimizer(
    name: str,
    learning_rate: float,
    *,
    max_grad_norm: float | None = 40.0,
    schedule: str = "constant",
    total_steps: int | None = None,
    eps: float | None = None,
    decay: float = 0.99,
    momentum: float = 0.0,
    initial_scale: float = 1.0,
    b1: float = 0.9,
    b2: float = 0.999,
    recent_norm_clip: float | None = None,
) -> optax.GradientTransformation:
    """Make the learner's optimiser: clip the gradients, then RMSProp, Adam or AMSGrad.

    Args:
      name: "rmsprop", "adam" or "amsgrad" (Adam whose second moment never decreases,
        Reddi et al. 2018, https://arxiv.org/abs/1904.09237).
      learning_rate: the (initial) learning rate, > 0.
      max_grad_norm: the global norm the gradients are clipped to, > 0; None for no clipping.
      schedule: "constant", or "linear" (decay to 0 over `total_steps`).
      total_steps: the optimiser steps of the run; required for "linear".
      eps: the optimiser's epsilon, > 0; None for its default (RMSProp 0.1 inside the square
        root, as IMPALA; Adam 1e-8).
      decay: RMSProp's decay of the mean square, in [0, 1).
      momentum: RMSProp's momentum, in [0, 1); 0 for none (IMPALA).
      initial_scale: RMSProp's initial mean square, >= 0 (1 as TensorFlow 1, 0 as optax).
      b1: Adam's decay of the first moment, in [0, 1).
      b2: Adam's decay of the second moment, in [0, 1).
      recent_norm_clip: also clip each gradient to this many times the running mean of the
        recent gradient norms (`clip_by_recent_norm`), > 1; None for no such clip.

    Returns:
      An optax GradientTransformation whose updates are added to the parameters.

    Raises:
      ValueError: naming the argument and its allowed values, for a bad argument.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer name must be one of {OPTIMIZERS}, got {name!r}.")
    if max_grad_norm is not None:
        _check_positive("max_grad_norm", max_grad_norm)
    eps = _DEFAULT_EPS[name] if eps is None else eps
    _check_positive("eps", eps)
    for arg, value in (("decay", decay), ("momentum", momentum), ("b1", b1), ("b2", b2)):
        if not 0 <= value < 1:
            raise ValueError(f"{arg} must be in [0, 1), got {value!r}.")
    if not initial_scale >= 0:
        raise ValueError(f"initial_scale must be >= 0, got {initial_scale!r}.")
    learning_rates = make_schedule(learning_rate, schedule, total_steps)

    if name == "rmsprop":
        optimizer = optax.rmsprop(learning_rates, decay=decay, eps=eps,
                                  initial_scale=initial_scale, eps_in_sqrt=True,
                                  momentum=momentum if momentum > 0 else None)
    else:
        make = optax.adam if name == "adam" else optax.amsgrad
        optimizer = make(learning_rates, b1=b1, b2=b2, eps=eps)
    clips = []
    if max_grad_norm is not None:
        clips.append(optax.clip_by_global_norm(max_grad_norm))
    if recent_norm_clip is not None:
        clips.append(clip_by_recent_norm(recent_norm_clip))
    return optax.chain(*clips, optimizer) if clips else optimizer


def _check_positive(arg: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{arg} must be a finite number > 0, got {value!r}.")
