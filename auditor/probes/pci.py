"""PCI scan: every accelerator-like device in sysfs, even when no driver claims it.

A GPU that the bus shows but no driver claims is the first thing to know when "the GPU is
not found". Reading sysfs needs no driver, no library and no privilege.
"""

from __future__ import annotations

import os

from auditor.facts import PciDevice
from auditor.probes.base import ProbeAbsent, ProbeContext

PCI_DEVICES = "/sys/bus/pci/devices"
VENDORS = {"0x10de": "NVIDIA", "0x1002": "AMD", "0x8086": "Intel", "0x1ae0": "Google", "0x1da3": "Habana",
           "0x1d0f": "Amazon"}
# Google's vendor id also covers its gVNIC network card; these device ids are TPUs.
# Source: jax-ml/jax jax/_src/hardware_utils.py (_TPU_PCI_DEVICE_IDS), checked 2026-11-24.
TPU_DEVICE_IDS = {"0x0027": "v2/v3", "0x0056": "plc", "0x005e": "v4", "0x0062": "v5p", "0x0063": "v5e",
                  "0x006f": "v6e", "0x0076": "tpu7x"}
# PCI class codes (PCI Code and ID Assignment Specification): 0x03 display controllers
# (0x0300 VGA, 0x0302 3D, 0x0380 other), 0x12 processing accelerators, 0x0b40 co-processors.
_GPU_SUBCLASSES = ("0x0300", "0x0302", "0x0380")


def classify(vendor_id: str, device_id: str, class_code: str) -> str | None:
    """gpu, accelerator, display, or None when the device is not accelerator-like."""
    if vendor_id == "0x1ae0":
        return "accelerator" if device_id in TPU_DEVICE_IDS else None
    if class_code.startswith(("0x12", "0x0b40")):
        return "accelerator"
    if class_code.startswith(_GPU_SUBCLASSES):
        # Integrated and server-management display chips are display-only, not compute.
        return "gpu" if vendor_id in VENDORS else "display"
    return None


def collect_pci(ctx: ProbeContext) -> list[PciDevice]:
    root = ctx.root
    if not root.path(PCI_DEVICES).is_dir():
        raise ProbeAbsent(f"{PCI_DEVICES} does not exist (not Linux, or sysfs is not mounted)")
    devices = []
    for address in root.listdir(PCI_DEVICES):
        base = f"{PCI_DEVICES}/{address}"
        vendor = (root.read_text(f"{base}/vendor") or "").strip().lower()
        device = (root.read_text(f"{base}/device") or "").strip().lower()
        class_code = (root.read_text(f"{base}/class") or "").strip().lower()
        kind = classify(vendor, device, class_code)
        if kind is None:
            continue
        driver_link = root.path(f"{base}/driver")
        driver = os.path.basename(os.readlink(driver_link)) if driver_link.is_symlink() else None
        devices.append(PciDevice(address=address, vendor_id=vendor, device_id=device, class_code=class_code,
                                 vendor=VENDORS.get(vendor), kind=kind, driver=driver))
    return devices
