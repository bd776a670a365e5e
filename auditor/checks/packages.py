"""ENV: the Python environment's packages get in each other's way."""

from __future__ import annotations

from pathlib import PurePath

from auditor import knowledge
from auditor.checks.base import Hit, check
from auditor.facts import Snapshot


@check("ENV001", "conflicting-tensorflow-distributions", "error",
       "Two distributions install the same `tensorflow` module.",
       "tensorflow, tensorflow-cpu, tensorflow-gpu, tensorflow-intel and tf-nightly all write the "
       "`tensorflow/` package. Installed together, the last one installed overwrote some files of "
       "the other, and uninstalling either deletes files the other needs. Metapackages that only "
       "depend on another (tensorflow on Windows pulls tensorflow-intel) install no module and "
       "are not counted.",
       fix="Uninstall every distribution that writes the tensorflow module, then install the one this machine "
           "needs: `pip uninstall -y <each of them> && pip install <the one to keep>==<version>`.",
       example="2 distributions install the tensorflow module: tensorflow 2.18.0, tensorflow-cpu 2.17.1\n"
               "tensorflow-cpu 2.17.1 installs tensorflow (package metadata)")
def conflicting_tensorflow(snapshot: Snapshot):
    owners = {name: pkg for name, pkg in snapshot.packages.items() if "tensorflow" in pkg.modules}
    if len(owners) > 1:
        listed = ", ".join(f"{name} {pkg.version}" for name, pkg in owners.items())
        keep = _distribution_to_keep(snapshot, owners)
        yield Hit(f"{len(owners)} distributions install the tensorflow module: {listed}",
                  [f"{name} {pkg.version} installs {', '.join(pkg.modules)} (package metadata)" for name, pkg in owners.items()],
                  f"Uninstall all of them, then install one: "
                  f"`pip uninstall -y {' '.join(owners)} && pip install {keep}"
                  + (f"=={owners[keep].version}`" if owners[keep].version else "`"))


def _distribution_to_keep(snapshot: Snapshot, owners: dict) -> str:
    """The one the machine can use: up to TensorFlow 2.0 `tensorflow` is the CPU build and
    `tensorflow-gpu` the GPU one, so a machine with an NVIDIA GPU keeps tensorflow-gpu; from 2.1
    `tensorflow` itself has GPU support (knowledge: tensorflow-releases, pip-tensorflow-*)."""
    gpu = owners.get("tensorflow-gpu")
    old = bool(gpu and gpu.version and knowledge.tensorflow_pip_includes_gpu(gpu.version, "linux") is False)
    nvidia = snapshot.accelerators.nvidia
    if old and (nvidia and nvidia.gpus or snapshot.accelerators.jetson):
        return "tensorflow-gpu"
    return "tensorflow" if "tensorflow" in owners else next(iter(owners))


@check("ENV002", "deprecated-pynvml-distribution", "warning",
       "The deprecated `pynvml` distribution is installed.",
       "NVIDIA publishes the NVML bindings as nvidia-ml-py. The old `pynvml` distribution is "
       "deprecated, warns on import, and overwrites the `pynvml` module that nvidia-ml-py provides, "
       "so which one runs depends on install order.",
       fix="Remove pynvml and reinstall NVIDIA's bindings: `pip uninstall -y pynvml && pip install "
           "--force-reinstall nvidia-ml-py`.",
       example="The deprecated pynvml 11.5.3 distribution is installed\n"
               "pynvml 11.5.3 at /opt/venv/lib/python3.12/site-packages (package metadata)")
def deprecated_pynvml(snapshot: Snapshot):
    pkg = snapshot.packages.get("pynvml")
    if pkg:
        yield Hit(f"The deprecated pynvml {pkg.version} distribution is installed",
                  [f"pynvml {pkg.version} at {pkg.location} (package metadata)"],
                  "`pip uninstall -y pynvml && pip install --force-reinstall nvidia-ml-py`")


@check("ENV005", "unreadable-distribution-metadata", "warning",
       "A distribution's metadata on sys.path cannot be read.",
       "Each installed distribution has a metadata directory (*.dist-info, *.egg-info) whose "
       "METADATA file names it and its version. This one's is missing, not a file, not UTF-8, or "
       "lacks the Name or Version, or another of its files (RECORD, top_level.txt) cannot be "
       "read: an install or uninstall was interrupted, or the file was damaged. importlib.metadata "
       "and pip skip or fail on it, so `pip list`, `pip check` and dependency resolution work from "
       "a wrong picture, and if it belongs to a framework, the audit cannot say which release is "
       "installed. The other distributions are read and checked as usual.",
       fix="Move the metadata directory aside and reinstall the distribution it belongs to: `mv '<directory>' "
           "/tmp/ && pip install --force-reinstall --no-deps <name>==<version>`.",
       example="Unreadable package metadata: numpy-2.2.6.dist-info (no METADATA file)\n"
               "/opt/venv/lib/python3.12/site-packages/numpy-2.2.6.dist-info: no METADATA file "
               "(importlib.metadata)")
def unreadable_metadata(snapshot: Snapshot):
    for broken in snapshot.unreadable_distributions:
        directory = PurePath(broken.path)
        yield Hit(f"Unreadable package metadata: {directory.name} ({broken.problem})",
                  [f"{broken.path}: {broken.problem} (importlib.metadata)"],
                  "Move the directory aside and reinstall the distribution it belongs to: "
                  f"`mv '{broken.path}' /tmp/ && pip install --force-reinstall --no-deps {_requirement(directory)}`")


def _requirement(directory: PurePath) -> str:
    """'foo==1.0' for foo-1.0.dist-info (and foo-1.0-py3.11.egg-info): the release the directory
    was written for; the bare name when its name holds no version."""
    stem = directory.name.removesuffix(".dist-info").removesuffix(".egg-info")
    name, _, rest = stem.partition("-")  # '-' inside a name is written '_' in these directory names
    version = rest.split("-")[0]
    return f"{name}=={version}" if version else name
