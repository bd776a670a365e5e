"""From a snapshot to a report: checks, then every decision, in the one order data flows.

probes -> facts (the snapshot) -> checks (findings) -> decisions (readiness, goal verdicts,
the recommendation, the first screen) -> the Report that every renderer reads.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import auditor
from auditor.checks import run_checks, run_fleet_checks
from auditor.checks.fleet import Fleet, FleetMember
from auditor.checks.selection import Selection
from auditor.decisions.areas import area_lines
from auditor.decisions.commands import fit_commands
from auditor.decisions.readiness import Recommendation, assess
from auditor.decisions.recommendation import not_for_this_machine, recommend
from auditor.configuration import configuration
from auditor.decisions.fleet import FleetReport, lay_out
from auditor.facts import CollectiveProof, Snapshot
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


def build_fleet_report(nodes: list, source: str, selection: Optional[Selection] = None,
                       goals: Optional[list[Profile]] = None, collective: Optional[CollectiveProof] = None) -> FleetReport:
    """``nodes``: auditor.fleet.nodes.NodeResult, one per node; ``collective``: the all_reduce proof
    across them, when one ran. Every audited node is judged on the
    same goals: those given, else every built-in goal that applies to at least one node (a GPU
    goal is then judged on the node without GPUs too, and says so)."""
    audited = [node.snapshot for node in nodes if node.snapshot is not None]
    if goals is None:
        goals = [profile for profile in (load_profile(name, Path.cwd()) for name in builtin_profiles())
                 if any(s.mode != "quick" and not not_for_this_machine(profile, s) for s in audited)]
    members, reports = [], {}
    for node in nodes:
        if node.snapshot is None:
            members.append(FleetMember(node.name, None, node.reason))
            continue
        report = reports[node.name] = build_report(node.snapshot, selection, goals=goals)
        members.append(FleetMember(node.name, node.snapshot, None, configuration(node.snapshot),
                                   {goal.goal: (goal.status, goal.blocker) for goal in report.recommendation.goals}))
    fleet = lay_out(members, reports, {node.name: node.where for node in nodes},
                    run_fleet_checks(Fleet(members, collective), selection))
    fleet.source, fleet.auditor_version, fleet.collective = source, auditor.__version__, collective
    fleet.generated_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return fleet
