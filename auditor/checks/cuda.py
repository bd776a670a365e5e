"""ARC and DRV: will this framework build's kernels and CUDA run on these GPUs and this driver?

Every verdict here is made before the first kernel fails: from the build's compiled
architectures and CUDA version, NVML's compute capabilities and driver, and the knowledge
tables in auditor/knowledge/ (each row with its source).
"""

from __future__ import annotations

from auditor import knowledge
from auditor.checks.base import Hit, check
from auditor.facts import FrameworkFacts, Snapshot
from auditor.verdicts import capability, coverage, driver_runs_cuda, host_os, torch_cuda_build, version

# CUDA 13 dropped code generation and libraries for compute capability below 7.5
# (CUDA 13.0 release notes; reference notes §1.5).
CUDA13_MIN_CAPABILITY = (7, 5)


def _cuda_builds(snapshot: Snapshot):
    for fw in snapshot.frameworks.values():
        if fw.build and fw.build.variant == "cuda" and fw.build.cuda_version:
            yield fw


def _driver_and_cuda_builds(snapshot: Snapshot):
    """(driver facts, os, framework) for each CUDA build, when the driver version and OS are known."""
    nvidia, os = snapshot.accelerators.nvidia, host_os(snapshot)
    if nvidia and nvidia.driver_version and os:
        for fw in _cuda_builds(snapshot):
            yield nvidia, os, fw


def _gpus(snapshot: Snapshot):
    nvidia = snapshot.accelerators.nvidia
    return [gpu for gpu in nvidia.gpus if gpu.compute_capability] if nvidia else []


def _fix_for_architecture(snapshot: Snapshot, fw: FrameworkFacts) -> str:
    if fw.name == "torch":
        fitted = torch_cuda_build(snapshot, fw.version)
        if fitted:
            return f"Install a build with kernels for it: `{fitted.command}` ({fitted.reason})."
        return "No published build of this torch release covers it: upgrade torch to a release whose CUDA builds list this architecture."
    return f"Install a {fw.name} release compiled for this architecture, or build it from source with it."


@check("ARC001", "gpu-architecture-not-in-build", "error",
       "The framework build has no kernels for this GPU's architecture.",
       "A CUDA build runs on a GPU only if it carries SASS for the same major compute capability "
       "(sm_80 runs on 8.6 but not on 9.0) or PTX old enough to be JIT-compiled for it. Otherwise "
       "`torch.cuda.is_available()` still says True and the first kernel fails with 'no kernel image "
       "is available for execution on the device'.")
def architecture_not_in_build(snapshot: Snapshot):
    for fw in _cuda_builds(snapshot):
        archs = fw.build.compiled_architectures
        if not archs:
            continue
        cuda13 = version(fw.build.cuda_version).major >= 13
        for gpu in _gpus(snapshot):
            if cuda13 and capability(gpu.compute_capability) < CUDA13_MIN_CAPABILITY:
                continue  # DRV003 says why, more precisely
            if coverage(archs, gpu.compute_capability) == "none":
                yield Hit(f"{fw.name} {fw.version} has no kernels for GPU {gpu.index} ({gpu.name}, "
                          f"compute capability {gpu.compute_capability})",
                          [f"GPU {gpu.index}: compute capability {gpu.compute_capability} (NVML)",
                           f"{fw.name} build architectures: {' '.join(archs)} ({fw.sources.get('build.compiled_architectures', 'build info')})"],
                          _fix_for_architecture(snapshot, fw))


@check("ARC002", "gpu-architecture-by-ptx-jit-only", "warning",
       "The GPU is newer than every kernel in the build; it runs only through PTX JIT.",
       "Without SASS for the GPU's major architecture, the driver compiles the build's PTX at first "
       "use: start-up takes minutes on a cold cache, and it needs a driver at least as new as the "
       "build's own CUDA toolkit.")
def architecture_by_ptx_only(snapshot: Snapshot):
    for fw in _cuda_builds(snapshot):
        for gpu in _gpus(snapshot):
            if fw.build.compiled_architectures and coverage(fw.build.compiled_architectures, gpu.compute_capability) == "ptx":
                yield Hit(f"{fw.name} {fw.version} runs on GPU {gpu.index} ({gpu.name}) only by JIT-compiling PTX",
                          [f"GPU {gpu.index}: compute capability {gpu.compute_capability} (NVML)",
                           f"{fw.name} build architectures: {' '.join(fw.build.compiled_architectures)}"],
                          _fix_for_architecture(snapshot, fw))


@check("DRV001", "driver-too-old-for-cuda-family", "error",
       "The NVIDIA driver is older than the minimum for the framework's CUDA major version.",
       "From CUDA 11 on, a driver at or above the family floor (11.x: 450.80.02, 12.x: 525.60.13, "
       "13.x: 580 on Linux) runs any toolkit of that major version. Below it, CUDA cannot initialise: "
       "'CUDA driver version is insufficient for CUDA runtime version'.")
def driver_below_family(snapshot: Snapshot):
    for nvidia, os, fw in _driver_and_cuda_builds(snapshot):
        floor = knowledge.family_floor(int(fw.build.cuda_version.split(".")[0]), os)
        if floor and not driver_runs_cuda(nvidia.driver_version, fw.build.cuda_version, os):
            fitted = torch_cuda_build(snapshot, fw.version) if fw.name == "torch" else None
            yield Hit(f"Driver {nvidia.driver_version} is too old for {fw.name} {fw.version} (CUDA {fw.build.cuda_version})",
                      [f"driver {nvidia.driver_version} ({nvidia.source})",
                       f"CUDA {floor.cuda}.x needs driver >= {floor.driver} on {os} ({floor.source})"],
                      f"Upgrade the NVIDIA driver to {floor.driver} or newer"
                      + (f", or install a build this driver runs: `{fitted.command}`" if fitted else "") + ".")


@check("DRV002", "driver-below-toolkit-driver", "warning",
       "The driver runs the framework's CUDA only through minor-version compatibility.",
       "The driver is above its CUDA family's floor but older than the driver the framework's CUDA "
       "toolkit shipped with. Most code runs, but PTX compiled by the newer toolkit cannot be JIT-"
       "compiled (cudaErrorUnsupportedPtxVersion) and features that need the newer driver fail "
       "with cudaErrorCallRequiresNewerDriver.")
def driver_below_toolkit(snapshot: Snapshot):
    for nvidia, os, fw in _driver_and_cuda_builds(snapshot):
        toolkit = knowledge.toolkit_driver(fw.build.cuda_version, os)
        if (toolkit and driver_runs_cuda(nvidia.driver_version, fw.build.cuda_version, os)
                and version(nvidia.driver_version) < version(toolkit.driver)):
            yield Hit(f"Driver {nvidia.driver_version} is older than CUDA {fw.build.cuda_version}'s own driver "
                      f"{toolkit.driver} ({fw.name} {fw.version})",
                      [f"driver {nvidia.driver_version} ({nvidia.source})",
                       f"CUDA {toolkit.cuda} toolkit driver >= {toolkit.driver} on {os} ({toolkit.source})"],
                      f"Upgrade the driver to {toolkit.driver} or newer to run this build's PTX and every feature.")


@check("DRV003", "cuda13-build-on-old-gpu", "error",
       "A CUDA 13 build on a GPU below compute capability 7.5.",
       "CUDA 13 removed code generation and library support for Maxwell, Pascal and Volta (compute "
       "capability below 7.5). A CUDA 13 build of a framework cannot run on these GPUs at all.")
def cuda13_on_old_gpu(snapshot: Snapshot):
    for fw in _cuda_builds(snapshot):
        if version(fw.build.cuda_version).major < 13:
            continue
        for gpu in _gpus(snapshot):
            if capability(gpu.compute_capability) < CUDA13_MIN_CAPABILITY:
                fitted = torch_cuda_build(snapshot, fw.version) if fw.name == "torch" else None
                yield Hit(f"{fw.name} {fw.version} is a CUDA {fw.build.cuda_version} build; GPU {gpu.index} "
                          f"({gpu.name}, compute capability {gpu.compute_capability}) is not supported by CUDA 13",
                          [f"GPU {gpu.index}: compute capability {gpu.compute_capability} (NVML)",
                           f"{fw.name} build CUDA {fw.build.cuda_version}"],
                          f"Install a CUDA 12 build: `{fitted.command}`." if fitted else
                          "Install a CUDA 12.x build of the framework (PyTorch: the cu126 index still ships sm_50-sm_70).")


@check("DRV004", "driver-branch-drops-gpu", "error",
       "The driver branch no longer supports this GPU's architecture.",
       "R580 is the last driver branch for Maxwell, Pascal and Volta GPUs. Newer branches do not "
       "drive them, whatever the framework.")
def driver_drops_gpu(snapshot: Snapshot):
    nvidia = snapshot.accelerators.nvidia
    if not nvidia or not nvidia.driver_version or not version(nvidia.driver_version):
        return
    branch = version(nvidia.driver_version).major
    for gpu in nvidia.gpus:
        last = knowledge.last_branch_for(gpu.architecture) if gpu.architecture else None
        if last is not None and branch > last:
            yield Hit(f"Driver branch R{branch} does not support GPU {gpu.index} ({gpu.name}, {gpu.architecture})",
                      [f"driver {nvidia.driver_version} ({nvidia.source})",
                       f"{gpu.architecture}: last supported branch R{last} (knowledge: driver-branches)"],
                      f"Install an R{last} driver (the last branch for {gpu.architecture}).")
