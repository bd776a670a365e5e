"""FW006, FW007, FW011: a framework build that cannot use this machine's NVIDIA GPUs, and the
install command that fits this driver, these GPUs and this OS."""

from __future__ import annotations

from auditor import knowledge
from auditor.builds import gpu_build_for
from auditor.checks.base import Hit, check
from auditor.facts import FrameworkFacts, Snapshot
from auditor.verdicts import version

# What `pip install "tensorflow[and-cuda]"` brings on Linux from TensorFlow 2.14 (the and-cuda
# extra of tensorflow/tools/pip_package/setup.py): without cuDNN and cuBLAS TensorFlow loads no GPU.
TENSORFLOW_CUDA_WHEELS = ("nvidia-cudnn-cu12", "nvidia-cublas-cu12")


@check("FW006", "cpu-build-with-usable-gpu", "warning",
       "A CPU-only framework build on a machine with a usable NVIDIA GPU.",
       "The framework works, but every computation runs on the CPU while the GPU sits idle. The fix "
       "is a CUDA build that this driver runs and that has kernels for these GPUs.",
       fix="Install the framework's GPU build that this driver runs and that has kernels for these GPUs (the "
           "finding names the command; torch: `pip install torch==<version> --index-url "
           "https://download.pytorch.org/whl/cu<NNN>`; TensorFlow on Linux: `pip install \"tensorflow[and-cuda]\"`; "
           "JAX: `pip install -U \"jax[cuda12]\"`).",
       example="torch 2.7.1+cpu is a CPU-only build, but this machine has 1 NVIDIA GPU(s)\n"
               "1 NVIDIA GPU(s), driver 570.133.20 (nvml)")
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
                  evidence, _gpu_install_fix(snapshot, fw), framework=fw.name)


@check("FW007", "gpu-not-visible-to-framework", "error",
       "The driver sees NVIDIA GPUs but a CUDA build of the framework sees none.",
       "The framework was built for CUDA and the driver lists GPUs, yet the framework found no GPU. "
       "For TensorFlow this is almost always missing CUDA libraries (it then runs silently on the CPU); "
       "for PyTorch, CUDA_VISIBLE_DEVICES, a driver too old for the build, or a container without devices.",
       fix="Check CUDA_VISIBLE_DEVICES and the DRV findings, and run `python -c 'import torch; "
           "torch.cuda.init()'` to see CUDA's own error; for TensorFlow, put the nvidia-*-cu12 wheels' lib "
           "directories on LD_LIBRARY_PATH, or install its GPU build (`pip install \"tensorflow[and-cuda]\"`).",
       example="torch 2.7.1+cu128 (CUDA build) sees no GPU, though the driver lists 4\n"
               "torch devices: cpu")
def gpu_not_visible(snapshot: Snapshot):
    nvidia = snapshot.accelerators.nvidia
    if not nvidia or not nvidia.gpus:
        return
    for fw in snapshot.frameworks.values():
        if fw.probe.status != "ok" or not fw.build or fw.build.variant != "cuda" or fw.devices is None:
            continue  # devices None: nobody looked, which is not "saw none"
        if not any(d.kind in ("cuda", "gpu") for d in fw.devices):
            cuda_libraries = [lib for lib in (fw.runtime.loaded_libraries if fw.runtime else []) if "cud" in lib]
            if fw.name == "tensorflow" and _missing_cuda_wheels(snapshot, fw):
                continue  # FW011 names the cause
            yield Hit(f"{fw.name} {fw.version} (CUDA build) sees no GPU, though the driver lists {len(nvidia.gpus)}",
                      [f"{len(nvidia.gpus)} NVIDIA GPU(s) ({nvidia.source})", f"{fw.name} devices: "
                       + ", ".join(d.id for d in fw.devices),
                       f"CUDA libraries loaded by {fw.name}: {', '.join(cuda_libraries) or 'none'} (/proc/self/maps)"],
                      _tensorflow_visibility_fix(snapshot, fw) if fw.name == "tensorflow" else
                      "Check CUDA_VISIBLE_DEVICES and the DRV findings; run `python -c 'import torch; torch.cuda.init()'` "
                      "to see CUDA's own error.", framework=fw.name)


@check("FW011", "tensorflow-cuda-wheels-missing", "error",
       "A TensorFlow 2.14+ CUDA build on Linux without the nvidia-*-cu12 libraries it loads.",
       "From 2.14, TensorFlow's Linux wheels no longer find a system CUDA by default: the CUDA and "
       "cuDNN libraries come as nvidia-*-cu12 wheels, installed by the and-cuda extra. A plain `pip "
       "install tensorflow` leaves them out, and TensorFlow then runs on the CPU with only a log line "
       "saying it skipped the GPU.",
       fix="Install TensorFlow with its CUDA libraries: `pip install \"tensorflow[and-cuda]==<installed "
           "version>\"`, which brings the nvidia-*-cu12 wheels it loads.",
       example="TensorFlow 2.18.0 has no CUDA libraries to load: nvidia-cudnn-cu12, nvidia-cublas-cu12 not "
               "installed\n"
               "TensorFlow 2.18.0 on Linux (CUDA 12.5.1 build)")
def tensorflow_cuda_wheels_missing(snapshot: Snapshot):
    fw = snapshot.frameworks.get("tensorflow")
    nvidia = snapshot.accelerators.nvidia
    missing = _missing_cuda_wheels(snapshot, fw) if fw else []
    if not missing or not (nvidia and nvidia.gpus):
        return
    yield Hit(f"TensorFlow {fw.distribution_version or fw.version} has no CUDA libraries to load: "
              f"{', '.join(missing)} not installed",
              [f"TensorFlow {fw.distribution_version or fw.version} on {snapshot.machine.host.os} "
               f"(CUDA {fw.build.cuda_version} build)",
               f"not installed: {', '.join(missing)} (package metadata)",
               f"{len(nvidia.gpus)} NVIDIA GPU(s) ({nvidia.source})"],
              _gpu_install_fix(snapshot, fw), framework=fw.name)


def _missing_cuda_wheels(snapshot: Snapshot, fw: FrameworkFacts) -> list[str]:
    """The and-cuda wheels a TensorFlow 2.14+ Linux CUDA build needs and does not have; [] when
    this is not such a build, or when a system cuDNN found by the loader stands in."""
    host, build = snapshot.machine.host, fw.build
    tf_version = version(fw.distribution_version or fw.version or "")
    if not (host and host.os == "Linux" and build and build.variant == "cuda" and tf_version):
        return []
    if fw.devices is not None and any(d.kind in ("gpu", "cuda") for d in fw.devices):
        return []  # it found its libraries somewhere: it sees a GPU
    if tf_version < version(knowledge.tensorflow_rule("and-cuda-extra")):
        return []
    toolkit = snapshot.accelerators.cuda_toolkit
    if toolkit and any(name.startswith("libcudnn") for name in toolkit.libraries):
        return []
    return [name for name in TENSORFLOW_CUDA_WHEELS if name not in snapshot.packages]


def _tensorflow_visibility_fix(snapshot: Snapshot, fw: FrameworkFacts) -> str:
    """The CUDA wheels are there but TensorFlow did not load them (TensorFlow 2.16.1's search path
    misses site-packages/nvidia/*/lib): point the loader at them, else install the fitted build."""
    if all(name in snapshot.packages for name in TENSORFLOW_CUDA_WHEELS):
        return ("The nvidia-*-cu12 wheels are installed but TensorFlow did not load them: put their lib "
                "directories on the loader path, `export LD_LIBRARY_PATH=$(python -c 'import nvidia, os; "
                "print(\":\".join(os.path.join(p, d, \"lib\") for p in nvidia.__path__ for d in os.listdir(p)))')"
                ":$LD_LIBRARY_PATH`, then check `python -c 'import tensorflow as tf; "
                "print(tf.config.list_physical_devices(\"GPU\"))'`.")
    return _gpu_install_fix(snapshot, fw)


def _gpu_install_fix(snapshot: Snapshot, fw: FrameworkFacts) -> str:
    fitted = gpu_build_for(snapshot, fw.name)
    return f"`{fitted.command}`: {fitted.reason}." if fitted.command else f"{fitted.reason[0].upper()}{fitted.reason[1:]}."
