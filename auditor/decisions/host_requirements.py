"""Requirements on the machine itself: the Python version, CPUs, memory, /dev/shm, accelerators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from auditor.builds import driver_version
from auditor.checks.base import Finding
from auditor.facts import Snapshot
from auditor.profiles.document import AcceleratorRequirement, MachineRequirement, PythonRequirement
from auditor.decisions.fixes import move_machine
from auditor.decisions.verdict import RequirementResult, unmet

GIB = 1024**3
KIND_WORDS = {"cuda": ("NVIDIA GPU", "NVIDIA GPUs"), "rocm": ("AMD GPU", "AMD GPUs"),
              "gpu": ("GPU (NVIDIA or AMD)", "GPUs (NVIDIA or AMD)"), "tpu": ("TPU chip", "TPU chips"),
              "mps": ("Apple silicon GPU", "Apple silicon GPUs"), "any": ("accelerator", "accelerators")}
# Findings that explain why an accelerator on this machine cannot be used; their fix comes first.
ACCESS_CHECKS = ("GPU001", "GPU002", "GPU003", "GPU004", "GPU005", "GPU006", "GPU007", "GPU008")


def _gib(amount: float) -> str:
    return f"{amount:g} GiB"


def python_result(requirement: PythonRequirement, snapshot: Snapshot) -> RequirementResult:
    title = f"Python {requirement.requires}"
    python = snapshot.machine.python
    if python is None:
        return RequirementResult("python", title, "not-checked", ["the Python version was not recorded (python probe failed)"],
                                 "Audit the machine itself: `auditor audit` records its Python.")
    evidence = [f"Python {python.version} ({python.implementation}, {python.environment})"]
    if SpecifierSet(requirement.requires).contains(python.version, prereleases=True):
        return RequirementResult("python", title, "pass", evidence)
    return RequirementResult("python", title, unmet(requirement.severity), evidence,
                             f"Create the environment with a Python that matches {requirement.requires}.")


def machine_results(requirement: MachineRequirement, snapshot: Snapshot) -> list[RequirementResult]:
    cpu, memory, results = snapshot.machine.cpu, snapshot.machine.memory, []
    if requirement.min_usable_cpus is not None:
        wanted = requirement.min_usable_cpus
        have = cpu.usable_cpus if cpu else None
        detail = (f"{have} usable CPUs ({cpu.logical_cpus} logical, affinity {cpu.affinity_cpus}, cgroup quota "
                  f"{cpu.cgroup_cpu_quota if cpu.cgroup_cpu_quota is not None else 'none'})") if cpu else None
        results.append(_minimum("machine.cpus", f"At least {wanted} usable CPUs", have, wanted, detail, requirement,
                                f"Give the job at least {wanted} CPUs (`docker run --cpus={wanted}`, or the "
                                "Kubernetes CPU limit)."))
    if requirement.min_memory_gib is not None:
        wanted = requirement.min_memory_gib
        have = memory.usable_bytes / GIB if memory and memory.usable_bytes is not None else None
        detail = None if have is None else (
            f"{have:.1f} GiB usable ("
            + (f"{memory.total_bytes / GIB:.1f} GiB total" if memory.total_bytes is not None else "total unknown")
            + ", cgroup limit "
            + (f"{memory.cgroup_limit_bytes / GIB:.1f} GiB)" if memory.cgroup_limit_bytes else "none)"))
        results.append(_minimum("machine.memory", f"At least {_gib(wanted)} of usable memory", have, wanted, detail,
                                requirement, f"Give the job at least {_gib(wanted)} of memory (`docker run "
                                f"--memory={wanted:g}g`, or the Kubernetes memory limit)."))
    if requirement.min_shm_gib is not None:
        wanted = requirement.min_shm_gib
        have = memory.shm_bytes / GIB if memory and memory.shm_bytes is not None else None
        detail = None if have is None else f"/dev/shm is {have:.1f} GiB"
        results.append(_minimum("machine.shm", f"/dev/shm of at least {_gib(wanted)}", have, wanted, detail,
                                requirement, f"Start the container with `docker run --shm-size={wanted:g}g` (or "
                                "`--ipc=host`); on Kubernetes mount an emptyDir with medium: Memory at /dev/shm."))
    return results


def _minimum(key: str, title: str, have: Optional[float], wanted: float, detail: Optional[str],
             requirement: MachineRequirement, fix: str) -> RequirementResult:
    if have is None:
        return RequirementResult(key, title, "not-checked", ["not measured on this machine"],
                                 "Audit the machine itself: `auditor audit` measures it.")
    if have >= wanted:
        return RequirementResult(key, title, "pass", [detail])
    return RequirementResult(key, title, unmet(requirement.severity), [detail], fix)


@dataclass(frozen=True)
class _Device:
    label: str
    memory_bytes: Optional[int]
    compute_capability: Optional[str]  # NVIDIA GPUs only
    nvidia: bool


def accelerator_results(requirement: AcceleratorRequirement, snapshot: Snapshot,
                        findings: list[Finding]) -> list[RequirementResult]:
    kind = requirement.kind or "any"
    count = requirement.min_count or 1
    devices = _devices(kind, snapshot)
    qualifying, unmeasured, evidence = 0, 0, []
    for device in devices:
        shortfalls, unknown = _shortfalls(device, requirement)
        qualifying += not shortfalls and not unknown
        unmeasured += not shortfalls and bool(unknown)
        evidence.append(f"{device.label}: " + ("; ".join(shortfalls + unknown) if shortfalls or unknown
                                                else "meets the minimums"))
    if not devices:
        evidence += _absence_evidence(kind, snapshot)
    title = _accelerator_title(kind, count, requirement)
    if qualifying >= count:
        results = [RequirementResult("accelerator", title, "pass", evidence)]
    elif qualifying + unmeasured >= count:  # unknown is never a failure
        results = [RequirementResult("accelerator", title, "warn", evidence,
                                     "Not measured here: `nvidia-smi --query-gpu=name,memory.total,compute_cap "
                                     "--format=csv` on the machine shows them (NVML reports no memory for "
                                     "unified-memory GPUs).")]
    elif len(devices) >= count:  # the devices are there, only smaller than the goal recommends
        evidence.insert(0, f"{len(devices)} {KIND_WORDS[kind][len(devices) > 1]} found, "
                           f"{qualifying} meeting the minimums")
        results = [RequirementResult("accelerator", title, unmet(requirement.capacity_severity or requirement.severity),
                                     evidence, f"Use a larger device for this goal ({title[0].lower()}{title[1:]}), "
                                     "or expect smaller batches and models.")]
    else:
        evidence.insert(0, f"{qualifying} of the required {count} {KIND_WORDS[kind][count > 1]} found")
        access = next((f for f in findings if f.code in ACCESS_CHECKS and f.severity == "error" and f.fix), None)
        fix = f"{access.code}: {access.fix}" if access else move_machine(kind, _limits(requirement))
        results = [RequirementResult("accelerator", title, unmet(requirement.severity), evidence, fix)]
    if requirement.min_driver:
        results.append(_driver_result(kind, requirement, snapshot))
    return results


def _devices(kind: str, snapshot: Snapshot) -> list[_Device]:
    acc, devices = snapshot.accelerators, []
    if kind in ("cuda", "gpu", "any") and acc.nvidia:
        devices += [_Device(f"NVIDIA GPU {gpu.index} {gpu.name or '(name unknown)'}", gpu.memory_total_bytes,
                            gpu.compute_capability, True) for gpu in acc.nvidia.gpus]
    if kind in ("rocm", "gpu", "any") and acc.amd:
        # The KFD topology has no product names; AMD SMI has them, by PCI address.
        names = {gpu.pci_address: gpu.name for gpu in acc.amd_smi.gpus if gpu.name} if acc.amd_smi else {}
        for gpu in acc.amd.gpus:
            product = names.get(gpu.pci_address) or gpu.name or "(name unknown)"
            target = f" ({gpu.gfx_target})" if gpu.gfx_target and gpu.gfx_target != product else ""
            devices.append(_Device(f"AMD GPU {gpu.node} {product}{target}", gpu.vram_bytes, None, False))
    if kind in ("tpu", "any") and acc.tpu:
        chips = acc.tpu.chip_count or len(acc.tpu.device_nodes)
        devices += [_Device(f"TPU chip {index} ({acc.tpu.accelerator_type or 'type unknown'})", None, None, False)
                    for index in range(chips)]
    if kind in ("mps", "any") and acc.apple and acc.apple.mps_eligible:
        memory = snapshot.machine.memory
        devices.append(_Device("Apple silicon GPU (MPS, unified memory)", memory.total_bytes if memory else None,
                               None, False))
    return devices


def _shortfalls(device: _Device, requirement: AcceleratorRequirement) -> tuple[list[str], list[str]]:
    """(known shortfalls, minimums that could not be measured)."""
    shortfalls, unknown = [], []
    if requirement.min_memory_gib is not None:
        if device.memory_bytes is None:
            unknown.append("memory not measured here")
        elif device.memory_bytes < requirement.min_memory_gib * GIB:
            shortfalls.append(f"{device.memory_bytes / GIB:.1f} GiB < {_gib(requirement.min_memory_gib)}")
    if requirement.min_compute_capability and device.nvidia:
        wanted = _version(requirement.min_compute_capability)
        if device.compute_capability is None:
            unknown.append("compute capability not measured here")
        elif _version(device.compute_capability) < wanted:
            shortfalls.append(f"compute capability {device.compute_capability} < {requirement.min_compute_capability}")
    return shortfalls, unknown


def _absence_evidence(kind: str, snapshot: Snapshot) -> list[str]:
    """Why no device of the kind was found: what the bus and the driver probes saw."""
    acc, evidence = snapshot.accelerators, []
    vendors = {"cuda": ("NVIDIA",), "rocm": ("AMD",), "gpu": ("NVIDIA", "AMD"), "tpu": ("Google",)}.get(kind)
    for device in acc.pci:
        if vendors is None or device.vendor in vendors:
            evidence.append(f"PCI {device.address}: {device.vendor or device.vendor_id} {device.kind} {device.device_id}, "
                            f"driver {device.driver or 'none'}")
    run = snapshot.probe("nvidia")
    if kind in ("cuda", "gpu", "any") and run and run.status != "ok":
        evidence.append(f"NVIDIA driver: {run.reason or run.status}")
    return evidence or [f"no {KIND_WORDS[kind][0]} on the PCI bus or reported by a driver"]


def _limits(requirement: AcceleratorRequirement) -> str:
    """", with 16 GiB or more and compute capability 7.0 or newer (NVIDIA)", from the requirement."""
    limits = []
    if requirement.min_memory_gib is not None:
        limits.append(f"{_gib(requirement.min_memory_gib)} or more")
    if requirement.min_compute_capability:
        limits.append(f"compute capability {requirement.min_compute_capability} or newer (NVIDIA)")
    return f", with {' and '.join(limits)}" if limits else ""


def _accelerator_title(kind: str, count: int, requirement: AcceleratorRequirement) -> str:
    title = f"At least {count} {KIND_WORDS[kind][count > 1]}"
    limits = []
    if requirement.min_memory_gib is not None:
        limits.append(f"{_gib(requirement.min_memory_gib)} of memory")
    if requirement.min_compute_capability:
        limits.append(f"compute capability {requirement.min_compute_capability} (NVIDIA)")
    return title + (" with " + " and ".join(limits) if limits else "")


def _driver_result(kind: str, requirement: AcceleratorRequirement, snapshot: Snapshot) -> RequirementResult:
    title = f"NVIDIA driver {requirement.min_driver} or newer"
    nvidia, driver = snapshot.accelerators.nvidia, driver_version(snapshot)
    if driver is None:
        if nvidia and nvidia.gpus:  # GPUs are described but the driver version was not recorded
            return RequirementResult("accelerator.driver", title, "not-checked", ["driver version not measured here"],
                                     "Not measured here: `nvidia-smi` on the machine shows the driver version.")
        if kind != "cuda":
            return RequirementResult("accelerator.driver", title, "not-applicable",
                                     ["no NVIDIA driver here; the minimum concerns NVIDIA GPUs only"])
        return RequirementResult("accelerator.driver", title, unmet(requirement.severity),
                                 ["no NVIDIA driver was found"], f"Install NVIDIA driver {requirement.min_driver} or newer.")
    source = "NVML" if nvidia and nvidia.driver_version else "/proc/driver/nvidia/version"
    evidence = [f"driver {driver} ({source})"]
    if _version(driver) >= _version(requirement.min_driver):
        return RequirementResult("accelerator.driver", title, "pass", evidence)
    return RequirementResult("accelerator.driver", title, unmet(requirement.severity), evidence,
                             f"Update the NVIDIA driver to {requirement.min_driver} or newer, then reboot.")


def _version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")
