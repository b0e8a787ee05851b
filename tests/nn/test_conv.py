"""Tests for gtrxl_jax.nn.conv: XLA's convolution with a patches-matmul kernel gradient."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from gtrxl_jax.nn.conv import (
    conv_general_dilated_matmul_grad,
    matmul_kernel_grad_by_default,
    patches,
)
from gtrxl_jax.nn.hardware import cpu_flags
from tests.nn.helpers import impala_gradients

NHWC = ("NHWC", "HWIO", "NHWC")
xla_conv = functools.partial(
    lax.conv_general_dilated, window_strides=(1, 1), dimension_numbers=NHWC,
    preferred_element_type=jnp.float32,
)
matmul_grad_conv = functools.partial(
    conv_general_dilated_matmul_grad, window_strides=(1, 1), dimension_numbers=NHWC
)


def _inputs(kernel_hw=(3, 3), channels=3, features=5, dtype=jnp.float32):
    kx, kk = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (2, 7, 6, channels)).astype(dtype)
    kernel = (0.3 * jax.random.normal(kk, (*kernel_hw, channels, features))).astype(dtype)
    return x, kernel


def _grads(conv, x, kernel, padding):
    """Gradients (x, kernel) of a fixed nonlinear loss of the convolution's output."""
    def loss(x, kernel):
        return jnp.sum(jnp.sin(conv(x, kernel, padding=padding)))
    return jax.jit(jax.grad(loss, argnums=(0, 1)))(x, kernel)


@pytest.mark.parametrize("padding", ["SAME", "VALID", ((2, 0), (1, 1))])
@pytest.mark.parametrize("kernel_hw", [(3, 3), (2, 3)])
def test_forward_is_xlas_and_gradients_match_xlas(padding, kernel_hw):
    x, kernel = _inputs(kernel_hw)
    out = jax.jit(matmul_grad_conv, static_argnames="padding")(x, kernel, padding=padding)
    np.testing.assert_array_equal(out, xla_conv(x, kernel, padding=padding))  # the same forward
    for ours, xlas in zip(_grads(matmul_grad_conv, x, kernel, padding),
                          _grads(xla_conv, x, kernel, padding), strict=True):
        assert ours.dtype == xlas.dtype
        np.testing.assert_allclose(ours, xlas, rtol=1e-5, atol=1e-5)


def test_bfloat16_inputs_give_float32_outputs_and_bfloat16_gradients():
    x, kernel = _inputs(dtype=jnp.bfloat16)
    assert matmul_grad_conv(x, kernel, padding="SAME").dtype == jnp.float32
    grad_x, grad_kernel = _grads(matmul_grad_conv, x, kernel, "SAME")
    assert grad_x.dtype == grad_kernel.dtype == jnp.bfloat16
    f32 = [a.astype(jnp.float32) for a in (x, kernel)]
    expected = _grads(xla_conv, *f32, "SAME")
    for ours, exact in zip((grad_x, grad_kernel), expected, strict=True):
        scale = float(jnp.max(jnp.abs(exact)))
        np.testing.assert_allclose(ours.astype(jnp.float32), exact, atol=0.03 * scale)


def test_patches_line_up_with_the_kernel_layout():
    """Patches [N, OH, OW, kh*kw*C] times the flattened HWIO kernel is the convolution."""
    x, kernel = _inputs()
    cols = patches(x, (3, 3), (7, 6), "SAME")
    assert cols.shape == (2, 7, 6, 27)
    by_matmul = jnp.einsum("nhwk,ko->nhwo", cols, kernel.reshape(27, -1))
    np.testing.assert_allclose(by_matmul, xla_conv(x, kernel, padding="SAME"), atol=1e-5)


@pytest.mark.parametrize("options,named", [
    ({"window_strides": (2, 2)}, "stride 1"),
    ({"rhs_dilation": (2, 2)}, "no dilation"),
    ({"feature_group_count": 3}, "one feature group"),
    ({"dimension_numbers": ("NCHW", "OIHW", "NCHW")}, "NHWC"),
])
def test_other_convolutions_are_refused_naming_what_is_needed(options, named):
    x, kernel = _inputs(channels=3, features=3)
    arguments = {"window_strides": (1, 1), "padding": "SAME", "dimension_numbers": NHWC,
                 **options}
    with pytest.raises(NotImplementedError, match=named):
        conv_general_dilated_matmul_grad(x, kernel, **arguments)


def test_impala_resnet_kernel_gradients_match_and_default_to_matmul_on_cpus_without_avx512():
    pixels = jax.random.randint(jax.random.key(1), (2, 12, 12, 3), 0, 256).astype(jnp.uint8)
    grads = {choice: impala_gradients(pixels, matmul_kernel_grad=choice)
             for choice in (None, True, False)}
    # The matmul on a CPU without AVX-512, XLA's convolution elsewhere.
    default = jax.default_backend() == "cpu" and "avx512f" not in cpu_flags()
    assert matmul_kernel_grad_by_default() == default
    jax.tree.map(np.testing.assert_array_equal, grads[None], grads[default])
    close = functools.partial(np.testing.assert_allclose, rtol=1e-4, atol=1e-5)
    jax.tree.map(close, grads[True], grads[False])
