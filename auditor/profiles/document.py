"""The profile file format (schema "auditor-profile-v1"), declared once as typed dataclasses.

The loader checks every file against these declarations (auditor.profiles.typed_toml.parse)
and the published JSON Schema is generated from them (auditor.profiles.schema). A profile
is data only: nothing in it is ever executed.

Requirement entries in the arrays (``frameworks``, ``compute``, ``exports``) each have a
stable id, given as ``id`` or derived from their content; a profile that ``extends`` another
replaces an inherited entry by restating its id.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Annotated, Literal, Optional

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from auditor.checks import REGISTRY
from auditor.checks.selection import closest_code
from auditor.probes.packages import ML_DISTRIBUTIONS, ML_PREFIXES
from auditor.probes.registry import EXPORT_PATHS
from auditor.profiles.typed_toml import ONE_OR_MANY, Constraint

SCHEMA = "auditor-profile-v1"
FRAMEWORKS = ("torch", "tensorflow", "jax")


def _specifier_problem(text: str):
    try:
        SpecifierSet(text)
    except InvalidSpecifier as exc:
        return str(exc)
    return None


def _requirement_problem(text: str):
    try:
        Requirement(text)
    except InvalidRequirement as exc:
        return str(exc).splitlines()[0]
    return None


def _untracked_problem(text: str):
    name = canonicalize_name(Requirement(text).name)
    return None if name in ML_DISTRIBUTIONS or name.startswith(ML_PREFIXES) else ""


def _code_problem(text: str, prefixes: bool):
    code = text.upper()
    known = any(check.code.startswith(code) if prefixes else check.code == code for check in REGISTRY)
    if known:
        return None
    close = closest_code(text, prefixes=prefixes)
    return f"did you mean {close}?" if close else "`auditor checks` lists them"


def _pattern(regex: str, expected: str) -> Constraint:
    return Constraint(expected, lambda text: None if re.fullmatch(regex, text) else "", {"pattern": f"^{regex}$"})


SpecifierText = Annotated[str, Constraint('a PEP 440 version specifier set such as ">=3.10,<3.14"',
                                          _specifier_problem)]
RequirementText = Annotated[str, Constraint('a PEP 508 requirement such as "torch>=2.3"', _requirement_problem),
                            Constraint("a distribution the auditor records (torch, tensorflow, jax, onnxruntime, "
                                       "executorch, numpy, ...: see auditor/probes/packages.py)", _untracked_problem)]
CheckCodeOrPrefix = Annotated[str, Constraint("a check code or code prefix such as \"GPU004\" or \"GPU\"",
                                              lambda text: _code_problem(text, prefixes=True),
                                              {"pattern": "^[A-Za-z]+[0-9]{0,3}$"})]
CheckCode = Annotated[str, Constraint("a check code such as \"MEM002\"", lambda text: _code_problem(text, prefixes=False),
                                      {"pattern": "^[A-Za-z]+[0-9]{3}$"})]
VersionText = Annotated[str, _pattern(r"[0-9]+(\.[0-9]+)*", 'a version such as "8.0" or "535.104.05"')]
RequirementId = Annotated[str, _pattern(r"[a-z0-9][a-z0-9.+_-]*", "an id of lower-case letters, digits and .+_-")]
ProfileName = Annotated[str, _pattern(r"[a-z0-9][a-z0-9-]*", "a name of lower-case letters, digits and -")]
OneLine = Annotated[str, _pattern(r"[^\n]+", "one line of text")]
PositiveCount = Annotated[int, Constraint("an integer of at least 1", lambda n: None if n >= 1 else "", {"minimum": 1})]
PositiveAmount = Annotated[float, Constraint("a number greater than 0", lambda n: None if n > 0 else "",
                                             {"exclusiveMinimum": 0})]

# How an unmet requirement counts: error -> fail, warning -> warn.
Severity = Literal["error", "warning"]
# What a check's findings count as under this profile; off drops the check.
CheckSeverity = Literal["error", "warning", "info", "off"]
FrameworkName = Literal["torch", "tensorflow", "jax"]
# Device kinds as the frameworks report them, plus groups: gpu = cuda or rocm; accelerator =
# anything but the CPU; any = any device; best = the best accelerator this machine has
# (NVIDIA, then AMD, then TPU, then Apple silicon), or the CPU, with a warning, when it has none.
DeviceKind = Literal["cpu", "cuda", "rocm", "gpu", "mps", "xpu", "tpu", "accelerator", "any", "best"]
# Accelerator hardware, in the same words: cuda = NVIDIA GPUs, rocm = AMD GPUs, mps = Apple silicon.
AcceleratorKind = Literal["cuda", "rocm", "gpu", "tpu", "mps", "any"]
Dtype = Literal["float32", "bfloat16", "float16"]
Workload = Literal["matmul", "conv2d", "train-step"]
Compiler = Literal["eager", "xla", "torch.compile"]
ExportName = Literal[EXPORT_PATHS]  # type: ignore[valid-type]


def doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclass(frozen=True)
class PythonRequirement:
    """The Python version of the environment."""

    requires: SpecifierText = field(metadata=doc("PEP 440 specifiers the Python version must match."))
    severity: Optional[Severity] = field(default=None, metadata=doc("error (default): unmet fails; warning: it warns."))


@dataclass(frozen=True)
class MachineRequirement:
    """What the machine (or its container limits) must offer: usable CPUs, RAM and /dev/shm."""

    min_usable_cpus: Optional[PositiveCount] = field(
        default=None, metadata=doc("CPUs this process may use: the smallest of logical CPUs, affinity and cgroup quota."))
    min_memory_gib: Optional[PositiveAmount] = field(
        default=None, metadata=doc("Usable RAM in GiB: the smaller of physical memory and the cgroup limit."))
    min_shm_gib: Optional[PositiveAmount] = field(
        default=None, metadata=doc("Size of /dev/shm in GiB (PyTorch DataLoader workers pass batches through it)."))
    severity: Optional[Severity] = field(default=None, metadata=doc("error (default) or warning."))


@dataclass(frozen=True)
class AcceleratorRequirement:
    """Accelerator hardware, as its driver reports it (not as a framework sees it)."""

    kind: Optional[AcceleratorKind] = field(
        default=None, metadata=doc("cuda (NVIDIA), rocm (AMD), gpu (either), tpu, mps (Apple silicon) or any "
                                   "(default)."))
    min_count: Optional[PositiveCount] = field(
        default=None, metadata=doc("How many devices of the kind must meet the memory and compute capability "
                                   "minimums (default 1)."))
    min_memory_gib: Optional[PositiveAmount] = field(default=None, metadata=doc("Memory per device in GiB."))
    min_compute_capability: Optional[VersionText] = field(
        default=None, metadata=doc("NVIDIA compute capability per device, such as \"8.0\"."))
    min_driver: Optional[VersionText] = field(
        default=None, metadata=doc("NVIDIA driver version, such as \"535.104.05\" (concerns NVIDIA GPUs only)."))
    severity: Optional[Severity] = field(default=None, metadata=doc("error (default) or warning."))
    capacity_severity: Optional[Severity] = field(
        default=None, metadata=doc("For devices of the kind that are present but below min-memory-gib or "
                                   "min-compute-capability: error or warning (default: severity). Built-in "
                                   "profiles warn: a small GPU is small, not broken."))


@dataclass(frozen=True)
class FrameworkRequirement:
    """Installed distributions: met when any one of the requirements is."""

    any_of: Annotated[tuple[RequirementText, ...], Constraint("at least one requirement", lambda t: None if t else "",
                                                              {"minItems": 1})] = field(
        metadata=doc("PEP 508 requirements, any one of which meets this entry; environment markers are evaluated "
                     "against the audited machine."))
    id: Optional[RequirementId] = field(default=None, metadata=doc("Stable id; default derived from the names."))
    severity: Optional[Severity] = field(default=None, metadata=doc("error (default) or warning."))

    def requirement_id(self) -> str:
        return self.id or "-or-".join(canonicalize_name(Requirement(text).name) for text in self.any_of)


@dataclass(frozen=True)
class ComputeRequirement:
    """A computation the auditor proved: met when one proof matches every field given."""

    device: Annotated[tuple[DeviceKind, ...], ONE_OR_MANY] = field(
        metadata=doc("Device kind(s): cpu, cuda, rocm, gpu (cuda or rocm), mps, xpu, tpu, accelerator (not the "
                     "CPU), any, or best (this machine's best accelerator; the CPU with a warning when it has none)."))
    framework: Optional[Annotated[tuple[FrameworkName, ...], ONE_OR_MANY]] = field(
        default=None, metadata=doc("torch, tensorflow and/or jax; default any."))
    dtype: Optional[Annotated[tuple[Dtype, ...], ONE_OR_MANY]] = field(
        default=None, metadata=doc("float32 (default), bfloat16 and/or float16."))
    workload: Optional[Annotated[tuple[Workload, ...], ONE_OR_MANY]] = field(
        default=None, metadata=doc("matmul, conv2d and/or train-step; default any."))
    compiler: Optional[Annotated[tuple[Compiler, ...], ONE_OR_MANY]] = field(
        default=None, metadata=doc("eager, xla and/or torch.compile; default any."))
    id: Optional[RequirementId] = field(default=None, metadata=doc("Stable id; default derived from the fields."))
    severity: Optional[Severity] = field(default=None, metadata=doc("error (default) or warning."))

    @property
    def dtypes(self) -> tuple[str, ...]:
        return self.dtype or ("float32",)

    def requirement_id(self) -> str:
        parts = ["-or-".join(self.framework) if self.framework else "any", "-or-".join(self.device),
                 "-or-".join(self.dtypes), "-or-".join(self.workload or ()), "-or-".join(self.compiler or ())]
        return self.id or ".".join(part for part in parts if part)


@dataclass(frozen=True)
class ExportRequirement:
    """Export or serving paths that must be ready: met when any one alternative is, an
    alternative being one path or a list of paths that must all be ready."""

    any_of: Annotated[tuple[Annotated[tuple[ExportName, ...], ONE_OR_MANY], ...],
                      Constraint("at least one alternative", lambda t: None if t else "", {"minItems": 1})] = field(
        metadata=doc("Alternatives: \"onnx\", or [\"tflite\", \"tflite-int8\"] for paths that must all be ready."))
    id: Optional[RequirementId] = field(default=None, metadata=doc("Stable id; default derived from the paths."))
    severity: Optional[Severity] = field(default=None, metadata=doc("error (default) or warning."))

    def requirement_id(self) -> str:
        return self.id or "-or-".join("+".join(paths) for paths in self.any_of)


@dataclass(frozen=True)
class CheckPolicy:
    """How the auditor's checks count under this profile."""

    ignore: tuple[CheckCodeOrPrefix, ...] = field(
        default=(), metadata=doc("Codes or prefixes of checks that do not count for this profile."))
    severity: dict[CheckCodeOrPrefix, CheckSeverity] = field(
        default_factory=dict, metadata=doc("Code or prefix -> error, warning, info or off; the longest matching "
                                           "entry wins."))


@dataclass(frozen=True)
class Waiver:
    """A finding accepted until a date: reported as waived, not failing. An expired waiver is an
    input error, so that it is renewed or removed instead of silently ending."""

    code: CheckCode = field(metadata=doc("The check code the waiver covers."))
    reason: OneLine = field(metadata=doc("Why, and who owns it (a ticket)."))
    expires: datetime.date = field(metadata=doc("The last day the waiver holds, a TOML date."))


@dataclass(frozen=True)
class ProfileDocument:
    """An auditor readiness profile (one TOML file)."""

    schema: Literal["auditor-profile-v1"] = field(metadata=doc("The format of this file."))
    description: OneLine = field(metadata=doc("What the profile is for, in one line (shown by `auditor profiles`)."))
    name: Optional[ProfileName] = field(default=None, metadata=doc("Default: the file name without .toml."))
    extends: tuple[str, ...] = field(
        default=(), metadata=doc("Profiles this one builds on: built-in names, or paths relative to this file. "
                                 "Their requirements come first; this file's tables override theirs key by key, "
                                 "and its entries replace theirs with the same id."))
    python: Optional[PythonRequirement] = None
    machine: Optional[MachineRequirement] = None
    accelerator: Optional[AcceleratorRequirement] = None
    frameworks: tuple[FrameworkRequirement, ...] = ()
    compute: tuple[ComputeRequirement, ...] = ()
    exports: tuple[ExportRequirement, ...] = ()
    checks: Optional[CheckPolicy] = None
    waivers: tuple[Waiver, ...] = ()

    def named_frameworks(self) -> tuple[str, ...]:
        """The frameworks its [[frameworks]] and [[compute]] entries name, in their order: the goal's
        own, whose fixes come first (a TensorFlow goal is never told to install torch)."""
        named = [Requirement(text).name for entry in self.frameworks for text in entry.any_of]
        named += [name for entry in self.compute for name in (entry.framework or ())]
        return tuple(name for name in dict.fromkeys(named) if name in FRAMEWORKS)
