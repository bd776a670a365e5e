"""TPU: the machine shows a Cloud TPU, but a framework cannot reach it."""

from __future__ import annotations

from auditor.checks.base import Hit, check
from auditor.facts import Snapshot

# The TPU builds each framework publishes. Sources: jax.readthedocs.io installation ("pip
# install -U "jax[tpu]""); tensorflow.org/install/pip and cloud.google.com/tpu/docs (the
# tensorflow-tpu wheel with its libtpu, from TF 2.15).
TPU_INSTALL = {
    "jax": 'pip install -U "jax[tpu]"',
    "tensorflow": "pip install tensorflow-tpu -f https://storage.googleapis.com/libtpu-tf-releases/index.html",
    "torch": 'pip install "torch_xla[tpu]"',
}


@check("TPU001", "tpu-not-usable-by-framework", "warning",
       "This machine shows a Cloud TPU, but a framework could not open it.",
       "TPU signals (device nodes, Google TPU PCI devices, TPU_* variables, libtpu) say this is a TPU "
       "VM, yet the framework's TPU runtime failed to start, so it runs on the CPU. Usual causes: the "
       "CPU build of the framework instead of its TPU build, a missing or mismatched libtpu, or another "
       "process holding the TPU (only one process may open it).",
       fix="Install the framework's TPU build (JAX: `pip install -U \"jax[tpu]\"`; TensorFlow: `pip install "
           "tensorflow-tpu -f https://storage.googleapis.com/libtpu-tf-releases/index.html`; PyTorch: `pip "
           "install \"torch_xla[tpu]\"`), and check that no other process holds the TPU (`sudo lsof -w /dev/accel* "
           "/dev/vfio/*`).",
       example="jax 0.6.2 cannot use the TPU (v5litepod-4)\n"
               "jax: RuntimeError: Unable to initialize backend 'tpu': ABORTED: The TPU is already in use by "
               "process with pid 4121. Not attempting to load libtpu.so in this process.")
def tpu_not_usable(snapshot: Snapshot):
    tpu = snapshot.accelerators.tpu
    if not tpu:
        return
    for fw in snapshot.frameworks.values():
        error = fw.runtime.backend_errors.get("tpu") if fw.runtime else None
        if error:
            yield Hit(f"{fw.name} {fw.version} cannot use the TPU ({tpu.accelerator_type or 'type unknown'})",
                      [f"TPU signals: {'; '.join(tpu.signals)}", f"{fw.name}: {error}"],
                      f"Install {fw.name}'s TPU build: `{TPU_INSTALL.get(fw.name, 'the TPU build')}`; check that no other "
                      "process holds the TPU (`sudo lsof -w /dev/accel* /dev/vfio/*`).", framework=fw.name)
