"""Compatibility knowledge as data: CUDA/driver/GPU tables, framework release matrices, export pins.

The facts live in the JSON files next to this module, one file per topic, each row carrying the
``source`` it came from (a document URL or ``owner/repo:path``) and the date it was ``checked``;
``schemas/<name>.schema.json`` describes each file and a test enforces it.

This module only reads those files (lazily, once) and answers typed questions about them. It is kept
import-light on purpose: json, dataclasses, functools and packaging, nothing else.

Versions are compared numerically (``packaging.version``), never as strings. Lookups that cannot be
answered return None (or raise KeyError where the docstring says so); nothing here guesses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

__all__ = [
    "ComputeCapability",
    "DriverFloor",
    "TensorflowRelease",
    "TorchRelease",
    "TorchVariant",
    "compute_capability",
    "export_pin",
    "export_rule",
    "family_floor",
    "last_branch_for",
    "newest_torch_release",
    "tables",
    "tensorflow_release",
    "tensorflow_rule",
    "toolkit_driver",
    "torch_release",
]

FILES = (
    "cuda-drivers",
    "driver-branches",
    "compute-capabilities",
    "pytorch-releases",
    "tensorflow-releases",
    "export-pins",
)
_OSES = ("linux", "windows")


@dataclass(frozen=True)
class DriverFloor:
    """A minimum driver: ``cuda`` is "12.8" for a toolkit release, "12" for a whole major family."""

    cuda: str
    driver: str  # e.g. "570.26", or a bare branch such as "580"
    source: str


@dataclass(frozen=True)
class ComputeCapability:
    cc: str  # "8.6"
    architecture: str  # family name: "Ampere", "Blackwell", ...
    examples: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class TorchVariant:
    """One CUDA build of a torch release.

    ``architectures`` is what ``torch.cuda.get_arch_list()`` reports for the Linux x86_64 / Windows
    wheel (``sm_XY`` = SASS, ``compute_XY`` = PTX). An empty tuple means the list was not verified,
    not that the build has no GPU code.
    """

    cuda: str  # "12.8"
    cudnn: str | None
    architectures: tuple[str, ...]
    stable: bool
    index_url: str  # https://download.pytorch.org/whl/cu128


@dataclass(frozen=True)
class TorchRelease:
    version: str  # minor release, "2.9"
    python_min: str  # inclusive, "3.10"
    python_max: str  # inclusive, "3.14" (experimental free-threaded builds not counted)
    variants: tuple[TorchVariant, ...]
    rocm: str | None
    pypi_default_variant: str | None  # what plain `pip install torch` gets on Linux x86_64, e.g. "cu128"
    source: str


@dataclass(frozen=True)
class TensorflowRelease:
    version: str  # minor release, "2.20"
    python_min: str
    python_max: str
    cuda: str | None  # CUDA it was built and tested with on Linux
    cudnn: str | None
    compute_capabilities: tuple[str, ...]  # as in tf.sysconfig.get_build_info(), e.g. ("sm_60", ..., "compute_90")
    source: str


# ----------------------------------------------------------------------------------- loading


@lru_cache(maxsize=None)
def _load(name: str) -> dict[str, Any]:
    if name not in FILES:
        raise KeyError(name)
    text = resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)


def tables() -> dict[str, list[dict]]:
    """Every row of every file, keyed "<file>/<list>"; nested rows (torch variants) are flattened
    into "pytorch-releases/variants" with the release they belong to added as "release"."""
    out: dict[str, list[dict]] = {}
    for name in FILES:
        data = _load(name)
        for key, value in data.items():
            if key == "description":
                continue
            rows = value if isinstance(value, list) else [value]
            out[f"{name}/{key}"] = [dict(row) for row in rows]
    variants = []
    for release in _load("pytorch-releases")["releases"]:
        for variant in release["variants"]:
            variants.append({"release": release["version"], **variant})
    out["pytorch-releases/variants"] = variants
    return out


# ----------------------------------------------------------------------------------- helpers


def _version(text: str) -> Version | None:
    try:
        return Version(str(text).strip())
    except (InvalidVersion, TypeError):
        return None


def _major_minor(text: str) -> tuple[int, int] | None:
    parsed = _version(text)
    if parsed is None or len(parsed.release) < 2:
        return None
    return parsed.release[0], parsed.release[1]


def _minor_key(text: str) -> str | None:
    """ "2.13.0+cpu" -> "2.13"; None when it is not a version."""
    mm = _major_minor(text)
    return None if mm is None else f"{mm[0]}.{mm[1]}"


def _os(os: str) -> str:
    key = os.strip().lower()
    if key == "win32":
        key = "windows"
    if key not in _OSES:
        raise ValueError(f"os must be one of {_OSES}, not {os!r}")
    return key


# ----------------------------------------------------------------------------------- NVIDIA


def toolkit_driver(cuda: str, os: str) -> DriverFloor | None:
    """Minimum driver of a CUDA toolkit, from NVIDIA's per-release table.

    ``cuda`` may be "12.8" or "12.8.1": the answer is the GA row of that major.minor (the lowest
    driver of it). None for an unknown toolkit, and for Windows where NVIDIA gives no number
    (CUDA 13.x: use :func:`family_floor`). ``os`` is "linux" or "windows".
    """
    column = _os(os)
    mm = _major_minor(cuda)
    if mm is None:
        return None
    rows = [row for row in _load("cuda-drivers")["toolkits"]
            if row["kind"] != "rc" and _major_minor(row["version"]) == mm]
    if not rows:
        return None
    ga = [row for row in rows if row["kind"] == "ga"] or rows
    row = min(ga, key=lambda r: _version(r["version"]))
    driver = row[column]
    if driver is None:
        return None
    return DriverFloor(cuda=f"{mm[0]}.{mm[1]}", driver=driver, source=row["source"])


def family_floor(cuda_major: int, os: str) -> DriverFloor | None:
    """The minor-version-compatibility floor: the oldest driver that runs anything built with this
    CUDA major (with a limited feature set: no JIT of newer PTX). None for an unknown major."""
    column = _os(os)
    for row in _load("cuda-drivers")["family_floors"]:
        if row["cuda_major"] == int(cuda_major) and row["os"] == column:
            return DriverFloor(cuda=str(row["cuda_major"]), driver=row["driver"], source=row["source"])
    return None


def compute_capability(cc: str) -> ComputeCapability | None:
    """Look up a compute capability: "8.6", "sm_86" or "compute_86" (also "sm_120" -> "12.0")."""
    key = _normalise_cc(cc)
    if key is None:
        return None
    for row in _load("compute-capabilities")["rows"]:
        if row["cc"] == key:
            return ComputeCapability(cc=row["cc"], architecture=row["architecture"],
                                     examples=tuple(row["examples"]), source=row["source"])
    return None


def _normalise_cc(cc: str | tuple[int, int]) -> str | None:
    if isinstance(cc, tuple) and len(cc) == 2:
        return f"{int(cc[0])}.{int(cc[1])}"
    text = str(cc).strip().lower()
    for prefix in ("sm_", "compute_"):
        if text.startswith(prefix):
            digits = text[len(prefix):].rstrip("af")
            if not digits.isdigit() or len(digits) < 2:
                return None
            return f"{int(digits[:-1])}.{digits[-1]}"
    mm = _major_minor(text)
    return None if mm is None else f"{mm[0]}.{mm[1]}"


def last_branch_for(architecture: str) -> int | None:
    """Last driver branch that supports a GPU architecture ("Pascal" -> 580); None while supported."""
    wanted = architecture.strip().lower()
    for row in _load("driver-branches")["last_branch_for_architecture"]:
        if row["architecture"].lower() == wanted:
            return row["last_branch"]
    return None


# ----------------------------------------------------------------------------------- frameworks


@lru_cache(maxsize=None)
def _torch_releases() -> dict[str, TorchRelease]:
    data = _load("pytorch-releases")
    pattern = data["index_url"]["pattern"]
    out = {}
    for row in data["releases"]:
        variants = tuple(
            TorchVariant(cuda=v["cuda"], cudnn=v["cudnn"], architectures=tuple(v["architectures"]),
                         stable=v["stable"], index_url=pattern.format(variant=v["variant"]))
            for v in row["variants"])
        out[row["version"]] = TorchRelease(
            version=row["version"], python_min=row["python_min"], python_max=row["python_max"],
            variants=variants, rocm=row["rocm"], pypi_default_variant=row["pypi_default_variant"],
            source=row["source"])
    return out


def torch_release(version: str) -> TorchRelease | None:
    """The minor-release row for any torch version string: "2.13.0+cpu" -> the 2.13 row."""
    key = _minor_key(version)
    return None if key is None else _torch_releases().get(key)


def newest_torch_release() -> TorchRelease | None:
    """The newest torch minor release in the table (None only if the table were empty)."""
    releases = _torch_releases()
    if not releases:
        return None
    return releases[max(releases, key=Version)]


@lru_cache(maxsize=None)
def _tensorflow_releases() -> dict[str, TensorflowRelease]:
    out = {}
    for row in _load("tensorflow-releases")["releases"]:
        out[row["version"]] = TensorflowRelease(
            version=row["version"], python_min=row["python_min"], python_max=row["python_max"],
            cuda=row["cuda"], cudnn=row["cudnn"], compute_capabilities=tuple(row["compute_capabilities"]),
            source=row["source"])
    return out


def tensorflow_release(version: str) -> TensorflowRelease | None:
    """The minor-release row for a TensorFlow version string: "2.20.0" -> the 2.20 row."""
    key = _minor_key(version)
    return None if key is None else _tensorflow_releases().get(key)


def tensorflow_rule(rule_id: str) -> str:
    """A TensorFlow platform rule's value as text ("windows-native-gpu-last" -> "2.10"); KeyError if unknown."""
    for row in _load("tensorflow-releases")["platform_rules"]:
        if row["id"] == rule_id:
            return row["value"]
    raise KeyError(rule_id)


# ----------------------------------------------------------------------------------- export paths


def export_pin(tool: str, version: str) -> str | None:
    """The torch requirement an export tool release declares or was tested with, as "torch<specifiers>".

    ("executorch", "1.0.1") -> "torch>=2.9,<2.10"; ("coremltools", "9.0") -> "torch<=2.7.0" (newest
    tested torch). A patch release missing from the table takes the newest known row of the same
    major.minor that is not newer than it. None for an unknown tool/version or a release that
    declares no torch requirement.
    """
    data = _load("export-pins")
    key = tool.strip().lower()
    if key not in ("executorch", "coremltools"):
        return None
    wanted = _version(version)
    if wanted is None:
        return None
    rows = [(v, row) for row in data[key] if (v := _version(row["version"])) is not None]
    exact = [row for v, row in rows if v == wanted]
    if exact:
        chosen = exact[0]
    else:
        same_minor = [(v, row) for v, row in rows
                      if v.release[:2] == wanted.release[:2] and v <= wanted]
        if not same_minor:
            return None
        chosen = max(same_minor, key=lambda pair: pair[0])[1]
    spec = chosen["torch"]
    return None if spec is None else f"torch{spec}"


def export_rule(rule_id: str) -> str:
    """A torch.onnx export rule's value as text ("onnx-dynamo-default-from" -> "2.9"); KeyError if unknown."""
    for row in _load("export-pins")["onnx"]:
        if row["id"] == rule_id:
            return row["value"]
    raise KeyError(rule_id)


def export_tool_for_torch(tool: str, torch_version: str) -> str | None:
    """The newest release of an export tool that fits an installed torch, or None if no known one does.

    ExecuTorch: its declared torch requirement admits the torch release (local version
    labels like +cpu ignored). coremltools: it was tested with this torch minor or a newer one.
    """
    installed = _version(torch_version)
    key = tool.strip().lower()
    if installed is None or key not in ("executorch", "coremltools"):
        return None
    public = Version(installed.public)
    fitting = []
    for row in _load("export-pins")[key]:
        release, spec = _version(row["version"]), row["torch"]
        if release is None or spec is None:
            continue
        if key == "executorch":
            fits = SpecifierSet(spec).contains(public, prereleases=True)
        else:  # "<=2.7.0": the newest torch tested; a newer patch of that minor is fine too
            tested = _version(spec.lstrip("<="))
            fits = tested is not None and tested.release[:2] >= public.release[:2]
        if fits:
            fitting.append(release)
    return str(max(fitting)) if fitting else None
