"""ARC and DRV: will this framework build's kernels and CUDA run on these GPUs and this driver?

Every verdict here is made before the first kernel fails: from the build's compiled
architectures and CUDA version, NVML's compute capabilities and driver, and the knowledge
tables in auditor/knowledge/ (each row with its source).
"""

from __future__ import annotations

from auditor import knowledge
from auditor.builds import (CUDA13_MIN_CAPABILITY, cuda_predates, runs_on, torch_cuda_build, torch_platform,
                            variant_architectures)
from auditor.checks.base import Hit, check
from auditor.facts import FrameworkFacts, Snapshot
from auditor.verdicts import capability, coverage, driver_runs_cuda, host_os, version


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


def build_architectures(snapshot: Snapshot, fw: FrameworkFacts) -> tuple[list[str], str]:
    """The build's compiled architectures and where they come from: the build itself when its probe
    read them, else the knowledge row of this release, CUDA variant and platform; ([], ...) when unknown."""
    if fw.build.compiled_architectures:
        return fw.build.compiled_architectures, fw.sources.get("build.compiled_architectures", "build info")
    wanted = version(fw.build.cuda_version)
    platform = torch_platform(snapshot)
    if fw.name == "torch" and wanted and platform:
        release = knowledge.torch_release(fw.version) if fw.version else None
        if fw.version and release is None:
            return [], "unknown"
        # The release's variant; with the release unknown, every release's build with this CUDA:
        # what none of them has, this one has not either.
        candidates = [(r, v) for r in ((release,) if release else knowledge.torch_releases()) for v in r.variants
                      if version(v.cuda).release[:2] == wanted.release[:2]]
        # Only a list recorded for this platform judges it: Windows and Linux wheels differ.
        lists = [(r, v, *variant_architectures(v, platform)) for r, v in candidates]
        lists = [(r, v, archs, exact) for r, v, archs, exact in lists if archs and exact]
        if len(lists) == 1 or (lists and release):
            r, v, archs, _ = lists[0]
            return list(archs), f"knowledge: pytorch-releases, torch {r.version} CUDA {v.cuda} ({platform})"
        if lists:
            union = sorted({arch for _, _, archs, _ in lists for arch in archs})
            releases = ", ".join(r.version for r, *_ in lists)
            return union, (f"knowledge: pytorch-releases, every known torch CUDA {fw.build.cuda_version} build for "
                           f"{platform} (torch {releases}; the installed release is unknown)")
    if fw.name == "tensorflow":
        release = knowledge.tensorflow_release(fw.version or fw.distribution_version or "")
        if release and release.compute_capabilities and release.cuda == fw.build.cuda_version:
            return list(release.compute_capabilities), f"knowledge: tensorflow-releases, TensorFlow {release.version}"
    return [], "unknown"


def _fix_for_architecture(snapshot: Snapshot, fw: FrameworkFacts) -> str:
    if fw.name == "torch":
        fitted = torch_cuda_build(snapshot, fw.version)
        if fitted.command:
            return f"Install a build with kernels for it: `{fitted.command}` ({fitted.reason})."
        return fitted.reason[0].upper() + fitted.reason[1:] + "."
    if fw.name == "tensorflow":
        return _tensorflow_fix_for_architecture(snapshot, fw)
    return f"Install a {fw.name} release compiled for this architecture, or build it from source with it."


def _tensorflow_fix_for_architecture(snapshot: Snapshot, fw: FrameworkFacts) -> str:
    """The oldest TensorFlow release newer than the installed one whose CUDA knows every GPU here
    and whose compiled capabilities run on it; or, truthfully, that none in the tables does."""
    installed = version(fw.distribution_version or fw.version or "")
    capabilities = sorted({gpu.compute_capability for gpu in _gpus(snapshot)})
    for release in knowledge.tensorflow_releases():
        if installed and version(release.version) <= version(f"{installed.major}.{installed.minor}"):
            continue
        if release.cuda and release.compute_capabilities and all(
                runs_on(release.compute_capabilities, release.cuda, cc) for cc in capabilities):
            return (f"Install TensorFlow {release.version} (CUDA {release.cuda}, compiled for "
                    f"{' '.join(release.compute_capabilities)}): `pip install \"tensorflow[and-cuda]=={release.version}.*\"`.")
    newest = knowledge.tensorflow_releases()[-1]
    needs = ", ".join(f"{cc} needs CUDA {knowledge.first_cuda_for(cc)}" for cc in capabilities)
    return (f"No TensorFlow release in the knowledge tables runs on it: the newest, {newest.version}, is built with "
            f"CUDA {newest.cuda} ({needs}). Build TensorFlow from source with a newer CUDA, or use PyTorch, "
            "whose CUDA builds carry kernels for it.")


@check("ARC001", "gpu-architecture-not-in-build", "error",
       "The framework build has no kernels for this GPU's architecture.",
       "A CUDA build runs on a GPU only if it carries SASS for the same major compute capability "
       "(sm_80 runs on 8.6 but not on 9.0), or PTX old enough to be JIT-compiled for it from a CUDA "
       "toolkit that already knew the GPU's architecture: a build whose CUDA predates the GPU (CUDA "
       "10.2 on an A100, CUDA 12.5 on a Blackwell RTX 50) is not rescued by its old PTX, because its "
       "cuBLAS and cuDNN carry no kernels for it. Otherwise `torch.cuda.is_available()` still says "
       "True and the first kernel fails with 'no kernel image is available for execution on the "
       "device'. When the probe did not read the build's architecture list, the knowledge table's "
       "list for that release, CUDA variant and platform is used, and named as the source.",
       fix="Install a build with kernels for the GPU's architecture (the finding names the command): torch from "
           "the download.pytorch.org index whose CUDA knows the GPU (`pip install torch==<version> --index-url "
           "https://download.pytorch.org/whl/cu<NNN>`), a TensorFlow release compiled for it (`pip install "
           "\"tensorflow[and-cuda]==<version>.*\"`), or a build from source for it.",
       example="torch 2.6.0+cu124 has no kernels for GPU 0 (NVIDIA GeForce RTX 5090, compute capability 12.0)\n"
               "torch build architectures: sm_50 sm_60 sm_70 sm_75 sm_80 sm_86 sm_90 "
               "(torch._C._cuda_getArchFlags() / torch.cuda.get_arch_list())")
def architecture_not_in_build(snapshot: Snapshot):
    for fw in _cuda_builds(snapshot):
        archs, source = build_architectures(snapshot, fw)
        cuda13 = version(fw.build.cuda_version).major >= 13
        for gpu in _gpus(snapshot):
            if cuda13 and capability(gpu.compute_capability) < CUDA13_MIN_CAPABILITY:
                continue  # DRV003 says why, more precisely
            # A CUDA older than the GPU's architecture has no kernels for it, whatever the list says.
            predates = cuda_predates(fw.build.cuda_version, gpu.compute_capability)
            reach = coverage(archs, gpu.compute_capability) if archs else None
            if (archs and reach == "none") or predates:
                evidence = [f"GPU {gpu.index}: compute capability {gpu.compute_capability} ({snapshot.accelerators.nvidia.source})",
                            f"{fw.name} build architectures: {' '.join(archs) or 'not recorded'} ({source})"]
                if predates:
                    evidence.append(f"its CUDA {fw.build.cuda_version} predates compute capability {gpu.compute_capability} "
                                    f"(first supported by CUDA {knowledge.first_cuda_for(gpu.compute_capability)}): its "
                                    "PTX cannot rescue it, and its libraries carry no kernels for it (knowledge: "
                                    "compute-capabilities)")
                yield Hit(f"{fw.name} {fw.version} has no kernels for GPU {gpu.index} ({gpu.name}, "
                          f"compute capability {gpu.compute_capability})", evidence, _fix_for_architecture(snapshot, fw),
                          framework=fw.name)


@check("ARC002", "gpu-architecture-by-ptx-jit-only", "warning",
       "The GPU is newer than every kernel in the build; it runs only through PTX JIT.",
       "Without SASS for the GPU's major architecture, the driver compiles the build's PTX at first "
       "use: start-up takes minutes on a cold cache, and it needs a driver at least as new as the "
       "build's own CUDA toolkit.",
       fix="Install a build with SASS for the GPU's architecture (the finding names the command; torch: `pip "
           "install torch==<version> --index-url https://download.pytorch.org/whl/cu<NNN>`; TensorFlow: a newer "
           "release); until then keep the driver at least as new as the build's CUDA and expect minutes of JIT "
           "compilation on a cold cache.",
       example="tensorflow 2.16.1 runs on GPU 0 (NVIDIA H100 80GB HBM3) only by JIT-compiling PTX\n"
               "tensorflow build architectures: sm_50 sm_60 sm_70 sm_80 compute_90 (build info)")
def architecture_by_ptx_only(snapshot: Snapshot):
    for fw in _cuda_builds(snapshot):
        archs, source = build_architectures(snapshot, fw)
        for gpu in _gpus(snapshot):
            if archs and coverage(archs, gpu.compute_capability) == "ptx" \
                    and not cuda_predates(fw.build.cuda_version, gpu.compute_capability):
                yield Hit(f"{fw.name} {fw.version} runs on GPU {gpu.index} ({gpu.name}) only by JIT-compiling PTX",
                          [f"GPU {gpu.index}: compute capability {gpu.compute_capability} (NVML)",
                           f"{fw.name} build architectures: {' '.join(archs)} ({source})"],
                          _fix_for_architecture(snapshot, fw), framework=fw.name)


@check("DRV001", "driver-too-old-for-cuda-family", "error",
       "The NVIDIA driver is older than the minimum for the framework's CUDA major version.",
       "From CUDA 11 on, a driver at or above the family floor (11.x: 450.80.02, 12.x: 525.60.13, "
       "13.x: 580 on Linux) runs any toolkit of that major version; before CUDA 11 each toolkit needs "
       "its own driver (10.2: 440.33 on Linux). Below it, CUDA cannot initialise: "
       "'CUDA driver version is insufficient for CUDA runtime version'.",
       fix="Upgrade the NVIDIA driver to the floor the finding names or newer (Ubuntu: `sudo ubuntu-drivers "
           "install`), or install a build for an older CUDA that this driver runs (torch: `pip install "
           "torch==<version> --index-url https://download.pytorch.org/whl/cu<NNN>`).",
       example="Driver 470.223.02 is too old for torch 2.7.1+cu128 (CUDA 12.8)\n"
               "CUDA 12.x needs driver >= 525.60.13 on Linux (https://www.tensorflow.org/install/pip)")
def driver_below_family(snapshot: Snapshot):
    for nvidia, os, fw in _driver_and_cuda_builds(snapshot):
        floor = knowledge.driver_floor_for(fw.build.cuda_version, os)
        if floor and not driver_runs_cuda(nvidia.driver_version, fw.build.cuda_version, os):
            fitted = torch_cuda_build(snapshot, fw.version) if fw.name == "torch" else None
            family = f"CUDA {floor.cuda}.x" if "." not in floor.cuda else f"CUDA {floor.cuda}"
            yield Hit(f"Driver {nvidia.driver_version} is too old for {fw.name} {fw.version} (CUDA {fw.build.cuda_version})",
                      [f"driver {nvidia.driver_version} ({nvidia.source})",
                       f"{family} needs driver >= {floor.driver} on {os} ({floor.source})"],
                      f"Upgrade the NVIDIA driver to {floor.driver} or newer"
                      + (f", or install a build this driver runs: `{fitted.command}` ({fitted.reason})"
                         if fitted and fitted.command else "") + ".", framework=fw.name)


@check("DRV002", "driver-below-toolkit-driver", "warning",
       "The driver runs the framework's CUDA only through minor-version compatibility.",
       "The driver is above its CUDA family's floor but older than the driver the framework's CUDA "
       "toolkit shipped with. Most code runs, but PTX compiled by the newer toolkit cannot be JIT-"
       "compiled (cudaErrorUnsupportedPtxVersion) and features that need the newer driver fail "
       "with cudaErrorCallRequiresNewerDriver.",
       fix="Upgrade the NVIDIA driver to the driver the build's CUDA toolkit shipped with, or newer (the finding "
           "names it; Ubuntu: `sudo ubuntu-drivers install`), so the build's PTX JIT-compiles and every CUDA "
           "feature works.",
       example="Driver 535.183.01 is older than CUDA 12.8's own driver 570.26 (torch 2.7.1+cu128)\n"
               "CUDA 12.8 toolkit driver >= 570.26 on Linux "
               "(https://docs.nvidia.com/cuda/archive/13.2.0/cuda-toolkit-release-notes/index.html)")
def driver_below_toolkit(snapshot: Snapshot):
    for nvidia, os, fw in _driver_and_cuda_builds(snapshot):
        toolkit = knowledge.toolkit_driver(fw.build.cuda_version, os)
        if (toolkit and driver_runs_cuda(nvidia.driver_version, fw.build.cuda_version, os)
                and version(nvidia.driver_version) < version(toolkit.driver)):
            yield Hit(f"Driver {nvidia.driver_version} is older than CUDA {fw.build.cuda_version}'s own driver "
                      f"{toolkit.driver} ({fw.name} {fw.version})",
                      [f"driver {nvidia.driver_version} ({nvidia.source})",
                       f"CUDA {toolkit.cuda} toolkit driver >= {toolkit.driver} on {os} ({toolkit.source})"],
                      f"Upgrade the driver to {toolkit.driver} or newer to run this build's PTX and every feature.", framework=fw.name)


@check("DRV003", "cuda13-build-on-old-gpu", "error",
       "A CUDA 13 build on a GPU below compute capability 7.5.",
       "CUDA 13 removed code generation and library support for Maxwell, Pascal and Volta (compute "
       "capability below 7.5). A CUDA 13 build of a framework cannot run on these GPUs at all.",
       fix="Install a CUDA 12 build of the framework (PyTorch: `pip install torch==<version> --index-url "
           "https://download.pytorch.org/whl/cu126`, whose wheels still carry sm_50-sm_70), or use a GPU of "
           "compute capability 7.5 or newer.",
       example="torch 2.9.0+cu130 is a CUDA 13.0 build; GPU 0 (Tesla V100-SXM2-32GB, compute capability 7.0) is "
               "not supported by CUDA 13\n"
               "GPU 0: compute capability 7.0 (NVML)")
def cuda13_on_old_gpu(snapshot: Snapshot):
    for fw in _cuda_builds(snapshot):
        if version(fw.build.cuda_version).major < 13:
            continue
        for gpu in _gpus(snapshot):
            if capability(gpu.compute_capability) < CUDA13_MIN_CAPABILITY:
                fitted = torch_cuda_build(snapshot, fw.version) if fw.name == "torch" else None
                fitted = fitted if fitted and fitted.command else None
                yield Hit(f"{fw.name} {fw.version} is a CUDA {fw.build.cuda_version} build; GPU {gpu.index} "
                          f"({gpu.name}, compute capability {gpu.compute_capability}) is not supported by CUDA 13",
                          [f"GPU {gpu.index}: compute capability {gpu.compute_capability} (NVML)",
                           f"{fw.name} build CUDA {fw.build.cuda_version}"],
                          f"Install a CUDA 12 build: `{fitted.command}`." if fitted else
                          "Install a CUDA 12.x build of the framework (PyTorch: the cu126 index still ships sm_50-sm_70).", framework=fw.name)


@check("DRV004", "driver-branch-drops-gpu", "error",
       "The driver branch no longer supports this GPU's architecture.",
       "R580 is the last driver branch for Maxwell, Pascal and Volta GPUs. Newer branches do not "
       "drive them, whatever the framework.",
       fix="Install a driver from the last branch that supports the GPU's architecture (R580 for Maxwell, Pascal "
           "and Volta; Ubuntu: `sudo apt install nvidia-driver-580`), or run on a newer GPU.",
       example="Driver branch R590 does not support GPU 0 (Tesla P100-PCIE-16GB, Pascal)\n"
               "Pascal: last supported branch R580 (knowledge: driver-branches)")
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
