"""PLT and ENV: the platform and Python the frameworks were published for."""

from __future__ import annotations

import shlex

from auditor import knowledge
from auditor.builds import framework_install
from auditor.checks.base import Hit, check
from auditor.facts import Snapshot
from auditor.verdicts import capability, version

DEFAULT_MPS_MINIMUM = "12.3"  # the first MPS release (torch 1.12), for a torch the table does not know


@check("PLT001", "tensorflow-windows-native-gpu", "warning",
       "TensorFlow newer than 2.10 on native Windows cannot use the NVIDIA GPU.",
       "TensorFlow 2.10 was the last release with GPU support on native Windows; later releases run "
       "on the CPU there. The GPU path on Windows is WSL2.",
       fix="Run TensorFlow in WSL2 (`wsl --install`, then `pip install \"tensorflow[and-cuda]\"` inside it), or use "
           "PyTorch, whose Windows CUDA wheels come from download.pytorch.org.",
       example="TensorFlow 2.18.0 cannot use the NVIDIA GPU on native Windows (GPU support ended at 2.10)\n"
               "1 NVIDIA GPU(s) (NVML)")
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
                  "or use PyTorch, whose Windows CUDA wheels come from download.pytorch.org.", framework="tensorflow")


@check("PLT002", "apple-tensorflow-without-metal", "warning",
       "TensorFlow on Apple silicon without the tensorflow-metal plugin runs on the CPU only.",
       "TensorFlow reaches the Apple GPU only through Apple's tensorflow-metal PluggableDevice.",
       fix="Install Apple's Metal plugin: `pip install tensorflow-metal`.",
       example="TensorFlow 2.18.0 is installed without tensorflow-metal: no Apple GPU\n"
               "macOS 15.5 arm64")
def apple_tensorflow_without_metal(snapshot: Snapshot):
    apple, tf = snapshot.accelerators.apple, snapshot.frameworks.get("tensorflow")
    if apple and apple.arm64 and tf and not apple.tensorflow_metal:
        yield Hit(f"TensorFlow {tf.version or tf.distribution_version} is installed without tensorflow-metal: no Apple GPU",
                  [f"macOS {apple.macos_version} arm64", "tensorflow-metal: not installed (package metadata)"],
                  "`pip install tensorflow-metal`", framework="tensorflow")


@check("PLT003", "macos-too-old-for-mps", "warning",
       "macOS is older than the installed PyTorch release needs for MPS (the Apple GPU).",
       "PyTorch's MPS backend needs a minimum macOS on Apple silicon, and the minimum moved: 12.3 "
       "when MPS arrived (1.12), 13.0 from torch 2.5, 14.0 (Sonoma) from torch 2.9. Below it "
       "torch.backends.mps.is_available() is False and every model runs on the CPU; the error text "
       "of some releases still names the older minimum. The minimum per release is in "
       "auditor/knowledge/pytorch-releases.json, with its source.",
       fix="Update macOS to the minimum the installed torch release needs for MPS, or keep this macOS with the "
           "newest torch whose MPS runs on it (`pip install \"torch==<version>.*\"`).",
       example="macOS 13.6.7 is older than 14.0: torch 2.9.0 cannot use the Apple GPU (MPS)\n"
               "MPS needs macOS 14.0 or later for torch 2.9 (pytorch/pytorch:RELEASE.md)")
def macos_too_old_for_mps(snapshot: Snapshot):
    apple, torch = snapshot.accelerators.apple, snapshot.frameworks.get("torch")
    if not (apple and apple.arm64 and torch and apple.macos_version and version(apple.macos_version)):
        return
    release = knowledge.torch_release(torch.version or torch.distribution_version or "")
    minimum = release.mps_macos_min if release and release.mps_macos_min else DEFAULT_MPS_MINIMUM
    where = f"torch {release.version} ({release.source})" if release else "the first MPS release"
    if version(apple.macos_version) < version(minimum):
        yield Hit(f"macOS {apple.macos_version} is older than {minimum}: torch {torch.version} cannot use the Apple GPU (MPS)",
                  [f"macOS {apple.macos_version} (platform.mac_ver())", f"MPS needs macOS {minimum} or later for {where}"],
                  f"Update macOS to {minimum} or later" + _older_mps_release(apple.macos_version) + ".", framework="torch")


def _older_mps_release(macos: str) -> str:
    """', or keep this macOS with torch 2.4 (MPS from macOS 12.3)': the newest release whose MPS runs here."""
    fitting = [r for r in knowledge.torch_releases() if r.mps_macos_min and version(macos) >= version(r.mps_macos_min)]
    if not fitting:
        return ""
    newest = fitting[-1]
    return f", or keep this macOS with torch {newest.version} (`pip install \"torch=={newest.version}.*\"`, MPS from macOS {newest.mps_macos_min})"


@check("ENV003", "python-outside-framework-range", "warning",
       "The Python version is outside the range the installed framework release supports.",
       "Each PyTorch and TensorFlow release publishes wheels and tests for a range of Python versions. "
       "Outside it, the install was forced or built locally, and parts of the framework may be broken.",
       fix="Create the environment with a Python in the release's supported range (`uv venv --python <version>`), "
           "or install a release of the framework that supports this Python.",
       example="torch 2.4 supports Python 3.8-3.12, not 3.13.1\n"
               "torch 2.4: Python 3.8-3.12 (pytorch/pytorch:RELEASE.md)")
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
                      f"(e.g. `uv venv --python {release.python_max}`), or install a {name} release that supports {python.version}.", framework=name)


@check("ENV004", "frameworks-want-different-cuda", "warning",
       "PyTorch and TensorFlow in one environment were built for different CUDA or cuDNN major versions.",
       "Each framework loads the CUDA and cuDNN libraries it was built for. Imported into one process, "
       "the first one loaded wins and the other fails or misbehaves; pip may also have replaced one's "
       "nvidia-* wheels with the other's.",
       fix="Keep the frameworks in separate environments (one venv per framework), or pick releases built on the "
           "same CUDA and cuDNN major.",
       example="torch 2.7.1+cu128 and TensorFlow 2.15.1 want different majors: cuDNN 9 vs 8\n"
               "TensorFlow build: CUDA 12.2, cuDNN 8")
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


@check("ENV006", "no-framework-wheel-for-python", "warning",
       "No framework is installed, and this Python is outside what a framework publishes wheels for.",
       "Each PyTorch and TensorFlow release publishes wheels for a range of Python versions (its "
       "Requires-Python and wheel tags). On a Python newer than the newest release supports, `pip "
       "install` fails with 'No matching distribution found'; on an older one it installs an old "
       "release. Said only while no framework is installed, for each framework that would not install "
       "at its newest release, with the release that would.",
       fix="Create the environment with a Python the framework's newest release supports (`uv venv --python "
           "<version>`), then `pip install <framework>`; or install the older release the finding names, which "
           "has wheels for this Python.",
       example="tensorflow 2.21 publishes no wheel for Python 3.14.0: no tensorflow release publishes wheels for "
               "it\n"
               "tensorflow 2.21: Python 3.10-3.13 (tensorflow/docs:site/en/install/source.md)")
def no_wheel_for_python(snapshot: Snapshot):
    python = snapshot.machine.python
    if not python or any(name in snapshot.frameworks for name in ("torch", "tensorflow", "jax")):
        return
    running = capability(".".join(python.version.split(".")[:2]))
    for name, releases in (("torch", knowledge.torch_releases()), ("tensorflow", knowledge.tensorflow_releases())):
        if not releases:
            continue
        newest = releases[-1]
        if capability(newest.python_min) <= running <= capability(newest.python_max):
            continue
        fitting = [r for r in releases if capability(r.python_min) <= running <= capability(r.python_max)]
        older = (f"{name} {fitting[-1].version} is the newest release with wheels for it "
                 f"(`{framework_install(snapshot, name).command}`)" if fitting
                 else f"no {name} release publishes wheels for it")
        yield Hit(f"{name} {newest.version} publishes no wheel for Python {python.version}: {older}",
                  [f"Python {python.version} ({python.executable})",
                   f"{name} {newest.version}: Python {newest.python_min}-{newest.python_max} ({newest.source})"],
                  _new_environment(python, newest.python_max, name)
                  + (f"; or install {name} {fitting[-1].version} on this Python" if fitting else "") + ".",
                  framework=name)


def _new_environment(python, version: str, name: str) -> str:
    """Recreate the audited environment in place, so that its own interpreter's pip installs into it;
    a system interpreter gets a new one, .venv, beside the project."""
    if python.environment_path:
        return (f"Recreate the environment with Python {version} (`uv venv --clear --seed --python {version} "
                f"{shlex.quote(python.environment_path)}`), then `pip install {name}` in it")
    return (f"Create an environment with Python {version} (`uv venv --seed --python {version} .venv`), then "
            f"`.venv/bin/python -m pip install {name}`")
