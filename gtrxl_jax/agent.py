"""The agent: torso + memory core + policy/value heads, as pure functions of explicit state.

    agent = Agent(observation_spec, num_actions, core_config, observation_kind="vector")
    params = agent.init(key)
    state = agent.initial_state(batch_size)
    outputs, state = agent.unroll(params, inputs, state)                    # [T, B] (learning)
    outputs, state = agent.unroll(params, inputs, state, segment_len=32)    # K segments, scanned
    outputs, state = agent.step(params, step_inputs, state)                 # [B] (acting)

The torso runs once over the whole [T * B] batch, outside any scan (XLA:CPU runs
convolutions inside `lax.scan` ~20x slower); only the core carries state through time.
"""

import dataclasses
import functools
from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import linen as nn
from flax import struct

from gtrxl_jax.nn.config import CoreConfig, GTrXLConfig, check_positive_int, resolve_dtype
from gtrxl_jax.nn.cores import init_memory, make_core
from gtrxl_jax.nn.gtrxl import GTrXL
from gtrxl_jax.nn.heads import VALUE_LAYER, ObservationDecoder, PolicyValueHead
from gtrxl_jax.nn.precision import dense_options
from gtrxl_jax.nn.segments import scan_segments
from gtrxl_jax.nn.torsos import VECTOR, infer_observation_kind, make_torso


@struct.dataclass
class AgentInput:
    """What the agent sees at each step, time-major [T, B] (or [B] for one acting step).

    Attributes:
      observation: pytree of arrays [T, B, ...] (uint8 pixels are scaled inside jit).
      first: [T, B] bool, True on an episode's first step.
      prev_action: [T, B] int32, the action taken at the previous step (ignored on first steps).
      prev_reward: [T, B] float32, the reward received on entering this step.
    """

    observation: Any
    first: jax.Array
    prev_action: jax.Array
    prev_reward: jax.Array

    @classmethod
    def at(cls, timestep: Any, prev_action: jax.Array) -> "AgentInput":
        """The input at a timestep reached by `prev_action` [B].

        `timestep` is anything with observation, first and reward [B] (host or JAX
        environments' timesteps); its reward is the one received on entering the step.
        """
        return cls(observation=timestep.observation, first=timestep.first,
                   prev_action=prev_action, prev_reward=timestep.reward)


@struct.dataclass
class AgentOutput:
    """The agent's outputs, time-major.

    Attributes:
      logits: [T, B, A] float32 policy logits.
      values: [T, B, N] float32 state values, one per task (N = 1 for a single task); an
        environment's own value is `losses.select_task_values(values, task_ids)` [T, B].
      reconstruction: [T, B, O] float32, each step's observation decoded from the core's
        output, for an agent with `decode_observations`; None otherwise.
    """

    logits: jax.Array
    values: jax.Array
    reconstruction: jax.Array | None = None


class Embedding(nn.Module):
    """Torso features, plus the previous action (one-hot) and reward, projected to the core width.

    Attributes:
      torso: the observation torso (maps [N, ...] to [N, F]).
      num_actions: A.
      width: the core's input width.
      use_prev_action_reward: feed the previous action and reward to the core (IMPALA, GTrXL).
      dtype: compute dtype of the projection.
    """

    torso: nn.Module
    num_actions: int
    width: int
    use_prev_action_reward: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, inputs: AgentInput) -> jax.Array:
        """Embeds inputs [T, B, ...] into [T, B, width] float32."""
        T, B = inputs.first.shape
        flat = jax.tree.map(lambda x: x.reshape((T * B, *x.shape[2:])), inputs.observation)
        features = [self.torso(flat).reshape(T, B, -1)]
        if self.use_prev_action_reward:
            not_first = (~inputs.first)[..., None]
            features.append(jax.nn.one_hot(inputs.prev_action, self.num_actions) * not_first)
            features.append(inputs.prev_reward.astype(jnp.float32)[..., None] * not_first)
        x = jnp.concatenate(features, axis=-1)
        return nn.relu(nn.Dense(self.width, **dense_options(self.dtype))(x))


@dataclasses.dataclass(frozen=True)
class Agent:
    """An actor-critic agent over any core, with explicit parameters and state.

    Attributes:
      observation_spec: one environment's observation (no batch axis), a pytree of
        jax.ShapeDtypeStruct, e.g. `EnvSpec.observation`.
      num_actions: A, the number of discrete actions.
      core_config: GTrXLConfig, LSTMConfig or FeedForwardConfig.
      observation_kind: which torso reads the observations, one of
        `gtrxl_jax.nn.torsos.OBSERVATION_KINDS`, e.g. `EnvSpec.observation_kind`; None reads
        it off the spec (`gtrxl_jax.nn.torsos.infer_observation_kind`).
      torso_options: options of the torso `make_torso` builds for the kind (e.g. output_size).
      use_prev_action_reward: feed the previous action and reward to the core.
      head_hidden_sizes: a shared MLP before the policy and value outputs.
      num_tasks: N, the number of tasks the agent is trained on: the value head has one
        output per task (multi-task PopArt, Hessel et al. 2018); the policy is shared.
      decode_observations: add an `ObservationDecoder` on the core's output (parameters
        "decoder"; `AgentOutput.reconstruction`), for an auxiliary reconstruction loss.
        Vector observations only.
    """

    observation_spec: Any
    num_actions: int
    core_config: CoreConfig
    observation_kind: str | None = None
    torso_options: tuple[tuple[str, Any], ...] = ()
    use_prev_action_reward: bool = True
    head_hidden_sizes: tuple[int, ...] = ()
    num_tasks: int = 1
    decode_observations: bool = False

    def __post_init__(self):
        check_positive_int("Agent.num_actions", self.num_actions)
        check_positive_int("Agent.num_tasks", self.num_tasks)
        self.embedding  # noqa: B018  (builds the torso now: a bad spec fails before any work)
        if self.decode_observations:
            self.decoder  # noqa: B018  (refuses a non-vector observation now)

    @functools.cached_property
    def _dtype(self) -> Any:
        return resolve_dtype("core_config", "dtype", getattr(self.core_config, "dtype", "float32"))

    @functools.cached_property
    def embedding(self) -> Embedding:
        """The torso and input projection module."""
        torso = make_torso(
            self.observation_spec, self.observation_kind, **dict(self.torso_options)
        )
        return Embedding(
            torso,
            self.num_actions,
            self.core_config.output_dim,
            self.use_prev_action_reward,
            self._dtype,
        )

    @functools.cached_property
    def core(self) -> nn.Module:
        """The memory core module."""
        return make_core(self.core_config)

    @functools.cached_property
    def head(self) -> PolicyValueHead:
        """The policy/value head module."""
        return PolicyValueHead(
            self.num_actions, self.head_hidden_sizes, dtype=self._dtype, num_tasks=self.num_tasks
        )

    @functools.cached_property
    def decoder(self) -> ObservationDecoder:
        """The observation decoder module (for an agent with `decode_observations`)."""
        kind = self.observation_kind or infer_observation_kind(self.observation_spec)
        if kind != VECTOR:
            raise ValueError(
                "Decoding observations (loss.reconstruction_cost > 0) needs a vector "
                f"observation [O]; this task's observations are {kind!r}. "
                "Set loss.reconstruction_cost=0.")
        return ObservationDecoder(self.observation_spec.shape[0], dtype=self._dtype)

    def initial_state(self, batch_size: int, cache: bool = False):
        """The core's initial state for `batch_size` environments (batch on axis 0 of every leaf).

        Args:
          batch_size: B.
          cache: GTrXL only: allocate the acting cache, for actors (see `refresh_state`).
        """
        return init_memory(self.core_config, batch_size, cache=cache)

    def dummy_inputs(self, T: int, B: int) -> AgentInput:
        """Zero inputs [T, B] that match the observation spec (for init and compilation)."""
        observation = jax.tree.map(
            lambda s: jnp.zeros((T, B, *s.shape), s.dtype), self.observation_spec
        )
        return AgentInput(
            observation=observation,
            first=jnp.ones((T, B), bool),
            prev_action=jnp.zeros((T, B), jnp.int32),
            prev_reward=jnp.zeros((T, B), jnp.float32),
        )

    def init(self, key: jax.Array) -> dict:
        """Initial parameters {"embedding", "core", "head"} (and "decoder" if it decodes)."""
        k1, k2, k3 = jax.random.split(key, 3)
        inputs = self.dummy_inputs(1, 1)
        embedding_params = self.embedding.init(k1, inputs)
        x = self.embedding.apply(embedding_params, inputs)
        core_params = self.core.init(k2, x, inputs.first, self.initial_state(1))
        features = jnp.zeros((1, 1, self.core_config.output_dim))
        params = {"embedding": embedding_params, "core": core_params,
                  "head": self.head.init(k3, features)}
        if self.decode_observations:
            params["decoder"] = self.decoder.init(jax.random.fold_in(key, 3), features)
        return params

    def unroll(
        self, params: dict, inputs: AgentInput, state, segment_len: int | None = None
    ) -> tuple[AgentOutput, Any]:
        """Runs the agent over N steps, carrying the core state.

        With `segment_len`, the core runs as a `lax.scan` over the N // segment_len full
        segments (the memory the scan's carry, under stop_gradient between segments as in
        Transformer-XL), then one call for any remaining steps; compute and activation memory
        then grow linearly in N. The outputs equal a single call's over all N steps (the
        gradients do not: they stop at segment boundaries; see `nn.segments.scan_segments`).

        Args:
          params: from `init`.
          inputs: AgentInput [N, B, ...].
          state: the core state at step 0 (from `initial_state` or a trajectory).
          segment_len: T, the core's segment length; None runs one call over all N steps.

        Returns:
          AgentOutput (logits [N, B, A], values [N, B, num_tasks], reconstruction of the
          observations [N, B, ...] when the agent decodes them, else None) and the core state
          after step N-1.
        """
        self._check_inputs(inputs, ("T", "B"), "unroll")
        x = self.embedding.apply(params["embedding"], inputs)
        core_fn = functools.partial(self.core.apply, params["core"])
        y, state = scan_segments(core_fn, x, inputs.first, state, segment_len)
        logits, values = self.head.apply(params["head"], y)
        reconstruction = (self.decoder.apply(params["decoder"], y) if self.decode_observations
                          else None)
        return AgentOutput(logits=logits, values=values, reconstruction=reconstruction), state

    def step(self, params: dict, inputs: AgentInput, state) -> tuple[AgentOutput, Any]:
        """One acting step: inputs [B, ...] -> AgentOutput (logits [B, A], values [B, N]), state.

        Jit it with the state donated (`jax.jit(agent.step, donate_argnums=2)`): a GTrXL
        memory is then updated in place, one slot per step. The state comes back in ring
        order; `snapshot_state` gives it oldest first, as the learner reads it.
        """
        self._check_inputs(inputs, ("B",), "step (one step of B environments)")
        batched = jax.tree.map(lambda a: a[None], inputs)
        outputs, state = self.unroll(params, batched, state)
        return jax.tree.map(lambda a: a[0], outputs), state

    def _check_inputs(self, inputs: AgentInput, lead_axes: tuple[str, ...], call: str) -> None:
        """Checks inputs against the observation spec.

        Args:
          inputs: the AgentInput given to `call`.
          lead_axes: the names of the leading axes every field has, ("T", "B") or ("B",).
          call: the method checked, for the messages.

        Raises:
          AssertionError (chex) for a `first` of the wrong rank or dtype; ValueError for a
          field whose shape does not fit `first`'s and the observation spec.
        """
        lead = f"[{', '.join(lead_axes)}]"
        chex.assert_rank(inputs.first, len(lead_axes),
                         custom_message=f"Agent.{call}: first must be {lead}.")
        chex.assert_type(inputs.first, bool, custom_message=f"first must be bool {lead}.")
        shape = inputs.first.shape
        for name in ("prev_action", "prev_reward"):
            field = getattr(inputs, name)
            if field.shape != shape:
                raise ValueError(f"{name} has shape {field.shape}; expected {lead} = {shape}, "
                                 "like first.")
        spec_paths = jax.tree_util.tree_flatten_with_path(self.observation_spec)[0]
        observations, treedef = jax.tree_util.tree_flatten(inputs.observation)
        if len(observations) != len(spec_paths):
            raise ValueError(f"observation has the structure {treedef}; the observation_spec "
                             f"has {jax.tree.structure(self.observation_spec)}.")
        for (path, spec), observation in zip(spec_paths, observations, strict=True):
            needed = (*shape, *spec.shape)
            if observation.shape != needed:
                raise ValueError(
                    f"observation{jax.tree_util.keystr(path)} has shape {observation.shape}; "
                    f"the observation_spec {spec.shape} needs {lead} + {spec.shape} = {needed}.")

    def refresh_state(self, params: dict, state):
        """Recomputes the acting cache of a GTrXL state under `params` (other cores: as is)."""
        if isinstance(self.core_config, GTrXLConfig) and state.cache is not None:
            return self.core.apply(params["core"], state, method=GTrXL.refresh_cache)
        return state

    @staticmethod
    def snapshot_state(state):
        """The state as a trajectory stores it for the learner (`CoreState.snapshot`).

        Oldest first, no acting cache, in buffers of its own, so a jitted step that donates
        `state` cannot overwrite it.
        """
        return state.snapshot()

    @staticmethod
    def value_layer(params: dict) -> dict:
        """The value output layer's parameters, {"kernel": [D, N], "bias": [N]} (for PopArt)."""
        return params["head"]["params"][VALUE_LAYER]

    @staticmethod
    def with_value_layer(params: dict, layer: dict) -> dict:
        """`params` with the value output layer replaced by `layer` (a new tree; no copy)."""
        head = params["head"]
        return {**params, "head": {**head, "params": {**head["params"], VALUE_LAYER: layer}}}
