"""Every probe the audit runs, in one place. Adding a probe is one line here."""

from __future__ import annotations

from auditor.probes.base import ChildProbe, InlineProbe
from auditor.probes.cpu import collect_cpu
from auditor.probes.host import collect_host, collect_python
from auditor.probes.memory import collect_memory
from auditor.probes.packages import collect_packages

# Distributions that install the `tensorflow` module; the first installed one is probed.
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-macos",
                            "tensorflow-intel", "tf-nightly")

PACKAGES = InlineProbe("packages", "packages", collect_packages)
MACHINE_PROBES = (
    InlineProbe("host", "machine.host", collect_host),
    InlineProbe("python", "machine.python", collect_python),
    InlineProbe("cpu", "machine.cpu", collect_cpu),
    InlineProbe("memory", "machine.memory", collect_memory),
)
# Started in this order, slowest first: importing TensorFlow is the floor of a full audit,
# so it must not wait behind anything.
CHILD_PROBES = (
    ChildProbe("tensorflow", "frameworks.tensorflow", "auditor.probes.tensorflow_child", TENSORFLOW_DISTRIBUTIONS,
               env={"TF_CPP_MIN_LOG_LEVEL": "3"}),
    ChildProbe("torch", "frameworks.torch", "auditor.probes.torch_child", ("torch",)),
    ChildProbe("nvml", "accelerators.nvidia", "auditor.probes.nvml_child", ("nvidia-ml-py", "pynvml"),
               imports_framework=False, deadline_s=15.0),
)
