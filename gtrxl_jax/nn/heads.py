"""Policy and value heads: the agent's core outputs turned into action logits and values.

The heads act on the last axis only, so they take the core's time-major outputs [T, B, D]
as they are (or one acting step's [B, D]). The policy's logits layer starts small, so the
initial policy is close to uniform, a common choice for actor-critic agents (e.g. the
PPO implementation study of Andrychowicz et al., 2020, https://arxiv.org/abs/2006.05990).

The value layer has one output per task (N), as in multi-task PopArt (Hessel et al. 2018,
https://arxiv.org/abs/1809.04474, section 3): the policy is shared, and each environment's
value is read from its own task's output (`losses.select_task_values`). A single-task agent
has N = 1.
"""

from collections.abc import Sequence
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from gtrxl_jax.nn.config import check_positive_int
from gtrxl_jax.nn.mlp import relu_layers
from gtrxl_jax.nn.precision import dense_options

VALUE_LAYER = "value"  # the name of the value output layer in the head's parameters


class PolicyValueHead(nn.Module):
    """Maps features to policy logits and one state value per task, through an optional MLP.

    Attributes:
      num_actions: A, the number of discrete actions.
      hidden_sizes: widths of the shared relu MLP before the two output layers; empty (the
        default) puts the output layers directly on the features.
      logits_init_scale: the logits layer's kernel is drawn from a truncated normal of
        standard deviation logits_init_scale / sqrt(D') (D' its input width), so the initial
        logits have a spread of about logits_init_scale x the inputs' root mean square and the
        initial policy is near uniform. 0 makes it exactly uniform.
      dtype: compute dtype (e.g. jnp.bfloat16); parameters and outputs stay float32.
      num_tasks: N, the number of value outputs (one per task).
    """

    num_actions: int
    hidden_sizes: Sequence[int] = ()
    logits_init_scale: float = 0.01
    dtype: Any = jnp.float32
    num_tasks: int = 1

    def __post_init__(self) -> None:
        check_positive_int("PolicyValueHead.num_actions", self.num_actions)
        check_positive_int("PolicyValueHead.num_tasks", self.num_tasks)
        if any(size <= 0 for size in self.hidden_sizes):
            raise ValueError(
                f"PolicyValueHead.hidden_sizes must hold positive ints, got {self.hidden_sizes!r}."
            )
        if self.logits_init_scale < 0:
            raise ValueError(
                f"PolicyValueHead.logits_init_scale must be >= 0, got {self.logits_init_scale}."
            )
        super().__post_init__()

    @nn.compact
    def __call__(self, features: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Compute the policy logits and the values of every task.

        Args:
          features: [..., D] floating, e.g. the core's outputs [T, B, D] or [B, D].

        Returns:
          logits: [..., A] float32, unnormalised log-probabilities of the actions.
          values: [..., N] float32, the state-value estimate of each task (normalised
            values under PopArt).
        """
        if features.ndim < 1:
            raise ValueError(
                "PolicyValueHead takes features [..., D] with a feature axis, got "
                f"a scalar of shape {features.shape}."
            )
        chex.assert_type(
            features,
            float,
            custom_message=(
                "PolicyValueHead takes floating features; encode observations with a torso first."
            ),
        )
        x = relu_layers(features, self.hidden_sizes, self.dtype, prefix="hidden")
        logits = nn.Dense(
            self.num_actions,
            **dense_options(self.dtype),
            kernel_init=nn.initializers.variance_scaling(
                self.logits_init_scale**2, "fan_in", "truncated_normal"
            ),
            name="logits",
        )(x)
        # In float32 whatever the dtype: the bias carries the values' offset (in return units
        # without PopArt), and PopArt's rescaling of this layer must preserve its outputs.
        values = nn.Dense(
            self.num_tasks, name=VALUE_LAYER, **dense_options(jnp.float32))(x)
        return logits.astype(jnp.float32), values.astype(jnp.float32)


class ObservationDecoder(nn.Module):
    """Decodes a vector observation from the core's output: a relu MLP, then a linear layer.

    The head of an auxiliary reconstruction loss (`losses.reconstruction_loss`).

    Attributes:
      observation_size: O, the width of the (flat, vector) observation.
      hidden_sizes: widths of the relu layers before the output layer.
      dtype: compute dtype (e.g. jnp.bfloat16); parameters and outputs stay float32.
    """

    observation_size: int
    hidden_sizes: Sequence[int] = (256,)
    dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        check_positive_int("ObservationDecoder.observation_size", self.observation_size)
        super().__post_init__()

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        """Decode features [..., D] into observations [..., O] float32."""
        x = relu_layers(features, self.hidden_sizes, self.dtype, prefix="hidden")
        out = nn.Dense(self.observation_size, name="output", **dense_options(self.dtype))(x)
        return out.astype(jnp.float32)
