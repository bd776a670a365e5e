"""`auditor diff A B`: what differs between two audits, both judged by today's checks and decisions.

In the order a person needs it: first the verdicts that differ (a goal, the readiness, a finding,
a requirement), each with its cause as read on the side where it fails; then the configuration
entries that differ (auditor/configuration.py), which explain them; then every other fact of the
two snapshots that differs, flattened to paths. Noise, what changes from run to run on one
machine (timings, free memory, clocks, UUIDs), is left out of the last part unless asked for.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Optional

from auditor.checks.base import SEVERITY_RANK
from auditor.configuration import ConfigEntry, configuration
from auditor.decisions.recommendation import not_for_this_machine
from auditor.facts import ComputeProof, Snapshot
from auditor.profiles.loader import Profile, builtin_profiles, load_profile
from auditor.report import Report

Side = Literal["a", "b"]

# How bad each status is; a verdict change's cause is read on the worse side.
_GOAL_RANK = {"ready": 0, "not-checked": 1, "not-ready": 2}
_READINESS_RANK = {"ready": 0, "unproven": 1, "not-ready": 2}
# What a requirement's status does to its goal's verdict: a warning or a pass leaves it ready.
_REQUIREMENT_EFFECT = {"fail": 2, "not-checked": 1}

# The configuration aspects each check family reads, beside its finding's own framework: the
# entries that can explain why the finding fires on one machine and not on the other.
_FAMILY_ASPECTS = {
    "ARC": {"gpu", "driver", "cuda-driver"},
    "AUD": set(),
    "CPU": {"cpu"},
    "DRV": {"gpu", "driver", "cuda-driver", "cuda-toolkit"},
    "ENV": {"python", "package", "nccl"},
    "EXP": {"package"},
    "FW": {"gpu", "driver", "cuda-driver", "python"},
    "GPU": {"gpu", "driver", "cuda-driver", "os"},
    "MEM": {"os"},
    "PLT": {"os", "gpu"},
    "PRF": {"gpu", "cpu", "driver"},
    "ROC": {"gpu", "driver"},
    "TPU": {"gpu", "package"},
}
# The same for a profile's own requirements, by the first part of their id ("framework" here
# matches every framework's entries).
_REQUIREMENT_ASPECTS = {
    "python": {"python"},
    "machine": {"cpu", "os"},
    "accelerator": {"gpu", "driver", "cuda-driver"},
    "framework": {"framework", "package"},
    "compute": {"framework", "gpu", "driver", "cuda-driver"},
    "export": {"framework", "package"},
}

# Facts that change from run to run on the same machine, by their field's name: when the snapshot
# was taken, free memory, clocks and the power states that follow load, per-board identities, how
# long each probe and proof took and when it started, timed speeds, float rounding in a proof's
# error, process counts.
_NOISE_FIELDS = frozenset({
    "generated_at", "available_bytes", "swap_free_bytes", "memory_free_bytes", "clock_mhz", "clock_event_reasons",
    "pcie_link_gen_current", "process_count", "duration_s", "started_s", "import_seconds", "seconds", "gflops",
    "max_relative_error"})
_NOISE_NAMES = re.compile(r"uuid|serial|temperature|(^|_)pids?$")
# Which field names a list's items by, first found first: a GPU by its index (its model name is
# the same for all eight), a device by its id, a PCI function by its address.
_IDENTITY_FIELDS = ("index", "id", "address", "node", "path", "name")
_PLAIN_KEY = re.compile(r"[\w-]+")


@dataclass
class VerdictChange:
    kind: Literal["goal", "readiness", "finding", "requirement"]
    subject: str  # the goal's name, "readiness", the finding's code, the requirement's id
    a: Optional[str]  # its status on A; None: the finding does not fire there, the requirement is not there
    b: Optional[str]
    side: Side  # where its cause is read: the side that fails, or where the finding fires
    title: str  # on that side: the finding's or requirement's title, the goal's description
    cause: list[str] = field(default_factory=list)  # the facts there: evidence, the blocker, the summary
    goal: Optional[str] = None  # a requirement's goal
    framework: Optional[str] = None  # a finding's framework
    explained_by: list[str] = field(default_factory=list)  # keys of the `explaining` entries that bear on it


@dataclass
class ConfigChange:
    key: str
    label: str
    aspect: str
    framework: Optional[str]
    a: Optional[str]  # None: not measured, or (see absent_from) the machine has no such thing
    b: Optional[str]
    absent_from: Optional[Side] = None  # the machine without the entry: no NVIDIA GPU, the framework not installed


@dataclass
class FactChange:
    path: str  # "accelerators.nvidia.gpus[0].memory_total_bytes", "frameworks.torch.proofs[cpu matmul float32].ok"
    a: Any
    b: Any
    absent_from: Optional[Side] = None
    noise: bool = False  # it changes from run to run on one machine


@dataclass
class DiffSide:
    source: str  # the file, or "-" for a fresh audit of this machine
    generated_at: str
    auditor_version: str
    mode: str


@dataclass
class ReportDiff:
    a: DiffSide
    b: DiffSide
    verdict_changes: list[VerdictChange]
    explaining: list[ConfigChange]
    other: list[FactChange]  # without noise unless it was asked for
    noise_hidden: int  # noisy facts that differ and were left out

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def change(self, key: str) -> ConfigChange:
        return next(change for change in self.explaining if change.key == key)


def goals_for_either(a: Snapshot, b: Snapshot) -> list[Profile]:
    """The built-in goals that apply to either machine, so that a goal one machine asks is answered
    on both; none when both audits were quick, which prove nothing a goal rests on."""
    proving = [snapshot for snapshot in (a, b) if snapshot.mode != "quick"]
    profiles = [load_profile(name, Path.cwd()) for name in builtin_profiles()]
    return [profile for profile in profiles if any(not not_for_this_machine(profile, s) for s in proving)]


def compare(a: Report, b: Report, sources: tuple[str, str], with_noise: bool = False) -> ReportDiff:
    """Two reports judged with the same goals and checks (see goals_for_either)."""
    explaining = _config_changes(configuration(a.snapshot), configuration(b.snapshot))
    findings = _finding_changes(a, b, explaining)
    requirements = _requirement_changes(a, b, explaining)
    goals = _goal_changes(a, b, findings, requirements, explaining)
    readiness = _readiness_change(a, b, findings, explaining)
    other, noise_hidden = _fact_changes(a.snapshot, b.snapshot, explaining, with_noise)
    return ReportDiff(_side(sources[0], a.snapshot), _side(sources[1], b.snapshot),
                      goals + readiness + findings + requirements, explaining, other, noise_hidden)


def _side(source: str, snapshot: Snapshot) -> DiffSide:
    return DiffSide(source, snapshot.generated_at, snapshot.auditor_version, snapshot.mode)


# --- verdicts --------------------------------------------------------------------------------


def _finding_changes(a: Report, b: Report, explaining: list[ConfigChange]) -> list[VerdictChange]:
    """Each finding (by code and framework) that fires on one side only, most severe first."""
    fired = [{(f.code, f.framework): f for f in report.findings} for report in (a, b)]
    changes = []
    for side, here, there in (("a", fired[0], fired[1]), ("b", fired[1], fired[0])):
        for key, finding in here.items():
            if key in there:
                continue
            family = re.sub(r"\d+$", "", finding.code)
            # Its framework's entries, the entries its family reads, and for a framework finding the
            # CUDA libraries pip installs beside the framework.
            related = [change.key for change in explaining
                       if (finding.framework and change.framework == finding.framework)
                       or (family == "FW" and change.key.startswith("package.nvidia-"))
                       or change.aspect in _FAMILY_ASPECTS.get(family, ())]
            severity = finding.severity
            changes.append(VerdictChange("finding", finding.code, severity if side == "a" else None,
                                         severity if side == "b" else None, side, finding.title,
                                         list(finding.evidence), framework=finding.framework, explained_by=related))
    return sorted(changes, key=lambda c: (-SEVERITY_RANK[c.a or c.b], c.subject, c.framework or ""))


def _requirement_changes(a: Report, b: Report, explaining: list[ConfigChange]) -> list[VerdictChange]:
    """Each goal's own requirement whose effect on the goal differs (failed, not checked, met). The
    checks a goal counts (check.<CODE>) are left to the finding changes, which say the same."""
    verdicts_b = {verdict.profile: verdict for verdict in b.verdicts}
    changes = []
    for verdict_a in a.verdicts:
        verdict_b = verdicts_b.get(verdict_a.profile)
        if verdict_b is None:
            continue
        results = [{r.id: r for r in verdict.requirements_only} for verdict in (verdict_a, verdict_b)]
        for requirement_id in dict.fromkeys([*results[0], *results[1]]):
            result_a, result_b = (results[0].get(requirement_id), results[1].get(requirement_id))
            effects = [_REQUIREMENT_EFFECT.get(r.status, 0) if r else 0 for r in (result_a, result_b)]
            if effects[0] == effects[1]:
                continue
            side: Side = "a" if effects[0] > effects[1] else "b"
            worse = result_a if side == "a" else result_b
            aspects = _REQUIREMENT_ASPECTS.get(requirement_id.split(".")[0], set())
            related = [change.key for change in explaining
                       if change.aspect in aspects or ("framework" in aspects and change.framework)]
            changes.append(VerdictChange("requirement", requirement_id, result_a and result_a.status,
                                         result_b and result_b.status, side, worse.title, list(worse.evidence),
                                         goal=verdict_a.profile, explained_by=related))
    return changes


def _goal_changes(a: Report, b: Report, findings: list[VerdictChange], requirements: list[VerdictChange],
                  explaining: list[ConfigChange]) -> list[VerdictChange]:
    """Each goal whose verdict differs, with what blocks it on the worse side; it is explained by
    what its differing requirements and counted checks are."""
    goals = [{goal.goal: goal for goal in report.recommendation.goals} for report in (a, b)]
    changes = []
    for verdict_a in a.verdicts:
        verdict_b = next((v for v in b.verdicts if v.profile == verdict_a.profile), None)
        if verdict_b is None or verdict_a.status == verdict_b.status:
            continue
        side: Side = "a" if _GOAL_RANK[verdict_a.status] > _GOAL_RANK[verdict_b.status] else "b"
        goal = goals[0 if side == "a" else 1][verdict_a.profile]
        cause = [goal.blocker] if goal.blocker else []
        if goal.status == "not-checked" and goal.unchecked:
            cause.append(f"not checked: {', '.join(goal.unchecked)}")
        counted = {r.id.removeprefix("check.") for verdict in (verdict_a, verdict_b) for r in verdict.requirements}
        keys = {key for change in findings if change.subject in counted for key in change.explained_by}
        keys |= {key for change in requirements if change.goal == verdict_a.profile for key in change.explained_by}
        changes.append(VerdictChange("goal", verdict_a.profile, verdict_a.status, verdict_b.status, side,
                                     verdict_a.description, cause, goal=verdict_a.profile,
                                     explained_by=[change.key for change in explaining if change.key in keys]))
    return changes


def _readiness_change(a: Report, b: Report, findings: list[VerdictChange],
                      explaining: list[ConfigChange]) -> list[VerdictChange]:
    """The readiness differs: it rests on the error findings and on each framework's proofs."""
    status_a, status_b = a.readiness.status, b.readiness.status
    if status_a == status_b:
        return []
    side: Side = "a" if _READINESS_RANK[status_a] > _READINESS_RANK[status_b] else "b"
    keys = {key for change in findings if "error" in (change.a, change.b) for key in change.explained_by}
    related = [change.key for change in explaining if change.key in keys or change.aspect == "framework"]
    summary = (a if side == "a" else b).readiness.summary
    return [VerdictChange("readiness", "readiness", status_a, status_b, side, "Readiness", [summary],
                          explained_by=related)]


# --- configuration ---------------------------------------------------------------------------


def _config_changes(a: dict[str, ConfigEntry], b: dict[str, ConfigEntry]) -> list[ConfigChange]:
    changes = []
    for key in _merged_order(list(a), list(b)):
        entry_a, entry_b = a.get(key), b.get(key)
        if entry_a and entry_b and entry_a.value == entry_b.value:
            continue
        entry = entry_a or entry_b
        absent_from = None if entry_a and entry_b else "b" if entry_a else "a"
        changes.append(ConfigChange(key, entry.label, entry.aspect, entry.framework, entry_a and entry_a.value,
                                    entry_b and entry_b.value, absent_from))
    return changes


def _merged_order(a: list[str], b: list[str]) -> list[str]:
    """A's keys in their order, each of B's own placed after the key it follows in B: a GPU only B
    has stays among the GPU entries, not after the packages."""
    merged, placed = list(a), set(a)
    previous = None
    for key in b:
        if key not in placed:
            merged.insert(merged.index(previous) + 1 if previous is not None else 0, key)
            placed.add(key)
        previous = key
    return merged


# --- every other fact ------------------------------------------------------------------------


def _fact_changes(a: Snapshot, b: Snapshot, explaining: list[ConfigChange],
                  with_noise: bool) -> tuple[list[FactChange], int]:
    """Every fact that differs, and how many noisy ones were left out. A section only one side has
    (a GPU, a device, a probe) is one change, its own values summed up; a fact an explaining entry
    already shows (the same pair of values: the driver's version, read from NVML and from /proc
    alike, is the NVIDIA driver entry) is left out."""
    flat = {"a": _flattened(a), "b": _flattened(b)}
    shown = [(change.a, change.b) for change in explaining]  # a list: a fact's value may be a list, unhashable
    changes: list[FactChange] = []
    whole: dict[str, FactChange] = {}  # a section only one side has, by its path
    for path in _merged_order(list(flat["a"][0]), list(flat["b"][0])):
        if path in flat["a"][0] and path in flat["b"][0]:
            (value_a, noise_a, _), (value_b, noise_b, _) = flat["a"][0][path], flat["b"][0][path]
            if value_a != value_b and (value_a, value_b) not in shown:
                changes.append(FactChange(path, value_a, value_b, None, noise_a or noise_b))
            continue
        side: Side = "a" if path in flat["a"][0] else "b"
        absent_from: Side = "b" if side == "a" else "a"
        (facts, sections), (_, other_sections) = flat[side], flat[absent_from]
        value, noise, section = facts[path]
        if path in other_sections and value in (None, [], {}):
            continue  # nothing here, a section there: that section is the change
        root = _highest_section_missing(section, sections, other_sections)
        if root is None:
            changes.append(FactChange(path, *((value, None) if side == "a" else (None, value)), absent_from, noise))
            continue
        if root not in whole:
            whole[root] = FactChange(root, *(({}, None) if side == "a" else (None, {})), absent_from, noise=True)
            changes.append(whole[root])
        change = whole[root]
        change.noise = change.noise and noise  # noise only when everything in it is
        if section == root and not noise and value not in (None, [], {}):
            (change.a if side == "a" else change.b)[path[len(root):].lstrip(".")] = value
    kept = [change for change in changes if with_noise or not change.noise]
    return kept, len(changes) - len(kept)


def _highest_section_missing(section: str, sections: dict[str, Optional[str]], other_sections: dict) -> Optional[str]:
    """The outermost section holding a fact that the other side does not have at all, if any."""
    highest = None
    while section is not None and section not in other_sections:
        highest, section = section, sections[section]
    return highest


def _flattened(snapshot: Snapshot) -> tuple[dict[str, tuple[Any, bool, str]], dict[str, Optional[str]]]:
    """Path -> (value, noise, the section holding it) for every fact, and each section's path ->
    the section holding it (None for the snapshot itself)."""
    facts: dict[str, tuple[Any, bool, str]] = {}
    sections: dict[str, Optional[str]] = {}

    def walk(node: Any, path: str, noise: bool, parent: Optional[str]) -> None:
        if dataclasses.is_dataclass(node):
            sections[path] = parent
            for f in dataclasses.fields(node):
                walk(getattr(node, f.name), f"{path}.{f.name}" if path else f.name,
                     noise or f.name in _NOISE_FIELDS or bool(_NOISE_NAMES.search(f.name)), path)
        elif isinstance(node, dict) and node:
            sections[path] = parent
            for key, item in node.items():
                walk(item, f"{path}.{key}" if _PLAIN_KEY.fullmatch(key) else f"{path}[{key}]", noise, path)
        elif isinstance(node, list) and any(dataclasses.is_dataclass(item) for item in node):
            sections[path] = parent
            for name, item in _named_items(node):
                walk(item, f"{path}[{name}]", noise, path)
        else:  # a value, a list of values, nothing
            facts[path] = (list(node) if isinstance(node, list) else node, noise, parent)

    walk(snapshot, "", False, None)
    return facts, sections


def _named_items(items: list) -> Iterable[tuple[str, Any]]:
    """Each item by what identifies it, so that a list in another order, or with one more item,
    compares item by item: GPU 0 with GPU 0, torch's probe with torch's probe."""
    seen: dict[str, int] = {}
    for item in items:
        if isinstance(item, ComputeProof):
            name = " ".join(filter(None, (item.device, item.workload or item.operation, item.dtype, item.compiler)))
        else:
            name = next((str(getattr(item, f)) for f in _IDENTITY_FIELDS if hasattr(item, f)), "")
        seen[name] = seen.get(name, 0) + 1
        yield (name if seen[name] == 1 else f"{name} #{seen[name]}"), item
