"""Where an acting step's time goes: the cached act step, one core setting changed at a time.

Times `gtrxl-bench`'s act measurement (T = 1, B 32, the memory donated) on the reference
core and on variants of it, each given as config overrides (as `gtrxl-train` takes them; a
key without a dot is a field of agent.transformer). The differences show what a part costs:
fewer layers the cost per layer, the input gate (1 projection) the GRU gate's 6, a narrow
model with the same number of operations the per-operation overhead.

    python experiments/bench/act_breakdown.py
    python experiments/bench/act_breakdown.py --vary memory_len=512 --vary gate=highway
"""

import argparse
import dataclasses
import json

from gtrxl_jax.bench import WORKLOADS, Session
from gtrxl_jax.bench.core import measure_act
from gtrxl_jax.config import AgentConfig, TrainConfig, apply_overrides
from gtrxl_jax.nn.config import GTrXLConfig

DEFAULT_VARIANTS = ("num_layers=1", "gate=input", "agent.core=trxl_i", "d_model=64,d_ff=256")


def variant_core(reference: GTrXLConfig, text: str) -> tuple[list[str], GTrXLConfig]:
    """The overrides of "key=value,..." and the core they make of `reference`.

    Typed and validated as the training config's own overrides are.
    """
    overrides = [item if "." in item.split("=")[0] else f"agent.transformer.{item}"
                 for item in text.split(",") if item]
    base = TrainConfig(agent=AgentConfig(core=reference.variant, transformer=reference))
    return overrides, apply_overrides(base, overrides).agent.transformer


def main() -> None:
    """Prints one JSON line per variant: its overrides and the act step's median time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vary", action="append", help="comma-separated key=value overrides "
                        f"of one variant (repeatable; default: {' '.join(DEFAULT_VARIANTS)})")
    parser.add_argument("--act-repeats", type=int, default=40)
    args = parser.parse_args()
    reference = WORKLOADS["reference"]
    session = Session(reference, act_repeats=args.act_repeats)
    for text in ("", *(args.vary or DEFAULT_VARIANTS)):
        overrides, core = variant_core(reference.core, text)
        record = measure_act(session, dataclasses.replace(reference, core=core), cached=True)
        print(json.dumps({"overrides": overrides, "median_ms": record["median_s"] * 1e3,
                          "cpu_median_ms": record["cpu_median_s"] * 1e3,
                          "flops": record["flops"]}), flush=True)


if __name__ == "__main__":
    main()
