"""A diff renderer turns a finished `auditor diff` (decisions/diff.py) into text, and the words
the human-readable formats share for it. It computes nothing of its own."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, Optional

from auditor.decisions.diff import DiffSide, ReportDiff, VerdictChange
from auditor.decisions.verdict import STATUS_LABELS

_STATUS_WORDS = {
    "goal": {"ready": "ready", "not-ready": "NOT READY", "not-checked": "not checked"},
    "readiness": {"ready": "ready", "not-ready": "NOT READY", "unproven": "unproven"},
    "requirement": STATUS_LABELS,
}
# A finding that does not fire on a side, a requirement a side's goal does not have.
_ABSENT_WORDS = {"finding": "not found", "requirement": "absent"}
NOISE_KINDS = "timings, free memory, clocks, UUIDs"


class DiffRenderer(ABC):
    #: the `auditor diff --format` value that selects this renderer
    name: str

    @abstractmethod
    def render(self, diff: ReportDiff) -> str:
        """The whole document, ending with a newline."""


def status_word(change: VerdictChange, status: Optional[str]) -> str:
    if status is None:
        return _ABSENT_WORDS.get(change.kind, "none")
    return _STATUS_WORDS.get(change.kind, {}).get(status, status)


def subject(change: VerdictChange) -> str:
    """ "goal gpu-training", "readiness", "ARC001 (torch)", "gpu-training: compute.any.best.float32"."""
    if change.kind == "goal":
        return f"goal {change.subject}"
    if change.kind == "finding":
        return f"{change.subject} ({change.framework})" if change.framework else change.subject
    if change.kind == "requirement":
        return f"{change.goal}: {change.subject}"
    return change.subject


def verdicts_line(change: VerdictChange) -> str:
    """ "not checked on A, NOT READY on B"."""
    return f"{status_word(change, change.a)} on A, {status_word(change, change.b)} on B"


def shown(value: Any, absent: bool) -> str:
    """A fact's value for people: missing where the machine has no such thing, unknown where
    nobody measured it, a list as its items, a section as its known values."""
    if absent:
        return "missing"
    if value is None:
        return "unknown"
    if isinstance(value, dict):
        return ", ".join(f"{key} {shown(item, False)}" for key, item in value.items()) or "none"
    if isinstance(value, list):
        return ", ".join(shown(item, False) for item in value) or "none"
    return json.dumps(value) if isinstance(value, bool) else str(value)


def side_line(side: DiffSide) -> str:
    """ "runs/a.json · full audit · 2026-12-01T21:46:41+00:00"."""
    source = "this machine, audited now" if side.source == "-" else side.source
    return f"{source} · {side.mode} audit · {side.generated_at}"


def other_heading(diff: ReportDiff) -> str:
    """ "2 other facts differ", with how many noisy ones there are, shown or left out."""
    noise = sum(1 for change in diff.other if change.noise)
    facts = len(diff.other) - noise
    text = ("No other fact differs" if not facts else
            f"{facts} other fact{'s' if facts != 1 else ''} differ{'s' if facts == 1 else ''}")
    if noise:
        return f"{text}, and {noise} noisy one{'s' if noise != 1 else ''} ({NOISE_KINDS})"
    if diff.noise_hidden:
        return f"{text}; {diff.noise_hidden} noisy one{'s' if diff.noise_hidden != 1 else ''} left out ({NOISE_KINDS})"
    return text
