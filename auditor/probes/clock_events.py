"""NVIDIA clock-event ("throttle") reasons: the bitmask NVML and nvidia-smi report, by name.

The bits are nvml.h's ``nvmlClocksEventReason*`` constants (named ``nvmlClocksThrottleReason*``
before driver 535; the values never changed), which pynvml repeats. nvidia-smi prints the same
mask for ``--query-gpu=clocks_throttle_reasons.active``, an alias it keeps for
``clocks_event_reasons.active``.
"""

from __future__ import annotations

from typing import Optional

REASONS = (
    (0x1, "gpu_idle"),
    (0x2, "applications_clocks_setting"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
)


def reason_names(mask: Optional[int]) -> Optional[list[str]]:
    """The active reasons of a mask, in bit order; a bit no table knows is kept as "bit 0x200"."""
    if mask is None:
        return None
    names = [name for bit, name in REASONS if mask & bit]
    known = sum(bit for bit, _ in REASONS)
    names += [f"bit {1 << n:#x}" for n in range(64) if mask & ~known & (1 << n)]
    return names
