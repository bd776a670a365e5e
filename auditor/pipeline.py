"""From a snapshot to a report: checks, then every decision, in the one order data flows.

probes -> facts (the snapshot) -> checks (findings) -> decisions (readiness, goal verdicts,
the recommendation) -> the Report that every renderer reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from auditor.checks import run_checks
from auditor.checks.selection import Selection
from auditor.decisions.goals import evaluate
from auditor.decisions.readiness import assess, recommend
from auditor.decisions.recommendation import not_for_this_machine, recommend_for_goals
from auditor.facts import Snapshot
from auditor.profiles.loader import builtin_profiles, load_profile
from auditor.report import Report


def build_report(snapshot: Snapshot, selection: Optional[Selection] = None, goals: Optional[list] = None) -> Report:
    """``goals``: the profiles to fit the recommendation to; None for the built-in ones that apply
    to this machine's hardware (the others are named in ``recommendation.goals_left_out``)."""
    findings = run_checks(snapshot, selection)
    readiness = assess(snapshot, findings)
    report = Report(snapshot, findings, readiness, recommend(snapshot, readiness, findings))
    if goals is not None or snapshot.mode != "quick":  # a quick audit proved nothing to fit a goal to
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
