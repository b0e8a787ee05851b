import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gtrxl_jax.envs.counter_keys import derive_key, mix32, stream_keys


def test_numpy_and_jax_derive_the_same_keys():
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**32, size=(100, 2), dtype=np.uint32)
    counters = rng.integers(0, 2**32, size=100, dtype=np.uint32)
    expected = derive_key(keys, counters)
    assert expected.dtype == np.uint32 and expected.shape == (100, 2)
    np.testing.assert_array_equal(jax.jit(derive_key)(jnp.asarray(keys), counters), expected)
    np.testing.assert_array_equal(jax.vmap(derive_key)(jnp.asarray(keys), counters), expected)


def test_mix32_is_a_bijection_on_a_sample_and_spreads_the_low_bit():
    x = np.arange(2**16, dtype=np.uint32)
    mixed = mix32(x)
    assert len(np.unique(mixed)) == x.size
    assert 0.49 < (mixed & 1).mean() < 0.51


def test_streams_differ_by_env_and_seed_and_repeat_by_seed():
    streams = stream_keys(3, 1000)
    assert streams.shape == (1000, 2) and streams.dtype == np.uint32
    assert len({tuple(row) for row in streams.tolist()}) == 1000
    np.testing.assert_array_equal(streams, stream_keys(3, 1000))
    assert not (stream_keys(4, 1000) == streams).all(axis=1).any()
    episodes = derive_key(np.repeat(streams[:1], 1000, axis=0), np.arange(1000))
    assert len({tuple(row) for row in episodes.tolist()}) == 1000


@pytest.mark.parametrize("seed, num_envs, message", [(-1, 2, "seed"), (2**31, 2, "seed"),
                                                     (0, 0, "num_envs")])
def test_bad_seed_or_count_is_refused(seed, num_envs, message):
    with pytest.raises(ValueError, match=message):
        stream_keys(seed, num_envs)
