"""Every command a report gives runs against the audited environment.

When the auditor audits another interpreter than its own (--python), a bare `pip install` would
install into whatever `pip` is first on the user's PATH, and `auditor audit` would audit the
auditor's own environment again. So, once every decision is made, each pip command in the
report's findings and decisions names the audited interpreter (`/proj/.venv/bin/python -m pip
install ...`) and each `auditor audit` or `auditor check` names it with --python. Rules write
their commands plainly; this is the one place that fits them to the interpreter.
"""

from __future__ import annotations

import re
import shlex
from typing import Optional

from auditor.facts import Snapshot
from auditor.redact import map_strings
from auditor.report import Report

# pip as a command word ("pip install", "&& pip uninstall"), not "python -m pip" nor "/usr/bin/pip".
_PIP = re.compile(r"(?<![\w./~-])(?<!-m )pip(?= (?:install|uninstall|download)\b)")
_AUDITOR = re.compile(r"(?<![\w./~-])auditor (audit|check)\b(?! --python)")


def audited_python(snapshot: Snapshot) -> Optional[str]:
    """The audited interpreter's path, quoted for a shell, when it is not the auditor's own; None
    when it is, or when the snapshot does not say (written before 1.7)."""
    if not snapshot.audits_another_python():
        return None
    path = snapshot.machine.python.executable
    if path.startswith("~/"):  # --redact-paths wrote the home directory as ~, which a shell expands unquoted
        return "~/" + shlex.quote(path[2:])
    return shlex.quote(path)


def fit_commands(report: Report) -> None:
    """Point every command in the report's findings and decisions at the audited interpreter."""
    python = audited_python(report.snapshot)
    if python is None:
        return

    def fit(text: str) -> str:
        return _AUDITOR.sub(lambda m: f"auditor {m.group(1)} --python {python}", _PIP.sub(f"{python} -m pip", text))

    report.findings = map_strings(report.findings, fit)
    report.readiness = map_strings(report.readiness, fit)
    report.recommendation = map_strings(report.recommendation, fit)
    report.verdicts = map_strings(report.verdicts, fit)
