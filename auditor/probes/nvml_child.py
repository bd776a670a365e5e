"""NVIDIA driver probe through NVML, with nvidia-smi as fallback. Runs only inside a child process.

NVML is the driver's own library (libnvidia-ml.so.1), loaded by ``pynvml`` from the
nvidia-ml-py distribution; in a child, a driver that hangs or crashes on query costs this
probe only.

What the driver refuses for one GPU never loses that GPU: the query and the driver's
answer go to the GPU's ``errors`` ("nvmlDeviceGetPowerManagementLimit: GPU is lost"),
the field stays None, and the probe carries on. Text that is not UTF-8 (pynvml decodes
strictly, and raises) costs only its field: it is kept decoded with U+FFFD replacement
characters, and the query is named in ``not_utf8``. NVML_ERROR_NOT_SUPPORTED is not an
error: that GPU has no such thing, and the field is simply None. A GPU whose handle the
driver will not even give (NVML_ERROR_GPU_IS_LOST) is still listed, with its index and
the error.

When ``nvmlInit`` fails, nvidia-smi is asked instead (auditor.probes.nvidia_smi); the
facts then say ``source: "nvidia-smi"`` and ``nvml_error`` says why NVML was not used.
Without either, the outcome depends on why NVML failed: no library, or a library
without its kernel driver, means there is no NVIDIA driver here (status absent); any
other NVML failure is an error that names it.

Environment:
  AUDITOR_NVIDIA_SMI_TIMEOUT  seconds nvidia-smi may take before it is killed (default
                              10; it must fit in the probe's own deadline).
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Optional

from auditor.probes import clock_events, nvidia_smi
from auditor.probes.base import ProbeAbsent

TIMEOUT_ENV = "AUDITOR_NVIDIA_SMI_TIMEOUT"

LIBRARY = "libnvidia-ml.so.1"

# nvmlBrandType_t, spelled as nvidia-smi's "Product Brand" spells it. Keyed by the name
# of pynvml's constant, so a pynvml that renumbers or lacks one cannot mislabel a GPU.
_BRANDS = {
    "NVML_BRAND_QUADRO": "Quadro", "NVML_BRAND_TESLA": "Tesla", "NVML_BRAND_NVS": "NVS",
    "NVML_BRAND_GRID": "GRID", "NVML_BRAND_GEFORCE": "GeForce", "NVML_BRAND_TITAN": "Titan",
    "NVML_BRAND_NVIDIA_VAPPS": "NVIDIA Virtual Applications", "NVML_BRAND_NVIDIA_VPC": "NVIDIA Virtual PC",
    "NVML_BRAND_NVIDIA_VCS": "NVIDIA Virtual Compute Server",
    "NVML_BRAND_NVIDIA_VWS": "NVIDIA RTX Virtual Workstation",
    "NVML_BRAND_NVIDIA_CLOUD_GAMING": "NVIDIA Cloud Gaming", "NVML_BRAND_QUADRO_RTX": "Quadro RTX",
    "NVML_BRAND_NVIDIA_RTX": "NVIDIA RTX", "NVML_BRAND_NVIDIA": "NVIDIA", "NVML_BRAND_GEFORCE_RTX": "GeForce RTX",
    "NVML_BRAND_TITAN_RTX": "Titan RTX", "NVML_BRAND_NVIDIA_VGAMEDEV": "NVIDIA RTX Virtual Game Dev",
}
# nvmlDeviceArchitecture_t.
_ARCHITECTURES = {
    "NVML_DEVICE_ARCH_KEPLER": "Kepler", "NVML_DEVICE_ARCH_MAXWELL": "Maxwell", "NVML_DEVICE_ARCH_PASCAL": "Pascal",
    "NVML_DEVICE_ARCH_VOLTA": "Volta", "NVML_DEVICE_ARCH_TURING": "Turing", "NVML_DEVICE_ARCH_AMPERE": "Ampere",
    "NVML_DEVICE_ARCH_ADA": "Ada", "NVML_DEVICE_ARCH_HOPPER": "Hopper", "NVML_DEVICE_ARCH_BLACKWELL": "Blackwell",
    "NVML_DEVICE_ARCH_RUBIN": "Rubin",
}
# Values a pynvml may not define yet; NVML's numbering never changes.
_ARCHITECTURE_NUMBERS = {2: "Kepler", 3: "Maxwell", 4: "Pascal", 5: "Volta", 6: "Turing", 7: "Ampere", 8: "Ada",
                         9: "Hopper", 10: "Blackwell", 13: "Rubin"}
# nvmlComputeMode_t, spelled as nvidia-smi --query-gpu=compute_mode spells it.
_COMPUTE_MODES = {0: "Default", 1: "Exclusive_Thread", 2: "Prohibited", 3: "Exclusive_Process"}

# NvidiaGpu's fields, in its order; a GPU whose handle fails keeps them all, as None.
_GPU_FIELDS = ("index", "name", "uuid", "brand", "architecture", "compute_capability", "memory_total_bytes",
               "memory_free_bytes", "pci_bus_id", "mig_mode_current", "mig_mode_pending", "mig_instances",
               "compute_mode", "power_limit_watts", "default_power_limit_watts", "process_count",
               "pcie_link_gen_current", "pcie_link_gen_max", "pcie_link_width_current", "pcie_link_width_max",
               "clock_event_reasons", "nvlinks_active", "nvlinks_total", "errors", "not_utf8")
# Peer-to-peer status is read for each pair among the first GPUs only: a node has at most 16, and a
# driver reporting hundreds must not cost a query per pair of them.
P2P_MAX_GPUS = 16
# nvmlGpuP2PCapsIndex_t (pynvml spells NVML_P2P_CAPS_INDEX_READ as a tuple) and nvmlGpuP2PStatus_t.
_P2P_READ, _P2P_NVLINK = 0, 2
_P2P_STATUSES = {0: "ok", 1: "chipset-not-supported", 2: "gpu-not-supported", 3: "topology-not-supported",
                 4: "disabled-by-regkey", 5: "not-supported", 6: "unknown"}

SOURCES = {
    "driver_version": "nvmlSystemGetDriverVersion",
    "cuda_driver_version": "nvmlSystemGetCudaDriverVersion_v2",
    "nvml_version": "nvmlSystemGetNVMLVersion",
    "gpus": "nvmlDeviceGetCount_v2 + nvmlDeviceGetHandleByIndex_v2",
    "gpus.name": "nvmlDeviceGetName",
    "gpus.uuid": "nvmlDeviceGetUUID",
    "gpus.brand": "nvmlDeviceGetBrand",
    "gpus.architecture": "nvmlDeviceGetArchitecture",
    "gpus.compute_capability": "nvmlDeviceGetCudaComputeCapability",
    "gpus.memory_total_bytes": "nvmlDeviceGetMemoryInfo",
    "gpus.memory_free_bytes": "nvmlDeviceGetMemoryInfo",
    "gpus.pci_bus_id": "nvmlDeviceGetPciInfo_v3",
    "gpus.mig_mode_current": "nvmlDeviceGetMigMode",
    "gpus.mig_mode_pending": "nvmlDeviceGetMigMode",
    "gpus.mig_instances": "nvmlDeviceGetMaxMigDeviceCount + nvmlDeviceGetMigDeviceHandleByIndex "
                          "(nvmlDeviceGetUUID, nvmlDeviceGetMemoryInfo, nvmlDeviceGetName's MIG profile on each)",
    "gpus.compute_mode": "nvmlDeviceGetComputeMode",
    "gpus.power_limit_watts": "nvmlDeviceGetPowerManagementLimit (mW / 1000)",
    "gpus.default_power_limit_watts": "nvmlDeviceGetPowerManagementDefaultLimit (mW / 1000)",
    "gpus.process_count": "nvmlDeviceGetComputeRunningProcesses_v3",
    "gpus.pcie_link_gen_current": "nvmlDeviceGetCurrPcieLinkGeneration",
    "gpus.pcie_link_gen_max": "nvmlDeviceGetMaxPcieLinkGeneration",
    "gpus.pcie_link_width_current": "nvmlDeviceGetCurrPcieLinkWidth",
    "gpus.pcie_link_width_max": "nvmlDeviceGetMaxPcieLinkWidth",
    # The older name of nvmlDeviceGetCurrentClocksEventReasons: every driver and pynvml has it.
    "gpus.clock_event_reasons": "nvmlDeviceGetCurrentClocksThrottleReasons (nvml.h bit names)",
    "gpus.nvlinks_active": "nvmlDeviceGetNvLinkState per link (NVML_FEATURE_ENABLED)",
    "gpus.nvlinks_total": "nvmlDeviceGetNvLinkState per link (enabled or disabled)",
    "p2p": "nvmlDeviceGetP2PStatus (NVML_P2P_CAPS_INDEX_READ, NVML_P2P_CAPS_INDEX_NVLINK)",
}
# A MIG device's name ends in its GPU instance profile: "NVIDIA H100 80GB HBM3 MIG 1g.10gb".
_MIG_PROFILE = re.compile(r"\bMIG\s+(\d+g\.\d+gb(?:\+\w+)*)\s*$")


class NvidiaUnavailable(Exception):
    """NVML failed for a reason other than "no driver here", and nvidia-smi could not stand in."""


def collect() -> dict:
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return _fallback(pynvml, exc)
    try:
        return _collect(pynvml)
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass  # the facts are already read; a failed shutdown must not lose them


# --- NVML ---------------------------------------------------------------------------


def _collect(nvml) -> dict:
    system = _Asker(nvml, [], [])
    driver = system.text("nvmlSystemGetDriverVersion")
    cuda = system("nvmlSystemGetCudaDriverVersion_v2")
    version = system.text("nvmlSystemGetNVMLVersion")
    try:
        count = nvml.nvmlDeviceGetCount()
    except nvml.NVMLError as exc:
        raise NvidiaUnavailable(f"nvmlDeviceGetCount failed: {_describe(nvml, exc)}") from exc
    # A broken driver can report any count: the probe's time and its result stay bounded.
    listed = min(count, nvidia_smi.MAX_GPUS)
    gpus, handles = zip(*(_gpu(nvml, index) for index in range(listed))) if listed else ((), ())
    return {
        "source": "nvml",
        "driver_version": driver,
        "cuda_driver_version": None if cuda is None else f"{cuda // 1000}.{cuda % 1000 // 10}",
        "nvml_version": version,
        "gpus": list(gpus),
        "p2p": _peer_statuses(handles[:P2P_MAX_GPUS], system),
        "gpus_left_out": count - listed,
        "nvml_error": None,
        "errors": system.failed,
        "sources": dict(SOURCES),
        "not_utf8": system.not_utf8,
    }


def _gpu(nvml, index: int) -> tuple[dict[str, Any], Any]:
    """The GPU's facts, and its handle (None when the driver would not give one)."""
    errors: list[str] = []
    not_utf8: list[str] = []
    gpu: dict[str, Any] = dict.fromkeys(_GPU_FIELDS)
    gpu.update(index=index, mig_instances=[], errors=errors, not_utf8=not_utf8)
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
    except nvml.NVMLError as exc:
        errors.append(f"nvmlDeviceGetHandleByIndex: {exc}")
        return gpu, None
    ask = _Asker(nvml, errors, not_utf8)
    gpu["name"] = ask.text("nvmlDeviceGetName", handle)
    gpu["uuid"] = ask.text("nvmlDeviceGetUUID", handle)
    gpu["brand"] = _brand(nvml, ask("nvmlDeviceGetBrand", handle))
    gpu["architecture"] = _architecture(nvml, ask("nvmlDeviceGetArchitecture", handle))
    capability = ask("nvmlDeviceGetCudaComputeCapability", handle)
    gpu["compute_capability"] = None if capability is None else f"{capability[0]}.{capability[1]}"
    memory = ask("nvmlDeviceGetMemoryInfo", handle)
    gpu["memory_total_bytes"] = None if memory is None else int(memory.total)
    gpu["memory_free_bytes"] = None if memory is None else int(memory.free)
    pci = ask("nvmlDeviceGetPciInfo_v3", handle)
    gpu["pci_bus_id"] = None if pci is None else ask.decoded("nvmlDeviceGetPciInfo_v3 busId", lambda: pci.busId)
    mig = ask("nvmlDeviceGetMigMode", handle)
    enabled = getattr(nvml, "NVML_DEVICE_MIG_ENABLE", 1)
    gpu["mig_mode_current"] = None if mig is None else mig[0] == enabled
    gpu["mig_mode_pending"] = None if mig is None else mig[1] == enabled
    if gpu["mig_mode_current"]:
        gpu["mig_instances"] = _mig_instances(nvml, handle, ask)
    mode = ask("nvmlDeviceGetComputeMode", handle)
    gpu["compute_mode"] = None if mode is None else _COMPUTE_MODES.get(mode, f"mode {mode}")
    milliwatts = ask("nvmlDeviceGetPowerManagementLimit", handle)
    gpu["power_limit_watts"] = None if milliwatts is None else milliwatts / 1000.0
    default_milliwatts = ask("nvmlDeviceGetPowerManagementDefaultLimit", handle)
    gpu["default_power_limit_watts"] = None if default_milliwatts is None else default_milliwatts / 1000.0
    processes = ask("nvmlDeviceGetComputeRunningProcesses", handle)
    gpu["process_count"] = None if processes is None else len(processes)
    gpu["pcie_link_gen_current"] = ask("nvmlDeviceGetCurrPcieLinkGeneration", handle)
    gpu["pcie_link_gen_max"] = ask("nvmlDeviceGetMaxPcieLinkGeneration", handle)
    gpu["pcie_link_width_current"] = ask("nvmlDeviceGetCurrPcieLinkWidth", handle)
    gpu["pcie_link_width_max"] = ask("nvmlDeviceGetMaxPcieLinkWidth", handle)
    gpu["clock_event_reasons"] = clock_events.reason_names(ask("nvmlDeviceGetCurrentClocksThrottleReasons", handle))
    gpu["nvlinks_active"], gpu["nvlinks_total"] = _nvlinks(nvml, handle, ask)
    return gpu, handle


def _nvlinks(nvml, handle, ask: "_Asker") -> tuple[Optional[int], Optional[int]]:
    """(links up, links the GPU has), link by link; (None, None) for a GPU without NVLink, which
    answers NOT_SUPPORTED. A link index past the GPU's last answers INVALID_ARGUMENT: the end."""
    query = getattr(nvml, "nvmlDeviceGetNvLinkState", None)
    active = total = 0
    for link in range(getattr(nvml, "NVML_NVLINK_MAX_LINKS", 18) if query else 0):
        try:
            state = query(handle, link)
        except nvml.NVMLError as exc:
            value = getattr(exc, "value", None)
            if value not in (nvml.NVML_ERROR_NOT_SUPPORTED, nvml.NVML_ERROR_INVALID_ARGUMENT):
                ask.failed.append(f"nvmlDeviceGetNvLinkState(link {link}): {exc}")
            break
        total += 1
        active += state == getattr(nvml, "NVML_FEATURE_ENABLED", 1)
    return (active, total) if total else (None, None)


def _peer_statuses(handles: tuple, system: "_Asker") -> Optional[list[dict[str, Any]]]:
    """Each pair of GPUs (both with a handle): whether either reads the other's memory directly, and
    over NVLink. A status the driver does not answer (NOT_SUPPORTED) is None; all of them are, with a
    pynvml too old to ask."""
    if not hasattr(system.nvml, "nvmlDeviceGetP2PStatus"):
        return None
    pairs = []
    for gpu, first in enumerate(handles):
        for peer in range(gpu + 1, len(handles)):
            second = handles[peer]
            if first is None or second is None:
                continue
            read, nvlink = (system("nvmlDeviceGetP2PStatus", first, second, index,
                                   label=f"nvmlDeviceGetP2PStatus({gpu}, {peer}, {name})")
                            for index, name in ((_P2P_READ, "READ"), (_P2P_NVLINK, "NVLINK")))
            pairs.append({"gpu": gpu, "peer": peer, "read": _p2p_status(read), "nvlink": _p2p_status(nvlink)})
    return pairs


def _p2p_status(value: Optional[int]) -> Optional[str]:
    return None if value is None else _P2P_STATUSES.get(value, "unknown")


def _mig_instances(nvml, handle, ask: "_Asker") -> list[dict[str, Any]]:
    instances = []
    for slot in range(ask("nvmlDeviceGetMaxMigDeviceCount", handle) or 0):
        mig = ask("nvmlDeviceGetMigDeviceHandleByIndex", handle, slot,
                  label=f"nvmlDeviceGetMigDeviceHandleByIndex({slot})", missing_ok=True)
        if mig is None:
            continue  # an empty slot (NVML_ERROR_NOT_FOUND), or an error already recorded
        memory = ask("nvmlDeviceGetMemoryInfo", mig, label=f"nvmlDeviceGetMemoryInfo(MIG {slot})")
        profile = _MIG_PROFILE.search(ask.text("nvmlDeviceGetName", mig, label=f"nvmlDeviceGetName(MIG {slot})") or "")
        instances.append({
            "index": slot,
            "uuid": ask.text("nvmlDeviceGetUUID", mig, label=f"nvmlDeviceGetUUID(MIG {slot})"),
            "memory_total_bytes": None if memory is None else int(memory.total),
            "profile": profile.group(1) if profile else None,
        })
    return instances


class _Asker:
    """Calls one pynvml query; on failure records it in ``errors`` and answers None."""

    def __init__(self, nvml, errors: list[str], not_utf8: list[str]):
        self.nvml, self.failed, self.not_utf8 = nvml, errors, not_utf8
        self.refused = (nvml.NVMLError, getattr(nvml, "NVMLLibraryMismatchError", nvml.NVMLError))

    def __call__(self, query: str, *args: Any, label: Optional[str] = None, missing_ok: bool = False) -> Any:
        label = label or query
        function: Optional[Callable] = getattr(self.nvml, query, None)
        if function is None:
            self.failed.append(f"{label}: not provided by this pynvml")
            return None
        try:
            return function(*args)
        except self.refused as exc:
            value = getattr(exc, "value", None)
            if value == self.nvml.NVML_ERROR_NOT_SUPPORTED or (missing_ok and value == self.nvml.NVML_ERROR_NOT_FOUND):
                return None
            self.failed.append(f"{label}: {exc}")
            return None

    def text(self, query: str, *args: Any, label: Optional[str] = None) -> Optional[str]:
        """A query whose answer is text."""
        label = label or query
        return self.decoded(label, lambda: self(query, *args, label=label))

    def decoded(self, label: str, read: Callable[[], Any]) -> Optional[str]:
        """Text read by ``read``: pynvml decodes it strictly as UTF-8 (and raises), or, before
        nvidia-ml-py 11.5, hands over the bytes. Either way, bytes that are not UTF-8 are kept
        with replacement characters and ``label`` goes to ``not_utf8``."""
        try:
            value = read()
            return value.decode() if isinstance(value, bytes) else None if value is None else str(value)
        except UnicodeDecodeError as exc:
            self.not_utf8.append(label)
            return exc.object.decode(errors="replace")


def _brand(nvml, value: Optional[int]) -> Optional[str]:
    if value is None or value == getattr(nvml, "NVML_BRAND_UNKNOWN", 0):
        return None
    for constant, name in _BRANDS.items():
        if getattr(nvml, constant, None) == value:
            return name
    return _constant_name(nvml, "NVML_BRAND_", value) or f"brand {value}"


def _architecture(nvml, value: Optional[int]) -> Optional[str]:
    if value is None or value == getattr(nvml, "NVML_DEVICE_ARCH_UNKNOWN", 0xFFFFFFFF):
        return None
    for constant, name in _ARCHITECTURES.items():
        if getattr(nvml, constant, None) == value:
            return name
    return (_ARCHITECTURE_NUMBERS.get(value) or _constant_name(nvml, "NVML_DEVICE_ARCH_", value)
            or f"architecture {value}")


def _constant_name(nvml, prefix: str, value: int) -> Optional[str]:
    """The pynvml constant for a value no table here knows: NVML_DEVICE_ARCH_DLA -> "DLA"."""
    name = _constant(nvml, prefix, value)
    return name[len(prefix):].replace("_", " ") if name else None


def _constant(nvml, prefix: str, value: int) -> Optional[str]:
    names = (name for name in sorted(dir(nvml)) if name.startswith(prefix) and not name.endswith(("_COUNT", "_UNKNOWN")))
    return next((name for name in names if getattr(nvml, name) == value), None)


def _describe(nvml, exc: Exception) -> str:
    """ "GPU is lost (NVML_ERROR_GPU_IS_LOST)": pynvml's text and NVML's name for the code."""
    value = getattr(exc, "value", None)
    if value == getattr(nvml, "NVML_ERROR_UNKNOWN", 999):
        return f"{exc} (NVML_ERROR_UNKNOWN)"
    name = _constant(nvml, "NVML_ERROR_", value) if isinstance(value, int) else None
    return f"{exc} ({name})" if name else f"{exc} (code {value})" if isinstance(value, int) else str(exc)


# --- nvidia-smi fallback ------------------------------------------------------------


def _fallback(nvml, init_error: Exception) -> dict:
    no_driver = isinstance(init_error, (nvml.NVMLError_LibraryNotFound, nvml.NVMLError_DriverNotLoaded))
    if isinstance(init_error, nvml.NVMLError_LibraryNotFound):
        why = f"the NVIDIA driver's NVML library ({LIBRARY}) is not installed or not on the loader's path"
    elif isinstance(init_error, nvml.NVMLError_DriverNotLoaded):
        why = "NVML is installed but the NVIDIA kernel driver is not loaded"
    else:
        why = f"nvmlInit failed: {_describe(nvml, init_error)}"
    try:
        facts = nvidia_smi.collect(timeout_s=_smi_timeout())
    except nvidia_smi.NvidiaSmiMissing as missing:
        if no_driver:
            raise ProbeAbsent(f"{why}, and {missing}") from init_error
        raise NvidiaUnavailable(f"{why}, and {missing} to fall back on") from init_error
    except nvidia_smi.NvidiaSmiFailed as failed:
        if no_driver:  # nvidia-smi cannot reach a driver either: there is none to report
            raise ProbeAbsent(f"{why}; {failed}") from init_error
        raise NvidiaUnavailable(f"{why}; nvidia-smi fallback: {failed}") from init_error
    except nvidia_smi.NvidiaSmiError as broken:  # it hung or answered garbage: a broken driver, not none
        raise NvidiaUnavailable(f"{why}; nvidia-smi fallback: {broken}") from init_error
    facts["nvml_error"] = why
    return facts


def _smi_timeout() -> float:
    try:
        seconds = float(os.environ.get(TIMEOUT_ENV, ""))
    except ValueError:
        return nvidia_smi.DEFAULT_TIMEOUT_S
    return seconds if 0 < seconds < float("inf") else nvidia_smi.DEFAULT_TIMEOUT_S
