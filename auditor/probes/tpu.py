"""Cloud TPU signals, read offline: device nodes, PCI ids, TPU_* variables, libtpu.

Never the GCE metadata server: the audit opens no network connection. When any signal is
present, the TensorFlow probe is asked to look for TPU devices too.
"""

from __future__ import annotations

import re

from auditor.facts import TpuFacts
from auditor.probes.base import ProbeAbsent, ProbeContext
from auditor.probes.pci import PCI_DEVICES, TPU_DEVICE_IDS

TPU_VARIABLES = ("TPU_ACCELERATOR_TYPE", "TPU_NAME", "TPU_WORKER_ID")


def collect_tpu(ctx: ProbeContext) -> TpuFacts:
    root, env = ctx.root, ctx.environ
    signals: list[str] = []
    nodes = [f"/dev/{name}" for name in root.listdir("/dev") if re.fullmatch(r"accel\d+", name)]
    # TPU VMs before v5 expose chips as VFIO groups: numbered entries under /dev/vfio.
    nodes += [f"/dev/vfio/{name}" for name in root.listdir("/dev/vfio") if name.isdigit()]
    if nodes:
        signals.append(f"device nodes {', '.join(nodes)}")
    chips = [address for address in root.listdir(PCI_DEVICES)
             if (root.read_text(f"{PCI_DEVICES}/{address}/vendor") or "").strip() == "0x1ae0"
             and (root.read_text(f"{PCI_DEVICES}/{address}/device") or "").strip() in TPU_DEVICE_IDS]
    if chips:
        signals.append(f"{len(chips)} Google TPU PCI device(s)")
    signals += [f"{name}={env[name]}" for name in TPU_VARIABLES if env.get(name)]
    libtpu = ctx.packages.get("libtpu") or ctx.packages.get("libtpu-nightly")
    if libtpu:
        signals.append(f"{libtpu.name} {libtpu.version} installed")
    if not signals:
        raise ProbeAbsent("no TPU signal: no /dev/accel* or /dev/vfio/N, no Google TPU PCI device, no TPU_* variable, no libtpu")
    return TpuFacts(signals=signals, accelerator_type=env.get("TPU_ACCELERATOR_TYPE"), name=env.get("TPU_NAME"),
                    worker_id=env.get("TPU_WORKER_ID"), chip_count=len(chips) or None, device_nodes=nodes,
                    libtpu_version=libtpu.version if libtpu else None,
                    sources={"signals": "/dev, /sys/bus/pci/devices, TPU_* variables, package metadata",
                             "accelerator_type": "TPU_ACCELERATOR_TYPE", "chip_count": "/sys/bus/pci/devices vendor 0x1ae0"})
