"""From a snapshot to a report: checks, then every decision, in the one order data flows.

probes -> facts (the snapshot) -> checks (findings) -> decisions (readiness, goal verdicts,
the recommendation, the first screen) -> the Report that every renderer reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from auditor.checks import run_checks
from auditor.checks.selection import Selection
from auditor.decisions.areas import area_lines
from auditor.decisions.commands import fit_commands
from auditor.decisions.readiness import Recommendation, assess
from auditor.decisions.recommendation import not_for_this_machine, recommend
from auditor.facts import Snapshot
from auditor.peaks import throughput_figures
from auditor.profiles.loader import Profile, builtin_profiles, load_profile
from auditor.report import Report


def build_report(snapshot: Snapshot, selection: Optional[Selection] = None,
                 goals: Optional[list[Profile]] = None) -> Report:
    """``goals``: the profiles to fit the recommendation to; None for the built-in ones that apply
    to this machine's hardware (the others are named in ``recommendation.goals_left_out``), or
    none at all after a quick audit, which proved nothing to fit a goal to."""
    findings = run_checks(snapshot, selection)
    # The goals are judged on the report's findings and readiness; the recommendation, made from
    # their verdicts, completes it.
    report = Report(snapshot, findings, assess(snapshot, findings), Recommendation(""),
                    throughput=throughput_figures(snapshot))
    left_out: dict[str, str] = {}
    if goals is None:
        goals = []
        if snapshot.mode != "quick":
            for name in builtin_profiles():
                profile = load_profile(name, Path.cwd())
                why = not_for_this_machine(profile, snapshot)
                if why:
                    left_out[profile.name] = why
                else:
                    goals.append(profile)
    report.recommendation, report.verdicts = recommend(report, goals, selection, left_out)
    report.recommendation.areas = area_lines(report)
    fit_commands(report)
    return report
