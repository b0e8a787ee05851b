"""Where a compiled step's time goes: milliseconds per XLA thunk or GPU kernel, from a trace.

Profiles one of three steps and prints the thunks (fusions, dots, convolutions, copies; on a
GPU the kernels, each under the HLO instruction it runs) that take the most time per call,
each with its output shape and the operations it fuses, and the time per kind. It found the
max-pool gradients' iotas and reduce-windows in the pixel learner (docs/performance.md, "The
IMPALA torso's gradients").

    python experiments/bench/thunk_profile.py act      # cached acting step, reference core
    python experiments/bench/thunk_profile.py learn    # the core's fwd+bwd, T 32, B 32
    python experiments/bench/thunk_profile.py pixel    # the pixel learner's whole update
    python experiments/bench/thunk_profile.py on_device --task RepeatFirstMedium
                                           # the memory suite's on-device update, one seed
    python experiments/bench/thunk_profile.py learn --config paper --dtype bfloat16 \
        --calls 5 --keep-trace learn.json.gz                 # on a GPU; then, anywhere:
    python experiments/bench/thunk_profile.py learn --from-trace learn.json.gz --calls 5

On a busy machine the times stretch, but their shares still point at the slow thunks.
"""

import argparse
import collections
import functools
import glob
import gzip
import json
import re
import shutil
import tempfile

import jax
import jax.numpy as jnp

from gtrxl_jax.bench import WORKLOADS
from gtrxl_jax.bench.core import make_problem
from gtrxl_jax.bench.workloads import Workload
from gtrxl_jax.nn.gtrxl import GTrXL


def act_step(workload: Workload):
    """The cached acting step (T = 1, the workload's batch, memory donated) and its call."""
    problem = make_problem(workload.core, 1, workload.batch)
    memory = problem.core.apply(problem.params, problem.memory, method=GTrXL.refresh_cache)
    step = jax.jit(problem.core.apply, donate_argnums=3)
    state = {"memory": memory}

    def call():
        outputs, state["memory"] = step(problem.params, problem.inputs, problem.first,
                                        state["memory"])
        return outputs

    return step.lower(problem.params, problem.inputs, problem.first, memory), call


def learn_step(workload: Workload):
    """The core's forward and backward over the workload's [T, B] from a full memory."""
    problem = make_problem(workload.core, workload.unroll, workload.batch)

    def loss(params):
        outputs, _ = problem.core.apply(params, problem.inputs, problem.first, problem.memory)
        return jnp.mean(jnp.square(outputs))

    grad = jax.jit(jax.grad(loss))
    return grad.lower(problem.params), lambda: grad(problem.params)


def pixel_step(workload: Workload):
    """The pixel learner's update: Pong, feed-forward core, T 20, B 16 (`pixel_update.py`).

    Its shapes are fixed: the workload is not used.
    """
    del workload
    # The script's neighbour (its directory is on sys.path); it needs the training stack.
    from pixel_update import pixel_learner

    _, learner, batch = pixel_learner([])
    state = {"learner": learner.replicate(learner.init_state(jax.random.PRNGKey(0)))}

    def call():
        state["learner"], metrics = learner.update(state["learner"], batch)
        return metrics

    return learner.lower(state["learner"], batch), call


def on_device_step(workload: Workload, task: str):
    """The memory suite's on-device update (GTrXL, one seed) of a task: rollout and learning.

    Its model, memory and batch are the suite's for the task: the workload is not used.
    """
    del workload
    from gtrxl_jax.suite.suites import SUITES, expand
    from gtrxl_jax.train import builder
    from gtrxl_jax.train.on_device import OnDevice

    # The runs' folders are named, never written: nothing here trains or logs.
    (spec,) = expand(SUITES["memory"], tempfile.gettempdir(), tasks=(task,),
                     variants=("gtrxl_gru",), seeds=(0,))
    config = spec.config
    layout, env_spec = builder.check_config(config, writable_log_dir=False)
    agent = builder.make_agent(config, env_spec, num_tasks=1)
    program = OnDevice.for_config(config, agent, layout, jax.devices()[:1])
    runner = program.init(jax.random.PRNGKey(0), 0)
    update = program.compile_update(runner)
    state = {"runner": runner}

    def call():
        state["runner"], metrics = update(state["runner"])
        return metrics

    return update.lower(runner), call


STEPS = {"act": act_step, "learn": learn_step, "pixel": pixel_step, "on_device": on_device_step}


def phases(hlo_text: str) -> dict[str, str]:
    """Each instruction's part of a training step, from the JAX names in its metadata.

    The parts: "acting" (the rollout's scan), "cache refresh", "learner forward" and
    "learner backward"; an instruction without such a name has none.
    """
    parts = {}
    for match in re.finditer(r'^\s*(?:ROOT )?%?([\w.\-]+) = .*op_name="([^"]*)"', hlo_text,
                             re.M):
        name, op = match.groups()
        if "refresh_cache" in op:
            parts[name] = "cache refresh"
        elif "transpose(jvp" in op:
            parts[name] = "learner backward"
        elif "jvp(" in op:
            parts[name] = "learner forward"
        elif "/while/body/" in op:
            parts[name] = "acting"
    return parts


def trace_events(call, calls: int, keep: str | None) -> list[dict]:
    """The trace events of `calls` profiled calls (after two unprofiled ones).

    Args:
      call: runs the step once and returns its outputs.
      calls: how many calls the trace covers.
      keep: where to copy the trace (a .json.gz Perfetto can open), or None.
    """
    for _ in range(2):
        jax.block_until_ready(call())
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
            for _ in range(calls):
                result = call()
            jax.block_until_ready(result)
        (path,) = glob.glob(f"{trace_dir}/**/*.trace.json.gz", recursive=True)
        if keep:
            shutil.copyfile(path, keep)
        with gzip.open(path) as f:
            return json.load(f)["traceEvents"]


def thunk_times(events: list[dict], calls: int) -> collections.Counter:
    """Milliseconds per call of each HLO instruction (CPU thunk or GPU kernels).

    On a GPU, only the device's stream events count (the host's launches overlap them), and
    each kernel counts under the HLO instruction it runs (its `hlo_op`), so a fusion that
    launches several kernels is one entry; kernels replayed in a command buffer (a CUDA
    graph) count under their own names, which XLA derives from their fusions'.
    """
    def named(kind: str) -> dict:
        return {(e["pid"], e.get("tid")): e.get("args", {}).get("name", "")
                for e in events if e.get("ph") == "M" and e.get("name") == kind}

    device_pids = {pid for (pid, _), name in named("process_name").items()
                   if "/device:GPU" in name}
    streams = {key for key, name in named("thread_name").items()
               if key[0] in device_pids and name.startswith("Stream")}
    times = collections.Counter()
    for event in events:
        if event.get("ph") != "X":
            continue
        if device_pids and event["pid"] not in device_pids:
            continue
        if streams and (event["pid"], event.get("tid")) not in streams:
            continue
        name = event.get("args", {}).get("hlo_op", event["name"])
        if name.startswith("command_buffer"):  # kernels replayed in a CUDA graph
            name = re.sub(r"_(\d+)$", r".\1", event["name"])  # kernel a_b_7 runs a_b.7
        times[name] += event.get("dur", 0) / 1e3 / calls
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


def kind(name: str) -> str:
    """A thunk's kind: its HLO name without the number; cuBLAS's kernels as one."""
    return "cublas" if name.startswith(("nvjet", "sm90_xmma", "cutlass")) else name.split(".")[0]


def report(times: collections.Counter, descriptions: dict[str, str] | None, top: int,
           parts: dict[str, str] | None = None) -> None:
    """Prints the slowest thunks, the time per kind and per part of the step.

    The parts are `phases`' (instructions without one count as "other"); with no HLO,
    every event counts.
    """
    thunks = {name: ms for name, ms in times.items()
              if descriptions is None or name in descriptions}
    print(f"{len(thunks)} thunks, {sum(thunks.values()):.2f} ms per call in all (on a CPU "
          "thunks may overlap on several cores)")
    if descriptions is not None:
        others = sorted(((ms, name) for name, ms in times.items() if name not in thunks),
                        reverse=True)
        print(f"events not in the step's HLO: {sum(ms for ms, _ in others):.2f} ms per call; "
              + ", ".join(f"{name[:60]} {ms:.3f}" for ms, name in others[:8]))
    for name, ms in sorted(thunks.items(), key=lambda item: -item[1])[:top]:
        print(f"{ms:9.3f} ms  {name:30s} {(descriptions or {}).get(name, '')}")
    kinds = collections.Counter()
    for name, ms in thunks.items():
        kinds[kind(name)] += ms
    print("per kind:", ", ".join(f"{k} {ms:.2f} ms" for k, ms in kinds.most_common(16)))
    if parts:
        by_part = collections.Counter()
        for name, ms in thunks.items():
            by_part[parts.get(name, "other")] += ms
        print("per part:", ", ".join(f"{p} {ms:.2f} ms" for p, ms in by_part.most_common()))


def main() -> None:
    """Profile the chosen step (or read a kept trace) and report where its time goes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=sorted(STEPS))
    parser.add_argument("--config", choices=sorted(WORKLOADS), default="reference",
                        help="the workload of act and learn")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--keep-trace", help="copy the trace (.json.gz, for Perfetto) here")
    parser.add_argument("--keep-hlo", help="write the compiled step's HLO text here")
    parser.add_argument("--from-trace", help="report on a kept trace of --calls calls of the "
                        "step instead of running it (e.g. one brought back from a GPU)")
    parser.add_argument("--task", default="RepeatFirstMedium",
                        help="the memory suite's task whose update on_device profiles")
    parser.add_argument("--calls", type=int, default=20, help="profiled calls")
    parser.add_argument("--top", type=int, default=30, help="thunks to list")
    args = parser.parse_args()
    if args.from_trace:
        with gzip.open(args.from_trace) as f:
            report(thunk_times(json.load(f)["traceEvents"], args.calls), None, args.top)
        return
    make_step = STEPS[args.step]
    if args.step == "on_device":
        make_step = functools.partial(make_step, task=args.task)
    lowered, call = make_step(WORKLOADS[args.config].with_dtype(args.dtype))
    hlo_text = lowered.compile().as_text()
    if args.keep_hlo:
        with open(args.keep_hlo, "w") as f:
            f.write(hlo_text)
    print(f"{jax.default_backend()}, {args.step}, {args.config}, {args.dtype}:")
    report(thunk_times(trace_events(call, args.calls, args.keep_trace), args.calls),
           describe(hlo_text), args.top, phases(hlo_text))


if __name__ == "__main__":
    main()
