"""What a benchmark ran on: CPU, cores, load, accelerator, library versions and date."""

import datetime
import os
import platform
from importlib import metadata

import jax

from gtrxl_jax.nn.hardware import cpu_flags, cpuinfo

# CPU features that decide the matmul ceiling on x86 (AVX-512 float32, AMX bfloat16).
_CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
# Environment that changes XLA:CPU's speed: its flags, and the allocator's settings (XLA:CPU
# allocates its buffers anew on every call, so how malloc returns memory shows in timings).
_ENVIRONMENT = ("XLA_FLAGS", "GLIBC_TUNABLES", "LD_PRELOAD", "MALLOC_ARENA_MAX")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def available_memory_bytes() -> int | None:
    """What the default device can still allocate: an accelerator's limit, else free host RAM."""
    stats = jax.devices()[0].memory_stats()
    if stats and "bytes_limit" in stats:
        return stats["bytes_limit"] - stats.get("bytes_in_use", 0)
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
    except OSError:
        return None
    return int(fields["MemAvailable"].split()[0]) * 1024 if "MemAvailable" in fields else None


def machine_info() -> dict:
    """A record describing the machine and software of this run."""
    flags = cpu_flags()
    devices = jax.devices()
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": cpuinfo().get("model name") or platform.processor() or platform.machine(),
        "cpu_features": [f for f in _CPU_FEATURES if f in flags],
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        # Other jobs' load slows every figure of a run on a shared machine.
        "load_average": list(os.getloadavg()),
        "backend": jax.default_backend(),
        "devices": [d.device_kind for d in devices],
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": _version("jaxlib"),
        "flax": _version("flax"),
        "environment": {name: os.environ[name] for name in _ENVIRONMENT if name in os.environ},
    }
