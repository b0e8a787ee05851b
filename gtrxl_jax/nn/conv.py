"""A 2-D convolution whose kernel gradient is one matmul over image patches (for XLA:CPU).

XLA computes a convolution's kernel gradient as a convolution whose window is the whole
output image. Here the forward pass and the input gradient stay XLA's convolutions; the
kernel gradient is the matmul of the input's patches [N*H*W, kh*kw*C] with the output
gradient [N*H*W, O]. Which is faster depends on the CPU: the matmul on an AVX2-only
AMD EPYC, XLA's own convolution on an AVX-512 one (docs/performance.md, "The IMPALA torso's
gradients"); `matmul_kernel_grad_by_default` encodes that.

The patches hold kh*kw copies of the input, so on a GPU, where cuDNN computes kernel
gradients well and batches are large, XLA's convolution is the better choice.
"""

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from gtrxl_jax.nn.hardware import cpu_flags

_NHWC = lax.ConvDimensionNumbers(
    lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2)
)


def matmul_kernel_grad_by_default() -> bool:
    """Whether kernel gradients are patches matmuls unless told: on a CPU without AVX-512.

    On the CPU backend of an AVX2-only CPU, XLA's kernel-gradient convolution was the
    slowest part of the IMPALA torso's backward pass; on an AVX-512 CPU it is faster than
    the patches matmul. Other backends use XLA's.
    """
    return jax.default_backend() == "cpu" and "avx512f" not in cpu_flags()


def _hashable_padding(padding: str | Sequence[tuple[int, int]]):
    """The padding as given if a string ("SAME", "VALID"), else its pairs as tuples of ints."""
    if isinstance(padding, str):
        return padding
    return tuple(tuple(int(p) for p in pair) for pair in padding)


def _explicit_padding(padding: str | Sequence[tuple[int, int]], kernel_hw: Sequence[int]):
    """Padding as ((top, bottom), (left, right)) for a stride-1 convolution."""
    if padding == "SAME":
        return tuple(((k - 1) // 2, k - 1 - (k - 1) // 2) for k in kernel_hw)  # as lax does
    if padding == "VALID":
        return ((0, 0), (0, 0))
    return _hashable_padding(padding)


def _conv(x: jax.Array, kernel: jax.Array, padding: Any) -> jax.Array:
    """XLA's stride-1 NHWC x HWIO convolution, accumulating (and returning) float32."""
    return lax.conv_general_dilated(
        x, kernel, (1, 1), padding, dimension_numbers=_NHWC, preferred_element_type=jnp.float32
    )


def patches(x: jax.Array, kernel_hw: Sequence[int], out_hw: Sequence[int], padding) -> jax.Array:
    """Image patches of a stride-1 convolution, by shifted slices of the padded input.

    Args:
      x: [N, H, W, C].
      kernel_hw: (kh, kw).
      out_hw: (OH, OW), the convolution's output size.
      padding: "SAME", "VALID" or ((top, bottom), (left, right)).

    Returns:
      [N, OH, OW, kh * kw * C], the last axis ordered (kh, kw, C) like an HWIO kernel's
      leading axes.
    """
    (top, bottom), (left, right) = _explicit_padding(padding, kernel_hw)
    padded = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    (kh, kw), (oh, ow) = kernel_hw, out_hw
    shifted = [padded[:, i : i + oh, j : j + ow, :] for i in range(kh) for j in range(kw)]
    return jnp.concatenate(shifted, axis=-1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_with_matmul_kernel_grad(x: jax.Array, kernel: jax.Array, padding) -> jax.Array:
    """A stride-1 convolution, float32 out, whose kernel gradient is a patches matmul.

    Args:
      x: [N, H, W, C] in the compute dtype.
      kernel: [kh, kw, C, O] in the compute dtype.
      padding: "SAME", "VALID" or ((top, bottom), (left, right)) (hashable).

    Returns:
      [N, OH, OW, O] float32, equal to XLA's convolution (the same forward computation).
    """
    return _conv(x, kernel, padding)


def _forward(x, kernel, padding):
    return _conv(x, kernel, padding), (x, kernel)


def _backward(padding, residuals, grad_out):
    x, kernel = residuals
    _, input_vjp = jax.vjp(lambda x: _conv(x, kernel, padding), x)
    (grad_x,) = input_vjp(grad_out)
    cols = patches(x, kernel.shape[:2], grad_out.shape[1:3], padding)  # [N, OH, OW, kh*kw*C]
    grad_kernel = jnp.einsum(
        "nhwk,nhwo->ko", cols, grad_out.astype(x.dtype), preferred_element_type=jnp.float32
    )
    return grad_x, grad_kernel.reshape(kernel.shape).astype(kernel.dtype)


conv_with_matmul_kernel_grad.defvjp(_forward, _backward)


def conv_general_dilated_matmul_grad(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides: Sequence[int],
    padding: Any,
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: Any = None,
    feature_group_count: int = 1,
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """`conv_with_matmul_kernel_grad` behind `lax.conv_general_dilated`'s signature.

    Flax's `nn.Conv` calls it like `lax.conv_general_dilated`. It covers 2-D NHWC x HWIO
    convolutions with stride 1, no dilation and one feature group, and raises
    NotImplementedError for others. The result is float32 whatever `preferred_element_type`.
    """
    del precision, preferred_element_type  # float32 accumulation and output, always
    ones = (1,) * (lhs.ndim - 2)
    unsupported = {
        "a 2-D NHWC convolution": lhs.ndim == 4
        and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) == _NHWC,
        "stride 1": tuple(window_strides) == ones,
        "no dilation": tuple(lhs_dilation or ones) == ones and tuple(rhs_dilation or ones) == ones,
        "one feature group": feature_group_count == 1,
    }
    missing = [need for need, ok in unsupported.items() if not ok]
    if missing:
        raise NotImplementedError(
            f"conv_general_dilated_matmul_grad needs {', '.join(missing)}; use "
            "lax.conv_general_dilated for other convolutions."
        )
    return conv_with_matmul_kernel_grad(lhs, rhs, _hashable_padding(padding))
