"""What evaluating profiles produces: per profile, per requirement, a status with its evidence."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from auditor.report import Report

# not-checked: the audit did not measure it (an export path a plain audit does not convert, a fact a
# replayed snapshot lacks); never a failure, and never a pass: it says the command that checks it.
# not-applicable: the requirement does not concern this machine (a driver minimum without NVIDIA GPUs).
Status = Literal["pass", "fail", "warn", "not-checked", "not-applicable"]
# A gate that wants certainty (--fail-on warning) fails on what was not checked, as on a warning.
STATUS_RANK = {"pass": 0, "not-applicable": 0, "not-checked": 1, "warn": 1, "fail": 2}
STATUS_LABELS = {"pass": "pass", "fail": "FAIL", "warn": "warn", "not-checked": "not checked",
                 "not-applicable": "not applicable"}


@dataclass
class WaiverNote:
    reason: str
    expires: str  # ISO date


@dataclass
class RequirementResult:
    """One requirement of a profile, or one check as the profile counts it.

    ``id`` is stable across runs (a JUnit test case name): `python`, `machine.shm`,
    `accelerator`, `accelerator.driver`, `framework.<id>`, `compute.<id>`, `export.<id>`,
    `check.<CODE>`.
    """

    id: str
    title: str
    status: Status
    evidence: list[str] = field(default_factory=list)
    fix: Optional[str] = None  # what to do, with the exact command where there is one
    waiver: Optional[WaiverNote] = None  # set when a waiver turned a failing check into a warning


@dataclass
class ProfileVerdict:
    profile: str
    description: str
    source: str
    requirements: list[RequirementResult] = field(default_factory=list)

    @property
    def status(self) -> Literal["ready", "not-ready", "not-checked"]:
        """Not ready when a requirement failed; else not checked when one was not measured; else ready."""
        statuses = {r.status for r in self.requirements}
        return "not-ready" if "fail" in statuses else "not-checked" if "not-checked" in statuses else "ready"

    @property
    def label(self) -> str:
        """READY, NOT READY or NOT CHECKED, as the human-readable formats show it."""
        return self.status.upper().replace("-", " ")

    @property
    def requirements_only(self) -> list[RequirementResult]:
        """The profile's own requirements, without the checks it counts (``check.<CODE>``)."""
        return [r for r in self.requirements if not r.id.startswith("check.")]

    @property
    def quiet_checks(self) -> list[RequirementResult]:
        """The counted checks that ran and found nothing."""
        return [r for r in self.requirements if r.id.startswith("check.") and r.status == "pass"]

    def count(self, status: Status) -> int:
        """Requirements with this status; a check counts only when it found something (a quiet check
        is not a requirement met, see quiet_checks)."""
        return sum(1 for r in self.requirements if r.status == status and not (r.id.startswith("check.") and r.status == "pass"))

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "description": self.description, "source": self.source,
                "status": self.status, "requirements": [dataclasses.asdict(r) for r in self.requirements]}


@dataclass
class CheckReport:
    """`auditor check`: the audit report and each profile's verdict on it."""

    report: Report
    verdicts: list[ProfileVerdict]

    def to_dict(self) -> dict[str, Any]:
        return {**self.report.to_dict(), "profiles": [verdict.to_dict() for verdict in self.verdicts]}

    def worst_status(self) -> int:
        """The rank of the worst requirement status over every profile, -1 when there is none."""
        return max((STATUS_RANK[r.status] for v in self.verdicts for r in v.requirements), default=-1)


def unmet(severity: Optional[str]) -> Status:
    """The status of a requirement that is not met: its severity decides (error by default)."""
    return "warn" if severity == "warning" else "fail"
