"""Where an acting step's time goes: the cached act step, one core setting changed at a time.

Times `gtrxl-bench`'s act measurement (T = 1, B 32, the memory donated) on the reference
core and on variants of it, each changing the listed GTrXLConfig fields. The differences
show what a part costs: fewer layers the cost per layer, the input gate (1 projection) the
GRU gate's 6, a narrow model with the same number of operations the per-operation overhead.

    python experiments/bench/act_breakdown.py
    python experiments/bench/act_breakdown.py --vary memory_len=512 --vary gate=highway
"""

import argparse
import dataclasses
import json

from gtrxl_jax.bench import WORKLOADS, Session
from gtrxl_jax.bench.core import measure_act

DEFAULT_VARIANTS = ("num_layers=1", "gate=input", "variant=trxl_i", "d_model=64,d_ff=256")


def parse_changes(text: str) -> dict[str, int | str]:
    """"a=1,b=x" -> {"a": 1, "b": "x"} (integers where they parse)."""
    changes = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        changes[name.strip()] = int(value) if value.strip().lstrip("-").isdigit() else value.strip()
    return changes


def main() -> None:
    """Prints one JSON line per variant: its changes and the act step's median seconds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vary", action="append", help="comma-separated field=value changes "
                        f"of one variant (repeatable; default: {' '.join(DEFAULT_VARIANTS)})")
    parser.add_argument("--act-repeats", type=int, default=40)
    args = parser.parse_args()
    reference = WORKLOADS["reference"]
    session = Session(reference, act_repeats=args.act_repeats)
    for text in ("", *(args.vary or DEFAULT_VARIANTS)):
        changes = parse_changes(text) if text else {}
        core = dataclasses.replace(reference.core, **changes)
        record = measure_act(session, dataclasses.replace(reference, core=core), cached=True)
        print(json.dumps({"changes": changes, "median_ms": record["median_s"] * 1e3,
                          "cpu_median_ms": record["cpu_median_s"] * 1e3,
                          "flops": record["flops"]}), flush=True)


if __name__ == "__main__":
    main()
