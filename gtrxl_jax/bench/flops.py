"""Analytic FLOP counts of the GTrXL core (matmuls only, one multiply-add = 2 FLOPs).

For one call over T steps of B sequences (N = T B queries, S = M + T keys, D = d_model,
A = H Dh the attention width, F = d_ff, L layers), each layer costs
  query               2 N D A          segment keys/values   2 N D 2A
  memory keys/values  2 B M D 2A       (0 when read from the acting cache)
  positions W_R R     2 (M+1) D A      content scores        2 N S A
  position scores     2 N (M+1) A      weighted values       2 N S A
  output projection   2 N A D          MLP                   2 N D F * 2
  gates (GTrXL)       2 gates * 2 N D D * P, P = D x D projections per gate
                      (`nn.gates.GATES[gate].matmuls`; GRU 3 + 2 + 1: W_r W_z W_g, U_r U_z,
                      U_g)
The learner's update (forward and backward) counts 3x the forward for every matmul whose
input carries a gradient (forward, input gradient, weight gradient) and 2x for the memory's
key/value projection and the position projection, whose inputs (the memory under
stop_gradient, the fixed sinusoids) carry none. It slightly over-counts the first layer, whose
input gradient XLA prunes. Softmax, layer norms and gate nonlinearities are not counted, as
usual for model FLOP utilisation; XLA's cost analysis, reported beside, counts everything.
"""

from gtrxl_jax.nn.config import GTrXLConfig
from gtrxl_jax.nn.gates import GATES

_INPUT_WITHOUT_GRADIENT = ("memory_keys_values", "positions")


def projection_shapes(config: GTrXLConfig, T: int, B: int,
                      cached: bool) -> dict[str, list[tuple[int, int, int]]]:
    """The dense projections of one layer's forward call over [T, B], as (m, k, n) matmuls.

    m rows of width k times a [k, n] kernel; the gates' are `GATES[gate].matmuls`, for each
    of the block's two gates.
    """
    M, D, F = config.memory_len, config.d_model, config.resolved_d_ff
    A = config.num_heads * config.resolved_head_dim
    N = T * B
    gate_widths = GATES[config.gate].matmuls if config.variant == "gtrxl" else ()
    return {
        "query": [(N, D, A)],
        "segment_keys_values": [(N, D, 2 * A)],
        "memory_keys_values": [] if cached else [(B * M, D, 2 * A)],
        "positions": [(M + 1, D, A)],
        "output": [(N, A, D)],
        "mlp": [(N, D, F), (N, F, D)],
        "gates": [(N, D, width * D) for width in gate_widths] * 2,
    }


def forward_terms(config: GTrXLConfig, T: int, B: int, cached: bool) -> dict[str, int]:
    """FLOPs of each matmul of one forward call over [T, B], summed over the L layers."""
    M, A = config.memory_len, config.num_heads * config.resolved_head_dim
    N, S = T * B, M + T
    per_layer = {name: sum(2 * m * k * n for m, k, n in shapes)
                 for name, shapes in projection_shapes(config, T, B, cached).items()}
    per_layer.update({
        "content_scores": 2 * N * S * A,
        "position_scores": 2 * N * (M + 1) * A,
        "weighted_values": 2 * N * S * A,
    })
    return {name: config.num_layers * flops for name, flops in per_layer.items()}


def forward_flops(config: GTrXLConfig, T: int, B: int, cached: bool = False) -> int:
    """FLOPs of one forward call (an acting step is T = 1)."""
    return sum(forward_terms(config, T, B, cached).values())


def learn_flops(config: GTrXLConfig, T: int, B: int) -> int:
    """FLOPs of one learner update: forward and backward over [T, B] from a given memory."""
    terms = forward_terms(config, T, B, cached=False)
    return sum(
        flops * (2 if name in _INPUT_WITHOUT_GRADIENT else 3) for name, flops in terms.items()
    )
