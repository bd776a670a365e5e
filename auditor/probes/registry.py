"""Every probe the audit runs, in one place. Adding a probe is one line here."""

from __future__ import annotations

from auditor.probes.amd import collect_amd
from auditor.probes.apple import collect_apple
from auditor.probes.base import ChildProbe, InlineProbe
from auditor.probes.cpu import collect_cpu
from auditor.probes.cuda_toolkit import collect_cuda_toolkit
from auditor.probes.host import collect_host, collect_python
from auditor.probes.jetson import collect_jetson
from auditor.probes.memory import collect_memory
from auditor.probes.nvidia_kernel import collect_nvidia_kernel
from auditor.probes.packages import collect_packages
from auditor.probes.pci import collect_pci
from auditor.probes.tpu import collect_tpu
from auditor.probes.visibility import collect_visibility

# Distributions that install the `tensorflow` module; the first installed one is probed.
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-macos",
                            "tensorflow-intel", "tf-nightly")

PACKAGES = InlineProbe("packages", "packages", collect_packages)
# Read before the children start, because it changes what they are asked to do.
TPU = InlineProbe("tpu", "accelerators.tpu", collect_tpu)
# Run while the children import their frameworks.
INLINE_PROBES = (
    InlineProbe("host", "machine.host", collect_host),
    InlineProbe("python", "machine.python", collect_python),
    InlineProbe("cpu", "machine.cpu", collect_cpu),
    InlineProbe("memory", "machine.memory", collect_memory),
    InlineProbe("pci", "accelerators.pci", collect_pci),
    InlineProbe("nvidia-kernel", "accelerators.nvidia_kernel", collect_nvidia_kernel),
    InlineProbe("cuda-toolkit", "accelerators.cuda_toolkit", collect_cuda_toolkit),
    InlineProbe("amd", "accelerators.amd", collect_amd),
    InlineProbe("apple", "accelerators.apple", collect_apple),
    InlineProbe("jetson", "accelerators.jetson", collect_jetson),
    InlineProbe("visibility", "accelerators.visibility", collect_visibility),
)
# Started in this order, slowest first: importing TensorFlow is the floor of a full audit,
# so it must not wait behind anything.
CHILD_PROBES = (
    ChildProbe("tensorflow", "frameworks.tensorflow", "auditor.probes.tensorflow_child", TENSORFLOW_DISTRIBUTIONS,
               env={"TF_CPP_MIN_LOG_LEVEL": "3"}),
    ChildProbe("torch", "frameworks.torch", "auditor.probes.torch_child", ("torch",)),
    ChildProbe("jax", "frameworks.jax", "auditor.probes.jax_child", ("jax",)),
    ChildProbe("nvidia", "accelerators.nvidia", "auditor.probes.nvml_child", ("nvidia-ml-py", "pynvml"),
               imports_framework=False, deadline_s=20.0),
    ChildProbe("amd-smi", "accelerators.amd_smi", "auditor.probes.amdsmi_child", ("amdsmi",),
               imports_framework=False, deadline_s=20.0),
)
# Export and serving paths: each probe converts a tiny model and runs it in the target
# runtime. They run under --deep (or when a profile asks for one of their paths), in
# parallel with the framework probes.
EXPORT_PROBES = (
    ChildProbe("export-coreml", "exports", "auditor.probes.exports.coreml_child", ("torch",),
               deadline_s=180.0, exports=("coreml",)),
    ChildProbe("export-executorch", "exports", "auditor.probes.exports.executorch_child", ("torch",),
               deadline_s=180.0, exports=("executorch",)),
    ChildProbe("export-onnx", "exports", "auditor.probes.exports.onnx_child", ("torch",),
               deadline_s=180.0, exports=("onnx",)),
    ChildProbe("export-tensorflow", "exports", "auditor.probes.exports.tensorflow_child", TENSORFLOW_DISTRIBUTIONS,
               deadline_s=180.0, env={"TF_CPP_MIN_LOG_LEVEL": "3"}, exports=("tflite", "tflite-int8", "tf-serving")),
    ChildProbe("export-torchscript", "exports", "auditor.probes.exports.torchscript_child", ("torch",),
               deadline_s=120.0, exports=("torchscript",)),
)
EXPORT_PATHS = tuple(path for probe in EXPORT_PROBES for path in probe.exports)
# The collective proofs (an all_reduce across ranks or devices, probes/collective.py): under --deep,
# after every other child has ended, so that nothing else shares the machine with their timings.
# deadline_s is each planned run's; the child's own is their sum and a margin.
COLLECTIVES = ChildProbe("collectives", "collectives", "auditor.probes.collective_child",
                         ("torch", *TENSORFLOW_DISTRIBUTIONS, "jax"), deadline_s=60.0,
                         env={"TF_CPP_MIN_LOG_LEVEL": "3"})
