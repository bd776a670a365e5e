"""The report: the snapshot plus everything derived from it, ready for any renderer."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from auditor.checks.base import SEVERITY_RANK, Finding
from auditor.facts import Snapshot, to_dict
from auditor.decisions.readiness import Readiness, Recommendation


@dataclass
class Report:
    snapshot: Snapshot
    findings: list[Finding]
    readiness: Readiness
    recommendation: Recommendation
    # The goals' profile verdicts the recommendation was fitted to (`auditor check` reports
    # them as its profiles); not part of the audit's JSON.
    verdicts: list = dataclasses.field(default_factory=list)
    # Each timed matmul beside its device's peak (auditor.peaks.ThroughputFigure), in the JSON as "throughput".
    throughput: list = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**to_dict(self.snapshot),
                "findings": [dataclasses.asdict(f) for f in self.findings],
                "readiness": dataclasses.asdict(self.readiness),
                "recommendation": dataclasses.asdict(self.recommendation),
                "throughput": [dataclasses.asdict(figure) for figure in self.throughput]}

    def worst_severity(self) -> int:
        """The rank of the most severe finding, -1 when there is none."""
        return max((SEVERITY_RANK[f.severity] for f in self.findings), default=-1)
