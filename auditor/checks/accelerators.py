"""GPU: what the bus, the kernel driver, its device nodes and NVML say, and where they disagree.

Each disagreement has one classic cause, so each gets its own code and fix.
"""

from __future__ import annotations

import re

from auditor import knowledge
from auditor.builds import effective_gfx_target, jetson_of, torch_jetson_build, torch_rocm_build
from auditor.checks.base import Hit, check
from auditor.facts import Snapshot

# The kernel driver each vendor's compute stack needs.
COMPUTE_DRIVERS = {"NVIDIA": ("nvidia",), "AMD": ("amdgpu",), "Intel": ("i915", "xe")}
DRIVER_INSTALL = {
    "NVIDIA": "Install the NVIDIA driver (Ubuntu: `sudo ubuntu-drivers install`; others: the distribution's "
              "nvidia-driver package or NVIDIA's .run installer), then reboot",
    "AMD": "Install the amdgpu-dkms driver from AMD's ROCm packages (`sudo amdgpu-install --usecase=rocm`), then reboot",
    "Intel": "Use a kernel with the i915/xe driver and Intel's compute runtime (intel-opencl-icd, level-zero)",
}


@check("GPU001", "gpu-driver-not-loaded", "error",
       "A GPU is on the PCI bus but its compute driver does not claim it.",
       "The GPU is physically present, yet no framework can use it: the vendor's kernel driver is not "
       "loaded, or another driver (nouveau, vfio-pci for pass-through) holds the device. Every "
       "framework will report no GPU.",
       fix="Install the vendor's compute driver, then reboot: NVIDIA `sudo ubuntu-drivers install` on Ubuntu "
           "(elsewhere the distribution's nvidia-driver package or NVIDIA's .run installer), AMD `sudo "
           "amdgpu-install --usecase=rocm`, Intel a kernel with the i915/xe driver and Intel's compute runtime "
           "(intel-opencl-icd, level-zero).",
       example="NVIDIA GPU 0000:01:00.0 is claimed by nouveau, not by nvidia\n"
               "PCI 0000:01:00.0: vendor 0x10de, device 0x2204, class 0x030000, driver nouveau "
               "(/sys/bus/pci/devices)")
def gpu_driver_not_loaded(snapshot: Snapshot):
    for device in snapshot.accelerators.pci:
        expected = COMPUTE_DRIVERS.get(device.vendor or "")
        if device.kind == "gpu" and expected and device.driver not in expected:
            held = f"claimed by {device.driver}" if device.driver else "claimed by no driver"
            yield Hit(f"{device.vendor} GPU {device.address} is {held}, not by {'/'.join(expected)}",
                      [f"PCI {device.address}: vendor {device.vendor_id}, device {device.device_id}, "
                       f"class {device.class_code}, driver {device.driver or 'none'} (/sys/bus/pci/devices)"],
                      DRIVER_INSTALL[device.vendor])


@check("GPU002", "nvidia-device-nodes-missing", "error",
       "The NVIDIA driver is loaded but no /dev/nvidia<N> device node is visible.",
       "The kernel module answers in /proc/driver/nvidia, so the host has a working driver, but this "
       "process sees no GPU device nodes. That is the signature of a container started without GPU "
       "access (no --gpus flag, no NVIDIA container runtime, no GPU resource in Kubernetes).",
       fix="Start the container with GPU access: `docker run --gpus all ...` with the NVIDIA Container Toolkit "
           "installed, or request `nvidia.com/gpu` in the Kubernetes pod's resources.limits.",
       example="NVIDIA driver 550.54.15 is loaded but no /dev/nvidia<N> device is visible\n"
               "device nodes: none (/dev)")
def nvidia_device_nodes_missing(snapshot: Snapshot):
    kernel = snapshot.accelerators.nvidia_kernel
    if kernel and kernel.driver_version and not any(re.fullmatch(r"/dev/nvidia\d+", n) for n in kernel.device_nodes):
        yield Hit(f"NVIDIA driver {kernel.driver_version} is loaded but no /dev/nvidia<N> device is visible",
                  [f"/proc/driver/nvidia/version: {kernel.driver_version}",
                   f"device nodes: {', '.join(kernel.device_nodes) or 'none'} (/dev)"],
                  "Start the container with GPU access: `docker run --gpus all ...` (NVIDIA Container Toolkit), "
                  "or request `nvidia.com/gpu` in the Kubernetes pod's resources.limits.")


@check("GPU003", "nvml-library-missing", "warning",
       "The NVIDIA kernel driver is loaded but its user-space library (NVML) is missing.",
       "libnvidia-ml.so.1 ships with the driver's user-space half. Without it nvidia-smi fails, GPU "
       "details cannot be read, and the CUDA user-space driver (libcuda.so) is usually missing too. "
       "In containers this happens when the runtime does not mount the driver libraries.",
       fix="In a container, set `NVIDIA_DRIVER_CAPABILITIES=compute,utility` or start it with `--gpus all`; on a "
           "host, install the user-space package of the loaded driver's branch (Ubuntu: `sudo apt install "
           "libnvidia-compute-<branch>`).",
       example="NVIDIA driver 535.183.01 is loaded but libnvidia-ml.so.1 is not found\n"
               "probe nvidia: the NVIDIA driver's NVML library (libnvidia-ml.so.1) is not installed or not on the "
               "loader's path, and nvidia-smi is not on PATH")
def nvml_library_missing(snapshot: Snapshot):
    kernel, run = snapshot.accelerators.nvidia_kernel, snapshot.probe("nvidia")
    if kernel and kernel.driver_version and run and run.status == "absent" and "libnvidia-ml" in (run.reason or ""):
        yield Hit(f"NVIDIA driver {kernel.driver_version} is loaded but libnvidia-ml.so.1 is not found",
                  [f"/proc/driver/nvidia/version: {kernel.driver_version}", f"probe nvidia: {run.reason}"],
                  "In a container set `NVIDIA_DRIVER_CAPABILITIES=compute,utility` (or run with --gpus); on a "
                  "host install the driver's user-space package (e.g. libnvidia-compute-<branch>).")


@check("GPU004", "nvidia-driver-errors", "error",
       "The NVIDIA driver returned errors for the machine or for a GPU.",
       "NVML failed to initialise, or refused queries for a GPU (GPU_IS_LOST, UNKNOWN). A GPU that "
       "fell off the bus or a driver in a bad state fails every CUDA program; only a reset or reboot "
       "brings it back.",
       fix="Run `nvidia-smi -q` to see the driver's own error and look for Xid errors in `dmesg`, then reset the "
           "GPU (`nvidia-smi -r -i <index>`) or reboot.",
       example="GPU 3 (unknown) returned driver errors\n"
               "GPU 3: nvmlDeviceGetHandleByIndex: GPU is lost")
def nvidia_driver_errors(snapshot: Snapshot):
    run, nvidia = snapshot.probe("nvidia"), snapshot.accelerators.nvidia
    if run and run.status in ("error", "timeout", "crashed"):
        yield Hit(f"The NVIDIA driver could not be queried: {run.reason}", [f"probe nvidia: {run.status}: {run.reason}"],
                  "Run `nvidia-smi` to see the driver's own error; check `dmesg` for Xid errors, then reset the GPU "
                  "(`nvidia-smi -r`) or reboot.")
    if nvidia and nvidia.errors:
        yield Hit("The NVIDIA driver refused system queries", [f"driver: {error}" for error in nvidia.errors],
                  "Run `nvidia-smi -q` to see the driver's own error, and check `dmesg` for Xid errors.")
    for gpu in nvidia.gpus if nvidia else []:
        if gpu.errors:
            yield Hit(f"GPU {gpu.index} ({gpu.name or 'unknown'}) returned driver errors",
                      [f"GPU {gpu.index}: {error}" for error in gpu.errors],
                      "Check `dmesg` for Xid errors on this GPU; reset it (`nvidia-smi -r -i "
                      f"{gpu.index}`) or reboot.")


@check("GPU005", "nvidia-driver-version-mismatch", "error",
       "The loaded kernel module and the user-space driver library are different versions.",
       "After a driver upgrade without a reboot, the old kernel module keeps running while the new "
       "libraries are installed. NVML then fails with 'Driver/library version mismatch' and CUDA "
       "cannot initialise.",
       fix="Reboot to load the installed driver's kernel module, or reload it without a reboot: `sudo rmmod "
           "nvidia_uvm nvidia_drm nvidia_modeset nvidia && sudo modprobe nvidia`.",
       example="Kernel module 550.90.07 but user-space driver 550.127.05\n"
               "nvml: driver 550.127.05")
def nvidia_driver_version_mismatch(snapshot: Snapshot):
    kernel, nvidia, run = snapshot.accelerators.nvidia_kernel, snapshot.accelerators.nvidia, snapshot.probe("nvidia")
    user = nvidia.driver_version if nvidia else None
    if kernel and kernel.driver_version and user and user != kernel.driver_version:
        yield Hit(f"Kernel module {kernel.driver_version} but user-space driver {user}",
                  [f"/proc/driver/nvidia/version: {kernel.driver_version}", f"{nvidia.source}: driver {user}"],
                  "Reboot to load the installed driver's kernel module (or reload it: `sudo rmmod nvidia_uvm "
                  "nvidia_drm nvidia_modeset nvidia && sudo modprobe nvidia`).")
    elif run and "mismatch" in (run.reason or "").lower():
        yield Hit("The NVIDIA driver reports a driver/library version mismatch", [f"probe nvidia: {run.reason}"],
                  "Reboot to load the installed driver's kernel module.")


@check("GPU006", "rocm-device-nodes-missing", "error",
       "AMD GPUs are in the KFD topology but /dev/kfd or /dev/dri/renderD* is not visible.",
       "ROCm reaches AMD GPUs through /dev/kfd and the render nodes. A container started without "
       "those devices sees the topology in /sys but cannot open the GPU.",
       fix="Start the container with the ROCm devices: `docker run --device=/dev/kfd --device=/dev/dri "
           "--group-add video ...`.",
       example="2 AMD GPU(s) in the KFD topology, but /dev/kfd and /dev/dri/renderD* missing\n"
               "KFD topology: gfx90a, gfx90a")
def rocm_device_nodes_missing(snapshot: Snapshot):
    amd = snapshot.accelerators.amd
    if amd and amd.gpus and (not amd.kfd_present or not amd.render_nodes):
        missing = [name for name, present in (("/dev/kfd", amd.kfd_present), ("/dev/dri/renderD*", amd.render_nodes))
                   if not present]
        yield Hit(f"{len(amd.gpus)} AMD GPU(s) in the KFD topology, but {' and '.join(missing)} missing",
                  [f"KFD topology: {', '.join(g.gfx_target or '?' for g in amd.gpus)}", f"missing: {', '.join(missing)}"],
                  "Start the container with `--device=/dev/kfd --device=/dev/dri --group-add video`.")


@check("GPU007", "mig-enabled-without-instances", "warning",
       "MIG mode is on for a GPU but no MIG instance exists, so CUDA sees nothing on it.",
       "With MIG enabled, CUDA programs run only inside MIG instances. A GPU in MIG mode with no GPU "
       "and compute instances created offers no device at all.",
       fix="Create MIG instances (`sudo nvidia-smi mig -i <index> -cgi <profile> -C`, profiles from `nvidia-smi "
           "mig -lgip`), or turn MIG off (`sudo nvidia-smi -i <index> -mig 0`).",
       example="GPU 0 (NVIDIA A100-SXM4-80GB) is in MIG mode with no MIG instance\n"
               "GPU 0: MIG current True, instances 0 (nvml)")
def mig_without_instances(snapshot: Snapshot):
    nvidia = snapshot.accelerators.nvidia
    for gpu in nvidia.gpus if nvidia else []:
        # None: the instances were not listed (nvidia-smi -L did not answer), which is not "none".
        if gpu.mig_mode_current and gpu.mig_instances == []:
            yield Hit(f"GPU {gpu.index} ({gpu.name}) is in MIG mode with no MIG instance",
                      [f"GPU {gpu.index}: MIG current {gpu.mig_mode_current}, instances 0 ({nvidia.source})"],
                      f"Create instances (`sudo nvidia-smi mig -i {gpu.index} -cgi 1g.10gb -C`, profiles from "
                      f"`nvidia-smi mig -lgip`), or turn MIG off (`sudo nvidia-smi -i {gpu.index} -mig 0`).")


# Reasons that mean the GPU protects itself or obeys the platform: a fault to fix, unlike an idle
# GPU, a power cap reached under load, or clocks an administrator set (nvml.h, nvidia-smi
# --help-query-gpu "clocks_event_reasons").
SLOWDOWN_REASONS = {"hw_slowdown": "hardware slowdown", "hw_thermal_slowdown": "hardware thermal slowdown",
                    "hw_power_brake_slowdown": "external power brake", "sw_thermal_slowdown": "software thermal capping"}


@check("GPU010", "gpu-clocks-slowed-down", "warning",
       "The driver is holding a GPU's clocks down for heat or power protection while the audit runs.",
       "NVML's clock-event reasons say why clocks are below what was asked. HW slowdown, HW thermal "
       "slowdown and the external power brake cut clocks by half or more; SW thermal capping lowers them "
       "when the GPU runs above its maximum operating temperature. Any of them makes every benchmark and "
       "training step slower than the GPU's peak, and points at cooling, airflow or the power supply. An "
       "idle GPU, a power cap reached under load, or application clocks set by an administrator are normal "
       "and not reported.",
       fix="Check the GPU's temperature and power (`nvidia-smi -q -i <index> -d TEMPERATURE,POWER,PERFORMANCE`), "
           "clear its airflow or fans, check the power cables and supply, and run the audit again once the "
           "reasons are gone.",
       example="GPU 1 (NVIDIA GeForce RTX 4090) is slowed down: hardware slowdown, hardware thermal slowdown\n"
               "GPU 1: clock-event reasons hw_slowdown, hw_thermal_slowdown (nvml)")
def clocks_slowed_down(snapshot: Snapshot):
    nvidia = snapshot.accelerators.nvidia
    for gpu in nvidia.gpus if nvidia else []:
        active = [reason for reason in gpu.clock_event_reasons or () if reason in SLOWDOWN_REASONS]
        if active:
            yield Hit(f"GPU {gpu.index} ({gpu.name}) is slowed down: {', '.join(SLOWDOWN_REASONS[r] for r in active)}",
                      [f"GPU {gpu.index}: clock-event reasons {', '.join(gpu.clock_event_reasons)} ({nvidia.source})"],
                      f"Check the GPU's temperature and power (`nvidia-smi -q -i {gpu.index} -d TEMPERATURE,POWER,"
                      "PERFORMANCE`): clear the airflow or fans, and check the power cables and supply; run the "
                      "audit again once the reasons are gone.")


@check("GPU008", "cuda-visible-devices-hides-all", "warning",
       "CUDA_VISIBLE_DEVICES hides every NVIDIA GPU from CUDA programs.",
       "CUDA enumerates only the devices CUDA_VISIBLE_DEVICES names, and stops at the first entry that "
       "matches no device. An empty value, -1, or indices/UUIDs that match no GPU leave frameworks "
       "with no GPU, often by accident (a leftover from a CPU-only job).",
       fix="Unset the variable (`unset CUDA_VISIBLE_DEVICES`), or set it to the GPUs to use: `export "
           "CUDA_VISIBLE_DEVICES=<indices or UUIDs>`.",
       example="CUDA_VISIBLE_DEVICES='-1' hides all 2 NVIDIA GPU(s)\n"
               "GPUs: indices 0, 1 (nvml)")
def visible_devices_hide_all(snapshot: Snapshot):
    nvidia = snapshot.accelerators.nvidia
    value = snapshot.accelerators.visibility.get("CUDA_VISIBLE_DEVICES")
    if value is None or not nvidia or not nvidia.gpus:
        return
    known = {str(gpu.index) for gpu in nvidia.gpus}
    uuids = [gpu.uuid.lower() for gpu in nvidia.gpus if gpu.uuid]
    uuids += [mig.uuid.lower() for gpu in nvidia.gpus for mig in gpu.mig_instances or () if mig.uuid]
    first = value.split(",")[0].strip().lower()
    # CUDA accepts an index, a full UUID, or a unique UUID prefix ("GPU-8932f937").
    visible = first in known or (first.startswith(("gpu-", "mig-")) and any(u.startswith(first) for u in uuids))
    if not visible:
        yield Hit(f"CUDA_VISIBLE_DEVICES={value!r} hides all {len(nvidia.gpus)} NVIDIA GPU(s)",
                  [f"CUDA_VISIBLE_DEVICES={value!r} (environment)",
                   f"GPUs: indices {', '.join(sorted(known))} ({nvidia.source})"],
                  "`unset CUDA_VISIBLE_DEVICES`, or set it to the GPUs to use (e.g. `export CUDA_VISIBLE_DEVICES=0`).")


@check("ROC001", "rocm-build-missing-gfx-target", "error",
       "The ROCm framework build has no kernels for this AMD GPU's gfx target.",
       "ROCm builds are compiled for a list of gfx targets (gfx90a, gfx942, gfx1100...). A GPU whose "
       "target is not in the list fails with 'HIP error: invalid device function' or 'hipErrorNoBinaryForGpu'. "
       "HSA_OVERRIDE_GFX_VERSION makes a close consumer target pass as a listed one (10.3.0: gfx1030), at "
       "the user's risk; with it set, the overridden target is the one judged. When the probe did not read "
       "the build's target list, the knowledge table's list for that torch release and ROCm version is used.",
       fix="Install the torch ROCm build the finding names, whose gfx targets list the GPU's (`pip install torch "
           "--index-url https://download.pytorch.org/whl/rocm<version>`); where none does, set the known override "
           "(`export HSA_OVERRIDE_GFX_VERSION=<version>`, at your own risk) or build from source with "
           "`PYTORCH_ROCM_ARCH=<gfx target>`.",
       example="torch 2.7.1+rocm6.3 (ROCm 6.3.42131-fa1d09cbd) has no kernels for AMD GPU 1 (gfx1031)\n"
               "torch build targets: gfx1030 gfx1100 gfx1101 gfx1102 gfx1200 gfx1201 gfx900 gfx906 gfx908 gfx90a "
               "gfx942 (build info)")
def rocm_build_missing_target(snapshot: Snapshot):
    amd = snapshot.accelerators.amd
    if not amd or not amd.gpus:
        return
    for fw in snapshot.frameworks.values():
        if not fw.build or fw.build.variant != "rocm":
            continue
        targets, source = rocm_targets(fw)
        if not targets:
            continue
        for gpu in amd.gpus:
            if not gpu.gfx_target:
                continue
            loaded = effective_gfx_target(snapshot, gpu.gfx_target)
            if loaded not in targets:
                as_ = f" (run as {loaded} by HSA_OVERRIDE_GFX_VERSION)" if loaded != gpu.gfx_target else ""
                fitted = torch_rocm_build(snapshot, fw.version) if fw.name == "torch" else None
                yield Hit(f"{fw.name} {fw.version} (ROCm {fw.build.rocm_version}) has no kernels for AMD GPU "
                          f"{gpu.node} ({gpu.gfx_target}{as_})",
                          [f"AMD GPU {gpu.node}: {gpu.gfx_target} (KFD topology)",
                           f"{fw.name} build targets: {' '.join(sorted(targets))} ({source})"],
                          f"`{fitted.command}` ({fitted.reason})." if fitted and fitted.command else
                          "Install a ROCm build that lists this target, or build from source with "
                          f"PYTORCH_ROCM_ARCH={gpu.gfx_target}.", framework=fw.name)


def rocm_targets(fw) -> tuple[set[str], str]:
    """The gfx targets of a ROCm build: what the probe read, else the knowledge row of its torch
    release and ROCm version; an empty set when unknown."""
    if fw.build.compiled_architectures:
        return {arch.split(":")[0] for arch in fw.build.compiled_architectures}, "build info"  # gfx90a:xnack- -> gfx90a
    if fw.name != "torch":
        return set(), "unknown"
    release = knowledge.torch_release(fw.version) if fw.version else None
    if fw.version and release is None:
        return set(), "unknown"
    rocm = fw.build.rocm_version.split(".")[:2] if fw.build.rocm_version else []
    # With the release or the ROCm version unknown, every matching build: what none lists, this one lacks.
    builds = [(r, b) for r in ((release,) if release else knowledge.torch_releases()) for b in r.rocm_builds
              if b.gfx_targets and (not rocm or b.rocm.split(".")[:2] == rocm)]
    if not builds:
        return set(), "unknown"
    if len(builds) == 1:
        r, b = builds[0]
        return set(b.gfx_targets), f"knowledge: pytorch-releases, torch {r.version} ROCm {b.rocm}"
    return ({t for _, b in builds for t in b.gfx_targets},
            "knowledge: pytorch-releases, every known torch ROCm build" + (f" for ROCm {'.'.join(rocm)}" if rocm else "")
            + ("" if release else " (the installed release is unknown)"))


@check("GPU009", "jetson-without-jetson-torch", "error",
       "A Jetson's torch is not one of NVIDIA's Jetson builds, so it cannot use the integrated GPU.",
       "Jetson modules (Tegra SoCs) have an integrated GPU that PyPI's generic aarch64 torch wheels do "
       "not support: they are CPU builds, or CUDA builds for discrete server GPUs (SBSA) that find no "
       "device. NVIDIA publishes torch wheels built for each JetPack release's CUDA; `pip install "
       "torch` from PyPI on a Jetson silently replaces them with a CPU build.",
       fix="Replace torch with NVIDIA's wheel for the JetPack release: `pip uninstall -y torch`, then NVIDIA's "
           "install command for it (JetPack 6: `pip3 install torch --index-url "
           "https://pypi.jetson-ai-lab.io/jp6/cu126`), in the Python that wheel is built for; never `pip install "
           "torch` from PyPI on a Jetson.",
       example="torch 2.5.1 on this Jetson is a cpu build that cannot use the integrated GPU\n"
               "Jetson: NVIDIA Jetson AGX Orin Developer Kit, L4T 36.4.3, JetPack 6.2 (/etc/nv_tegra_release, "
               "device tree)")
def jetson_without_jetson_torch(snapshot: Snapshot):
    jetson, torch = jetson_of(snapshot), snapshot.frameworks.get("torch")
    if not jetson or not torch or not torch.build:
        return
    sees_gpu = torch.devices is not None and any(d.kind == "cuda" for d in torch.devices)
    if torch.build.variant == "cpu" or (torch.devices is not None and not sees_gpu):
        fitted = torch_jetson_build(snapshot)
        release = f"L4T {jetson.l4t_release}" if jetson.l4t_release else "L4T release unknown"
        yield Hit(f"torch {torch.version} on this Jetson is a {torch.build.variant} build that "
                  + ("cannot use" if torch.build.variant == "cpu" else "does not see") + " the integrated GPU",
                  [f"Jetson: {jetson.model or jetson.soc or 'module unknown'}, {release}"
                   + (f", JetPack {jetson.jetpack}" if jetson.jetpack else "") + " (/etc/nv_tegra_release, device tree)",
                   f"torch {torch.version} build variant: {torch.build.variant}"],
                  (f"Replace it with NVIDIA's Jetson build: `pip uninstall -y torch && {fitted.command}` ({fitted.reason})."
                   if fitted.command else fitted.reason[0].upper() + fitted.reason[1:] + "."), framework="torch")
