"""NVIDIA driver probe through NVML. Runs only inside a child process.

NVML is the driver's own library (libnvidia-ml.so.1), loaded by ``pynvml`` from the
nvidia-ml-py distribution; in a child, a driver that hangs or crashes on query costs this
probe only.
"""

from __future__ import annotations

from auditor.probes.base import ProbeAbsent


def collect() -> dict:
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound as exc:
        raise ProbeAbsent("the NVIDIA driver's NVML library (libnvidia-ml.so.1) is not installed") from exc
    except pynvml.NVMLError_DriverNotLoaded as exc:
        raise ProbeAbsent("NVML is installed but the NVIDIA kernel driver is not loaded") from exc
    try:
        cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            gpus.append({
                "index": index,
                "name": _text(pynvml.nvmlDeviceGetName(handle)),
                "uuid": _text(pynvml.nvmlDeviceGetUUID(handle)),
                "memory_total_bytes": int(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
                "compute_capability": f"{major}.{minor}",
                "pci_bus_id": _text(pynvml.nvmlDeviceGetPciInfo(handle).busId),
            })
        return {
            "driver_version": _text(pynvml.nvmlSystemGetDriverVersion()),
            "cuda_driver_version": f"{cuda // 1000}.{cuda % 1000 // 10}",
            "nvml_version": _text(pynvml.nvmlSystemGetNVMLVersion()),
            "gpus": gpus,
            "sources": {"driver_version": "nvmlSystemGetDriverVersion", "cuda_driver_version": "nvmlSystemGetCudaDriverVersion_v2",
                        "nvml_version": "nvmlSystemGetNVMLVersion", "gpus": "nvmlDeviceGet*"},
        }
    finally:
        pynvml.nvmlShutdown()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
