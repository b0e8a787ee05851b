"""Mixed precision: matmuls read the compute dtype and accumulate and return float32.

With bfloat16 inputs, asking XLA for a float32 result (`preferred_element_type`) selects the
fast bfloat16 kernels (AMX on recent Xeons, tensor cores on GPUs); a bfloat16-out matmul runs
several times slower on XLA:CPU. JAX's own backward of such a matmul multiplies the float32
output gradient with a bfloat16 operand, which XLA:CPU runs as a float32 matmul; the
hand-written backward below casts the output gradient to the compute dtype first, so the two
backward matmuls run on the fast kernels too. With float32 inputs the results are those of
`lax.dot_general` (to round-off).
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax


def _contract(lhs: jax.Array, rhs: jax.Array, lhs_axes, rhs_axes) -> jax.Array:
    """Contracts lhs_axes of lhs with rhs_axes of rhs, accumulating in float32."""
    dims = ((tuple(lhs_axes), tuple(rhs_axes)), ((), ()))
    return lax.dot_general(lhs, rhs, dims, preferred_element_type=jnp.float32)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def dense_matmul(x: jax.Array, kernel: jax.Array, num_contracted: int) -> jax.Array:
    """Multiplies x by kernel over the k = num_contracted K axes, in float32.

    Args:
      x: [*batch, *K] inputs in the compute dtype.
      kernel: [*K, *N] weights in the compute dtype.
      num_contracted: k, how many trailing axes of x (leading axes of kernel) are summed.

    Returns:
      [*batch, *N] float32.
    """
    k = num_contracted
    return _contract(x, kernel, range(x.ndim - k, x.ndim), range(k))


def _dense_matmul_fwd(x, kernel, num_contracted):
    return dense_matmul(x, kernel, num_contracted), (x, kernel)


def _dense_matmul_bwd(num_contracted, residuals, output_grad):
    x, kernel = residuals
    k, num_batch = num_contracted, x.ndim - num_contracted
    output_grad = output_grad.astype(x.dtype)
    x_grad = _contract(
        output_grad, kernel, range(num_batch, output_grad.ndim), range(k, kernel.ndim)
    )
    operands = (x, output_grad)
    if num_batch < 2:
        # XLA:CPU has no fast (and, for some shapes, no) bfloat16 kernel for a matmul that
        # sums over a single leading axis of both operands; such inputs are small here.
        operands = tuple(a.astype(jnp.float32) for a in operands)
    kernel_grad = _kernel_grad(*operands, num_batch)
    return x_grad.astype(x.dtype), kernel_grad.astype(kernel.dtype)


def _output_grad_on_the_left(x: jax.Array, output_grad: jax.Array) -> bool:
    """Whether a kernel gradient x^T g is computed as (g^T x)^T.

    XLA:CPU's fast matmul wants the summed axis last in its left operand, so it copies the
    left operand transposed, a slow strided pass: on the CPU, in float32, the smaller of x
    and g goes on the left. (In bfloat16 the copies are half the bytes, and g on the left
    measured slower: docs/performance.md.)
    """
    return (jax.default_backend() == "cpu" and x.dtype == jnp.float32
            and x.size > output_grad.size)


def _kernel_grad(x: jax.Array, output_grad: jax.Array, num_batch: int) -> jax.Array:
    """x^T g summed over the batch axes: [*batch, *K] and [*batch, *N] give [*K, *N] float32.

    With g on the left (`_output_grad_on_the_left`), the result comes out [*N, *K] and is
    transposed, a pass over the kernel's size only; the barrier keeps XLA from folding that
    transpose back into the matmul, which would put x on the left again.
    """
    batch = range(num_batch)
    if not _output_grad_on_the_left(x, output_grad):
        return _contract(x, output_grad, batch, batch)
    n_axes = output_grad.ndim - num_batch
    transposed = lax.optimization_barrier(_contract(output_grad, x, batch, batch))
    return jnp.moveaxis(transposed, range(n_axes), range(-n_axes, 0))


dense_matmul.defvjp(_dense_matmul_fwd, _dense_matmul_bwd)


def dot_general_f32(lhs: jax.Array, rhs: jax.Array, dimension_numbers, precision=None, **_):
    """A flax `dot_general` that accumulates and returns float32.

    Dense and DenseGeneral layers (trailing axes of the inputs against leading axes of the
    kernel, no batch axes) go through `dense_matmul`; anything else through lax.dot_general.
    """
    (lhs_axes, rhs_axes), batch_axes = dimension_numbers
    k = len(lhs_axes)
    is_dense = (
        batch_axes == ((), ())
        and tuple(lhs_axes) == tuple(range(lhs.ndim - k, lhs.ndim))
        and tuple(rhs_axes) == tuple(range(k))
    )
    if is_dense:
        return dense_matmul(lhs, rhs, k)
    return lax.dot_general(
        lhs, rhs, dimension_numbers, precision=precision, preferred_element_type=jnp.float32
    )


def dense_options(dtype, param_dtype=jnp.float32) -> dict:
    """Keyword arguments of a flax Dense/DenseGeneral computing in `dtype`, returning float32."""
    return dict(dtype=dtype, param_dtype=param_dtype, dot_general=dot_general_f32)
