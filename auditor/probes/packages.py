"""Package probe: installed ML distributions, read from metadata without importing them.

Reading metadata keeps a broken framework visible with its version, and costs
milliseconds instead of the seconds an import takes. A metadata directory that cannot be
read (a METADATA that is missing, not a file, not UTF-8, or without Name or Version)
costs that distribution only: it is recorded as unreadable, and the scan goes on.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Optional

from auditor.facts import PackageFacts, UnreadableDistribution
from auditor.probes.base import ProbeContext
from auditor.probes.child_entry import describe_exception

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


@dataclass
class PackageScan:
    installed: dict[str, PackageFacts] = field(default_factory=dict)  # by normalised name
    unreadable: list[UnreadableDistribution] = field(default_factory=list)


def collect_packages(ctx: ProbeContext) -> PackageScan:
    """The audited interpreter's distributions: those on its sys.path, which is not the auditor's
    own when it audits another environment (--python)."""
    scan = PackageScan()
    path = list(ctx.python.path) if ctx.python else None
    for dist in metadata.distributions(**({"path": path} if path is not None else {})):
        problems: list[str] = []
        identity = _identity(dist, problems)
        if identity is not None:
            raw_name, version = identity
            name = normalize(raw_name)
            # The first on sys.path is the one Python imports.
            if name not in scan.installed and (name in ML_DISTRIBUTIONS or name.startswith(ML_PREFIXES)):
                installer = (_read(dist, "INSTALLER", problems) or "").strip() or None
                location = str(dist.locate_file("")) if hasattr(dist, "locate_file") else None
                scan.installed[name] = PackageFacts(name=raw_name, version=version, location=location,
                                                    installer=installer, modules=_top_level_modules(dist, problems))
        scan.unreadable += [UnreadableDistribution(path=_metadata_path(dist), problem=p) for p in problems]
    scan.installed = dict(sorted(scan.installed.items()))
    return scan


def _identity(dist: metadata.Distribution, problems: list[str]) -> Optional[tuple[str, str]]:
    """(Name, Version) from the distribution's METADATA; None, with the reason in ``problems``,
    when either cannot be read."""
    try:
        fields = dist.metadata
    except Exception as exc:  # a METADATA that is not UTF-8: this distribution's problem, not the scan's
        problems.append(f"METADATA: {describe_exception(exc)}")
        return None
    # .get: indexing a missing field warns on Python 3.12 and is to raise KeyError later. A
    # missing METADATA reads as empty, or as None in newer importlib.metadata.
    raw_name, version = (fields.get("Name"), fields.get("Version")) if fields is not None else (None, None)
    if not raw_name or not version:
        problems.append(_incomplete(Path(_metadata_path(dist)), raw_name))
        return None
    return raw_name, version


def _metadata_path(dist: metadata.Distribution) -> str:
    # Distributions found on sys.path (PathDistribution) keep their directory in _path, which
    # has no public accessor; locate_file("") is only the directory that holds it.
    return str(getattr(dist, "_path", None) or dist.locate_file(""))


def _read(dist: metadata.Distribution, name: str, problems: list[str]) -> Optional[str]:
    """One metadata file as text, None when missing; one that is not UTF-8 goes to ``problems``."""
    try:
        return dist.read_text(name)
    except Exception as exc:
        problems.append(f"{name}: {describe_exception(exc)}")
        return None


def _incomplete(path: Path, name: Optional[str]) -> str:
    """Why a distribution's metadata gave no Name or no Version. importlib.metadata reads a
    missing METADATA, a directory in its place and an unreadable one alike as empty."""
    if path.is_file():  # an old-style PKG-INFO file named *.egg-info
        source = path
    else:
        source = next((path / n for n in ("METADATA", "PKG-INFO") if os.path.lexists(path / n)), None)
        if source is None:
            return "no METADATA file"
        if source.is_dir():
            return f"{source.name} is a directory, not a file"
        if not os.access(source, os.R_OK):
            return f"{source.name} cannot be read (permission denied)"
    return f"{source.name} has no {'Version' if name else 'Name'}"


def _top_level_modules(dist: metadata.Distribution, problems: list[str]) -> list[str]:
    """The import names a distribution installs: top_level.txt, else the first parts of RECORD.

    Metapackages (tensorflow on Windows depends on tensorflow-intel) install none, which is
    how two installed TensorFlow distributions are told from two that overwrite each other.
    """
    top_level = _read(dist, "top_level.txt", problems)
    if top_level is not None:
        return sorted({line.strip() for line in top_level.splitlines() if line.strip()})
    try:
        files = dist.files or []
    except Exception as exc:  # a RECORD that is not UTF-8
        problems.append(f"RECORD: {describe_exception(exc)}")
        files = []
    modules = set()
    for path in files:
        head = path.parts[0]
        if len(path.parts) > 1 and not head.endswith((".dist-info", ".data", ".libs")) and head not in ("..", "bin"):
            modules.add(head)
        elif len(path.parts) == 1 and path.suffix in (".py", ".so", ".pyd"):
            modules.add(path.name.split(".")[0])
    return sorted(modules)
