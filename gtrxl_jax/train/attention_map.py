"""Where a transformer agent looks: its attention weights over one episode, as arrays and a plot.

    weights = attention_weights(agent, params, episode.inputs)   # [L, T, T]
    plot_attention(weights, "attention.png", title="TMaze-L3, update 1000")

The episode (`recording.record_episodes`) is unrolled in one call from an empty memory, which
equals the steps the agent took (the memory contract). Each attention layer sows its weights
[B, H, T, M + T] when asked (`mutable="intermediates"`, `nn/attention.py`); with an empty
memory, key M + j is the episode's step j and the memory's keys get no weight.
"""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from gtrxl_jax.agent import Agent, AgentInput
from gtrxl_jax.nn.config import GTrXLConfig


def has_attention(agent: Agent) -> bool:
    """Whether the agent's core attends (GTrXL, TrXL, TrXL-I), unlike an LSTM or none."""
    return isinstance(agent.core_config, GTrXLConfig)


def attention_weights(agent: Agent, params: dict, inputs: AgentInput) -> np.ndarray:
    """Each layer's attention over one episode, averaged over heads.

    Args:
      agent: a transformer agent (`has_attention`).
      params: its parameters.
      inputs: AgentInput [T, 1], one episode from its first step (first[0] True).

    Returns:
      float32 [L, T, T]: entry [l, i, j] is the weight that layer l's query at step i puts
      on step j (0 for j > i and for steps beyond the memory's reach, j < i - M).
    """
    if not has_attention(agent):
        raise ValueError(f"The agent's core ({type(agent.core_config).__name__}) has no "
                         "attention; attention maps need a GTrXL, TrXL or TrXL-I core.")
    if inputs.first.shape[1] != 1 or not inputs.first[0, 0]:
        raise ValueError(f"inputs must be one episode from its first step, [T, 1]; got first "
                         f"of shape {inputs.first.shape} starting with {inputs.first[0]}.")
    x = agent.embedding.apply(params["embedding"], inputs)
    _, variables = agent.core.apply(params["core"], x, inputs.first, agent.initial_state(1),
                                    mutable="intermediates")
    memory_len = agent.core_config.memory_len
    layers = [variables["intermediates"][f"block_{l}"]["attention"]["weights"][0]
              for l in range(agent.core_config.num_layers)]  # each [1, H, T, M + T]
    return np.stack([np.asarray(w[0, :, :, memory_len:]).mean(axis=0) for w in layers])


def image_formats() -> tuple[str, ...]:
    """The suffixes `plot_attention` can write (".png", ".pdf", ...)."""
    return tuple(f".{kind}" for kind in Figure().canvas.get_supported_filetypes())


def plot_attention(weights: np.ndarray, path: str | Path, *, title: str) -> None:
    """Save one heat map per layer, [query step x key step], as an image file.

    Args:
      weights: [L, T, T] from `attention_weights`.
      path: the image file (its suffix picks the format: .png, .pdf, .svg).
      title: the figure's title (the run, the checkpoint, the episode).
    """
    num_layers, steps, _ = weights.shape
    size = min(3.0 + steps / 8, 8.0)
    figure = Figure(figsize=(max(size * num_layers + 1.5, 6.5), size + 1.0),
                    layout="constrained")
    axes = figure.subplots(1, num_layers, squeeze=False)[0]
    for layer, ax in enumerate(axes):
        image = ax.imshow(weights[layer], cmap="viridis", vmin=0.0, vmax=1.0,
                          interpolation="nearest")
        ax.set_title(f"layer {layer}")
        ax.set_xlabel("key step (attended to)")
        ax.set_ylabel("query step")
    figure.colorbar(image, ax=list(axes), label="attention weight (mean over heads)")
    figure.suptitle(title, fontsize="medium")
    figure.savefig(path, dpi=120)
