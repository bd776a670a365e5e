"""Requirements on export and serving paths: a tiny model converted, run in the target runtime, compared.

A path missing from the snapshot was not checked: that happens only when a snapshot saved
without it is replayed (`auditor check` itself checks the paths its profiles name). Unknown is
never a failure: it is "not checked", with the command that checks it (a gate that wants certainty
runs `auditor check` on the machine, or fails on what was not checked with `--fail-on warning`).
"""

from __future__ import annotations

from typing import Optional

from auditor.checks.base import Finding
from auditor.facts import ExportPath, Snapshot
from auditor.profiles.document import ExportRequirement
from auditor.decisions.verdict import RequirementResult, unmet
from auditor.verdicts import export_install_command

NOT_CHECKED_FIX = ("Convert it for real: `auditor audit --deep` on the machine itself runs every export path "
                   "(`auditor check --profile GOAL` runs the paths that goal names).")


def export_result(entry: ExportRequirement, snapshot: Snapshot, findings: list[Finding]) -> RequirementResult:
    key = f"export.{entry.requirement_id()}"
    title = "Export ready: " + " or ".join(" and ".join(paths) for paths in entry.any_of)
    names = list(dict.fromkeys(name for paths in entry.any_of for name in paths))
    evidence = [_describe(name, snapshot.exports.get(name)) for name in names]
    if any(all(_ready(snapshot.exports.get(name)) for name in paths) for paths in entry.any_of):
        return RequirementResult(key, title, "pass", evidence)
    first_gap = next(name for name in entry.any_of[0] if not _ready(snapshot.exports.get(name)))
    if any(all(_ready(snapshot.exports.get(name)) or name not in snapshot.exports for name in paths)
           for paths in entry.any_of):  # an alternative that may be ready: it was only not checked
        return RequirementResult(key, title, "not-checked", evidence, NOT_CHECKED_FIX)
    return RequirementResult(key, title, unmet(entry.severity), evidence,
                             _fix(first_gap, snapshot.exports.get(first_gap), snapshot, findings))


def _ready(path: Optional[ExportPath]) -> bool:
    return path is not None and path.status == "ready"


def _describe(name: str, path: Optional[ExportPath]) -> str:
    if path is None:
        return f"{name}: not checked in this audit"
    if path.status == "ready":
        parts = [f"ran on {path.runtime}" if path.runtime else None,
                 f"max error {path.max_relative_error:.1e}" if path.max_relative_error is not None else None,
                 f"{path.seconds:.1f} s" if path.seconds is not None else None]
        return f"{name}: ready" + (f" ({', '.join(p for p in parts if p)})" if any(parts) else "")
    if path.status == "not-installed":
        return f"{name}: not installed (missing {', '.join(path.missing) or 'a package'})"
    if path.status == "not-applicable":
        return f"{name}: not applicable on this platform" + (f" ({path.error})" if path.error else "")
    return f"{name}: broken: {path.error}"


def _fix(name: str, path: Optional[ExportPath], snapshot: Snapshot, findings: list[Finding]) -> Optional[str]:
    if path is None:
        return NOT_CHECKED_FIX
    if path.status == "not-installed":
        command = export_install_command(snapshot, path.missing)
        return f"`{command}`" if command else None
    if path.status == "not-applicable":
        return f"{name} cannot run on this platform; choose another alternative or run on a platform that has it."
    broken = next((f for f in findings if f.code == "EXP001" and f.evidence and f.evidence[0].startswith(f"{name}: ")
                   and f.fix), None)
    return f"EXP001: {broken.fix}" if broken else None
