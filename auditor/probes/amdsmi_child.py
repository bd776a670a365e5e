"""AMD GPUs through AMD SMI (the `amdsmi` Python package), when it is installed.

Runs only inside a child process: amdsmi loads libamd_smi.so and talks to the driver.
Field names follow the AMD SMI Python API reference (rocm.docs.amd.com/projects/amdsmi,
"AMD SMI Python API reference", checked 2026-11-24); some differ between releases, so
each is read with a fallback and a missing one stays None.
"""

from __future__ import annotations

from auditor.probes.child_entry import describe_exception


def collect() -> dict:
    import amdsmi

    amdsmi.amdsmi_init()
    try:
        handles = amdsmi.amdsmi_get_processor_handles()
        gpus = [_gpu(amdsmi, index, handle) for index, handle in enumerate(handles)]
        driver = _ask(amdsmi.amdsmi_get_gpu_driver_info, handles[0], []) if handles else None
    finally:
        amdsmi.amdsmi_shut_down()
    return {
        "driver_version": _known(driver.get("driver_version")) if driver else None,
        "gpus": gpus,
        "sources": {"driver_version": "amdsmi_get_gpu_driver_info", "gpus": "amdsmi_get_gpu_asic_info, "
                    "amdsmi_get_gpu_vram_info, amdsmi_get_gpu_device_bdf"},
    }


def _gpu(amdsmi, index: int, handle) -> dict:
    errors: list[str] = []
    asic = _ask(amdsmi.amdsmi_get_gpu_asic_info, handle, errors) or {}
    vram = _ask(amdsmi.amdsmi_get_gpu_vram_info, handle, errors) or {}
    size_mb = _known(vram.get("vram_size"))
    units = _known(asic.get("num_compute_units", asic.get("num_of_compute_units")))
    target = _known(asic.get("target_graphics_version"))
    return {
        "index": index,
        "name": _known(asic.get("market_name")),
        "gfx_target": str(target) if target is not None else None,
        "vram_bytes": int(size_mb) * 1024 * 1024 if size_mb is not None else None,
        "compute_units": int(units) if units is not None else None,
        "pci_address": _ask(amdsmi.amdsmi_get_gpu_device_bdf, handle, errors),
        "errors": errors,
    }


def _ask(function, handle, errors: list[str]):
    try:
        return function(handle)
    except Exception as exc:  # AmdSmiLibraryException and friends: one refused query, not the probe
        errors.append(f"{function.__name__}: {describe_exception(exc)}")
        return None


def _known(value):
    """AMD SMI writes "N/A" (or all-ones integers) for what a device does not support."""
    if value in (None, "N/A", "") or value in (0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF):
        return None
    return value
