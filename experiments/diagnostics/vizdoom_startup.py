"""Reproduce (or rule out) envpool's ViZDoom start-up hang, one attempt at a time.

Each attempt starts a fresh child Python process (its own session, so the whole tree can
be inspected and killed) that makes an envpool ViZDoom pool with the options gtrxl_jax
uses (84x84 RGB, 4 stacked frames, `use_combined_action=True`), resets it, takes a few
random steps and closes it. The child prints a time-stamped line at each stage. The
parent waits up to `--timeout` seconds; on a time-out, before killing the child, it
records:

- the process tree of the child's session (`ps --forest`, with each process's state and
  kernel wait channel), including the vizdoom game processes envpool starts (or a forked
  child that never reached `exec`);
- per process: /proc/<pid>/status, cmdline, exe, wchan, every thread's name, state,
  wchan, and (as root) kernel stack, and its open files and sockets (/proc/<pid>/fd);
- native stacks of every thread (`gdb -batch -ex "thread apply all bt"`) when gdb is
  installed and `--no-gdb` is not given;
- the child's Python stacks (faulthandler, registered on SIGUSR1 in the child);
- the ViZDoom shared-memory / message-queue objects in /dev/shm.

Usage (from the repository root, with the virtualenv active):

    python experiments/diagnostics/vizdoom_startup.py --attempts 5 --num-envs 2
    python experiments/diagnostics/vizdoom_startup.py --attempts 5 --cwd shared
    python experiments/diagnostics/vizdoom_startup.py --attempts 3 --num-threads 1 \
        --task HealthGathering-v1 --timeout 60 --evidence-dir /tmp/vizdoom_evidence

    # the project's own ViZDoom tests on 2 xdist workers, as scripts/test.sh runs them:
    python experiments/diagnostics/vizdoom_startup.py --attempts 2 --timeout 90 \
        --pytest "-n 2 -q -p no:cacheprovider tests/envs/test_envpool_env.py"

The last line printed is a summary: counts of ok / hung / failed and each attempt's
seconds. `--jsonl FILE` appends one JSON record per attempt.
"""

import argparse
import datetime
import glob
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

STAGE_PREFIX = "STAGE"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ---------------------------------------------------------------------------- child side


def child_log(stage: str, t0: float) -> None:
    """Print one time-stamped stage line for the parent (flushed at once)."""
    print(f"{STAGE_PREFIX} {time.monotonic() - t0:8.3f}s pid={os.getpid()} {stage}", flush=True)


def child_options(args: argparse.Namespace) -> dict:
    """Return the envpool options of the child's pool (as gtrxl_jax's wrapper passes them)."""
    options = dict(
        num_envs=args.num_envs,
        batch_size=args.batch_size or args.num_envs,
        seed=args.seed,
        img_height=84,
        img_width=84,
        use_combined_action=True,
        max_episode_steps=args.max_episode_steps,
    )
    if args.num_threads is not None:
        options["num_threads"] = args.num_threads
    return options


def warm_up_jax(t0: float) -> None:
    """Import JAX and run one computation, so XLA's thread pools exist (as under pytest)."""
    import jax
    import jax.numpy as jnp

    jax.block_until_ready(jnp.ones((64, 64)) @ jnp.ones((64, 64)))
    child_log(f"jax warmed up ({threading_count()} threads)", t0)


def threading_count() -> int:
    """Return the number of OS threads of this process."""
    return len(os.listdir("/proc/self/task"))


def run_pool(args: argparse.Namespace, k: int, t0: float) -> None:
    """Make one ViZDoom pool, reset it, step it `args.steps` times, close it."""
    import envpool
    import numpy as np

    options = child_options(args)
    child_log(f"pool {k}: make_gymnasium {args.task} {options}", t0)
    pool = envpool.make_gymnasium(args.task, **options)
    child_log(f"pool {k}: made ({threading_count()} threads)", t0)
    rng = np.random.default_rng(args.seed + k)
    pool.reset()
    child_log(f"pool {k}: reset", t0)
    n = pool.action_space.n
    for _ in range(args.steps):
        pool.step(rng.integers(0, n, size=args.num_envs).astype(np.int32))
    child_log(f"pool {k}: stepped {args.steps}", t0)
    pool.close()
    child_log(f"pool {k}: closed", t0)


def run_child(args: argparse.Namespace) -> None:
    """One attempt: optionally warm up JAX, then run `args.pools` pools one after another."""
    import faulthandler

    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    t0 = time.monotonic()
    child_log(f"cwd={os.getcwd()} affinity={sorted(os.sched_getaffinity(0))}", t0)
    import envpool

    child_log(f"imported envpool {envpool.__version__}", t0)
    if args.with_jax:
        warm_up_jax(t0)
    for k in range(args.pools):
        run_pool(args, k, t0)
    print("CHILD_OK", flush=True)


# --------------------------------------------------------------------------- parent side


def read_text(path: str) -> str:
    """Read a small text file, returning the error's text instead of raising."""
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError as error:
        return f"<{error}>"


def session_pids(sid: int) -> list[int]:
    """Return the pids of every process in session `sid` (the child and its descendants)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getsid(int(entry)) == sid:
                pids.append(int(entry))
        except OSError:
            pass
    return sorted(pids)


def describe_process(pid: int) -> str:
    """Return /proc facts of one process: status, cmdline, exe, threads' wchan/stack, fds."""
    base = f"/proc/{pid}"
    lines = [f"===== pid {pid} ====="]
    lines.append("cmdline: " + read_text(f"{base}/cmdline").replace("\0", " "))
    try:
        lines.append("exe: " + os.readlink(f"{base}/exe"))
    except OSError as error:
        lines.append(f"exe: <{error}>")
    status = read_text(f"{base}/status")
    keep = ("Name", "State", "Tgid", "PPid", "Threads", "SigBlk", "SigCgt", "VmRSS")
    lines += [l for l in status.splitlines() if l.split(":")[0] in keep]
    lines.append("wchan: " + read_text(f"{base}/wchan"))
    for task in sorted(glob.glob(f"{base}/task/*"), key=lambda p: int(os.path.basename(p))):
        tid = os.path.basename(task)
        comm = read_text(f"{task}/comm").strip()
        stat = read_text(f"{task}/stat")
        state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
        wchan = read_text(f"{task}/wchan").strip()
        syscall = read_text(f"{task}/syscall").strip().split(" ")[0]
        lines.append(f"  thread {tid:>7} {comm:<16} state={state} wchan={wchan} syscall#={syscall}")
        kstack = read_text(f"{task}/stack").strip()
        if kstack and not kstack.startswith("<"):
            lines += ["      " + l for l in kstack.splitlines()[:8]]
    lines.append("fds:")
    for fd in sorted(glob.glob(f"{base}/fd/*"), key=lambda p: int(os.path.basename(p))):
        try:
            lines.append(f"  {os.path.basename(fd)} -> {os.readlink(fd)}")
        except OSError:
            pass
    return "\n".join(lines)


def run_cmd(cmd: list[str], timeout: float = 60) -> str:
    """Run a command and return its stdout+stderr (or why it failed)."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return done.stdout + done.stderr
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"<{' '.join(cmd)}: {error}>"


def native_stacks(pid: int) -> str:
    """Return gdb's backtrace of every thread of `pid` (empty if gdb is not installed)."""
    if shutil.which("gdb") is None:
        return "<gdb not installed>"
    return run_cmd(["gdb", "-p", str(pid), "-batch", "-nx", "-ex", "set pagination off",
                    "-ex", "info threads", "-ex", "thread apply all bt 30"], timeout=90)


def vizdoom_shm() -> list[str]:
    """Return the ViZDoom shared-memory and message-queue objects in /dev/shm."""
    return sorted(n for n in os.listdir("/dev/shm") if "vizdoom" in n.lower())


def capture_evidence(child: subprocess.Popen, stderr_path: str, use_gdb: bool,
                     python_stacks: bool = True) -> str:
    """Collect the hung child's process tree, /proc state, native and Python stacks."""
    parts = [f"captured at {datetime.datetime.now().isoformat(timespec='seconds')}"]
    pids = session_pids(child.pid)
    parts.append("---- ps (session of the child) ----")
    parts.append(run_cmd(["ps", "-o", "pid,ppid,stat,wchan:32,etime,time,cmd", "--forest",
                          "-s", str(child.pid)]))
    parts.append("---- /dev/shm ViZDoom objects ----\n" + "\n".join(vizdoom_shm()))
    parts += ["---- /proc ----"] + [describe_process(p) for p in pids]
    if use_gdb:
        for pid in pids:
            parts.append(f"---- gdb: native stacks of pid {pid} ----")
            parts.append(native_stacks(pid))
    if not python_stacks:
        parts.append("---- Python stacks: see the .stderr file (faulthandler_timeout) ----")
        return "\n".join(parts)
    parts.append("---- Python stacks of the child (faulthandler on SIGUSR1) ----")
    before = len(read_text(stderr_path))
    try:
        os.kill(child.pid, signal.SIGUSR1)
    except OSError as error:
        parts.append(f"<SIGUSR1: {error}>")
    time.sleep(2.0)
    parts.append(read_text(stderr_path)[before:])
    return "\n".join(parts)


def watch_children(children: list, timeout: float, interval: float = 0.05) -> tuple:
    """Wait for all children up to `timeout` s, noting each new process of their sessions.

    Returns:
      (return codes, None for a child still running at the time-out;
       list of (seconds after start, pid, cmdline) of the processes seen).
    """
    t0, seen, spawned = time.monotonic(), set(), []
    while time.monotonic() - t0 < timeout:
        if all(c.poll() is not None for c in children):
            break
        for child in children:
            for pid in session_pids(child.pid):
                if pid not in seen:
                    seen.add(pid)
                    cmd = read_text(f"/proc/{pid}/cmdline").replace("\0", " ").strip()
                    spawned.append((round(time.monotonic() - t0, 3), pid, cmd))
        time.sleep(interval)
    return [c.poll() for c in children], spawned


def instance_ids(spawned: list) -> list[str]:
    """Return the +viz_instance_id of each vizdoom process seen."""
    ids = []
    for _, _, cmd in spawned:
        words = cmd.split()
        if "+viz_instance_id" in words:
            ids.append(words[words.index("+viz_instance_id") + 1])
    return ids


def kill_session(child: subprocess.Popen) -> None:
    """SIGKILL the child's whole session (the child and the game processes it started)."""
    for pid in session_pids(child.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    child.wait()


def attempt_dir(args: argparse.Namespace, index: int) -> tuple[str, bool]:
    """Return the working directory of an attempt and whether it must be deleted after."""
    if args.cwd == "shared":
        os.makedirs(args.shared_dir, exist_ok=True)
        return args.shared_dir, False
    return tempfile.mkdtemp(prefix=f"vizdoom_attempt{index}_"), True


def child_command(args: argparse.Namespace) -> list[str]:
    """Return the command line that runs this script as a child with the same options.

    With `--pytest ARGS` the child is `python -m pytest ARGS` instead (run from the
    repository root with GTRXL_TEST_VIZDOOM=1), with pytest's faulthandler_timeout set so
    each (xdist worker) process prints its Python stacks before the time-out.
    """
    if args.pytest:
        return [sys.executable, "-m", "pytest", *shlex.split(args.pytest),
                "-o", f"faulthandler_timeout={max(5, int(args.timeout) - 20)}"]
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--task", args.task,
           "--num-envs", str(args.num_envs), "--steps", str(args.steps),
           "--seed", str(args.seed), "--max-episode-steps", str(args.max_episode_steps),
           "--pools", str(args.pools)]
    if args.with_jax:
        cmd.append("--with-jax")
    if args.num_threads is not None:
        cmd += ["--num-threads", str(args.num_threads)]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    return (["taskset", "-c", args.taskset] + cmd) if args.taskset else cmd


def run_attempt(args: argparse.Namespace, index: int) -> dict:
    """Run `args.parallel` children at once with a time-out; on a hang capture evidence.

    A hung child's evidence is written before its session is killed. The attempt is
    "hung" if any child hung, "failed" if any child exited non-zero, else "ok".
    """
    os.makedirs(args.evidence_dir, exist_ok=True)
    shm_before = vizdoom_shm()
    t0 = time.monotonic()
    children, dirs, stems, files = [], [], [], []
    for j in range(args.parallel):
        cwd, cleanup = (REPO_ROOT, False) if args.pytest else attempt_dir(args, index)
        dirs.append((cwd, cleanup))
        stem = os.path.join(args.evidence_dir, f"{args.label}_attempt{index}"
                            + (f"_child{j}" if args.parallel > 1 else ""))
        stems.append(stem)
        out, err = open(stem + ".stdout", "w"), open(stem + ".stderr", "w")
        files += [out, err]
        env = dict(os.environ, GTRXL_TEST_VIZDOOM="1") if args.pytest else None
        children.append(subprocess.Popen(child_command(args), cwd=cwd, stdout=out, stderr=err,
                                         start_new_session=True, env=env))
    rcs, spawned = watch_children(children, args.timeout)
    outcomes, stages = [], []
    for child, rc, stem in zip(children, rcs, stems, strict=True):
        if rc is None:
            outcomes.append("hung")
            with open(stem + ".evidence.txt", "w") as f:
                f.write(capture_evidence(child, stem + ".stderr", args.gdb,
                                         python_stacks=not args.pytest))
            kill_session(child)
        else:
            ok = rc == 0 and (args.pytest or "CHILD_OK" in read_text(stem + ".stdout"))
            outcomes.append("ok" if ok else "failed")
        lines = [l for l in read_text(stem + ".stdout").splitlines() if l.startswith(STAGE_PREFIX)]
        stages.append(lines[-1] if lines else None)
    for f in files:
        f.close()
    seconds = time.monotonic() - t0
    outcome = "hung" if "hung" in outcomes else "failed" if "failed" in outcomes else "ok"
    leaked = sorted(set(vizdoom_shm()) - set(shm_before))
    with open(stems[0] + ".spawned.txt", "w") as f:
        f.writelines(f"{t:8.3f}s pid={pid} {cmd}\n" for t, pid, cmd in spawned)
    ids = instance_ids(spawned)
    for cwd, cleanup in dirs:
        if cleanup:
            shutil.rmtree(cwd, ignore_errors=True)
    return dict(label=args.label, attempt=index, outcome=outcome, child_outcomes=outcomes,
                rc=rcs, seconds=round(seconds, 2), last_stage=stages,
                games_seen=len(ids), duplicate_instance_ids=len(ids) - len(set(ids)),
                game_start_times=[t for t, _, c in spawned if "+viz_instance_id" in c],
                leaked_shm=leaked, cwd_mode=args.cwd, num_envs=args.num_envs,
                num_threads=args.num_threads, task=args.task, taskset=args.taskset,
                pools=args.pools, with_jax=args.with_jax, parallel=args.parallel,
                pytest=args.pytest,
                load=os.getloadavg()[0])


def run_parent(args: argparse.Namespace) -> None:
    """Run `args.attempts` attempts one after another and print a summary."""
    results = []
    for index in range(args.attempts):
        result = run_attempt(args, index)
        results.append(result)
        print(json.dumps(result), flush=True)
        if args.jsonl:
            with open(args.jsonl, "a") as f:
                f.write(json.dumps(result) + "\n")
        if index + 1 < args.attempts:
            time.sleep(args.pause)
    counts = {k: sum(r["outcome"] == k for r in results) for k in ("ok", "hung", "failed")}
    print(f"SUMMARY {args.label}: {counts} seconds={[r['seconds'] for r in results]}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="MyWayHome-v1")
    p.add_argument("--num-envs", type=int, default=2)
    p.add_argument("--num-threads", type=int, default=None,
                   help="envpool's num_threads (default: envpool's own, 0)")
    p.add_argument("--batch-size", type=int, default=0, help="default: num_envs")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-episode-steps", type=int, default=10)
    p.add_argument("--pools", type=int, default=1,
                   help="pools made one after another in each attempt's child")
    p.add_argument("--with-jax", action="store_true",
                   help="import JAX and run a computation in the child first (as pytest does)")
    p.add_argument("--parallel", type=int, default=1,
                   help="children started at once per attempt (2 mimics pytest -n 2)")
    p.add_argument("--pytest", default="",
                   help="run `python -m pytest ARGS` (GTRXL_TEST_VIZDOOM=1) as the child instead")
    p.add_argument("--attempts", type=int, default=3)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per attempt")
    p.add_argument("--pause", type=float, default=2.0, help="seconds between attempts")
    p.add_argument("--cwd", choices=("fresh", "shared"), default="fresh",
                   help="a fresh temp dir per attempt, or one shared dir (--shared-dir)")
    p.add_argument("--shared-dir", default=os.path.join(tempfile.gettempdir(), "vizdoom_shared"))
    p.add_argument("--taskset", default="",
                   help="CPU list to pin the child to (taskset -c), e.g. 0")
    p.add_argument("--no-gdb", dest="gdb", action="store_false",
                   help="do not attach gdb to a hung process")
    p.add_argument("--evidence-dir", default=os.path.join(tempfile.gettempdir(),
                                                          "vizdoom_evidence"))
    p.add_argument("--label", default="run", help="prefix of the evidence files")
    p.add_argument("--jsonl", default="", help="append one JSON line per attempt here")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main() -> None:
    """Run as the parent (attempts) or, with --child, as one attempt's child."""
    args = parse_args()
    if args.child:
        run_child(args)
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
