"""What the CPU is: its model name and instruction-set flags, read from ``/proc/cpuinfo`` (Linux)."""

from __future__ import annotations

from pathlib import Path


def cpu_fields(cpuinfo: str | Path = "/proc/cpuinfo") -> dict[str, str]:
    """The first processor's ``key: value`` lines of ``cpuinfo`` (``model name``, ``flags``, …); ``{}`` where the
    file cannot be read (not Linux)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The instruction-set flags of the first processor (``avx2``, ``avx512f``, …); empty where unknown."""
    return set(cpu_fields(cpuinfo).get("flags", "").split())
