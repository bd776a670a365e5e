"""The report: the snapshot plus everything derived from it, ready for any renderer."""

from __future__ import annotations

import dataclasses
from pathlib import Path
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
    # The goals' profile verdicts the recommendation was fitted to (`auditor check` reports
    # them as its profiles); not part of the audit's JSON.
    verdicts: list = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**to_dict(self.snapshot),
                "findings": [dataclasses.asdict(f) for f in self.findings],
                "readiness": dataclasses.asdict(self.readiness),
                "recommendation": dataclasses.asdict(self.recommendation)}

    def worst_severity(self) -> int:
        """The rank of the most severe finding, -1 when there is none."""
        return max((SEVERITY_RANK[f.severity] for f in self.findings), default=-1)


def build_report(snapshot: Snapshot, selection: Optional[Selection] = None, goals: Optional[list] = None) -> Report:
    """``goals``: the profiles to fit the recommendation to; None for the built-in ones that apply
    to this machine's hardware (the others are named in ``recommendation.goals_left_out``)."""
    findings = run_checks(snapshot, selection)
    readiness = assess(snapshot, findings)
    report = Report(snapshot, findings, readiness, recommend(snapshot, readiness, findings))
    if goals is not None or snapshot.mode != "quick":  # a quick audit proved nothing to fit a goal to
        # Imported here: profiles evaluate a Report, so they import this module; and --quick needs none of it.
        from auditor.profiles.evaluate import evaluate
        from auditor.profiles.loader import builtin_profiles, load_profile
        from auditor.recommendation import not_for_this_machine, recommend_for_goals

        profiles = goals
        if goals is None:
            profiles = []
            for name in builtin_profiles():
                profile = load_profile(name, Path.cwd())
                why = not_for_this_machine(profile, snapshot)
                if why:
                    report.recommendation.goals_left_out[profile.name] = why
                else:
                    profiles.append(profile)
        report.verdicts = [evaluate(profile, report, selection) for profile in profiles]
        report.recommendation.goals = recommend_for_goals(report, profiles, report.verdicts)
    return report
