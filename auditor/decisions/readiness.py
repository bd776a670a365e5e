"""What works here, by proof: each framework on each device, each export path; and the types
every decision is written in (the recommendation itself is made in recommendation.py).

Readiness rests on proof (a matmul that matched its reference), never on an availability flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from auditor.checks.base import Finding
from auditor.facts import ComputeProof, ExportPath, ExportStatus, FrameworkFacts, Snapshot
from auditor.names import DISPLAY_NAMES, EXPORT_TITLES
from auditor.verdicts import export_install_command

DeviceStatus = Literal["ready", "broken"]
FrameworkStatus = Literal["ready", "broken", "unproven", "not-importable"]



@dataclass
class DeviceReadiness:
    device: str
    kind: str
    status: DeviceStatus
    detail: str


@dataclass
class FrameworkReadiness:
    framework: str
    version: Optional[str]
    status: FrameworkStatus
    reason: str
    devices: list[DeviceReadiness] = field(default_factory=list)

    @property
    def ready_accelerators(self) -> list[DeviceReadiness]:
        return [d for d in self.devices if d.status == "ready" and d.kind != "cpu"]


@dataclass
class ExportReadiness:
    path: str
    title: str
    status: ExportStatus
    detail: str
    command: Optional[str] = None  # installs what a not-installed path is missing, fitted to torch


@dataclass
class Readiness:
    status: Literal["ready", "not-ready", "unproven"]
    summary: str
    frameworks: list[FrameworkReadiness] = field(default_factory=list)
    exports: list[ExportReadiness] = field(default_factory=list)  # the paths checked (--deep or a profile)


@dataclass
class Choice:
    """A framework and device the recommendation picks, and the goals it picks them for."""

    framework: str
    device: Optional[str]
    reasons: list[str]


@dataclass
class NextStep:
    """One thing to do: ``action`` says what (a command, a setting, a machine to use), never the
    requirement restated; ``reason`` is the fact that makes it needed."""

    reason: str
    action: str
    command: Optional[str] = None
    goals: list[str] = field(default_factory=list)  # the goals it unblocks; empty: the machine as a whole


@dataclass
class GoalRecommendation:
    """What to use here for one goal (a profile), why, and what to run to make it ready.
    Computed by auditor/decisions/recommendation.py from the goal's evaluated requirements."""

    goal: str
    description: str
    status: Literal["ready", "not-ready", "not-checked"]  # the goal's profile verdict on this machine
    framework: Optional[str]
    device: Optional[str] = None  # where it was proven, when it was
    path: Optional[str] = None  # the export path(s) proven for this goal: "tflite + tflite-int8"
    reasons: list[str] = field(default_factory=list)
    next_steps: list[NextStep] = field(default_factory=list)
    alternatives: list[str] = field(default_factory=list)  # the other frameworks, ranked, one line each
    warnings: int = 0  # requirements met with a caveat
    caveat: Optional[str] = None  # the first of those caveats, as a fact
    unchecked: list[str] = field(default_factory=list)  # what was not measured: "proofs", "onnx", "memory"
    check_command: Optional[str] = None  # what checks the goal in full on the machine itself
    blocker: Optional[str] = None  # not ready: the first failed requirement, as a fact


AreaState = Literal["ready", "warning", "not-ready", "not-checked", "not-applicable"]


@dataclass
class AreaLine:
    """One line of the report's first screen, in flutter doctor's style: an area (a framework, an
    accelerator, an export path, a goal), its state, and the one fact that decides it."""

    area: Literal["python", "framework", "accelerator", "export", "goal"]
    name: str  # "PyTorch 2.13.0+cpu", "NVIDIA", "onnx", "gpu-training"
    state: AreaState
    fact: str
    command: Optional[str] = None  # not checked: the command that checks it; not ready: the one that fixes it


@dataclass
class Recommendation:
    # The answer, in one sentence: which framework, on which device, for the goal; or what blocks it.
    summary: str
    choices: list[Choice] = field(default_factory=list)
    next_steps: list[NextStep] = field(default_factory=list)
    # By goal: the built-in profiles that apply here (or those --goal names) in `auditor audit`, the
    # profiles asked for in `auditor check`.
    goals: list[GoalRecommendation] = field(default_factory=list)
    # Built-in goals `auditor audit` left out, and why: hardware this machine shows no sign of.
    goals_left_out: dict[str, str] = field(default_factory=dict)
    # The first screen: one line per framework, accelerator, export path and goal.
    areas: list[AreaLine] = field(default_factory=list)
    # The commands that audit and check this same interpreter again (with --python when it is not
    # the auditor's own; decisions/commands.py), for the report's hints.
    audit_command: str = "auditor audit"
    check_command: str = "auditor check"


def assess(snapshot: Snapshot, findings: list[Finding]) -> Readiness:
    frameworks = [_framework_readiness(fw) for fw in snapshot.frameworks.values()]
    errors = [f for f in findings if f.severity == "error"]
    ready = [fw for fw in frameworks if fw.status == "ready"]
    if snapshot.mode == "quick":
        status, summary = "unproven", "Quick audit: frameworks were not imported, so nothing was proven."
    elif not frameworks:
        status, summary = "not-ready", "No ML framework (PyTorch, TensorFlow) is installed."
    elif not errors and not ready and any(fw.status == "unproven" for fw in frameworks):
        status, summary = "unproven", ("No error found, but nothing was proven: this snapshot records no computation "
                                       "(a full `auditor audit` on the machine itself proves one).")
    else:
        proven = f"proven: {'; '.join(_label(fw) for fw in ready)}." if ready else "no framework proved a computation."
        status = "not-ready" if errors or not ready else "ready"
        summary = f"{len(errors)} error finding(s); {proven}" if status == "not-ready" else proven[0].upper() + proven[1:]
        nvidia = snapshot.accelerators.nvidia
        if ready and nvidia and nvidia.gpus and not any(fw.ready_accelerators for fw in ready):
            summary += f" The {len(nvidia.gpus)} NVIDIA GPU(s) go unused: every framework runs on the CPU."
    return Readiness(status, summary, frameworks, [_export_readiness(snapshot, path) for path in snapshot.exports.values()])


def _export_readiness(snapshot: Snapshot, path: ExportPath) -> ExportReadiness:
    title = EXPORT_TITLES.get(path.name, path.name)
    if path.status == "ready":
        within = f" within {path.max_relative_error:.1e}" if path.max_relative_error is not None else ""
        took = f" in {path.seconds:.1f} s" if path.seconds is not None else ""
        detail = f"{path.runtime}: output matched the source model{within}{took}"
        return ExportReadiness(path.name, title, path.status, detail + (f"; {path.deprecated}" if path.deprecated else ""))
    if path.status == "not-installed":
        return ExportReadiness(path.name, title, path.status, f"missing {', '.join(path.missing)}",
                               export_install_command(snapshot, path.missing))
    if path.status == "not-applicable":
        done = ", ".join(stage.name for stage in path.stages if stage.ok)
        reason = path.details.get("predict") or path.error or "not applicable on this platform"
        return ExportReadiness(path.name, title, path.status, reason + (f" ({done} passed here)" if done else ""))
    return ExportReadiness(path.name, title, path.status, path.error or "failed")


def _label(fw: FrameworkReadiness) -> str:
    devices = ", ".join(d.device for d in fw.devices if d.status == "ready")
    return f"{DISPLAY_NAMES.get(fw.framework, fw.framework)} {fw.version} on {devices}"


def _framework_readiness(fw: FrameworkFacts) -> FrameworkReadiness:
    version = fw.version or fw.distribution_version
    status = fw.probe.status
    if status == "skipped":
        return FrameworkReadiness(fw.name, version, "unproven", fw.probe.reason or "not probed")
    if status == "error":
        return FrameworkReadiness(fw.name, version, "not-importable", fw.probe.reason or "import failed")
    if status != "ok":
        return FrameworkReadiness(fw.name, version, "broken", f"probe {status}: {fw.probe.reason}")
    if fw.devices is None or fw.proofs is None:
        unknown = "its devices were not listed" if fw.devices is None else "no proof was run"
        return FrameworkReadiness(fw.name, version, "unproven", f"not measured here: {unknown} (a full `auditor audit` "
                                                               "on the machine itself proves it)")
    devices = []
    for device in fw.devices:
        proofs = [p for p in fw.proofs if p.device == device.id and not p.skipped]
        # The device stands or falls by its eager float32 proofs; reduced precision and
        # compilers are reported by their own checks (FW005, FW008, FW009).
        essential = [p for p in proofs if p.compiler is None and p.dtype == "float32"]
        failed = [p for p in essential if p.failed]
        if not essential:
            devices.append(DeviceReadiness(device.id, device.kind, "broken", "no computation was proven"))
        elif failed:
            devices.append(DeviceReadiness(device.id, device.kind, "broken",
                                           "; ".join(f"{p.operation}: {p.error}" for p in failed)))
        else:
            devices.append(DeviceReadiness(device.id, device.kind, "ready", _proven_detail(proofs)))
    if any(d.status == "ready" for d in devices):
        return FrameworkReadiness(fw.name, version, "ready", "computation proven", devices)
    return FrameworkReadiness(fw.name, version, "broken", "no device proved a computation", devices)


def _proven_detail(proofs: list[ComputeProof]) -> str:
    """'matmul, conv2d, train step matched float64 in float32 and bfloat16; 370 GFLOP/s float32, ...'"""
    passed = [p for p in proofs if p.ok and p.compiler is None]
    workloads = list(dict.fromkeys((p.workload or "matmul").replace("-", " ") for p in passed))
    dtypes = list(dict.fromkeys(p.dtype for p in passed))
    worst = max((p.max_relative_error or 0.0) for p in passed)
    detail = f"{', '.join(workloads)} matched float64 in {' and '.join(dtypes)} (max error {worst:.1e})"
    speeds = [f"{p.gflops:,.0f} GFLOP/s {p.dtype}" for p in passed if p.gflops]
    return detail + (f"; matmul {', '.join(speeds)}" if speeds else "")


def command_in(fix: str) -> Optional[str]:
    """The first `backticked` command of a fix, if it has one."""
    parts = fix.split("`")
    return parts[1] if len(parts) >= 3 else None
