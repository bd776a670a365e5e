"""Checks turn facts into findings. Importing this package registers every check."""

from __future__ import annotations

from auditor.checks import (accelerators, cuda, distributed, environment, exports, fleet, frameworks,  # noqa: F401
                            gpu_builds, machine, packages, performance, platform, probes,
                            tpu)  # importing registers each module's checks
from auditor.checks.base import REGISTRY, SEVERITY_RANK, Check, Finding
from auditor.checks.fleet import Fleet
from auditor.checks.selection import Selection
from auditor.facts import Snapshot


def run_checks(snapshot: Snapshot, selection: Selection | None = None) -> list[Finding]:
    """Run every registered check, or only those `selection` includes."""
    checks = [check for check in REGISTRY
              if check.scope == "machine" and (selection is None or selection.includes(check.code))]
    findings = [finding for check in checks for finding in check.run(snapshot)]
    return sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.code))


def run_fleet_checks(nodes: Fleet, selection: Selection | None = None) -> list[Finding]:
    """The fleet's own checks (FLT) over its nodes, worst first."""
    checks = [check for check in REGISTRY
              if check.scope == "fleet" and (selection is None or selection.includes(check.code))]
    findings = [finding for check in checks for finding in check.run(nodes)]
    return sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.code))


def find_check(code: str) -> Check | None:
    return next((check for check in REGISTRY if check.code == code.upper()), None)
