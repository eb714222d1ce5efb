"""What this CPU computes natively: decides whether ingest runs the model in bfloat16."""
from __future__ import annotations


def cpu_has_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AVX512-BF16 or AMX).

    Without it torch emulates bf16 and is slower than fp32, so ``auto`` only
    switches bf16 on where these flags are present.
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def want_bf16(setting: str) -> bool:
    """Resolve the ``ingest_bf16`` setting (auto / 1 / 0) for this machine."""
    value = str(setting).strip().lower()
    if value in ("1", "true", "on", "yes"):
        return True
    if value in ("0", "false", "off", "no"):
        return False
    return cpu_has_bf16()
