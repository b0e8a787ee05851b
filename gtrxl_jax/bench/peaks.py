"""Vendors' peak dense matmul FLOP/s of known accelerators: the denominator of MFU.

Model FLOP utilisation (MFU) is the model's FLOPs per second over the chip's peak, the
figure papers compare across hardware. The measured matmul ceiling (`ceiling`) says what
this software reaches on this machine; MFU says what share of the hardware a step uses.

Peaks are the vendors' dense (no sparsity) tensor-core figures. "float32" is the TF32
peak: on these GPUs JAX's default matmul precision computes float32 matmuls with TF32
tensor cores. CPUs have no entry, as their peak depends on clocks and vector units that
vary by machine; the measured ceiling stands in for them.
"""

# (a substring of jax's device_kind, {compute dtype: peak TFLOP/s}), most specific first.
PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H100 PCIe", {"bfloat16": 756.0, "float32": 378.0}),
    ("H100", {"bfloat16": 989.4, "float32": 494.7}),  # SXM5; "NVIDIA H100 80GB HBM3"
    ("H200", {"bfloat16": 989.4, "float32": 494.7}),  # the H100 SXM5's compute, more HBM
    ("A100", {"bfloat16": 312.0, "float32": 156.0}),
)


def peak_flops(device_kind: str, dtype: str) -> float | None:
    """The vendor's peak FLOP/s of `device_kind` in the compute `dtype`, or None if unknown."""
    for name, peaks in PEAK_TFLOPS:
        if name in device_kind:
            tflops = peaks.get(dtype)
            return tflops * 1e12 if tflops is not None else None
    return None
