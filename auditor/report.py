"""The report: the snapshot plus everything derived from it, ready for any renderer."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

from auditor.checks import run_checks
from auditor.checks.base import SEVERITY_RANK, Finding
from auditor.checks.selection import Selection
from auditor.facts import Snapshot, to_dict
from auditor.readiness import Readiness, Recommendation, assess, recommend


@dataclass
class Report:
    snapshot: Snapshot
    findings: list[Finding]
    readiness: Readiness
    recommendation: Recommendation

    def to_dict(self) -> dict[str, Any]:
        return {**to_dict(self.snapshot),
                "findings": [dataclasses.asdict(f) for f in self.findings],
                "readiness": dataclasses.asdict(self.readiness),
                "recommendation": dataclasses.asdict(self.recommendation)}

    def worst_severity(self) -> int:
        """The rank of the most severe finding, -1 when there is none."""
        return max((SEVERITY_RANK[f.severity] for f in self.findings), default=-1)


def build_report(snapshot: Snapshot, selection: Optional[Selection] = None) -> Report:
    findings = run_checks(snapshot, selection)
    readiness = assess(snapshot, findings)
    return Report(snapshot, findings, readiness, recommend(snapshot, readiness, findings))
