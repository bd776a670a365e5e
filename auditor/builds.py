"""The install command that fits this machine: which published build of a framework runs here.

A fitted command is searched, never assumed: the installed torch release first, then newer
releases, each variant judged by the compiled architectures of the wheel for this platform
(Linux x86_64, Linux aarch64, Windows), the CUDA toolkit it was built with (old PTX does not
rescue a build whose CUDA predates the GPU), the driver it needs and the Python range of the
release. What is unknown is said, not guessed: with no driver version the command names the
candidate builds and the driver each one needs. When nothing fits, the reason says what does
not (the driver, the architecture, the Python), never a generic "update the driver".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from packaging.version import Version

from auditor import knowledge
from auditor.facts import JetsonFacts, Snapshot
from auditor.verdicts import capability, coverage, driver_runs_cuda, host_os, version

# CUDA 13 dropped code generation and libraries for compute capability below 7.5
# (CUDA 13.0 release notes; reference notes §1.5).
CUDA13_MIN_CAPABILITY = (7, 5)
# JAX's CUDA wheels by CUDA major (jax.readthedocs.io, installation: "jax[cuda12]", "jax[cuda13]").
JAX_CUDA_EXTRAS = (("13", "cuda13"), ("12", "cuda12"))
TORCH_INDEX = "https://download.pytorch.org/whl/{variant}"


@dataclass(frozen=True)
class FittedBuild:
    command: Optional[str]  # None when no command can do it (the reason says what must change first)
    reason: str


# ----------------------------------------------------------------------------------- machine


def torch_platform(snapshot: Snapshot) -> Optional[str]:
    """The wheel platform torch publishes for this machine: linux-x86_64, linux-aarch64 or windows."""
    host, cpu = snapshot.machine.host, snapshot.machine.cpu
    if host is None:
        return None
    machine = (host.architecture or (cpu.architecture if cpu else "") or "").lower()
    if host.os == "Windows":
        return "windows"
    if host.os == "Linux":
        return {"x86_64": "linux-x86_64", "amd64": "linux-x86_64",
                "aarch64": "linux-aarch64", "arm64": "linux-aarch64"}.get(machine)
    return None


def jetson_of(snapshot: Snapshot) -> Optional[JetsonFacts]:
    """The Jetson this is, if it is one: Jetson facts on an aarch64 (or unknown) CPU. Some x86 SDK
    images (the ZED SDK's) write a stray /etc/nv_tegra_release, which is no Jetson."""
    jetson, host = snapshot.accelerators.jetson, snapshot.machine.host
    machine = (host.architecture or "").lower() if host else ""
    return jetson if jetson and machine in ("", "aarch64", "arm64") else None


def driver_version(snapshot: Snapshot) -> Optional[str]:
    """The NVIDIA driver version, from NVML/nvidia-smi or else the kernel module; None when unknown."""
    nvidia, kernel = snapshot.accelerators.nvidia, snapshot.accelerators.nvidia_kernel
    return (nvidia.driver_version if nvidia else None) or (kernel.driver_version if kernel else None)


def python_minor(snapshot: Snapshot) -> Optional[tuple[int, int]]:
    python = snapshot.machine.python
    return capability(".".join(python.version.split(".")[:2])) if python else None


def gpu_capabilities(snapshot: Snapshot) -> list[str]:
    nvidia = snapshot.accelerators.nvidia
    return sorted({gpu.compute_capability for gpu in nvidia.gpus if gpu.compute_capability}) if nvidia else []


# ----------------------------------------------------------------------------------- rules


def variant_architectures(variant: knowledge.TorchVariant, platform: str) -> tuple[tuple[str, ...], bool]:
    """(compiled architectures of this variant's wheel for the platform, whether that list is the
    platform's own). Windows falls back to the Linux x86_64 list, which the table always has; an
    aarch64 build has its own list or is not known to exist."""
    listed = variant.architectures_for(platform)
    if listed:
        return listed, True
    if platform == "windows":
        return variant.architectures, False
    return (), False


def runs_on(architectures: tuple[str, ...] | list[str], cuda: Optional[str], cc: str) -> bool:
    """Whether a CUDA build with these architectures, built with this CUDA, runs kernels on a GPU of
    this compute capability: SASS for its major, or PTX old enough to JIT, and a CUDA toolkit that
    knew the architecture (cuBLAS and cuDNN of an older CUDA carry no kernels for it)."""
    if cuda and version(cuda) and version(cuda).major >= 13 and capability(cc) < CUDA13_MIN_CAPABILITY:
        return False
    reach = coverage(architectures, cc)
    if reach == "ptx" and cuda_predates(cuda, cc):
        return False
    return reach != "none"


def cuda_predates(cuda: Optional[str], cc: str) -> bool:
    """Whether this CUDA toolkit is older than the first one that supports the compute capability."""
    first = knowledge.first_cuda_for(cc)
    return bool(cuda and first and version(cuda) and version(first) and version(cuda) < version(first))


def driver_needed(cuda: str, os: str) -> Optional[str]:
    """The driver a CUDA build needs for all its features: its toolkit's own driver, else its floor."""
    toolkit = knowledge.toolkit_driver(cuda, os)
    floor = toolkit or knowledge.driver_floor_for(cuda, os)
    return floor.driver if floor else None


# ----------------------------------------------------------------------------------- torch CUDA


@dataclass(frozen=True)
class _Candidate:
    release: knowledge.TorchRelease
    variant: knowledge.TorchVariant
    exact: bool  # the architecture list is the platform's own


def _search_order(torch_version: Optional[str]) -> tuple[Optional[knowledge.TorchRelease], list[knowledge.TorchRelease]]:
    """(the installed release when the table knows it, the releases to search in order): the
    installed one, then newer ones nearest first; with none installed, newest first."""
    releases = list(knowledge.torch_releases())
    installed = knowledge.torch_release(torch_version) if torch_version else None
    if installed:
        newer = [r for r in releases if Version(r.version) > Version(installed.version)]
        return installed, [installed, *newer]
    return None, list(reversed(releases))


def _python_fits(release: knowledge.TorchRelease, python: Optional[tuple[int, int]]) -> bool:
    return python is None or capability(release.python_min) <= python <= capability(release.python_max)


def torch_cuda_build(snapshot: Snapshot, torch_version: Optional[str]) -> FittedBuild:
    """The torch CUDA build that runs here, as a pip command; or why none does."""
    if jetson_of(snapshot):
        return torch_jetson_build(snapshot)
    platform, os = torch_platform(snapshot), host_os(snapshot)
    if platform is None or os is None:
        return FittedBuild(None, "PyTorch publishes CUDA wheels for Linux (x86_64, aarch64) and Windows only")
    capabilities, driver, python = gpu_capabilities(snapshot), driver_version(snapshot), python_minor(snapshot)
    installed, order = _search_order(torch_version)
    covering: list[_Candidate] = []  # builds with kernels for these GPUs, whatever the driver
    python_excluded: list[str] = []
    for release in order:
        if not _python_fits(release, python):
            python_excluded.append(release.version)
            continue
        found = []
        for variant in release.variants:
            architectures, exact = variant_architectures(variant, platform)
            if architectures and all(runs_on(architectures, variant.cuda, cc) for cc in capabilities):
                found.append(_Candidate(release, variant, exact))
        # Stable builds first; an experimental one only where no stable build of the release fits
        # (torch 2.7's CUDA 12.8 build was the first with Blackwell kernels); lists recorded for
        # this platform before lists of the Linux wheel standing in for it.
        found = ([c for c in found if c.variant.stable] or found)
        found = ([c for c in found if c.exact] or found)
        covering += found
        runnable = [c for c in found if driver is None or driver_runs_cuda(driver, c.variant.cuda, os)]
        if runnable:
            return _torch_command(runnable, installed, torch_version, capabilities, driver, os)
    return _no_torch_build(snapshot, covering, python_excluded, capabilities, driver, os, platform, installed)


def _torch_command(runnable: list[_Candidate], installed, torch_version: Optional[str], capabilities: list[str],
                   driver: Optional[str], os: str) -> FittedBuild:
    best = max(runnable, key=lambda c: capability(c.variant.cuda))
    release = best.release
    pin = _pin(release, installed, torch_version)
    kernels = f"has kernels for compute capability {', '.join(capabilities)}" if capabilities else \
        "is the newest CUDA build (the GPUs' compute capability is unknown here)"
    if not best.exact:
        kernels += " (by the Linux wheel's architecture list; this platform's own was not recorded)"
    experimental = "" if best.variant.stable else " (experimental)"
    reason = f"the CUDA {best.variant.cuda} build{experimental} of torch {release.version} {kernels}"
    if installed and release.version != installed.version:
        reason += f"; no CUDA build of the installed torch {installed.version} runs here"
    if driver:
        reason += f" and runs on driver {driver}"
    else:
        needs = [f"{_variant_name(c.variant)} needs driver {driver_needed(c.variant.cuda, os) or 'unknown'} or newer"
                 for c in sorted(runnable, key=lambda c: capability(c.variant.cuda), reverse=True)]
        reason += f"; the driver version is unknown here (`nvidia-smi` shows it): {', '.join(needs)}"
    return FittedBuild(f"pip install torch{pin} --index-url {best.variant.index_url}", reason)


def _pin(release: knowledge.TorchRelease, installed, torch_version: Optional[str]) -> str:
    """Keep the installed release exactly (its public version, without +cpu); any other release by minor."""
    if installed and release.version == installed.version:
        return f"=={Version(torch_version).base_version}"
    return f"=={release.version}.*"


def _variant_name(variant: knowledge.TorchVariant) -> str:
    return variant.index_url.rstrip("/").rsplit("/", 1)[-1]


def _no_torch_build(snapshot: Snapshot, covering: list[_Candidate], python_excluded: list[str],
                    capabilities: list[str], driver: Optional[str], os: str, platform: str, installed) -> FittedBuild:
    """Why no torch CUDA build runs here, in the terms of what must change."""
    if covering:  # kernels exist; only the driver is too old for them
        best = min(covering, key=lambda c: version(driver_needed(c.variant.cuda, os) or "0"))
        needed = driver_needed(best.variant.cuda, os)
        since = f" of torch {installed.version} and newer" if installed else ""
        reason = (f"driver {driver} is too old for every torch CUDA build{since} with kernels for these GPUs: update the "
                  f"NVIDIA driver to {needed} or newer, then "
                  f"`pip install torch=={best.release.version}.* --index-url {best.variant.index_url}`")
        older = _last_covering_release(capabilities, platform, installed, driver, os)
        if older:
            reason += (f"; or keep this driver with torch {older.release.version} (`pip install "
                       f"torch=={older.release.version}.* --index-url {older.variant.index_url}`)")
        return FittedBuild(None, reason)
    where = {"windows": "Windows", "linux-aarch64": "Linux aarch64", "linux-x86_64": "Linux x86_64"}[platform]
    gpus = f"compute capability {', '.join(capabilities)}" if capabilities else "these GPUs"
    older = _last_covering_release(capabilities, platform, installed)
    if older:
        reason = (f"no newer torch CUDA build for {where} has kernels for {gpus}: the last that did is torch "
                  f"{older.release.version} ({_variant_name(older.variant)})")
    else:
        reason = f"no torch CUDA build for {where} in the knowledge tables has kernels for {gpus}"
    if python_excluded:
        python = snapshot.machine.python.version if snapshot.machine.python else "this Python"
        reason += f"; torch {', '.join(sorted(python_excluded, key=Version))} publish no wheel for Python {python}"
    return FittedBuild(None, reason)


def _last_covering_release(capabilities: list[str], platform: str, installed, driver: Optional[str] = None,
                           os: Optional[str] = None) -> Optional[_Candidate]:
    """The newest release older than the installed one with a build that has kernels for these GPUs
    (and, given a driver, that this driver runs)."""
    if not capabilities:
        return None
    for release in reversed(knowledge.torch_releases()):
        if installed and Version(release.version) >= Version(installed.version):
            continue
        for variant in sorted(release.variants, key=lambda v: capability(v.cuda), reverse=True):
            architectures, exact = variant_architectures(variant, platform)
            if architectures and all(runs_on(architectures, variant.cuda, cc) for cc in capabilities) \
                    and (driver is None or driver_runs_cuda(driver, variant.cuda, os)):
                return _Candidate(release, variant, exact)
    return None


def torch_jetson_build(snapshot: Snapshot) -> FittedBuild:
    """On a Jetson, torch's GPU builds come from NVIDIA's Jetson wheels for the JetPack release."""
    jetson = jetson_of(snapshot)
    release = (knowledge.jetson_release(jetson.l4t_release) if jetson.l4t_release else None) or \
              (knowledge.jetson_release_for_jetpack(jetson.jetpack) if jetson.jetpack else None)
    if release is None:
        return FittedBuild(None, "install NVIDIA's PyTorch wheel for this JetPack release (developer.nvidia.com, "
                                 "\"Installing PyTorch for Jetson Platform\"); the L4T release was not recorded here")
    name = f"JetPack {release.jetpack} (L4T {release.l4t}, CUDA {release.cuda})"
    command = release.pip or (f"pip install torch --index-url {release.torch_index}" if release.torch_index else None)
    if not command:
        return FittedBuild(None, f"NVIDIA publishes no PyTorch wheel for {name} in the knowledge tables: build torch "
                                 "from source (NVIDIA's \"PyTorch for Jetson\" forum thread has the steps)")
    python = snapshot.machine.python
    running = ".".join(python.version.split(".")[:2]) if python else None
    if release.python and running and running != release.python:
        return FittedBuild(None, f"NVIDIA's PyTorch wheels for {name} are built for Python {release.python}, and this "
                                 f"is Python {python.version}: create the environment with Python {release.python}, "
                                 f"then `{command}`; or build torch from source for this Python")
    return FittedBuild(command, f"NVIDIA's PyTorch wheels for {name}; the generic PyPI aarch64 wheel has no Jetson "
                                "GPU support")


# ----------------------------------------------------------------------------------- torch ROCm


def effective_gfx_target(snapshot: Snapshot, target: str) -> str:
    """The gfx target ROCm loads kernels for: HSA_OVERRIDE_GFX_VERSION (10.3.0 -> gfx1030) when set."""
    override = snapshot.accelerators.visibility.get("HSA_OVERRIDE_GFX_VERSION", "").strip()
    parts = override.split(".")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        major, minor, step = (int(p) for p in parts)
        return f"gfx{major}{minor:x}{step:x}"
    return target


def torch_rocm_build(snapshot: Snapshot, torch_version: Optional[str]) -> FittedBuild:
    """The torch ROCm build whose gfx targets include every AMD GPU here; or why none does."""
    amd = snapshot.accelerators.amd
    targets = sorted({effective_gfx_target(snapshot, gpu.gfx_target) for gpu in amd.gpus if gpu.gfx_target}) if amd else []
    host = snapshot.machine.host
    if host and host.os != "Linux":
        return FittedBuild(None, "PyTorch's ROCm wheels are published for Linux only")
    installed, order = _search_order(torch_version)
    python = python_minor(snapshot)
    for release in order:
        if not _python_fits(release, python):
            continue
        builds = [b for b in release.rocm_builds if b.gfx_targets and all(t in b.gfx_targets for t in targets)]
        if builds:
            best = max(builds, key=lambda b: Version(b.rocm))
            pin = _pin(release, installed, torch_version)
            listed = f"lists {', '.join(targets)}" if targets else "is the newest ROCm build (the gfx target is unknown here)"
            return FittedBuild(f"pip install torch{pin} --index-url {best.index_url}",
                               f"the ROCm {best.rocm} build of torch {release.version} {listed}")
    override = knowledge.gfx_override(targets[0]) if len(targets) == 1 else None
    if override:
        return FittedBuild(f"export HSA_OVERRIDE_GFX_VERSION={override.value}",
                           f"no torch ROCm build lists {targets[0]}; {override.note} (at your own risk)")
    # Only a build whose recorded list has the target is named: the newest older release with one.
    for release in reversed(knowledge.torch_releases()):
        if installed and Version(release.version) >= Version(installed.version) or not _python_fits(release, python):
            continue
        builds = [b for b in release.rocm_builds if b.gfx_targets and all(t in b.gfx_targets for t in targets)]
        if builds and targets:
            best = max(builds, key=lambda b: Version(b.rocm))
            return FittedBuild(f"pip install torch=={release.version}.* --index-url {best.index_url}",
                               f"the ROCm {best.rocm} build of torch {release.version} lists {', '.join(targets)}; "
                               f"no ROCm build of torch {installed.version} or newer is recorded with it")
    return FittedBuild(None, f"no torch ROCm build in the knowledge tables lists {', '.join(targets) or 'this GPU'}: "
                             "build torch from source with PYTORCH_ROCM_ARCH set to it")


# ----------------------------------------------------------------------------------- any framework


def gpu_build_for(snapshot: Snapshot, framework: str) -> FittedBuild:
    """How to get a GPU build of this framework on this machine: the command when there is one."""
    installed = snapshot.frameworks.get(framework)
    if framework == "torch":
        return torch_cuda_build(snapshot, (installed.version or installed.distribution_version) if installed else None)
    if framework == "tensorflow":
        return tensorflow_gpu_build(snapshot)
    if framework == "jax":
        driver, os = driver_version(snapshot), host_os(snapshot)
        for major, extra in JAX_CUDA_EXTRAS:
            if driver and os and driver_runs_cuda(driver, major, os):
                return FittedBuild(f'pip install -U "jax[{extra}]"', f"JAX's CUDA {major} wheels run on driver {driver}")
        if driver is None:
            return FittedBuild('pip install -U "jax[cuda12]"', "JAX's CUDA 12 wheels need driver 525.60.13 or newer "
                                                               "(the driver version is unknown here)")
        return FittedBuild(None, f"no JAX CUDA build runs on driver {driver}: update the NVIDIA driver to 525.60.13 "
                                 "or newer")
    return FittedBuild(None, f"see {framework}'s installation guide for its GPU build")


def framework_install(snapshot: Snapshot, framework: str) -> FittedBuild:
    """How to install a framework that is not installed here: its GPU build where this machine has
    NVIDIA GPUs and one fits, else the newest release that publishes wheels for the audited Python,
    torch from its CPU index where plain `pip install torch` would bring gigabytes of CUDA
    libraries to a machine without an NVIDIA GPU."""
    nvidia = snapshot.accelerators.nvidia
    if nvidia and nvidia.gpus:
        fitted = gpu_build_for(snapshot, framework)
        if fitted.command:
            return fitted
    python, python_version = python_minor(snapshot), snapshot.machine.python.version if snapshot.machine.python else None
    tables = {"torch": knowledge.torch_releases(), "tensorflow": knowledge.tensorflow_releases()}
    if framework not in tables:
        return FittedBuild(f"pip install {framework}", f"{framework}'s newest release (no release table for it here)")
    releases = tables[framework]
    fitting = [r for r in releases if python is None
               or capability(r.python_min) <= python <= capability(r.python_max)]
    if not fitting:
        return FittedBuild(None, f"no {framework} release from {releases[0].version} to {releases[-1].version} "
                                 f"publishes wheels for Python {python_version}: create the environment with Python "
                                 f"{releases[-1].python_min}-{releases[-1].python_max}")
    release = fitting[-1]
    pin = "" if release is releases[-1] else f"=={release.version}.*"
    requirement = f'"{framework}{pin}"' if pin else framework
    why = (f"{framework} {release.version} is the newest release with wheels for Python {python_version}"
           if pin else f"{framework} {release.version}, the newest release")
    if framework == "torch" and _cuda_by_default(release, torch_platform(snapshot)):
        return FittedBuild(f"pip install {requirement} --index-url {TORCH_INDEX.format(variant='cpu')}",
                           f"{why}; its CPU build, since no NVIDIA GPU is here and PyPI's default build brings CUDA")
    return FittedBuild(f"pip install {requirement}", why)


def _cuda_by_default(release: knowledge.TorchRelease, platform: Optional[str]) -> bool:
    """Whether plain `pip install torch` of this release installs a CUDA build on this platform."""
    default = {"linux-x86_64": release.pypi_default_variant,
               "linux-aarch64": release.aarch64_pypi_variant}.get(platform or "")
    return bool(default and default.startswith("cu"))


def tensorflow_gpu_build(snapshot: Snapshot) -> FittedBuild:
    """TensorFlow's GPU build here: tensorflow-gpu for 1.x, the and-cuda extra from 2.14 on Linux,
    WSL2 on Windows after 2.10."""
    installed = snapshot.frameworks.get("tensorflow")
    host = snapshot.machine.host
    tf_version = (installed.distribution_version or installed.version) if installed else None
    parsed = version(tf_version) if tf_version else None
    # Linux decides where the GPU build lives (Windows after 2.10 has none at all: WSL2, below).
    if parsed and knowledge.tensorflow_pip_includes_gpu(parsed.public, "linux") is False:
        # Up to 2.0 `tensorflow` is the CPU build and `tensorflow-gpu` the GPU one; both write the same module.
        others = [name for name, pkg in snapshot.packages.items() if "tensorflow" in pkg.modules and name != "tensorflow-gpu"]
        remove = f"pip uninstall -y {' '.join(others)} && " if others else ""
        return FittedBuild(f"{remove}pip install tensorflow-gpu=={parsed.public}",
                           f"TensorFlow {parsed.public}'s GPU build is the separate tensorflow-gpu distribution")
    windows_last = knowledge.tensorflow_rule("windows-native-gpu-last")
    if host and host.os == "Windows" and not (parsed and parsed.release[:2] <= capability(windows_last)):
        return FittedBuild(None, "TensorFlow's GPU build runs only in WSL2 on Windows: `wsl --install`, then "
                                 "`pip install \"tensorflow[and-cuda]\"` inside it")
    first = knowledge.tensorflow_rule("and-cuda-extra")
    if parsed and parsed < version(first):
        release = knowledge.tensorflow_release(tf_version)
        needs = f"CUDA {release.cuda} and cuDNN {release.cudnn}" if release else "its CUDA and cuDNN"
        return FittedBuild(None, f"TensorFlow {tf_version} predates the and-cuda extra ({first}): install {needs} "
                                 "from NVIDIA, or upgrade TensorFlow")
    pin = f"=={tf_version}" if tf_version else ""
    return FittedBuild(f'pip install "tensorflow[and-cuda]{pin}"',
                       "TensorFlow's Linux wheels bring their CUDA libraries with the and-cuda extra")
