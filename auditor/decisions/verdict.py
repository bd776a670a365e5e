"""What evaluating profiles produces: per profile, per requirement, a status with its evidence."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from auditor.report import Report

Status = Literal["pass", "fail", "warn"]
STATUS_RANK = {"pass": 0, "warn": 1, "fail": 2}


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
    def status(self) -> Literal["ready", "not-ready"]:
        return "not-ready" if any(r.status == "fail" for r in self.requirements) else "ready"

    @property
    def label(self) -> str:
        """READY or NOT READY, as the human-readable formats show it."""
        return self.status.upper().replace("-", " ")

    def count(self, status: Status) -> int:
        return sum(1 for r in self.requirements if r.status == status)

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
