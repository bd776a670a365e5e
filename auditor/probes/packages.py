"""Package probe: installed ML distributions, read from metadata without importing them.

Reading metadata keeps a broken framework visible with its version, and costs
milliseconds instead of the seconds an import takes.
"""

from __future__ import annotations

import re
from importlib import metadata

from auditor.facts import PackageFacts
from auditor.probes.base import ProbeContext

# Distributions the audit cares about; names are PEP 503-normalised.
ML_DISTRIBUTIONS = frozenset({
    "torch", "torchvision", "torchaudio", "torch-xla", "libtpu", "libtpu-nightly",
    "tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-macos", "tensorflow-intel", "tf-nightly",
    "tensorflow-metal", "tensorflow-serving-api", "tensorflow-io-gcs-filesystem", "keras", "tf-keras",
    "jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda13-plugin", "onnx", "onnxscript", "onnxruntime",
    "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino", "executorch", "ai-edge-litert",
    "tflite-runtime", "coremltools", "numpy", "pynvml", "nvidia-ml-py", "amdsmi", "intel-extension-for-pytorch",
    "triton", "pytorch-triton-rocm", "pytorch-triton-xpu",
})
ML_PREFIXES = ("nvidia-",)  # CUDA runtime wheels: nvidia-cudnn-cu12, nvidia-cublas-cu13, ...


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def collect_packages(ctx: ProbeContext) -> dict[str, PackageFacts]:
    found: dict[str, PackageFacts] = {}
    for dist in metadata.distributions():
        raw_name = dist.metadata["Name"]
        if not raw_name:
            continue  # a dist-info left behind with no METADATA
        name = normalize(raw_name)
        if name in found or not (name in ML_DISTRIBUTIONS or name.startswith(ML_PREFIXES)):
            continue  # the first on sys.path is the one Python imports
        installer = (dist.read_text("INSTALLER") or "").strip() or None
        location = str(dist.locate_file("")) if hasattr(dist, "locate_file") else None
        found[name] = PackageFacts(name=raw_name, version=dist.version, location=location, installer=installer,
                                   modules=_top_level_modules(dist))
    return dict(sorted(found.items()))


def _top_level_modules(dist: metadata.Distribution) -> list[str]:
    """The import names a distribution installs: top_level.txt, else the first parts of RECORD.

    Metapackages (tensorflow on Windows depends on tensorflow-intel) install none, which is
    how two installed TensorFlow distributions are told from two that overwrite each other.
    """
    top_level = dist.read_text("top_level.txt")
    if top_level is not None:
        return sorted({line.strip() for line in top_level.splitlines() if line.strip()})
    modules = set()
    for path in dist.files or []:
        head = path.parts[0]
        if len(path.parts) > 1 and not head.endswith((".dist-info", ".data", ".libs")) and head not in ("..", "bin"):
            modules.add(head)
        elif len(path.parts) == 1 and path.suffix in (".py", ".so", ".pyd"):
            modules.add(path.name.split(".")[0])
    return sorted(modules)
