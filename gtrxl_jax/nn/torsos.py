"""Observation torsos: the networks that turn a batch of observations into feature vectors.

A torso maps a flat batch of observations `[N, ...]` (N = T * B) to features `[N, F]` in
float32. The agent applies it to the whole unroll at once, outside any `lax.scan`, because
XLA:CPU runs convolutions inside a scan about 20x slower (jax issue 12868).

Three torsos cover the observation kinds gtrxl_jax's environments produce:

- `ImpalaResNet`: pixels, uint8 `[N, H, W, C]` or `[N, C, H, W]` (Atari, ViZDoom, Procgen),
  the deep residual network of IMPALA (Espeholt et al., 2018, https://arxiv.org/abs/1802.01561).
- `MLPTorso`: flat vectors `[N, F]` (CartPole, the T-maze).
- `MiniGridEncoder`: MiniGrid's dict of a `[N, 7, 7, 3]` grid of integer codes and a `[N]`
  direction.

`make_torso` builds the one for an observation kind (`PIXELS_CHW`, `PIXELS_HWC`, `VECTOR`,
`MINIGRID`). The kind is decided once: an environment names it in its spec
(`gtrxl_jax.envs.EnvSpec.observation_kind`, read from these constants), and a user who has
only an observation spec gets it from `infer_observation_kind`, the one rule that reads a
kind off a spec. An observation spec is the per-environment observation described as a
pytree of `jax.ShapeDtypeStruct`, with no batch dimension, e.g.
`jax.ShapeDtypeStruct((4, 84, 84), jnp.uint8)` for envpool's stacked Atari frames, or
`{"image": jax.ShapeDtypeStruct((7, 7, 3), jnp.uint8),
"direction": jax.ShapeDtypeStruct((), jnp.int32)}` for MiniGrid.

Mixed precision: every torso takes a compute `dtype` (e.g. `jnp.bfloat16`). Inputs and
kernels of its convolutions and matmuls are cast to it, products accumulate in float32
(`preferred_element_type`), parameters stay float32 and the features come out float32.
"""

import functools
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gtrxl_jax.nn import pooling
from gtrxl_jax.nn.conv import conv_general_dilated_matmul_grad, matmul_kernel_grad_by_default
from gtrxl_jax.nn.mlp import relu_layers
from gtrxl_jax.nn.precision import dense_options

ObservationSpec: TypeAlias = jax.ShapeDtypeStruct | Mapping[str, jax.ShapeDtypeStruct]

# The observation kinds a torso exists for (`_TORSO_OF_KIND`, below, maps each to its torso).
PIXELS_CHW = "pixels_chw"  # uint8 [C, H, W] (envpool's Atari, ViZDoom) -> ImpalaResNet
PIXELS_HWC = "pixels_hwc"  # uint8 [H, W, C] (Memory Maze) -> ImpalaResNet
VECTOR = "vector"  # float [D] (classic control, T-maze) -> MLPTorso
MINIGRID = "minigrid"  # {"image": int [H, W, 3], "direction": int []} -> MiniGridEncoder
SUPPORTED_OBSERVATIONS = (
    "uint8 pixels [C, H, W] or [H, W, C], a flat float vector [D], or MiniGrid's dict "
    "(an integer image [H, W, 3] and an integer scalar direction)"
)

# Low-precision inputs with float32 accumulation (Dense layers: `precision.dense_options`);
# XLA:CPU convolutions ran at about float32 speed either way. Float32 accumulation keeps sums
# accurate.
_conv_general_dilated_f32 = functools.partial(
    jax.lax.conv_general_dilated, preferred_element_type=jnp.float32
)

# MiniGrid's codes per cell: object index (< 11), colour index (< 6), state (< 3).
MINIGRID_NUM_CODES = (11, 6, 3)
MINIGRID_NUM_DIRECTIONS = 4
MINIGRID_CELL_ENCODINGS = ("embed", "one_hot")


def _dense(features: int, dtype: Any, name: str | None = None) -> nn.Dense:
    """Make a Dense layer computing in `dtype` with float32 accumulation and float32 params."""
    return nn.Dense(features, name=name, **dense_options(dtype))


def _conv(
    features: int,
    dtype: Any,
    padding: str = "SAME",
    matmul_kernel_grad: bool = False,
    name: str | None = None,
) -> nn.Conv:
    """Make a 3x3 stride-1 convolution computing in `dtype` with float32 accumulation.

    With `matmul_kernel_grad`, its kernel gradient is a matmul of image patches
    (`gtrxl_jax.nn.conv`, faster on XLA:CPU); the forward pass is the same either way.
    """
    return nn.Conv(
        features,
        kernel_size=(3, 3),
        padding=padding,
        dtype=dtype,
        conv_general_dilated=(
            conv_general_dilated_matmul_grad if matmul_kernel_grad else _conv_general_dilated_f32
        ),
        name=name,
    )


def _check_sizes(owner: str, field: str, sizes: Sequence[int]) -> None:
    """Raise ValueError unless `sizes` is a non-empty sequence of positive ints."""
    if (not isinstance(sizes, Sequence) or isinstance(sizes, str) or len(sizes) == 0
            or any(isinstance(size, bool) or not isinstance(size, numbers.Integral) or size <= 0
                   for size in sizes)):
        raise ValueError(
            f"{owner}.{field} must be a non-empty sequence of positive ints, got {sizes!r}."
        )


class ImpalaResidualBlock(nn.Module):
    """IMPALA residual block: x + conv(relu(conv(relu(x)))), both convs 3x3, same width.

    Attributes:
      dtype: compute dtype of the convolutions.
      matmul_kernel_grad: whether the convolutions' kernel gradients are patches matmuls.
    """

    dtype: Any = jnp.float32
    matmul_kernel_grad: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the block.

        Args:
          x: [N, H, W, C] float.

        Returns:
          [N, H, W, C] float32.
        """
        conv = functools.partial(
            _conv, x.shape[-1], self.dtype, matmul_kernel_grad=self.matmul_kernel_grad
        )
        y = conv(name="conv_0")(nn.relu(x))
        y = conv(name="conv_1")(nn.relu(y))
        return x + y


class ImpalaResNet(nn.Module):
    """The deep residual torso of IMPALA (Espeholt et al., 2018, fig. 3 right).

    Per stage: conv 3x3 -> max-pool 3x3 stride 2 -> two residual blocks; then relu, flatten,
    Dense(output_size) and relu. With the default (16, 32, 32) stages an 84x84 input is pooled
    to 42, 21 and 11 pixels a side.

    Attributes:
      channels: output channels of each stage.
      output_size: F, the width of the features.
      channels_first: whether the pixels arrive as [N, C, H, W] (envpool's Atari and ViZDoom
        default) instead of [N, H, W, C]; they are transposed inside the module.
      dtype: compute dtype (e.g. jnp.bfloat16); parameters and features stay float32.
      matmul_kernel_grad: whether the kernel gradients of the convolutions are matmuls of
        image patches (`gtrxl_jax.nn.conv`): faster backward passes on some CPUs, kh*kw
        copies of each activation in memory. None (default): on the CPU backend of a CPU
        without AVX-512 (`conv.matmul_kernel_grad_by_default`).
      elementwise_pool_grad: whether the max-pools' gradients are elementwise masks
        (`gtrxl_jax.nn.pooling`) instead of XLA's select-and-scatter, which XLA:CPU runs
        slowly; the same values either way. None (default): on the CPU backend only.
    """

    channels: Sequence[int] = (16, 32, 32)
    output_size: int = 256
    channels_first: bool = False
    dtype: Any = jnp.float32
    matmul_kernel_grad: bool | None = None
    elementwise_pool_grad: bool | None = None

    def __post_init__(self) -> None:
        _check_sizes("ImpalaResNet", "channels", self.channels)
        _check_sizes("ImpalaResNet", "output_size", (self.output_size,))
        super().__post_init__()

    @nn.compact
    def __call__(self, pixels: jax.Array) -> jax.Array:
        """Encode a batch of images.

        Args:
          pixels: [N, H, W, C] (or [N, C, H, W] when `channels_first`). uint8 pixels are
            scaled to [0, 1] here, inside jit, so they can travel to the device as uint8;
            floating pixels are taken as already scaled.

        Returns:
          features: [N, output_size] float32.
        """
        layout = "[N, C, H, W]" if self.channels_first else "[N, H, W, C]"
        chex.assert_rank(
            pixels,
            4,
            custom_message=(
                f"ImpalaResNet takes a flat batch of images {layout}; merge the time and batch "
                "axes (reshape [T, B, ...] to [T * B, ...]) before the torso."
            ),
        )
        if pixels.dtype != jnp.uint8 and not jnp.issubdtype(pixels.dtype, jnp.floating):
            raise TypeError(f"ImpalaResNet takes uint8 or floating pixels, got {pixels.dtype}.")
        if self.channels_first:
            pixels = jnp.transpose(pixels, (0, 2, 3, 1))
        if pixels.dtype == jnp.uint8:
            x = pixels.astype(jnp.float32) / 255.0
        else:
            x = pixels.astype(jnp.float32)
        matmul_grad = self.matmul_kernel_grad
        if matmul_grad is None:
            matmul_grad = matmul_kernel_grad_by_default()
        pool_grad = self.elementwise_pool_grad
        if pool_grad is None:
            pool_grad = jax.default_backend() == "cpu"
        pool = pooling.max_pool if pool_grad else nn.max_pool
        for i, channels in enumerate(self.channels):
            x = _conv(channels, self.dtype, "SAME", matmul_grad, name=f"stage_{i}_conv")(x)
            x = pool(x, window_shape=(3, 3), strides=(2, 2), padding="SAME")
            for j in range(2):
                x = ImpalaResidualBlock(self.dtype, matmul_grad, name=f"stage_{i}_block_{j}")(x)
        x = nn.relu(x).reshape(x.shape[0], -1)
        return nn.relu(_dense(self.output_size, self.dtype, name="output")(x)).astype(jnp.float32)


class MLPTorso(nn.Module):
    """A multilayer perceptron with a relu after every layer, for vector observations.

    Attributes:
      hidden_sizes: width of each Dense layer; the last is F, the width of the features.
      dtype: compute dtype (e.g. jnp.bfloat16); parameters and features stay float32.
    """

    hidden_sizes: Sequence[int] = (256, 256)
    dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        _check_sizes("MLPTorso", "hidden_sizes", self.hidden_sizes)
        super().__post_init__()

    @nn.compact
    def __call__(self, observation: jax.Array) -> jax.Array:
        """Encode a batch of vectors.

        Args:
          observation: [N, D] float (integer vectors are cast to float as they are).

        Returns:
          features: [N, hidden_sizes[-1]] float32.
        """
        chex.assert_rank(
            observation,
            2,
            custom_message=(
                "MLPTorso takes a flat batch of vectors [N, D]; merge the time and batch axes "
                "(reshape [T, B, D] to [T * B, D]) before the torso."
            ),
        )
        x = relu_layers(observation.astype(jnp.float32), self.hidden_sizes, self.dtype,
                        prefix="dense")
        return x.astype(jnp.float32)


class MiniGridEncoder(nn.Module):
    """Encodes MiniGrid's egocentric grid of integer codes and the agent's direction.

    Each cell's (object, colour, state) codes are embedded (one learned table per code, the
    embeddings concatenated) or one-hot encoded, then go through 3x3 VALID convolutions with
    relu; the flattened grid is concatenated with the one-hot direction and passed through
    Dense(output_size) and relu. A 7x7 grid shrinks to 5x5 then 3x3 with the default convs.

    Attributes:
      output_size: F, the width of the features.
      conv_channels: output channels of each 3x3 VALID convolution.
      cell_encoding: "embed" (learned embeddings of `embed_dim` per code) or "one_hot".
      embed_dim: width of each code's embedding when `cell_encoding` is "embed".
      num_codes: how many values each of the three codes takes (object, colour, state).
      num_directions: how many values the direction takes.
      dtype: compute dtype (e.g. jnp.bfloat16); parameters and features stay float32.
    """

    output_size: int = 256
    conv_channels: Sequence[int] = (32, 64)
    cell_encoding: str = "embed"
    embed_dim: int = 8
    num_codes: Sequence[int] = MINIGRID_NUM_CODES
    num_directions: int = MINIGRID_NUM_DIRECTIONS
    dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        if self.cell_encoding not in MINIGRID_CELL_ENCODINGS:
            raise ValueError(
                f"MiniGridEncoder.cell_encoding must be one of "
                f"{MINIGRID_CELL_ENCODINGS}, got {self.cell_encoding!r}."
            )
        if len(self.num_codes) != 3:
            raise ValueError(
                "MiniGridEncoder.num_codes must give 3 counts (object, colour, "
                f"state), got {self.num_codes!r}."
            )
        _check_sizes("MiniGridEncoder", "num_codes", self.num_codes)
        _check_sizes("MiniGridEncoder", "conv_channels", self.conv_channels)
        _check_sizes("MiniGridEncoder", "output_size", (self.output_size,))
        _check_sizes("MiniGridEncoder", "embed_dim", (self.embed_dim,))
        _check_sizes("MiniGridEncoder", "num_directions", (self.num_directions,))
        super().__post_init__()

    @nn.compact
    def __call__(self, observation: Mapping[str, jax.Array]) -> jax.Array:
        """Encode a batch of MiniGrid observations.

        Codes outside their range are not checked (values cannot be, inside jit): an embedded
        out-of-range code comes out NaN, a one-hot one comes out all zeros.

        Args:
          observation: a mapping with
            "image": [N, H, W, 3] integer codes (object, colour, state) per cell, H and W at
              least 2 * len(conv_channels) + 1 (7x7 in MiniGrid);
            "direction": [N] integer in [0, num_directions).
            Other keys (e.g. "mission") are ignored.

        Returns:
          features: [N, output_size] float32.
        """
        if "image" not in observation or "direction" not in observation:
            raise KeyError(
                "MiniGridEncoder takes a mapping with 'image' and 'direction', got "
                f"keys {sorted(observation)}."
            )
        image, direction = observation["image"], observation["direction"]
        chex.assert_rank(
            [image, direction],
            [4, 1],
            custom_message=(
                "MiniGridEncoder takes image [N, H, W, 3] and direction [N]; merge the time and "
                "batch axes (reshape [T, B, ...] to [T * B, ...]) before the torso."
            ),
        )
        chex.assert_type(
            [image, direction],
            int,
            custom_message=("MiniGrid's image and direction hold integer codes."),
        )
        chex.assert_axis_dimension(
            image,
            3,
            3,
            custom_message=("MiniGrid's image has 3 codes per cell (object, colour, state)."),
        )
        chex.assert_equal_shape_prefix([image, direction], 1)
        min_side = 2 * len(self.conv_channels) + 1
        if min(image.shape[1:3]) < min_side:
            raise ValueError(
                f"MiniGridEncoder's {len(self.conv_channels)} VALID 3x3 convs need "
                f"a grid of at least {min_side}x{min_side}, got {image.shape[1:3]}."
            )

        codes = image.astype(jnp.int32)
        if self.cell_encoding == "embed":
            cells = [
                nn.Embed(count, self.embed_dim, dtype=self.dtype, name=f"embed_{name}")(
                    codes[..., k]
                )
                for k, (name, count) in enumerate(
                    zip(("object", "colour", "state"), self.num_codes, strict=True)
                )
            ]
        else:
            cells = [
                jax.nn.one_hot(codes[..., k], count, dtype=self.dtype)
                for k, count in enumerate(self.num_codes)
            ]
        x = jnp.concatenate(cells, axis=-1)
        for i, channels in enumerate(self.conv_channels):
            x = nn.relu(_conv(channels, self.dtype, padding="VALID", name=f"conv_{i}")(x))
        x = x.reshape(x.shape[0], -1)
        heading = jax.nn.one_hot(direction, self.num_directions, dtype=x.dtype)
        x = jnp.concatenate([x, heading], axis=-1)
        return nn.relu(_dense(self.output_size, self.dtype, name="output")(x)).astype(jnp.float32)


Torso: TypeAlias = ImpalaResNet | MLPTorso | MiniGridEncoder
_TORSO_OF_KIND: dict[str, type[nn.Module]] = {
    PIXELS_CHW: ImpalaResNet,
    PIXELS_HWC: ImpalaResNet,
    VECTOR: MLPTorso,
    MINIGRID: MiniGridEncoder,
}
OBSERVATION_KINDS = tuple(_TORSO_OF_KIND)


def _describe(spec: Any) -> str:
    """Describe an observation spec in short, e.g. "uint8[84, 84, 4]" or a dict of those."""
    if isinstance(spec, Mapping):
        return "{" + ", ".join(f"{key!r}: {_describe(value)}" for key, value in spec.items()) + "}"
    if hasattr(spec, "shape") and hasattr(spec, "dtype"):
        return f"{np.dtype(spec.dtype).name}{list(spec.shape)}"
    return repr(spec)


def looks_channels_first(shape: Sequence[int]) -> bool:
    """Guess whether a per-environment image shape [A, B, C] is channels-first.

    The channel axis is taken to be the smaller end axis: [4, 84, 84] (envpool's Atari) is
    channels-first, [84, 84, 4] and [64, 64, 3] (Procgen) are channels-last; a tie reads as
    channels-last. `infer_observation_kind` decides PIXELS_CHW or PIXELS_HWC by it.

    Args:
      shape: the image's shape without the batch axis, rank 3.

    Returns:
      True when the first axis looks like the channel axis.
    """
    if len(shape) != 3:
        raise ValueError(f"looks_channels_first takes a rank-3 image shape, got {tuple(shape)}.")
    return shape[0] < shape[-1]


def _is_minigrid(spec: Any) -> bool:
    """Tell whether `spec` is MiniGrid's: integer image [H, W, 3], integer scalar direction."""
    if not isinstance(spec, Mapping) or "image" not in spec or "direction" not in spec:
        return False
    image, direction = spec["image"], spec["direction"]
    if not all(hasattr(leaf, "shape") and hasattr(leaf, "dtype") for leaf in (image, direction)):
        return False
    return (
        len(image.shape) == 3
        and image.shape[-1] == 3
        and np.issubdtype(np.dtype(image.dtype), np.integer)
        and len(direction.shape) == 0
        and np.issubdtype(np.dtype(direction.dtype), np.integer)
    )


def infer_observation_kind(observation_spec: ObservationSpec) -> str:
    """Read the observation kind off an observation spec (the one rule that does).

    Args:
      observation_spec: the observation of one environment, without the batch axis, as a
        pytree of `jax.ShapeDtypeStruct` (anything with `.shape` and `.dtype` works, e.g. one
        unbatched NumPy observation):
        - rank-3 uint8 [C, H, W] or [H, W, C] -> PIXELS_CHW or PIXELS_HWC, by
          `looks_channels_first`;
        - rank-1 floating [D] -> VECTOR;
        - a dict with integer "image" [H, W, 3] and integer scalar "direction" (other keys
          such as "mission" are ignored) -> MINIGRID.

    Returns:
      One of OBSERVATION_KINDS.

    Raises:
      ValueError: if the spec is none of the supported observations.
    """
    if _is_minigrid(observation_spec):
        return MINIGRID
    if not isinstance(observation_spec, Mapping) and hasattr(observation_spec, "shape"):
        shape, dtype = tuple(observation_spec.shape), np.dtype(observation_spec.dtype)
        if len(shape) == 3 and dtype == np.uint8:
            return PIXELS_CHW if looks_channels_first(shape) else PIXELS_HWC
        if len(shape) == 1 and np.issubdtype(dtype, np.floating):
            return VECTOR
    raise ValueError(
        f"make_torso cannot encode observation {_describe(observation_spec)}; supported "
        f"observations (per environment, no batch axis): {SUPPORTED_OBSERVATIONS}."
    )


def make_torso(
    observation_spec: ObservationSpec, kind: str | None = None, **options: Any
) -> Torso:
    """Build the torso for an observation kind.

    Args:
      observation_spec: the observation of one environment, without the batch axis, as a
        pytree of `jax.ShapeDtypeStruct` (named in messages).
      kind: one of OBSERVATION_KINDS, as the environment decided it
        (`EnvSpec.observation_kind`): PIXELS_CHW or PIXELS_HWC -> `ImpalaResNet` (with
        `channels_first` set from the kind unless given in `options`), VECTOR ->
        `MLPTorso`, MINIGRID -> `MiniGridEncoder`. None: `infer_observation_kind` reads it
        off the spec. The torso checks its inputs against the kind when it is applied.
      **options: fields of the chosen torso (e.g. `dtype=jnp.bfloat16`, `output_size=512`).

    Returns:
      An unbound torso module mapping observations [N, ...] to features [N, F] float32.

    Raises:
      ValueError: if the kind is unknown, the spec matches none of the supported kinds (with
        no kind given), or an option is not a field of the torso chosen.
    """
    if kind is None:
        kind = infer_observation_kind(observation_spec)
    if kind not in _TORSO_OF_KIND:
        raise ValueError(f"make_torso: kind={kind!r} is not one of {OBSERVATION_KINDS}.")
    torso_cls = _TORSO_OF_KIND[kind]
    if torso_cls is ImpalaResNet:
        options.setdefault("channels_first", kind == PIXELS_CHW)
    fields = [name for name in torso_cls.__dataclass_fields__ if name not in ("parent", "name")]
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ValueError(
            f"make_torso chose {torso_cls.__name__} for observation "
            f"{_describe(observation_spec)}, which has no option(s) {unknown}; "
            f"its options are {fields}."
        )
    return torso_cls(**options)
