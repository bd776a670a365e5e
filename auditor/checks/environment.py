"""ENV: which Python environment the audit inspected, beside the one the shell has active."""

from __future__ import annotations

import posixpath
import shlex
from typing import Optional

from auditor.checks.base import Hit, check
from auditor.facts import Snapshot

# The variables an activated environment sets, in the order they win: a venv activated on top of
# a conda environment (conda's base is often active everywhere) is the one the user works in.
ACTIVE_ENVIRONMENT_VARIABLES = ("VIRTUAL_ENV", "CONDA_PREFIX")


@check("ENV007", "active-environment-not-audited", "warning",
       "The shell's active Python environment is not the one the auditor inspected.",
       "An activated virtual environment sets VIRTUAL_ENV, a conda environment CONDA_PREFIX; `python` and "
       "`pip` in that shell are that environment's. The auditor inspects the interpreter it runs in, or the "
       "one --python names, not the active environment: installed once with pipx or `uv tool`, it runs in an "
       "environment of its own, which holds no ML framework. Its findings then describe that environment, "
       "not the one the user's code runs in.",
       fix="Audit the active environment: `auditor audit --python \"$VIRTUAL_ENV\"` (or `--python "
           "\"$CONDA_PREFIX\"`), or set AUDITOR_PYTHON to it.",
       example="VIRTUAL_ENV names /home/ada/proj/.venv, but the audit inspected /home/ada/.local/share/pipx/venvs/"
               "auditor\n"
               "audited: CPython 3.12.3 at /home/ada/.local/share/pipx/venvs/auditor/bin/python (sys.prefix)")
def active_environment_not_audited(snapshot: Snapshot):
    python, host = snapshot.machine.python, snapshot.machine.host
    if python is None or host is None:
        return
    active = _active_environment(host.environment_variables)
    if active is None or _same_path(active[1], python.prefix):
        return
    variable, prefix = active
    whose = " (the auditor's own environment)" if snapshot.audits_another_python() is False else ""
    yield Hit(f"{variable} names {prefix}, but the audit inspected {python.prefix}{whose}",
              [f"{variable}={prefix} (environment)",
               f"audited: {python.implementation} {python.version} at {python.executable} (sys.prefix {python.prefix})"],
              f"Audit the active environment: `auditor audit --python {shlex.quote(prefix)}`.")


def _active_environment(variables: dict[str, str]) -> Optional[tuple[str, str]]:
    return next(((name, variables[name]) for name in ACTIVE_ENVIRONMENT_VARIABLES if variables.get(name)), None)


def _same_path(one: str, other: str) -> bool:
    # The facts are compared as recorded: the audit reads no file system here.
    return posixpath.normpath(one.rstrip("/")) == posixpath.normpath(other.rstrip("/"))
