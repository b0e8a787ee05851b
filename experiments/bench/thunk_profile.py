"""Where a compiled step's time goes: seconds per XLA:CPU thunk, from jax.profiler's trace.

Profiles one of three steps and prints the thunks (fusions, dots, convolutions, copies) that
take the most time per call, each with its output shape and the operations it fuses, and
the time per kind of thunk. It found the max-pool gradients' iotas and reduce-windows in
the pixel learner (docs/performance.md, "The IMPALA torso's gradients").

    python experiments/bench/thunk_profile.py act      # cached acting step, reference core
    python experiments/bench/thunk_profile.py learn    # the core's fwd+bwd, T 32, B 32
    python experiments/bench/thunk_profile.py pixel    # the pixel learner's whole update

On a busy machine the times stretch, but their shares still point at the slow thunks.
"""

import argparse
import collections
import glob
import gzip
import json
import re
import tempfile

import jax
import jax.numpy as jnp
from pixel_update import pixel_learner  # this script's neighbour (its directory is on sys.path)

from gtrxl_jax.bench import WORKLOADS
from gtrxl_jax.bench.core import make_problem
from gtrxl_jax.nn.gtrxl import GTrXL


def act_step():
    """The cached acting step (T = 1, B 32, memory donated) and a call that runs it."""
    config = WORKLOADS["reference"].core
    problem = make_problem(config, 1, 32)
    memory = problem.core.apply(problem.params, problem.memory, method=GTrXL.refresh_cache)
    step = jax.jit(problem.core.apply, donate_argnums=3)
    state = {"memory": memory}

    def call():
        outputs, state["memory"] = step(problem.params, problem.inputs, problem.first,
                                        state["memory"])
        return outputs

    return step.lower(problem.params, problem.inputs, problem.first, memory), call


def learn_step():
    """The core's forward and backward over [32, 32] from a full memory."""
    workload = WORKLOADS["reference"]
    problem = make_problem(workload.core, workload.unroll, workload.batch)

    def loss(params):
        outputs, _ = problem.core.apply(params, problem.inputs, problem.first, problem.memory)
        return jnp.mean(jnp.square(outputs))

    grad = jax.jit(jax.grad(loss))
    return grad.lower(problem.params), lambda: grad(problem.params)


def pixel_step():
    """The pixel learner's update: Pong, feed-forward core, T 20, B 16 (`pixel_update.py`)."""
    _, learner, batch = pixel_learner([])
    state = {"learner": learner.replicate(learner.init_state(jax.random.PRNGKey(0)))}

    def call():
        state["learner"], metrics = learner.update(state["learner"], batch)
        return metrics

    return learner.lower(state["learner"], batch), call


STEPS = {"act": act_step, "learn": learn_step, "pixel": pixel_step}


def thunk_times(call, calls: int) -> collections.Counter:
    """Milliseconds per call of each traced event over `calls` profiled calls."""
    for _ in range(2):
        jax.block_until_ready(call())
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
            for _ in range(calls):
                result = call()
            jax.block_until_ready(result)
        (path,) = glob.glob(f"{trace_dir}/**/*.trace.json.gz", recursive=True)
        with gzip.open(path) as f:
            events = json.load(f)["traceEvents"]
    times = collections.Counter()
    for event in events:
        if event.get("ph") == "X":
            times[event["name"]] += event.get("dur", 0) / 1e3 / calls
    return times


def describe(hlo_text: str) -> dict[str, str]:
    """Each instruction's output shape and, for a fusion, the operations it fuses."""
    bodies, current = {}, None
    for line in hlo_text.splitlines():
        header = re.match(r"%?([\w.\-]+) .*\{\s*$", line)
        if header and not line.startswith(" "):
            current = bodies.setdefault(header.group(1), [])
        elif current is not None:
            current.append(line)
    descriptions = {}
    for line in hlo_text.splitlines():
        match = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = (\S+) ([\w\-]+)\(", line)
        if match:
            name, shape, op = match.groups()
            called = re.search(r"calls=%?([\w.\-]+)", line)
            ops = collections.Counter(re.findall(
                r"= \S+ ([\w\-]+)\(", "\n".join(bodies.get(called.group(1), []) if called else [])))
            ops.pop("parameter", None)
            fused = ", ".join(f"{o} x{n}" for o, n in ops.most_common(4))
            descriptions[name] = f"{shape[:40]:40s} {op}{': ' + fused if fused else ''}"
    return descriptions


def main() -> None:
    """Profile the chosen step and print its slowest thunks and the time per thunk kind."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=sorted(STEPS))
    parser.add_argument("--calls", type=int, default=20, help="profiled calls")
    parser.add_argument("--top", type=int, default=30, help="thunks to list")
    args = parser.parse_args()
    lowered, call = STEPS[args.step]()
    descriptions = describe(lowered.compile().as_text())
    times = thunk_times(call, args.calls)
    thunks = {name: ms for name, ms in times.items() if name in descriptions}
    print(f"{len(thunks)} thunks, {sum(thunks.values()):.2f} ms per call in all "
          "(thunks may overlap on several cores)")
    for name, ms in sorted(thunks.items(), key=lambda item: -item[1])[: args.top]:
        print(f"{ms:9.3f} ms  {name:30s} {descriptions[name]}")
    kinds = collections.Counter()
    for name, ms in thunks.items():
        kinds[name.split(".")[0]] += ms
    print("per kind:", ", ".join(f"{kind} {ms:.2f} ms" for kind, ms in kinds.most_common(12)))


if __name__ == "__main__":
    main()
