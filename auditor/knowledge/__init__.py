"""Compatibility knowledge as data: CUDA/driver/GPU tables, framework release matrices, export pins, Arm CPU names,
and the peak matmul throughput of GPU models and CPU execution units.

The facts live in the JSON files next to this module, one file per topic, each row carrying the
``source`` it came from (a document URL or ``owner/repo:path``) and the date it was ``checked``;
``schemas/<name>.schema.json`` describes each file and a test enforces it.

This module only reads those files (lazily, once) and answers typed questions about them. It is kept
import-light on purpose: json, re, dataclasses, functools and packaging, nothing else.

Versions are compared numerically (``packaging.version``), never as strings. Lookups that cannot be
answered return None (or raise KeyError where the docstring says so); nothing here guesses.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

__all__ = [
    "ComputeCapability",
    "CpuRate",
    "DriverFloor",
    "GpuPeak",
    "JetsonRelease",
    "TensorflowRelease",
    "TorchRelease",
    "TorchRocmBuild",
    "TorchVariant",
    "amd_gpu_peaks",
    "arm_core",
    "arm_implementer",
    "cpu_rate",
    "float32_matmul_on_nvidia",
    "nvidia_gpu_peak",
    "torch_releases",
    "compute_capability",
    "driver_floor_for",
    "export_pin",
    "export_rule",
    "family_floor",
    "gfx_override",
    "first_cuda_for",
    "jetson_release",
    "jetson_release_for_jetpack",
    "last_branch_for",
    "newest_torch_release",
    "tables",
    "tensorflow_pip_includes_gpu",
    "tensorflow_release",
    "tensorflow_releases",
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
    "jetson",
    "amd-gfx",
    "arm-cores",
    "peak-flops",
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
    first_cuda: str | None = None  # first CUDA toolkit that generates SASS for it, "11.0" for 8.0


@dataclass(frozen=True)
class TorchVariant:
    """One CUDA build of a torch release.

    ``architectures`` is what ``torch.cuda.get_arch_list()`` reports for the Linux x86_64 wheel
    (``sm_XY`` = SASS, ``compute_XY`` = PTX). An empty tuple means the list was not verified, not
    that the build has no GPU code. ``platform_architectures`` holds the Windows / Linux aarch64
    wheels' own lists ("windows", "linux-aarch64") where the table has them; use
    :meth:`architectures_for` rather than assuming they equal the Linux x86_64 list.
    """

    cuda: str  # "12.8"
    cudnn: str | None
    architectures: tuple[str, ...]
    stable: bool
    index_url: str  # https://download.pytorch.org/whl/cu128
    platform_architectures: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False)

    def architectures_for(self, platform: str) -> tuple[str, ...]:
        """The compiled architectures of this variant's wheel for "linux-x86_64", "windows" or
        "linux-aarch64". () means unknown: a platform without its own row never gets the Linux
        x86_64 list, and an unrecognised platform name gets ()."""
        key = _TORCH_PLATFORMS.get(str(platform or "").strip().lower())
        if key == "linux-x86_64":
            return self.architectures
        return self.platform_architectures.get(key, ()) if key else ()


@dataclass(frozen=True)
class TorchRocmBuild:
    """One ROCm build of a torch release. An empty ``gfx_targets`` means the list was not verified."""

    rocm: str  # "6.2.4"
    index_url: str  # https://download.pytorch.org/whl/rocm6.2.4
    gfx_targets: tuple[str, ...]  # as torch.cuda.get_arch_list() reports them on ROCm, e.g. ("gfx90a", "gfx1100")
    source: str


_TORCH_PLATFORMS = {
    "linux-x86_64": "linux-x86_64", "linux_x86_64": "linux-x86_64", "x86_64": "linux-x86_64",
    "windows": "windows", "win32": "windows", "win_amd64": "windows",
    "linux-aarch64": "linux-aarch64", "linux_aarch64": "linux-aarch64", "aarch64": "linux-aarch64",
}


@dataclass(frozen=True)
class TorchRelease:
    version: str  # minor release, "2.9"
    python_min: str  # inclusive, "3.10"
    python_max: str  # inclusive, "3.14" (experimental free-threaded builds not counted)
    variants: tuple[TorchVariant, ...]
    rocm: str | None
    pypi_default_variant: str | None  # what plain `pip install torch` gets on Linux x86_64, e.g. "cu128"
    source: str
    rocm_builds: tuple[TorchRocmBuild, ...] = ()  # every ROCm build of the release, oldest ROCm first
    mps_macos_min: str | None = None  # minimum macOS of the MPS backend; None before 1.12 (no MPS)
    aarch64_pypi_variant: str | None = None  # what plain `pip install torch` gets on Linux aarch64: "cpu", "cu130"


@dataclass(frozen=True)
class TensorflowRelease:
    version: str  # minor release, "2.20"
    python_min: str
    python_max: str
    cuda: str | None  # CUDA it was built and tested with on Linux
    cudnn: str | None
    compute_capabilities: tuple[str, ...]  # as in tf.sysconfig.get_build_info(), e.g. ("sm_60", ..., "compute_90")
    source: str
    gpu_distribution: str | None = None  # PyPI distribution with the Linux CUDA build: "tensorflow" or "tensorflow-gpu"
    windows_python_min: str | None = None  # set where the Windows wheels' Python range is recorded
    windows_python_max: str | None = None


@dataclass(frozen=True)
class JetsonRelease:
    """One Jetson Linux (L4T) release. ``torch_index`` is where NVIDIA publishes CUDA-enabled torch wheels
    for it (a redist directory or a pip index URL; None if none is recorded); ``torch_versions`` are the
    versions verified to be published there (an empty tuple means not verified, not that there are none)."""

    l4t: str  # "35.4.1"
    jetpack: str  # "5.1.2"
    cuda: str  # "11.4"
    socs: tuple[str, ...]  # ("tegra194", "tegra234")
    torch_index: str | None
    torch_versions: tuple[str, ...]
    source: str
    ubuntu: str | None = None  # "20.04"
    python: str | None = None  # default system Python, which NVIDIA's wheels target: "3.8"
    pip: str | None = None  # install command of the documented form
    preview: bool = False  # developer-preview JetPack


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


def driver_floor_for(cuda: str, os: str) -> DriverFloor | None:
    """The oldest driver that runs code built with this CUDA ("10.2", "12.4", "12.4.1").

    CUDA 11 and newer: the family (minor-version-compatibility) floor of the major, or the toolkit's own
    GA driver where that is older (CUDA 11.0 GA shipped with 450.51.05, below the 11.x floor). Running
    between the family floor and the toolkit driver means a limited feature set (no JIT of PTX newer
    than the driver, features that need a newer driver fail). CUDA 10.x and older have no minor-version
    compatibility: the toolkit's own GA driver (:func:`toolkit_driver`). None when unknown.
    """
    mm = _major_minor(cuda)
    if mm is None:
        return None
    if mm[0] <= 10:
        return toolkit_driver(cuda, os)
    floor = family_floor(mm[0], os)
    own = toolkit_driver(cuda, os)
    if floor is None:
        return own
    if own is not None and _version(own.driver) < _version(floor.driver):
        return own
    return floor


def compute_capability(cc: str) -> ComputeCapability | None:
    """Look up a compute capability: "8.6", "sm_86" or "compute_86" (also "sm_120" -> "12.0")."""
    key = _normalise_cc(cc)
    if key is None:
        return None
    for row in _load("compute-capabilities")["rows"]:
        if row["cc"] == key:
            return ComputeCapability(cc=row["cc"], architecture=row["architecture"],
                                     examples=tuple(row["examples"]), source=row["source"],
                                     first_cuda=row.get("first_cuda"))
    return None


def first_cuda_for(cc: str | tuple[int, int]) -> str | None:
    """First CUDA toolkit that can generate SASS for a compute capability: "8.0" -> "11.0".

    Accepts "8.6", "sm_86", "compute_86" or (8, 6); the arch-specific / family-specific targets
    "sm_90a", "sm_120f" give their own first toolkit ("12.0", "12.9"). A framework build made with an
    older CUDA carries no SASS for that GPU whatever its arch list says. None for an unknown CC.
    """
    key = _normalise_cc(cc)
    if key is None:
        return None
    text = cc.strip().lower() if isinstance(cc, str) else ""
    suffix = text[-1] if text.startswith(("sm_", "compute_")) and text[-1] in "af" else None
    for row in _load("compute-capabilities")["rows"]:
        if row["cc"] == key:
            if suffix is None:
                return row["first_cuda"]
            return row.get("first_cuda_variants", {}).get(suffix)
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
                         stable=v["stable"], index_url=pattern.format(variant=v["variant"]),
                         platform_architectures={p["platform"]: tuple(p["architectures"])
                                                 for p in v.get("platform_architectures", [])})
            for v in row["variants"])
        rocm_builds = tuple(
            TorchRocmBuild(rocm=b["rocm"], index_url=pattern.format(variant=b["variant"]),
                           gfx_targets=tuple(b["gfx_targets"]), source=b["source"])
            for b in sorted(row.get("rocm_builds", []), key=lambda b: Version(b["rocm"])))
        mps = row.get("mps")
        out[row["version"]] = TorchRelease(
            version=row["version"], python_min=row["python_min"], python_max=row["python_max"],
            variants=variants, rocm=row["rocm"], pypi_default_variant=row["pypi_default_variant"],
            source=row["source"], rocm_builds=rocm_builds, mps_macos_min=mps["macos_min"] if mps else None,
            aarch64_pypi_variant=row.get("aarch64_pypi_variant"))
    return out


def torch_releases() -> tuple[TorchRelease, ...]:
    """Every torch minor release in the table, oldest first (compared as versions: 1.13 < 2.0 < 2.10)."""
    releases = _torch_releases()
    return tuple(releases[key] for key in sorted(releases, key=Version))


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
            source=row["source"], gpu_distribution=row.get("gpu_distribution"),
            windows_python_min=row.get("windows_python_min"), windows_python_max=row.get("windows_python_max"))
    return out


def tensorflow_release(version: str) -> TensorflowRelease | None:
    """The minor-release row for a TensorFlow version string: "2.20.0" -> the 2.20 row."""
    key = _minor_key(version)
    return None if key is None else _tensorflow_releases().get(key)


def tensorflow_releases() -> tuple[TensorflowRelease, ...]:
    """Every TensorFlow minor release in the table, oldest first."""
    return tuple(sorted(_tensorflow_releases().values(), key=lambda r: Version(r.version)))


def tensorflow_rule(rule_id: str) -> str:
    """A TensorFlow platform rule's value as text ("windows-native-gpu-last" -> "2.10"); KeyError if unknown."""
    for row in _load("tensorflow-releases")["platform_rules"]:
        if row["id"] == rule_id:
            return row["value"]
    raise KeyError(rule_id)


def tensorflow_pip_includes_gpu(version: str, os: str) -> bool | None:
    """Whether the plain `tensorflow` PyPI wheel of this version carries the CUDA GPU build on ``os``.

    True from 2.1 on Linux (and on Windows up to 2.10, the last native-Windows GPU release) and for the
    single exception 1.15.0; False for 2.0.x, 1.15.2+ and older releases, where GPU support is only in
    `tensorflow-gpu` (whose 2.12.0 is an install-time error stub). None for a version outside the table.
    """
    column = _os(os)
    wanted = _version(version)
    if wanted is None or tensorflow_release(version) is None:
        return None
    exceptions = {_version(v) for v in tensorflow_rule("pip-tensorflow-includes-gpu-exceptions").split(",")}
    if Version(wanted.base_version) in exceptions:
        return True
    mm = wanted.release[:2]
    if mm < _major_minor(tensorflow_rule("pip-tensorflow-includes-gpu-from")):
        return False
    if column == "windows":
        return mm <= _major_minor(tensorflow_rule("windows-native-gpu-last"))
    return True


# ----------------------------------------------------------------------------------- Jetson


def _leading_version(text: str) -> Version | None:
    """ "R35.4.1" / "r36.4" / "5.1.2-b104" / "35.4.1-20230801124926" -> the leading dotted number;
    also the first line of /etc/nv_tegra_release ("# R35 (release), REVISION: 4.1, ...") -> 35.4.1."""
    tegra = re.match(r"\s*#?\s*R(\d+)\s*\(\w+\),\s*REVISION:\s*(\d+(?:\.\d+)*)", str(text))
    if tegra:
        return _version(f"{tegra.group(1)}.{tegra.group(2)}")
    match = re.match(r"\s*[rR]?(\d+(?:\.\d+)*)", str(text))
    return None if match is None else _version(match.group(1))


def _jetson_row(row: dict) -> JetsonRelease:
    return JetsonRelease(l4t=row["l4t"], jetpack=row["jetpack"], cuda=row["cuda"], socs=tuple(row["socs"]),
                         torch_index=row["torch_index"], torch_versions=tuple(row["torch_versions"]),
                         source=row["source"], ubuntu=row.get("ubuntu"), python=row.get("python"),
                         pip=row.get("pip"), preview=bool(row.get("preview", False)))


def jetson_release(l4t: str) -> JetsonRelease | None:
    """The Jetson Linux row for an L4T version ("35.4.1", "R35.4.1", "36.4").

    An exact match wins; otherwise the newest row of the same major.minor that is not newer than it
    ("35.6.2" -> the 35.6.1 row). None for an unknown release line or an unparsable string.
    """
    wanted = _leading_version(l4t)
    if wanted is None or len(wanted.release) < 2:
        return None
    rows = [(v, row) for row in _load("jetson")["releases"] if (v := _version(row["l4t"])) is not None]
    exact = [row for v, row in rows if v == wanted]
    if exact:
        return _jetson_row(exact[0])
    same_minor = [(v, row) for v, row in rows if v.release[:2] == wanted.release[:2] and v <= wanted]
    if not same_minor:
        return None
    return _jetson_row(max(same_minor, key=lambda pair: pair[0])[1])


def jetson_release_for_jetpack(jetpack: str) -> JetsonRelease | None:
    """The Jetson Linux row of a JetPack version ("5.1.2", "6.0", "5.1.2-b104" as apt reports it).

    Where several L4T releases carry the same JetPack number (6.0 DP and GA, 7.0 on 38.2 and 38.2.1)
    the newest L4T wins. None for an unknown JetPack.
    """
    wanted = _leading_version(jetpack)
    if wanted is None:
        return None
    rows = [row for row in _load("jetson")["releases"] if _version(row["jetpack"]) == wanted]
    if not rows:
        return None
    return _jetson_row(max(rows, key=lambda row: _version(row["l4t"])))


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


# ----------------------------------------------------------------------------------- AMD


@dataclass(frozen=True)
class GfxOverride:
    """HSA_OVERRIDE_GFX_VERSION that runs an unlisted gfx target as a listed one (a workaround)."""

    target: str  # "gfx1032"
    value: str  # "10.3.0"
    runs_as: str  # "gfx1030"
    note: str
    source: str


def gfx_override(target: str) -> GfxOverride | None:
    """The community override for a gfx target no official build lists; None when none is known."""
    for row in _load("amd-gfx")["overrides"]:
        if row["target"] == target.strip().lower():
            return GfxOverride(row["target"], row["value"], row["runs_as"], row["note"], row["source"])
    return None


# ----------------------------------------------------------------------------------- Arm CPUs


def _hex_code(code: str | int | None) -> int | None:
    if isinstance(code, int):
        return code
    try:
        return int(str(code).strip(), 16)  # "0x41" as /proc/cpuinfo prints it
    except ValueError:
        return None


@lru_cache(maxsize=None)
def _arm_tables() -> tuple[dict[int, str], dict[tuple[int, int], str]]:
    data = _load("arm-cores")
    return ({int(row["implementer"], 16): row["name"] for row in data["implementers"]},
            {(int(row["implementer"], 16), int(row["part"], 16)): row["name"] for row in data["cores"]})


def arm_implementer(code: str | int | None) -> str | None:
    """The name of an Arm "CPU implementer" code: "0x41" (or 0x41) -> "ARM"; None when unknown."""
    return _arm_tables()[0].get(_hex_code(code))


def arm_core(implementer: str | int | None, part: str | int | None) -> str | None:
    """The core an ("CPU implementer", "CPU part") pair names: ("0x41", "0xd0c") -> "Neoverse-N1",
    ("0x48", "0xd40") -> "Cortex-A76" (a part code means nothing without its implementer); None when unknown."""
    return _arm_tables()[1].get((_hex_code(implementer), _hex_code(part)))


# ----------------------------------------------------------------------------------- peak FLOP/s


@dataclass(frozen=True)
class GpuPeak:
    """A GPU model's dense peak in TFLOP/s per dtype: "float32" (NVIDIA: CUDA cores; AMD: the higher of
    its vector and matrix rates, since rocBLAS runs float32 GEMMs on the matrix cores), "tf32", "bfloat16",
    "float16". A dtype missing from ``tflops`` has no such hardware, or no sourced figure. AMD rows also
    give the compute units of the whole device and the dies (GCDs) they are spread over."""

    model: str  # "H100 SXM", "Instinct MI300X"
    tflops: dict[str, float] = field(hash=False)
    source: str
    compute_units: int | None = None
    dies: int = 1


@dataclass(frozen=True)
class CpuRate:
    """Floating-point operations per cycle per core of one CPU execution unit in one dtype."""

    unit: str  # "avx512", "amx_bf16", "neoverse-n1"
    label: str  # "AVX-512, 2 FMA units"
    dtype: str
    flops_per_cycle: int
    engine: str  # "vector" (SIMD FMA units) or "matrix" (a tile engine such as AMX)
    source: str


_TFLOPS_KEYS = ("float32", "tf32", "bfloat16", "float16")


@lru_cache(maxsize=None)
def _nvidia_name_patterns() -> tuple[tuple[re.Pattern, dict], ...]:
    return tuple((re.compile(pattern, re.IGNORECASE), row)
                 for row in _load("peak-flops")["nvidia_gpus"] for pattern in row["nvml_names"])


def nvidia_gpu_peak(name: str | None) -> GpuPeak | None:
    """The peak of the NVIDIA GPU model NVML or nvidia-smi names: "NVIDIA H100 80GB HBM3" -> H100 SXM.

    The whole name must match a row (the leading "NVIDIA " aside, which old drivers leave out), so an
    "A10G" is no "A10", a "3090 Ti" no "3090" and a MIG device ("... MIG 1g.10gb") no whole GPU. None
    for a model not in the table."""
    text = " ".join(str(name or "").split())
    text = re.sub(r"^NVIDIA\s+", "", text, flags=re.IGNORECASE)
    for pattern, row in _nvidia_name_patterns():
        if pattern.fullmatch(text):
            return GpuPeak(model=row["model"], tflops={k: row[k] for k in _TFLOPS_KEYS if k in row},
                           source=row["source"])
    return None


def amd_gpu_peaks(gfx_target: str | None, compute_units: int | None) -> tuple[GpuPeak, ...]:
    """The AMD models whose whole device, or one of its dies, is a ``gfx_target`` GPU with this many
    compute units: ("gfx942", 304) -> MI300X and MI325X; ("gfx90a", 110) -> one MI250X die. Several rows
    can fit (an MI210 and one MI250 die are both gfx90a with 104 CUs); none for an unknown device."""
    rows = [row for row in _load("peak-flops")["amd_gpus"]
            if row["gfx_target"] == str(gfx_target or "").strip().lower()
            and compute_units in (row["compute_units"], row["compute_units"] // row["dies"])]
    return tuple(GpuPeak(model=row["model"], source=row["source"], compute_units=row["compute_units"],
                         dies=row["dies"],
                         tflops={"float32": max(row["float32_vector"], row["float32_matrix"]),
                                 "bfloat16": row["bfloat16"], "float16": row["float16"]})
                 for row in rows)


def cpu_rate(dtype: str, architecture: str | None, features: dict[str, bool], core: str | None = None,
             torch_cpu_capability: str | None = None) -> CpuRate | None:
    """The best execution unit for ``dtype`` that a CPU announces: the first row, best first, whose
    features (CpuFacts.features keys) are all true and whose core, where the row names one, is this CPU's
    (an Arm core's name as knowledge arm-cores spells it). With the features unknown (empty), the unit
    torch's build reports (torch.backends.cpu.get_cpu_capability(), "AVX512") stands in. None when no row
    fits: an unknown core, no unit for that dtype, or nothing known about the CPU."""
    rows = [row for row in _load("peak-flops")["cpu_rates"]
            if row["dtype"] == dtype and row["architecture"] == architecture]
    if features:
        fits = [row for row in rows if all(features.get(name) for name in row["needs_features"])
                and row.get("core", core) == core]
    else:
        fits = [row for row in rows if torch_cpu_capability and row.get("torch_cpu_capability") == torch_cpu_capability]
    if not fits:
        return None
    row = fits[0]
    return CpuRate(unit=row["unit"], label=row["label"], dtype=row["dtype"], flops_per_cycle=row["flops_per_cycle"],
                   engine=row["engine"], source=row["source"])


def float32_matmul_on_nvidia(framework: str) -> str | None:
    """What a framework's float32 matmul runs on an NVIDIA GPU by default: "float32" (CUDA cores: torch)
    or "tf32" (tensor cores where the GPU has them: TensorFlow, JAX); None for a framework not in the table."""
    return next((row["on_nvidia"] for row in _load("peak-flops")["float32_matmul"] if row["framework"] == framework),
                None)
