"""Evaluating a profile against an audit report: every requirement, then every check the
profile counts, each to pass, fail or warn with its evidence and fix."""

from __future__ import annotations

from typing import Optional

from auditor.checks.base import REGISTRY, SEVERITY_RANK, Check, Finding
from auditor.checks.selection import Selection
from auditor.decisions.compute_requirements import compute_result, framework_result
from auditor.profiles.document import CheckPolicy, ProfileDocument
from auditor.decisions.export_requirements import export_result
from auditor.decisions.host_requirements import accelerator_results, machine_results, python_result
from auditor.profiles.loader import Profile
from auditor.decisions.verdict import ProfileVerdict, RequirementResult, Status, WaiverNote
from auditor.report import Report

SEVERITY_STATUS: dict[str, Status] = {"error": "fail", "warning": "warn", "info": "pass"}


def evaluate(profile: Profile, report: Report, selection: Optional[Selection] = None,
             framework: Optional[str] = None) -> ProfileVerdict:
    """``selection`` is the one the report's checks ran with: checks it left out are not listed.
    ``framework``: the one recommended for this goal; findings about the goal's other frameworks
    then do not count (a goal that any of torch, TensorFlow or JAX meets is not failed by a broken
    torch when TensorFlow is what it is told to use)."""
    document, snapshot = profile.document, report.snapshot
    results: list[RequirementResult] = []
    if document.python:
        results.append(python_result(document.python, snapshot))
    if document.machine:
        results += machine_results(document.machine, snapshot)
    if document.accelerator:
        results += accelerator_results(document.accelerator, snapshot, report.findings)
    results += [framework_result(entry, snapshot) for entry in document.frameworks]
    results += [compute_result(entry, snapshot, report.findings, document.named_frameworks())
                for entry in document.compute]
    results += [export_result(entry, snapshot, report.findings) for entry in document.exports]
    # A finding about a framework the goal does not name is not the goal's concern (a TensorFlow goal
    # is not failed, nor told to reinstall torch, because torch is a CPU build).
    named = (framework,) if framework else document.named_frameworks()
    findings = [f for f in report.findings if not (named and f.framework and f.framework not in named)]
    results += check_results(document, findings, selection or Selection())
    return ProfileVerdict(profile.name, document.description, profile.source, results)


def check_results(document: ProfileDocument, findings: list[Finding], selection: Selection) -> list[RequirementResult]:
    """One result per check that ran and that the profile counts, passing when it found nothing."""
    policy = document.checks or CheckPolicy()
    counted = Selection(ignore=tuple(code.upper() for code in policy.ignore))
    overrides = {code.upper(): severity for code, severity in policy.severity.items()}
    waivers = {waiver.code.upper(): waiver for waiver in document.waivers}
    results = []
    for check in sorted((c for c in REGISTRY if c.scope == "machine"), key=lambda c: c.code):  # a fleet's are not one machine's
        override = _longest_match(check.code, overrides)
        if not selection.includes(check.code) or not counted.includes(check.code) or override == "off":
            continue
        hits = [finding for finding in findings if finding.code == check.code]
        results.append(_check_result(check, hits, override, waivers.get(check.code)))
    return results


def _check_result(check: Check, hits: list[Finding], override: Optional[str], waiver) -> RequirementResult:
    key = f"check.{check.code}"
    if not hits:
        return RequirementResult(key, f"{check.code} {check.name}", "pass")
    severity = override or max((f.severity for f in hits), key=SEVERITY_RANK.__getitem__)
    title = f"{check.code} {check.name}: {hits[0].title}" + (f" (and {len(hits) - 1} more)" if len(hits) > 1 else "")
    evidence = [line for f in hits for line in ([f.title, *f.evidence] if len(hits) > 1 else f.evidence)]
    fixes = list(dict.fromkeys(f.fix for f in hits if f.fix))
    result = RequirementResult(key, title, SEVERITY_STATUS[severity], evidence, " ".join(fixes) or None)
    if waiver and result.status != "pass":
        result.status = "warn"
        result.waiver = WaiverNote(waiver.reason, waiver.expires.isoformat())
    return result


def _longest_match(code: str, overrides: dict[str, str]) -> Optional[str]:
    matches = [prefix for prefix in overrides if code.startswith(prefix)]
    return overrides[max(matches, key=len)] if matches else None
