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

The last line printed is a summary: counts of ok / hung / failed and each attempt's
seconds. `--jsonl FILE` appends one JSON record per attempt.
"""

import argparse
import datetime
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

STAGE_PREFIX = "STAGE"


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


def run_child(args: argparse.Namespace) -> None:
    """Make one ViZDoom pool, reset it, step it `args.steps` times, close it."""
    import faulthandler

    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    t0 = time.monotonic()
    child_log(f"cwd={os.getcwd()}", t0)
    import envpool
    import numpy as np

    child_log(f"imported envpool {envpool.__version__}", t0)
    options = child_options(args)
    child_log(f"make_gymnasium {args.task} {options}", t0)
    pool = envpool.make_gymnasium(args.task, **options)
    child_log("made", t0)
    rng = np.random.default_rng(args.seed)
    pool.reset()
    child_log("reset", t0)
    n = pool.action_space.n
    for i in range(args.steps):
        pool.step(rng.integers(0, n, size=args.num_envs).astype(np.int32))
    child_log(f"stepped {args.steps}", t0)
    pool.close()
    child_log("closed", t0)
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


def capture_evidence(child: subprocess.Popen, stderr_path: str, use_gdb: bool) -> str:
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
    parts.append("---- Python stacks of the child (faulthandler on SIGUSR1) ----")
    before = len(read_text(stderr_path))
    try:
        os.kill(child.pid, signal.SIGUSR1)
    except OSError as error:
        parts.append(f"<SIGUSR1: {error}>")
    time.sleep(2.0)
    parts.append(read_text(stderr_path)[before:])
    return "\n".join(parts)


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
    """Return the command line that runs this script as a child with the same options."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--task", args.task,
           "--num-envs", str(args.num_envs), "--steps", str(args.steps),
           "--seed", str(args.seed), "--max-episode-steps", str(args.max_episode_steps)]
    if args.num_threads is not None:
        cmd += ["--num-threads", str(args.num_threads)]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    return (["taskset", "-c", args.taskset] + cmd) if args.taskset else cmd


def run_attempt(args: argparse.Namespace, index: int) -> dict:
    """Run one child with a time-out; on a hang capture evidence, then kill it."""
    cwd, cleanup = attempt_dir(args, index)
    os.makedirs(args.evidence_dir, exist_ok=True)
    stem = os.path.join(args.evidence_dir, f"{args.label}_attempt{index}")
    stdout_path, stderr_path = stem + ".stdout", stem + ".stderr"
    shm_before = vizdoom_shm()
    t0 = time.monotonic()
    with open(stdout_path, "w") as out, open(stderr_path, "w") as err:
        child = subprocess.Popen(child_command(args), cwd=cwd, stdout=out, stderr=err,
                                 start_new_session=True)
        try:
            rc = child.wait(timeout=args.timeout)
            outcome = "ok" if rc == 0 and "CHILD_OK" in read_text(stdout_path) else "failed"
        except subprocess.TimeoutExpired:
            rc, outcome = None, "hung"
            with open(stem + ".evidence.txt", "w") as f:
                f.write(capture_evidence(child, stderr_path, args.gdb))
            kill_session(child)
    seconds = time.monotonic() - t0
    stages = [l for l in read_text(stdout_path).splitlines() if l.startswith(STAGE_PREFIX)]
    leaked = sorted(set(vizdoom_shm()) - set(shm_before))
    if cleanup:
        shutil.rmtree(cwd, ignore_errors=True)
    return dict(label=args.label, attempt=index, outcome=outcome, rc=rc,
                seconds=round(seconds, 2), last_stage=stages[-1] if stages else None,
                leaked_shm=leaked, cwd_mode=args.cwd, num_envs=args.num_envs,
                num_threads=args.num_threads, task=args.task, taskset=args.taskset,
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
