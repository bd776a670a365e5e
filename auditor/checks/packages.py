"""ENV: the Python environment's packages get in each other's way."""

from __future__ import annotations

from auditor.checks.base import Hit, check
from auditor.facts import Snapshot


@check("ENV001", "conflicting-tensorflow-distributions", "error",
       "Two distributions install the same `tensorflow` module.",
       "tensorflow, tensorflow-cpu, tensorflow-gpu, tensorflow-intel and tf-nightly all write the "
       "`tensorflow/` package. Installed together, the last one installed overwrote some files of "
       "the other, and uninstalling either deletes files the other needs. Metapackages that only "
       "depend on another (tensorflow on Windows pulls tensorflow-intel) install no module and "
       "are not counted.")
def conflicting_tensorflow(snapshot: Snapshot):
    owners = {name: pkg for name, pkg in snapshot.packages.items() if "tensorflow" in pkg.modules}
    if len(owners) > 1:
        listed = ", ".join(f"{name} {pkg.version}" for name, pkg in owners.items())
        keep = "tensorflow" if "tensorflow" in owners else next(iter(owners))
        yield Hit(f"{len(owners)} distributions install the tensorflow module: {listed}",
                  [f"{name} {pkg.version} installs {', '.join(pkg.modules)} (package metadata)" for name, pkg in owners.items()],
                  f"Uninstall all of them, then install one: "
                  f"`pip uninstall -y {' '.join(owners)} && pip install {keep}=={owners[keep].version}`")


@check("ENV002", "deprecated-pynvml-distribution", "warning",
       "The deprecated `pynvml` distribution is installed.",
       "NVIDIA publishes the NVML bindings as nvidia-ml-py. The old `pynvml` distribution is "
       "deprecated, warns on import, and overwrites the `pynvml` module that nvidia-ml-py provides, "
       "so which one runs depends on install order.")
def deprecated_pynvml(snapshot: Snapshot):
    pkg = snapshot.packages.get("pynvml")
    if pkg:
        yield Hit(f"The deprecated pynvml {pkg.version} distribution is installed",
                  [f"pynvml {pkg.version} at {pkg.location} (package metadata)"],
                  "`pip uninstall -y pynvml && pip install --force-reinstall nvidia-ml-py`")
