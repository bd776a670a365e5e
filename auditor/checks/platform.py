"""PLT and ENV: the platform and Python the frameworks were published for."""

from __future__ import annotations

from auditor import knowledge
from auditor.checks.base import Hit, check
from auditor.facts import Snapshot
from auditor.probes.apple import MPS_MINIMUM_MACOS
from auditor.verdicts import capability, version


@check("PLT001", "tensorflow-windows-native-gpu", "warning",
       "TensorFlow newer than 2.10 on native Windows cannot use the NVIDIA GPU.",
       "TensorFlow 2.10 was the last release with GPU support on native Windows; later releases run "
       "on the CPU there. The GPU path on Windows is WSL2.")
def tensorflow_windows_gpu(snapshot: Snapshot):
    tf, host = snapshot.frameworks.get("tensorflow"), snapshot.machine.host
    nvidia = snapshot.accelerators.nvidia
    last = knowledge.tensorflow_rule("windows-native-gpu-last")
    tf_version = version(tf.version or tf.distribution_version or "") if tf else None
    if host and host.os == "Windows" and nvidia and nvidia.gpus and tf_version and tf_version.release[:2] > capability(last):
        yield Hit(f"TensorFlow {tf_version} cannot use the NVIDIA GPU on native Windows (GPU support ended at {last})",
                  [f"host: {host.os_release}", f"{len(nvidia.gpus)} NVIDIA GPU(s) (NVML)",
                   f"TensorFlow {tf_version} (package metadata)"],
                  "Run TensorFlow in WSL2 (`wsl --install`, then `pip install \"tensorflow[and-cuda]\"` inside it), "
                  "or use PyTorch, whose Windows CUDA wheels come from download.pytorch.org.")


@check("PLT002", "apple-tensorflow-without-metal", "warning",
       "TensorFlow on Apple silicon without the tensorflow-metal plugin runs on the CPU only.",
       "TensorFlow reaches the Apple GPU only through Apple's tensorflow-metal PluggableDevice.")
def apple_tensorflow_without_metal(snapshot: Snapshot):
    apple, tf = snapshot.accelerators.apple, snapshot.frameworks.get("tensorflow")
    if apple and apple.arm64 and tf and not apple.tensorflow_metal:
        yield Hit(f"TensorFlow {tf.version or tf.distribution_version} is installed without tensorflow-metal: no Apple GPU",
                  [f"macOS {apple.macos_version} arm64", "tensorflow-metal: not installed (package metadata)"],
                  "`pip install tensorflow-metal`")


@check("PLT003", "macos-too-old-for-mps", "warning",
       "macOS is older than 12.3, so PyTorch's MPS (Apple GPU) backend is unavailable.",
       "PyTorch's MPS backend needs macOS 12.3 or later on Apple silicon. On older releases "
       "torch.backends.mps.is_available() is False and every model runs on the CPU. Source: "
       "pytorch.org/docs/stable/notes/mps.html.")
def macos_too_old_for_mps(snapshot: Snapshot):
    apple, torch = snapshot.accelerators.apple, snapshot.frameworks.get("torch")
    minimum = ".".join(map(str, MPS_MINIMUM_MACOS))
    if apple and apple.arm64 and torch and not apple.mps_eligible:
        yield Hit(f"macOS {apple.macos_version} is older than {minimum}: PyTorch cannot use the Apple GPU (MPS)",
                  [f"macOS {apple.macos_version} (platform.mac_ver())"],
                  f"Update macOS to {minimum} or later.")


@check("ENV003", "python-outside-framework-range", "warning",
       "The Python version is outside the range the installed framework release supports.",
       "Each PyTorch and TensorFlow release publishes wheels and tests for a range of Python versions. "
       "Outside it, the install was forced or built locally, and parts of the framework may be broken.")
def python_outside_range(snapshot: Snapshot):
    python = snapshot.machine.python
    if not python:
        return
    running = capability(".".join(python.version.split(".")[:2]))
    lookups = {"torch": knowledge.torch_release, "tensorflow": knowledge.tensorflow_release}
    for name, lookup in lookups.items():
        fw = snapshot.frameworks.get(name)
        release = lookup(fw.version or fw.distribution_version) if fw else None
        if release and not capability(release.python_min) <= running <= capability(release.python_max):
            yield Hit(f"{name} {release.version} supports Python {release.python_min}-{release.python_max}, "
                      f"not {python.version}",
                      [f"Python {python.version} ({python.executable})",
                       f"{name} {release.version}: Python {release.python_min}-{release.python_max} ({release.source})"],
                      f"Create the environment with a Python in {release.python_min}-{release.python_max} "
                      f"(e.g. `uv venv --python {release.python_max}`), or install a {name} release that supports {python.version}.")


@check("ENV004", "frameworks-want-different-cuda", "warning",
       "PyTorch and TensorFlow in one environment were built for different CUDA or cuDNN major versions.",
       "Each framework loads the CUDA and cuDNN libraries it was built for. Imported into one process, "
       "the first one loaded wins and the other fails or misbehaves; pip may also have replaced one's "
       "nvidia-* wheels with the other's.")
def frameworks_want_different_cuda(snapshot: Snapshot):
    torch, tf = snapshot.frameworks.get("torch"), snapshot.frameworks.get("tensorflow")
    if not (torch and tf and torch.build and tf.build and torch.build.cuda_version and tf.build.cuda_version):
        return
    differences = []
    for label, left, right in (("CUDA", torch.build.cuda_version, tf.build.cuda_version),
                               ("cuDNN", torch.build.cudnn_version, tf.build.cudnn_version)):
        if left and right and left.split(".")[0] != right.split(".")[0]:
            differences.append(f"{label} {left.split('.')[0]} vs {right.split('.')[0]}")
    if differences:
        yield Hit(f"torch {torch.version} and TensorFlow {tf.version} want different majors: {', '.join(differences)}",
                  [f"torch build: CUDA {torch.build.cuda_version}, cuDNN {torch.build.cudnn_version}",
                   f"TensorFlow build: CUDA {tf.build.cuda_version}, cuDNN {tf.build.cudnn_version}"],
                  "Keep them in separate environments (one venv per framework), or pick releases built on the same "
                  "CUDA major.")
