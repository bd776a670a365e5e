"""The fleet report: one row per node, the nodes grouped by identical configuration, the skew
findings (FLT, auditor/checks/fleet.py) and how many nodes are ready for each goal.

Probe everywhere, judge here: each node's snapshot went through the same checks and goals as a
single audit (pipeline.build_fleet_report); this module only lays the nodes side by side.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from auditor.checks.base import SEVERITY_RANK, Finding
from auditor.checks.fleet import FleetMember
from auditor.facts import CollectiveProof
from auditor.report import Report

# As the report's: the major part changes only when a field is removed or changes meaning.
FLEET_SCHEMA_VERSION = "1.0"


@dataclass
class NodeRow:
    name: str
    where: str  # how it was reached: a Ray node's address and id, a snapshot file
    status: str  # audited, not-audited
    reason: Optional[str] = None  # not audited: why
    gpus: Optional[str] = None  # "8 x NVIDIA H100 80GB HBM3"; None: none seen
    driver: Optional[str] = None
    python: Optional[str] = None
    frameworks: list[str] = field(default_factory=list)  # "torch 2.8.0+cu128 (cuda 12.8, cuDNN 9.10)"
    readiness: Optional[str] = None  # the node's own readiness: ready, not-ready, unproven
    verdicts: dict[str, str] = field(default_factory=dict)  # goal -> ready, not-ready, not-checked
    errors: int = 0  # the node's own findings, by severity
    warnings: int = 0
    group: Optional[int] = None  # the configuration group it belongs to


@dataclass
class ConfigGroup:
    number: int  # 1 is the largest group
    nodes: list[str]
    # The entries in which this group differs from another (label -> value, "(none)" where absent).
    differs: dict[str, str] = field(default_factory=dict)


@dataclass
class GoalCount:
    goal: str
    ready: int
    audited: int  # nodes judged on the goal
    not_ready: list[str] = field(default_factory=list)  # node names


@dataclass
class FleetReport:
    """`auditor fleet`: every node side by side, grouped by configuration, with the fleet's findings."""

    summary: str  # one sentence: nodes, configurations, goals, skew
    nodes: list[NodeRow]
    groups: list[ConfigGroup]
    common: dict[str, str]  # what every audited node has alike, label -> value
    goals: list[GoalCount]
    findings: list[Finding]  # the fleet's own (FLT), worst first
    generated_at: str = ""
    auditor_version: str = ""
    source: str = ""  # "ray cluster at auto", "4 snapshot files"
    collective: Optional[CollectiveProof] = None  # the all_reduce across the nodes, when one ran
    schema_version: str = FLEET_SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def worst_severity(self) -> int:
        """The rank of the most severe fleet finding, -1 when there is none."""
        return max((SEVERITY_RANK[f.severity] for f in self.findings), default=-1)


def lay_out(members: list[FleetMember], reports: dict[str, Report], wheres: dict[str, str],
            findings: list[Finding]) -> FleetReport:
    """``reports``: by node name, for the audited nodes."""
    audited = [m for m in members if m.audited]
    groups, group_of, common = _groups(audited)
    rows = [_row(member, reports.get(member.name), wheres[member.name], group_of.get(member.name))
            for member in members]
    goals = _goal_counts(audited)
    return FleetReport(_summary(members, groups, goals, findings), rows, groups, common, goals, findings)


def _row(member: FleetMember, report: Optional[Report], where: str, group: Optional[int]) -> NodeRow:
    if report is None:
        return NodeRow(member.name, where, "not-audited", member.reason)
    config = member.configuration
    value = lambda key: config[key].value if key in config else None  # noqa: E731
    gpus = ", ".join(filter(None, (value("nvidia.gpus"), value("amd.gpus"), value("tpu")))) or None
    frameworks = []
    for name in sorted(report.snapshot.frameworks):
        build = value(f"{name}.build")
        frameworks.append(f"{name} {value(f'{name}.version') or 'unknown'}" + (f" ({build})" if build else ""))
    return NodeRow(member.name, where, "audited", None, gpus, value("nvidia.driver"), value("python"), frameworks,
                   report.readiness.status, {goal: status for goal, (status, _) in member.verdicts.items()},
                   sum(f.severity == "error" for f in report.findings), sum(f.severity == "warning" for f in report.findings),
                   group)


def _groups(audited: list[FleetMember]) -> tuple[list[ConfigGroup], dict[str, int], dict[str, str]]:
    """Nodes with the same value for every configuration entry form a group; the largest is 1."""
    labels = {key: m.configuration[key].label for m in audited for key in m.configuration}

    def shown(member: FleetMember, key: str) -> str:
        entry = member.configuration.get(key)
        return "(none)" if entry is None else entry.value if entry.value is not None else "unknown"

    by_key: dict[tuple, list[FleetMember]] = {}
    for member in audited:
        by_key.setdefault(tuple(shown(member, key) for key in labels), []).append(member)
    ordered = sorted(by_key.values(), key=lambda group: -len(group))
    varying = [key for key in labels if len({shown(m, key) for m in audited}) > 1]
    common = {labels[key]: shown(audited[0], key) for key in labels if key not in varying} if audited else {}
    groups = [ConfigGroup(number, [m.name for m in group], {labels[key]: shown(group[0], key) for key in varying})
              for number, group in enumerate(ordered, 1)]
    return groups, {name: group.number for group in groups for name in group.nodes}, common


def _goal_counts(audited: list[FleetMember]) -> list[GoalCount]:
    counts = []
    for goal in dict.fromkeys(goal for m in audited for goal in m.verdicts):
        judged = [m for m in audited if goal in m.verdicts]
        counts.append(GoalCount(goal, sum(m.verdicts[goal][0] == "ready" for m in judged), len(judged),
                                [m.name for m in judged if m.verdicts[goal][0] != "ready"]))
    return counts


def _summary(members: list[FleetMember], groups: list[ConfigGroup], goals: list[GoalCount],
             findings: list[Finding]) -> str:
    audited = sum(m.audited for m in members)
    parts = [f"{len(members)} node{'s' if len(members) != 1 else ''}"
             + ("" if audited == len(members) else f", {len(members) - audited} not audited"),
             f"{len(groups)} configuration{'s' if len(groups) != 1 else ''}"]
    parts += [f"{count.goal} ready on {count.ready}/{count.audited}" for count in goals]
    skew = [f.code for f in findings if f.code != "FLT009"]
    parts.append(f"skew: {', '.join(dict.fromkeys(skew))}" if skew else "no skew found")
    return "; ".join(parts) + "."
