"""Accelerator specs for roofline estimates: peak dense FLOP/s per dtype, memory bandwidth, memory size.

All numbers are the vendors' published peak figures for DENSE math (the datasheets often headline the 2x
"with sparsity" figure; we halve those). Real kernels reach perhaps 40-80% of them, so a roofline built
from this table is a lower bound on step time, never a prediction.

Sources (vendor datasheets and product pages, by name):
- ``h100``: NVIDIA H100 Tensor Core GPU datasheet, H100 SXM column (FP32 67 TFLOPS; TF32 989, BF16/FP16
  1,979, FP8/INT8 3,958 "with sparsity"; 80 GB HBM3 at 3.35 TB/s).
- ``h100-pcie``: same datasheet, H100 PCIe column (FP32 51; TF32 756, BF16 1,513, FP8 3,026 with sparsity;
  80 GB HBM2e at 2.0 TB/s).
- ``h200``: NVIDIA H200 Tensor Core GPU datasheet, SXM column (same compute as H100 SXM; 141 GB HBM3e at
  4.8 TB/s).
- ``a100``: NVIDIA A100 Tensor Core GPU datasheet, A100 80GB SXM column (FP32 19.5; TF32 156, BF16/FP16 312,
  INT8 624 dense; 80 GB HBM2e at 2,039 GB/s).
- ``a100-40gb``: same datasheet, A100 40GB PCIe column (same compute; 40 GB HBM2 at 1,555 GB/s).
- ``l4``: NVIDIA L4 Tensor Core GPU datasheet (FP32 30.3; TF32 120, BF16 242, FP8 485 with sparsity;
  24 GB GDDR6 at 300 GB/s).
- ``tpu-v4``: Google Cloud TPU documentation, "TPU v4" system architecture page (275 TFLOP/s bf16/int8 per
  chip, 32 GiB HBM2 at 1,200 GB/s).
- ``tpu-v5e``: Google Cloud TPU documentation, "TPU v5e" page (197 TFLOP/s bf16, 394 TOP/s int8 per chip,
  16 GiB HBM2 at 819 GB/s).
- ``tpu-v5p``: Google Cloud TPU documentation, "TPU v5p" page (459 TFLOP/s bf16, 918 TOP/s int8 per chip,
  95 GiB HBM2e at 2,765 GB/s).
TPUs run float32 matmuls as multi-pass bf16; we list f32 at a third of the bf16 rate (XLA's default
precision there is a single bf16 pass, so this is conservative). NVIDIA's "f32" is the CUDA-core rate; pass
``--dtype tf32`` for f32 matmuls that run on tensor cores (JAX's default precision on Ampere and newer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from blox_inspect.common.errors import InspectError

T = 10**12  # tera
G = 10**9  # giga
GIB = 2**30


@dataclass(frozen=True)
class DeviceSpec:
    """One accelerator's peaks. ``flops`` maps a dtype name to dense FLOP/s (ops/s for int8)."""

    name: str
    description: str
    flops: dict[str, int] = field(hash=False)
    bandwidth: int  # memory bytes per second
    memory: int  # bytes of device memory
    source: str

    def peak_flops(self, dtype: str) -> int:
        key = DTYPE_ALIASES.get(dtype, dtype)
        if key not in self.flops:
            raise InspectError(
                f"device {self.name!r} has no peak FLOP/s listed for dtype {dtype!r}; known for it: "
                f"{', '.join(sorted(self.flops))}. Pass one of those with --dtype."
            )
        return self.flops[key]


DTYPE_ALIASES = {
    "float32": "f32",
    "bfloat16": "bf16",
    "float16": "f16",
    "float8_e4m3fn": "fp8",
    "float8_e5m2": "fp8",
    "int8": "int8",
    "float64": "f64",
}


def _nvidia(f32: float, tf32: float, bf16: float, fp8: float | None, int8: float | None) -> dict[str, int]:
    out = {"f32": int(f32 * T), "tf32": int(tf32 * T), "bf16": int(bf16 * T), "f16": int(bf16 * T)}
    if fp8:
        out["fp8"] = int(fp8 * T)
    if int8:
        out["int8"] = int(int8 * T)
    return out


def _tpu(bf16: float, int8: float) -> dict[str, int]:
    return {"bf16": int(bf16 * T), "f32": int(bf16 * T / 3), "int8": int(int8 * T)}


DEVICES: dict[str, DeviceSpec] = {
    d.name: d
    for d in (
        DeviceSpec(
            "h100",
            "NVIDIA H100 SXM 80GB",
            _nvidia(67, 494.5, 989.5, 1979, 1979),
            3350 * G,
            80 * G,
            "NVIDIA H100 Tensor Core GPU datasheet (SXM)",
        ),
        DeviceSpec(
            "h100-pcie",
            "NVIDIA H100 PCIe 80GB",
            _nvidia(51, 378, 756.5, 1513, 1513),
            2000 * G,
            80 * G,
            "NVIDIA H100 Tensor Core GPU datasheet (PCIe)",
        ),
        DeviceSpec(
            "h200",
            "NVIDIA H200 SXM 141GB",
            _nvidia(67, 494.5, 989.5, 1979, 1979),
            4800 * G,
            141 * G,
            "NVIDIA H200 Tensor Core GPU datasheet (SXM)",
        ),
        DeviceSpec(
            "a100",
            "NVIDIA A100 SXM 80GB",
            _nvidia(19.5, 156, 312, None, 624),
            2039 * G,
            80 * G,
            "NVIDIA A100 Tensor Core GPU datasheet (80GB SXM)",
        ),
        DeviceSpec(
            "a100-40gb",
            "NVIDIA A100 PCIe 40GB",
            _nvidia(19.5, 156, 312, None, 624),
            1555 * G,
            40 * G,
            "NVIDIA A100 Tensor Core GPU datasheet (40GB PCIe)",
        ),
        DeviceSpec(
            "l4",
            "NVIDIA L4 24GB",
            _nvidia(30.3, 60, 121, 242.5, 242.5),
            300 * G,
            24 * G,
            "NVIDIA L4 Tensor Core GPU datasheet",
        ),
        DeviceSpec(
            "tpu-v4", "Google TPU v4 (per chip)", _tpu(275, 275), 1200 * G, 32 * GIB, "Google Cloud TPU v4 docs"
        ),
        DeviceSpec(
            "tpu-v5e", "Google TPU v5e (per chip)", _tpu(197, 394), 819 * G, 16 * GIB, "Google Cloud TPU v5e docs"
        ),
        DeviceSpec(
            "tpu-v5p", "Google TPU v5p (per chip)", _tpu(459, 918), 2765 * G, 95 * GIB, "Google Cloud TPU v5p docs"
        ),
    )
}


def get_device(name: str) -> DeviceSpec:
    """Looks up a device by name (case-insensitive).

    Example:
        >>> get_device('H100').bandwidth
        3350000000000
    """
    key = name.strip().lower()
    if key not in DEVICES:
        raise InspectError(f"unknown device {name!r}; known devices: {', '.join(DEVICES)}. Pass one with --device.")
    return DEVICES[key]


_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


def parse_bytes(text: str) -> int:
    """``'80GB'`` -> 80e9, ``'16GiB'`` -> 16 * 2**30, ``'1234'`` -> 1234 bytes.

    Example:
        >>> parse_bytes('80GB'), parse_bytes('1.5GiB')
        (80000000000, 1610612736)
    """
    s = text.strip().upper().replace(" ", "")
    num = s.rstrip("KMGTIB")
    unit = s[len(num) :]
    try:
        value = float(num)
    except ValueError:
        value = -1.0
    if unit not in _UNITS or value < 0:
        raise InspectError(
            f"cannot read {text!r} as a memory size; expected a number with an optional unit, e.g. 80GB, 16GiB, "
            "512MB or 1234 (bytes)."
        )
    return int(value * _UNITS[unit])
