"""What this machine's hardware supports, checked before training starts.

bf16 on a CPU: PyTorch runs bf16 matmuls on any x86 CPU, but only CPUs with native bf16 instructions
(AVX512-BF16 or AMX) run them fast; elsewhere they are emulated and slower than fp32. Measured on the
2-core dev machine (avx512_bf16): greedy generation of SmolLM2-135M 2.4x faster in bf16 than fp32.
"""

from __future__ import annotations

import platform
from pathlib import Path

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> set[str]:
    """CPU feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags") or line.startswith("Features"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 matmul instructions (Apple silicon counts: arm64 with bf16)."""
    flags = cpu_flags()
    if any(f in flags for f in BF16_CPU_FLAGS) or "bf16" in flags:
        return True
    return platform.system() == "Darwin" and platform.machine() == "arm64"


def bf16_problem(use_cpu: bool) -> str | None:
    """Why bf16 cannot be used for this run here (None when it can)."""
    import torch

    if use_cpu or not torch.cuda.is_available():
        if not cpu_supports_bf16():
            return ("this CPU has no native bf16 instructions (avx512_bf16 / amx_bf16): bf16 would be emulated "
                    "and slower than fp32; set bf16=false")
        return None
    if not torch.cuda.is_bf16_supported():
        return "this GPU does not support bf16: set bf16=false"
    return None


def resolve_bf16(setting: bool | str, use_cpu: bool) -> tuple[bool, str | None]:
    """A recipe's ``bf16`` knob (true / false / "auto") to a decision for this machine, with a note.

    ``auto`` takes bf16 where it is native (a GPU that supports it, a CPU with avx512_bf16 / amx) and fp32
    elsewhere, so one CPU recipe runs fast on the dev machine and still runs on a CI machine without bf16.
    An explicit ``true`` where bf16 is not native is an error (one line saying how to fix the recipe)."""
    if setting == "auto":
        problem = bf16_problem(use_cpu)
        return (problem is None, None if problem is None else "bf16=auto: fp32 here (" + problem.split(":")[0] + ")")
    if setting is True:
        problem = bf16_problem(use_cpu)
        if problem:
            from genedx.errors import GenedxError
            raise GenedxError(problem + " (or bf16=auto)")
        return True, None
    if setting is False:
        return False, None
    from genedx.errors import GenedxError
    raise GenedxError(f"bf16 must be true, false or auto, not {setting!r}")


def inference_dtype(device: str | None = None):
    """The fastest safe dtype for greedy generation on ``device`` (default: cuda when present, else cpu):
    bf16 on GPUs that support it and on CPUs with native bf16, else fp32. Greedy answers of SmolLM2-135M
    on 16 validation prompts were identical in bf16 and fp32 (bench/RESULTS.md)."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if str(device) == "cpu" and cpu_supports_bf16() else torch.float32
