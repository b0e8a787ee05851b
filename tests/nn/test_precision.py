"""Mixed precision: float32-accumulating matmuls and their hand-written backward."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gtrxl_jax as gx
from gtrxl_jax.nn.precision import dense_matmul, dot_general_f32
from tests.nn.helpers import init_core


@pytest.mark.parametrize(
    "x_shape,kernel_shape,k,spec",
    [
        ((3, 4, 5), (5, 2, 3), 1, "abk,knm->abnm"),  # Dense / DenseGeneral into heads
        ((3, 4, 5), (4, 5, 6), 2, "akl,kln->an"),  # DenseGeneral out of heads
        ((7, 5), (5, 2, 3), 1, "ak,knm->anm"),  # one batch axis (the position projection)
        ((3, 4, 9), (9, 2, 3), 1, "abk,knm->abnm"),  # wider inputs than outputs: g on the left
        ((7, 9), (9, 2), 1, "ak,kn->an"),
    ],
)
def test_dense_matmul_gradients_match_einsum(x_shape, kernel_shape, k, spec):
    x = jax.random.normal(jax.random.PRNGKey(0), x_shape)
    kernel = jax.random.normal(jax.random.PRNGKey(1), kernel_shape)
    ours = jax.grad(lambda x, w: jnp.sum(jnp.sin(dense_matmul(x, w, k))), (0, 1))(x, kernel)
    ref = jax.grad(lambda x, w: jnp.sum(jnp.sin(jnp.einsum(spec, x, w))), (0, 1))(x, kernel)
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_kernel_gradient_does_not_copy_the_wider_operand_transposed():
    """An MLP's backward on the CPU: the output layer's kernel gradient reads the hidden
    activations [B, T, hidden] as they are (XLA:CPU copies the narrower output gradient
    transposed instead); it used to copy the activations transposed
    ([hidden, B, T], a slow strided pass of four times the bytes)."""
    if jax.default_backend() != "cpu":
        pytest.skip("the orientation is chosen for XLA:CPU's matmul")
    B, T, width, hidden = 4, 16, 16, 64
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(keys[0], (B, T, width))
    w_in = jax.random.normal(keys[1], (width, hidden))
    w_out = jax.random.normal(keys[2], (hidden, width))

    def loss(w_in, w_out):
        hidden_units = jax.nn.relu(dense_matmul(x, w_in, 1))
        return jnp.sum(jnp.tanh(dense_matmul(hidden_units, w_out, 1)))

    hlo = jax.jit(jax.grad(loss, (0, 1))).lower(w_in, w_out).compile().as_text()
    assert f"f32[{hidden},{B},{T}]" not in hlo


def test_dot_general_f32_takes_any_contraction_and_returns_float32():
    """Contractions that are not a Dense layer's (batch axes, a leading axis of the inputs)
    go through lax.dot_general, still accumulating and returning float32."""
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 4, 5)).astype(jnp.bfloat16)
    w = jax.random.normal(jax.random.PRNGKey(1), (3, 5, 2)).astype(jnp.bfloat16)
    batched = dot_general_f32(x, w, (((2,), (1,)), ((0,), (0,))))
    leading = dot_general_f32(x, w, (((0,), (0,)), ((), ())))
    assert (batched.dtype, leading.dtype) == (jnp.float32, jnp.float32)
    x32, w32 = x.astype(jnp.float32), w.astype(jnp.float32)
    np.testing.assert_allclose(batched, jnp.einsum("bik,bkn->bin", x32, w32), rtol=1e-6)
    np.testing.assert_allclose(leading, jnp.einsum("aij,akn->ijkn", x32, w32), rtol=1e-6)


@pytest.mark.parametrize("T,B", [(5, 3), (1, 1), (1, 4)])
def test_bfloat16_gradients_run_and_follow_float32(T, B):
    """The bfloat16 backward (every matmul shape of the core, acting and learning sizes)
    compiles, runs and points where the float32 gradient does."""
    cfg32 = gx.GTrXLConfig(num_layers=2, d_model=32, num_heads=4, memory_len=6)
    cfg16 = gx.GTrXLConfig(num_layers=2, d_model=32, num_heads=4, memory_len=6, dtype="bfloat16")
    core32, params, inputs, first, memory = init_core(cfg32, T=T, B=B)

    def grads(core):
        loss = lambda p: jnp.sum(core.apply(p, inputs, first, memory)[0] ** 2)  # noqa: E731
        return jax.tree.leaves(jax.jit(jax.grad(loss))(params))

    for g32, g16 in zip(grads(core32), grads(gx.GTrXL(cfg16)), strict=True):
        assert g16.dtype == jnp.float32 and np.all(np.isfinite(g16))
        cosine = jnp.vdot(g32, g16) / (jnp.linalg.norm(g32) * jnp.linalg.norm(g16) + 1e-12)
        assert float(cosine) > 0.95 or float(jnp.linalg.norm(g32)) < 1e-6
