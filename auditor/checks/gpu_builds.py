"""FW006-FW007: a framework build that cannot use this machine's NVIDIA GPUs, and the install
command that fits this driver, these GPUs and this OS."""

from __future__ import annotations

from auditor.checks.base import Hit, check
from auditor.facts import FrameworkFacts, Snapshot
from auditor.verdicts import gpu_build_for


@check("FW006", "cpu-build-with-usable-gpu", "warning",
       "A CPU-only framework build on a machine with a usable NVIDIA GPU.",
       "The framework works, but every computation runs on the CPU while the GPU sits idle. The fix "
       "is a CUDA build that this driver runs and that has kernels for these GPUs.")
def cpu_build_with_gpu(snapshot: Snapshot):
    nvidia = snapshot.accelerators.nvidia
    if not nvidia or not nvidia.gpus:
        return
    for fw in snapshot.frameworks.values():
        if not fw.build or fw.build.variant != "cpu":
            continue
        evidence = [f"{fw.name} {fw.version} build variant: cpu ({fw.sources.get('build', 'build info')})",
                    f"{len(nvidia.gpus)} NVIDIA GPU(s), driver {nvidia.driver_version} ({nvidia.source})"]
        yield Hit(f"{fw.name} {fw.version} is a CPU-only build, but this machine has {len(nvidia.gpus)} NVIDIA GPU(s)",
                  evidence, _gpu_install_fix(snapshot, fw))


@check("FW007", "gpu-not-visible-to-framework", "error",
       "The driver sees NVIDIA GPUs but a CUDA build of the framework sees none.",
       "The framework was built for CUDA and the driver lists GPUs, yet the framework found no GPU. "
       "For TensorFlow this is almost always missing CUDA libraries (it then runs silently on the CPU); "
       "for PyTorch, CUDA_VISIBLE_DEVICES, a driver too old for the build, or a container without devices.")
def gpu_not_visible(snapshot: Snapshot):
    nvidia = snapshot.accelerators.nvidia
    if not nvidia or not nvidia.gpus:
        return
    for fw in snapshot.frameworks.values():
        if fw.probe.status != "ok" or not fw.build or fw.build.variant != "cuda":
            continue
        if not any(d.kind in ("cuda", "gpu") for d in fw.devices):
            cuda_libraries = [lib for lib in (fw.runtime.loaded_libraries if fw.runtime else []) if "cud" in lib]
            yield Hit(f"{fw.name} {fw.version} (CUDA build) sees no GPU, though the driver lists {len(nvidia.gpus)}",
                      [f"{len(nvidia.gpus)} NVIDIA GPU(s) ({nvidia.source})", f"{fw.name} devices: "
                       + ", ".join(d.id for d in fw.devices),
                       f"CUDA libraries loaded by {fw.name}: {', '.join(cuda_libraries) or 'none'} (/proc/self/maps)"],
                      _gpu_install_fix(snapshot, fw) if fw.name == "tensorflow" else
                      "Check CUDA_VISIBLE_DEVICES and the DRV findings; run `python -c 'import torch; torch.cuda.init()'` "
                      "to see CUDA's own error.")


def _gpu_install_fix(snapshot: Snapshot, fw: FrameworkFacts) -> str:
    fitted = gpu_build_for(snapshot, fw.name)
    return f"`{fitted.command}`: {fitted.reason}." if fitted.command else f"{fitted.reason[0].upper()}{fitted.reason[1:]}."
