"""Apple silicon: macOS version, arm64, MPS eligibility, the tensorflow-metal plugin.

PyTorch's MPS backend needs macOS 12.3 or later on Apple silicon (pytorch.org MPS notes);
TensorFlow reaches the Apple GPU only through the tensorflow-metal plugin.
"""

from __future__ import annotations

import platform

from auditor.facts import AppleFacts
from auditor.probes.base import ProbeAbsent, ProbeContext

MPS_MINIMUM_MACOS = (12, 3)


def collect_apple(ctx: ProbeContext) -> AppleFacts:
    if platform.system() != "Darwin":
        raise ProbeAbsent("not macOS")
    version = platform.mac_ver()[0]
    arm64 = platform.machine() == "arm64"
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    metal = ctx.packages.get("tensorflow-metal")
    return AppleFacts(macos_version=version, arm64=arm64, mps_eligible=arm64 and parts >= MPS_MINIMUM_MACOS,
                      tensorflow_metal=metal.version if metal else None,
                      sources={"macos_version": "platform.mac_ver()", "arm64": "platform.machine()",
                               "mps_eligible": "arm64 and macOS >= 12.3", "tensorflow_metal": "package metadata"})
