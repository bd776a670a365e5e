"""Checks turn facts into findings. Importing this package registers every check."""

from __future__ import annotations

from auditor.checks import accelerators, frameworks, machine, packages, probes  # noqa: F401  (registration)
from auditor.checks.base import REGISTRY, SEVERITY_RANK, Check, Finding
from auditor.facts import Snapshot


def run_checks(snapshot: Snapshot) -> list[Finding]:
    findings = [finding for check in REGISTRY for finding in check.run(snapshot)]
    return sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.code))


def find_check(code: str) -> Check | None:
    return next((check for check in REGISTRY if check.code == code.upper()), None)
