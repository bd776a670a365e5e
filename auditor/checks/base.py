"""What a check is, and the finding it produces.

Checks read the snapshot and nothing else: no files, no imports, no subprocesses. That
is what makes a saved snapshot replayable and every check testable from a fixture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Literal, Optional

from auditor.facts import Snapshot

Severity = Literal["error", "warning", "info"]
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}


@dataclass
class Finding:
    code: str
    name: str
    severity: Severity
    title: str  # one line, specific to this machine
    evidence: list[str] = field(default_factory=list)  # the facts it rests on, with their sources
    fix: Optional[str] = None  # what to do, with the exact command where there is one
    framework: Optional[str] = None  # the framework it concerns (torch, tensorflow, jax), when it concerns one


@dataclass(frozen=True)
class Hit:
    """One firing of a check; the registry turns it into a Finding."""

    title: str
    evidence: list[str]
    fix: Optional[str] = None
    framework: Optional[str] = None


@dataclass(frozen=True)
class Check:
    code: str  # family prefix + 3 digits; never reused
    name: str  # kebab-case symbol
    severity: Severity
    summary: str
    explanation: str
    fix: str  # what to do about it in general; each Hit's own fix fills in this machine's values
    example: str  # the finding on a real machine: its title line, then one evidence line
    evaluate: Callable[[Snapshot], Iterable[Hit]]  # a fleet check's takes the fleet (checks/fleet.py)
    scope: Literal["machine", "fleet"] = "machine"  # fleet: compares the nodes of `auditor fleet`

    def run(self, snapshot: Snapshot) -> list[Finding]:
        return [Finding(self.code, self.name, self.severity, hit.title, hit.evidence, hit.fix, hit.framework)
                for hit in self.evaluate(snapshot)]


REGISTRY: list[Check] = []


def check(code: str, name: str, severity: Severity, summary: str, explanation: str, *, fix: str, example: str,
          scope: Literal["machine", "fleet"] = "machine"):
    """Register the decorated function as the evaluation of a new check.

    `auditor explain` shows `fix` and `example` beside the summary and explanation, so a check
    without them cannot be registered.
    """

    def register(evaluate: Callable[[Snapshot], Iterable[Hit]]):
        if any(existing.code == code for existing in REGISTRY):
            raise ValueError(f"check code {code} is registered twice")
        if not fix.strip():
            raise ValueError(f"check {code} has no fix")
        example_lines = example.split("\n")
        if len(example_lines) != 2 or not all(line.strip() for line in example_lines):
            raise ValueError(f"check {code}'s example must be its title line, then one evidence line")
        REGISTRY.append(Check(code, name, severity, summary, explanation, fix, example, evaluate, scope))
        return evaluate

    return register
