"""Tests for gtrxl_jax.nn.pooling: max pooling with an elementwise gradient."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from gtrxl_jax.nn.pooling import max_pool
from tests.nn.helpers import impala_gradients


def _value_and_grad(pool, x, weights, **options):
    """The pool's output and the gradient of a weighted sum of it."""
    def loss(x):
        return jnp.sum(pool(x, **options) * weights)
    return pool(x, **options), jax.jit(jax.grad(loss))(x)


@pytest.mark.parametrize("padding", ["SAME", "VALID", ((1, 0), (2, 1))])
@pytest.mark.parametrize(("window_shape", "strides"), [((3, 3), (2, 2)), ((2, 3), (1, 2))])
@pytest.mark.parametrize("shape", [(2, 9, 10, 3), (1, 8, 7, 2)])
def test_values_and_gradients_equal_flax_max_pool_with_ties(shape, window_shape, strides,
                                                             padding):
    # Integers from {0, 1, 2}: most windows hold tied maxima, which must get the same
    # (first-maximum) gradient as select-and-scatter gives them.
    x = jax.random.randint(jax.random.key(0), shape, 0, 3).astype(jnp.float32)
    options = {"window_shape": window_shape, "strides": strides, "padding": padding}
    out_shape = nn.max_pool(x, **options).shape
    # Integer weights, a different one per output cell: a wrong routing changes the gradient,
    # and the sums of several cells' gradients in one input are exact in any order.
    weights = jax.random.randint(jax.random.key(1), out_shape, 1, 1000).astype(jnp.float32)
    expected, expected_grad = _value_and_grad(nn.max_pool, x, weights, **options)
    value, grad = _value_and_grad(max_pool, x, weights, **options)
    np.testing.assert_array_equal(value, expected)
    np.testing.assert_array_equal(grad, expected_grad)


def test_rejects_a_batch_that_is_not_nhwc():
    with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
        max_pool(jnp.zeros((4, 4, 3)), (3, 3), (2, 2))


def test_impala_resnet_pool_gradients_match_and_default_to_elementwise_on_cpu():
    pixels = jax.random.randint(jax.random.key(1), (2, 12, 12, 3), 0, 4).astype(jnp.uint8)
    grads = {choice: impala_gradients(pixels, matmul_kernel_grad=False,
                                      elementwise_pool_grad=choice)
             for choice in (None, True, False)}
    default = jax.default_backend() == "cpu"
    jax.tree.map(np.testing.assert_array_equal, grads[None], grads[default])
    # The same routing (tested exactly above); summation order differs in float32.
    close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-7)
    jax.tree.map(close, grads[True], grads[False])
