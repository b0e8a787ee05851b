"""What the host CPU is: /proc/cpuinfo's fields, for defaults that depend on the CPU model."""

import functools


@functools.cache
def cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read().split("\n\n")[0]
    except OSError:
        return {}
    fields = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in fields}


def cpu_flags() -> frozenset[str]:
    """The host CPU's feature flags ("avx2", "avx512f", ...; empty where unknown)."""
    return frozenset(cpuinfo().get("flags", "").split())
