"""Checks at the cores' public boundaries: inputs and states, with messages that name shapes.

They run on shapes and dtypes only, so they work under jit and `jax.eval_shape` alike.
"""

from collections.abc import Mapping

import chex
import jax


def check_sequence(inputs: jax.Array, first: jax.Array, width: int | None = None,
                   width_name: str = "") -> None:
    """Checks a core's time-major inputs [T, B, D] float and first [T, B] bool.

    Args:
      inputs: [T, B, D] floating.
      first: [T, B] bool.
      width: the D the core needs (None: any).
      width_name: what decides the width, for the message (e.g. "d_model=256").

    Raises:
      AssertionError (chex) for a wrong rank or dtype; ValueError for a shape that does not fit.
    """
    chex.assert_rank(inputs, 3, custom_message="inputs must be [T, B, D].")
    chex.assert_rank(first, 2, custom_message="first must be [T, B].")
    chex.assert_type(inputs, float, custom_message="inputs must be floating [T, B, D].")
    chex.assert_type(first, bool, custom_message="first must be bool [T, B].")
    if first.shape != inputs.shape[:2]:
        raise ValueError(f"first has shape {first.shape}; expected [T, B] = {inputs.shape[:2]}.")
    if width is not None and inputs.shape[2] != width:
        raise ValueError(f"inputs are [T, B, D] = {inputs.shape}; D must be {width_name}.")


def check_state_type(name: str, state: object, state_type: type, made_by: str) -> None:
    """Raise TypeError unless a core's state is of the class the core needs.

    Args:
      name: what the core calls its state ("memory", "state"), for the message.
      state: the state passed in.
      state_type: the class the core needs.
      made_by: the call that makes a fitting state, for the message.
    """
    if not isinstance(state, state_type):
        raise TypeError(f"{name} must be a gtrxl_jax {state_type.__name__}, got "
                        f"{type(state).__name__}. Make it with {made_by}.")


def check_state_shapes(name: str, made_by: str,
                       leaves: Mapping[str, tuple[jax.Array, str, tuple[int, ...]]]) -> None:
    """Raise ValueError unless every leaf of a core's state has the shape the core needs.

    Args:
      name: what the core calls its state ("memory", "state"), for the message.
      made_by: the call that makes a fitting state, for the message.
      leaves: field path (e.g. "cache.keys[0]") -> (that leaf of the state, its layout such
        as "[B, L, M, D]", the shape it must have). A state of another config or batch size
        has a leaf of another shape.
    """
    for path, (leaf, layout, shape) in leaves.items():
        if tuple(leaf.shape) != tuple(shape):
            raise ValueError(f"{name}.{path} has shape {tuple(leaf.shape)}; this config and batch "
                             f"need {layout} = {tuple(shape)}. Make the {name} with {made_by}; "
                             f"inputs are time-major [T, B, ...] (here B = {shape[0]}): swap "
                             "the first two axes of batch-major inputs.")
