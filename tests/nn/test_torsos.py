"""Tests for gtrxl_jax.nn.torsos."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gtrxl_jax.nn.torsos import (
    MINIGRID,
    OBSERVATION_KINDS,
    PIXELS_CHW,
    PIXELS_HWC,
    VECTOR,
    ImpalaResNet,
    MiniGridEncoder,
    MLPTorso,
    infer_observation_kind,
    looks_channels_first,
    make_torso,
)

N = 3
SMALL_IMPALA = {"channels": (4, 8), "output_size": 32}
SDS = jax.ShapeDtypeStruct


def _pixels(shape, seed=0):
    return jax.random.randint(jax.random.key(seed), shape, 0, 256).astype(jnp.uint8)


def _minigrid(n=N, seed=0):
    k_obj, k_col, k_state, k_dir = jax.random.split(jax.random.key(seed), 4)
    image = jnp.stack([
        jax.random.randint(k_obj, (n, 7, 7), 0, 11),
        jax.random.randint(k_col, (n, 7, 7), 0, 6),
        jax.random.randint(k_state, (n, 7, 7), 0, 3),
    ], axis=-1).astype(jnp.uint8)
    return {"image": image, "direction": jax.random.randint(k_dir, (n,), 0, 4)}


# Every torso (small, to keep XLA:CPU compile times short), on a batch it should accept, with
# the feature width it should return.
CASES = {
    "impala": (ImpalaResNet(**SMALL_IMPALA), lambda: _pixels((N, 12, 12, 3)), 32),
    "mlp": (MLPTorso(hidden_sizes=(16, 8)),
            lambda: jax.random.normal(jax.random.key(0), (N, 5)), 8),
    "minigrid_embed": (MiniGridEncoder(output_size=24), _minigrid, 24),
    "minigrid_one_hot": (MiniGridEncoder(output_size=24, cell_encoding="one_hot"), _minigrid, 24),
}


@functools.cache
def _setup(case):
    """Torso, observation, params and jitted features of a case, built once per test session."""
    torso, make_obs, _ = CASES[case]
    observation = make_obs()
    params = jax.jit(torso.init)(jax.random.key(42), observation)
    return torso, observation, params, jax.jit(torso.apply)(params, observation)


def _param_count(params):
    return sum(leaf.size for leaf in jax.tree.leaves(params))


@pytest.mark.parametrize("case", sorted(CASES))
def test_output_shape_dtype_and_finite(case):
    _, _, _, features = _setup(case)
    chex.assert_shape(features, (N, CASES[case][2]))
    chex.assert_type(features, jnp.float32)
    chex.assert_tree_all_finite(features)
    assert np.all(np.asarray(features) >= 0.0)  # features end in a relu


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_reach_every_parameter(case):
    torso, observation, params, _ = _setup(case)

    def loss(p):
        return jnp.sum(torso.apply(p, observation) ** 2)

    grads = jax.jit(jax.grad(loss))(params)
    for path, grad in jax.tree_util.tree_leaves_with_path(grads):
        assert np.any(np.asarray(grad) != 0.0), f"no gradient reaches {jax.tree_util.keystr(path)}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_eager_matches_jit(case):
    torso, observation, params, jitted = _setup(case)
    np.testing.assert_allclose(torso.apply(params, observation), jitted, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bfloat16_compute_is_close_to_float32(case):
    torso, observation, params, features_f32 = _setup(case)
    torso_bf16 = torso.clone(dtype=jnp.bfloat16)
    features_bf16 = jax.jit(torso_bf16.apply)(params, observation)
    chex.assert_type(features_bf16, jnp.float32)  # float32 out whatever the compute dtype
    params_bf16 = jax.eval_shape(torso_bf16.init, jax.random.key(0), observation)
    chex.assert_trees_all_equal_shapes_and_dtypes(params_bf16, params)  # float32 parameters
    scale = float(jnp.max(jnp.abs(features_f32)))
    np.testing.assert_allclose(features_bf16, features_f32, atol=0.05 * scale)


def test_default_impala_on_atari_frames_shapes_and_parameter_count():
    torso = ImpalaResNet()
    pixels = SDS((N, 84, 84, 4), jnp.uint8)
    params = jax.eval_shape(torso.init, jax.random.key(0), pixels)
    features = jax.eval_shape(torso.apply, params, pixels)
    assert (features.shape, features.dtype) == ((N, 256), jnp.float32)

    def conv(c_in, c_out):
        return 3 * 3 * c_in * c_out + c_out

    # Each stage: one conv, then two residual blocks of two convs each.
    convs = sum(conv(c_in, c_out) + 4 * conv(c_out, c_out)
                for c_in, c_out in [(4, 16), (16, 32), (32, 32)])
    dense = 11 * 11 * 32 * 256 + 256  # 84 -> 42 -> 21 -> 11 pixels a side
    assert _param_count(params) == convs + dense == 1_089_232


def test_impala_scales_uint8_pixels_to_unit_interval():
    torso, pixels, params, from_uint8 = _setup("impala")
    from_float = torso.apply(params, pixels.astype(jnp.float32) / 255.0)
    np.testing.assert_allclose(from_float, from_uint8, rtol=1e-5, atol=1e-5)


def test_impala_channels_first_from_make_torso_matches_channels_last():
    _, pixels_hwc, params, from_hwc = _setup("impala")
    torso = make_torso(SDS((3, 12, 12), jnp.uint8), **SMALL_IMPALA)
    assert torso.channels_first
    from_chw = torso.apply(params, jnp.transpose(pixels_hwc, (0, 3, 1, 2)))
    np.testing.assert_allclose(from_chw, from_hwc, rtol=1e-5, atol=1e-5)


def test_minigrid_ignores_extra_keys_and_reads_direction():
    torso, observation, params, features = _setup("minigrid_embed")
    with_mission = dict(observation, mission=jnp.zeros((N, 10), jnp.int32))
    apply = jax.jit(torso.apply)
    np.testing.assert_array_equal(apply(params, with_mission), features)
    turned = dict(observation, direction=(observation["direction"] + 1) % 4)
    assert not np.allclose(apply(params, turned), features)


@pytest.mark.parametrize("torso, observation, match", [
    (ImpalaResNet(), jnp.zeros((2, 84, 84), jnp.uint8), "flat batch of images"),
    (ImpalaResNet(), jnp.zeros((2, 8, 8, 3), jnp.int32), "uint8 or floating"),
    (MLPTorso(), jnp.zeros((2, 3, 4)), "flat batch of vectors"),
    (MiniGridEncoder(), {"image": jnp.zeros((2, 7, 7, 3), jnp.uint8)}, "'direction'"),
    (MiniGridEncoder(), {"image": jnp.zeros((2, 7, 7, 3)), "direction": jnp.zeros(2, jnp.int32)},
     "integer codes"),
    (MiniGridEncoder(), {"image": jnp.zeros((2, 3, 3, 3), jnp.uint8),
                         "direction": jnp.zeros(2, jnp.int32)}, "at least 5x5"),
])
def test_torsos_reject_bad_inputs(torso, observation, match):
    with pytest.raises((AssertionError, KeyError, TypeError, ValueError), match=match):
        torso.init(jax.random.key(0), observation)


@pytest.mark.parametrize("kwargs, match", [
    ({"channels": ()}, "ImpalaResNet.channels"),
    ({"output_size": 0}, "ImpalaResNet.output_size"),
])
def test_impala_rejects_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ImpalaResNet(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"cell_encoding": "onehot"}, "cell_encoding must be one of"),
    ({"num_codes": (11, 6)}, "3 counts"),
])
def test_minigrid_rejects_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MiniGridEncoder(**kwargs)


def test_mlp_rejects_empty_hidden_sizes():
    with pytest.raises(ValueError, match="MLPTorso.hidden_sizes"):
        MLPTorso(hidden_sizes=())


MINIGRID_SPEC = {"image": SDS((7, 7, 3), jnp.uint8), "direction": SDS((), jnp.int32),
                 "mission": SDS((32,), jnp.int32)}


@pytest.mark.parametrize("spec, torso_cls, fields", [
    (SDS((4, 84, 84), jnp.uint8), ImpalaResNet, {"channels_first": True}),
    (SDS((84, 84, 4), jnp.uint8), ImpalaResNet, {"channels_first": False}),
    (SDS((64, 64, 3), jnp.uint8), ImpalaResNet, {"channels_first": False}),
    (SDS((4,), jnp.float32), MLPTorso, {}),
    (np.zeros(6, np.float64), MLPTorso, {}),  # an unbatched NumPy observation works too
    (MINIGRID_SPEC, MiniGridEncoder, {}),
])
def test_make_torso_dispatches_on_observation_structure(spec, torso_cls, fields):
    torso = make_torso(spec)
    assert type(torso) is torso_cls
    for name, value in fields.items():
        assert getattr(torso, name) == value


def test_make_torso_forwards_options_and_channels_first_override():
    torso = make_torso(SDS((4, 84, 84), jnp.uint8), channels_first=False, output_size=64,
                       dtype=jnp.bfloat16)
    assert (torso.channels_first, torso.output_size, torso.dtype) == (False, 64, jnp.bfloat16)
    assert make_torso(SDS((3,), jnp.float32), hidden_sizes=(7,)).hidden_sizes == (7,)


@pytest.mark.parametrize("spec, match", [
    (SDS((84, 84), jnp.uint8), r"uint8\[84, 84\]"),
    (SDS((84, 84, 4), jnp.float32), r"float32\[84, 84, 4\]"),
    (SDS((4,), jnp.int32), r"int32\[4\]"),
    ({"image": SDS((7, 7, 3), jnp.uint8)}, r"\{'image': uint8\[7, 7, 3\]\}"),
    ({"image": SDS((7, 7, 3), jnp.float32), "direction": SDS((), jnp.int32)}, "float32"),
    ((SDS((4,), jnp.float32), SDS((4,), jnp.float32)), "cannot encode"),
])
def test_make_torso_names_unsupported_observations(spec, match):
    with pytest.raises(ValueError, match=match) as error:
        make_torso(spec)
    assert "supported observations" in str(error.value)


def test_make_torso_rejects_options_of_another_torso():
    with pytest.raises(ValueError, match=r"MLPTorso .* no option\(s\) \['channels'\]"):
        make_torso(SDS((4,), jnp.float32), channels=(16,))


@pytest.mark.parametrize("shape, expected", [
    ((4, 84, 84), True), ((84, 84, 4), False), ((3, 64, 64), True), ((64, 64, 3), False),
    ((5, 5, 5), False),
])
def test_looks_channels_first(shape, expected):
    assert looks_channels_first(shape) is expected


@pytest.mark.parametrize("spec, kind", [
    (SDS((4, 84, 84), jnp.uint8), PIXELS_CHW),
    (SDS((84, 84, 4), jnp.uint8), PIXELS_HWC),
    (SDS((5, 5, 5), jnp.uint8), PIXELS_HWC),  # a tie reads as channels-last
    (SDS((4,), jnp.float32), VECTOR),
    (MINIGRID_SPEC, MINIGRID),
])
def test_infer_observation_kind(spec, kind):
    assert infer_observation_kind(spec) == kind


def test_infer_observation_kind_names_unsupported_observations():
    with pytest.raises(ValueError, match=r"cannot encode observation int32\[4\]"):
        infer_observation_kind(SDS((4,), jnp.int32))


@pytest.mark.parametrize("spec, kind, torso_cls, fields", [
    (SDS((6, 6, 6), jnp.uint8), PIXELS_CHW, ImpalaResNet, {"channels_first": True}),
    (SDS((6, 6, 6), jnp.uint8), PIXELS_HWC, ImpalaResNet, {"channels_first": False}),
    (SDS((6,), jnp.int32), VECTOR, MLPTorso, {}),  # int vectors are cast to float
    (MINIGRID_SPEC, MINIGRID, MiniGridEncoder, {}),
])
def test_make_torso_builds_the_torso_of_the_kind_given(spec, kind, torso_cls, fields):
    """The kind decides: the spec is not classified again."""
    torso = make_torso(spec, kind)
    assert type(torso) is torso_cls
    for name, value in fields.items():
        assert getattr(torso, name) == value


def test_make_torso_with_a_kind_keeps_a_channels_first_override():
    assert not make_torso(SDS((4, 84, 84), jnp.uint8), PIXELS_CHW, channels_first=False,
                          **SMALL_IMPALA).channels_first


def test_make_torso_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="kind='pixels' is not one of"):
        make_torso(SDS((4,), jnp.float32), "pixels")
    assert set(OBSERVATION_KINDS) == {PIXELS_CHW, PIXELS_HWC, VECTOR, MINIGRID}
