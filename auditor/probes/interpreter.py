"""The Python interpreter an audit inspects: the auditor's own, or another one (--python PATH).

The audited interpreter decides which distributions the package probe reads (its sys.path,
not the auditor's), which Python facts are recorded, and which interpreter the framework and
export children run under. Another interpreter is asked once, before anything is probed, by a
few lines that run on any Python (Python 2 included, so that it can be named as such); what it
answers is the whole of what the audit knows of it until its children start.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from auditor.errors import InputError
from auditor.probes import processes

# The oldest Python that the children's code runs on (child_entry.py), and so the oldest that
# can be audited: the frameworks of the knowledge tables go back to it.
OLDEST_PYTHON = (3, 7)
_ANSWER_LIMIT = 1 << 20  # sys.path of a conda base with every .pth: a few KiB
_DEADLINE_S = 20.0  # a first start on a network file system or a cold disk can take seconds
# How Python says why it could not start or run: "Fatal Python error: init_fs_encoding: ...",
# "ModuleNotFoundError: No module named 'encodings'", "SyntaxError: ...".
_PYTHON_ERROR = re.compile(r"(Fatal Python error|[A-Z]\w*(Error|Exception)|Could not find platform)\b")
# Where an environment keeps its interpreter, in the order Python itself would be found there.
_IN_ENVIRONMENT = ("bin/python", "bin/python3", "Scripts/python.exe", "python.exe")
# Runs under the interpreter being asked: Python 2's syntax too. The working directory (the
# first entry of sys.path under -c) is not part of the environment.
_QUESTION = (
    "import json, platform, sys\n"
    "sys.stdout.write(json.dumps({'version': platform.python_version(), 'version_info': list(sys.version_info[:3]),"
    " 'implementation': platform.python_implementation(), 'executable': sys.executable, 'prefix': sys.prefix,"
    " 'base_prefix': getattr(sys, 'base_prefix', sys.prefix), 'path': sys.path[1:]}))\n"
)


@dataclass(frozen=True)
class Interpreter:
    executable: str
    version: str  # platform.python_version(): "3.8.18"
    implementation: str  # CPython, PyPy
    prefix: str
    base_prefix: str
    path: tuple[str, ...]  # its sys.path, where its distributions are found
    own: bool  # the interpreter the auditor itself runs in


def own_interpreter() -> Interpreter:
    return Interpreter(sys.executable, platform.python_version(), platform.python_implementation(), sys.prefix,
                       sys.base_prefix, tuple(sys.path), True)


def find_interpreter(reference: str, environ: Optional[Mapping[str, str]] = None) -> Interpreter:
    """The interpreter that ``reference`` names: an interpreter's path or a command on PATH
    (`python3.9`), a virtual environment's directory or a conda environment's prefix. InputError,
    in one line, when it names none that the auditor can audit."""
    given = Path(os.path.expanduser(reference))
    if not os.path.lexists(given) and os.sep not in reference:
        given = Path(shutil.which(reference) or given)  # a bare name, as a shell would run it
    executable = _executable_in(given) if given.is_dir() else given
    if not os.path.lexists(executable):
        raise InputError(f"--python {reference}: no such file or directory")
    if executable.is_dir():
        raise InputError(f"--python {reference}: {executable} is a directory, not an interpreter")
    _refuse_broken_venv(reference, executable)
    answer = _ask(reference, executable, environ)
    if tuple(answer["version_info"]) < OLDEST_PYTHON:
        oldest = ".".join(map(str, OLDEST_PYTHON))
        raise InputError(f"--python {reference}: Python {answer['version']} cannot be audited; the auditor's probes "
                         f"run on Python {oldest} or later")
    if _same_file(answer["executable"], sys.executable) and answer["prefix"] == sys.prefix:
        return own_interpreter()  # another name for the auditor's own: audited as without --python
    return Interpreter(answer["executable"] or str(executable), answer["version"], answer["implementation"],
                       answer["prefix"], answer["base_prefix"], tuple(answer["path"]), False)


def _executable_in(directory: Path) -> Path:
    found = next((directory / name for name in _IN_ENVIRONMENT if os.path.lexists(directory / name)), None)
    if found is None:
        raise InputError(f"--python {directory}: no bin/python in it; not a virtual environment or conda environment "
                         "(give an interpreter's path, a venv directory or a conda prefix)")
    return found


def _refuse_broken_venv(reference: str, executable: Path) -> None:
    """A venv whose base interpreter was removed or upgraded away: its python is a dangling link, or
    a copy whose pyvenv.cfg `home` is gone. Either way it cannot start, and saying why beats
    quoting the "encodings" error a copy dies with."""
    if not executable.exists():
        raise InputError(f"--python {reference}: a broken environment: {executable} links to "
                         f"{os.path.realpath(executable)}, which no longer exists")
    config = executable.parent.parent / "pyvenv.cfg"
    try:
        text = config.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return  # not a venv (a conda prefix, a system interpreter)
    home = re.search(r"^\s*home\s*=\s*(.+?)\s*$", text, re.MULTILINE)
    if home and not os.path.isdir(home.group(1)):
        raise InputError(f"--python {reference}: a broken virtual environment: its base interpreter's directory "
                         f"{home.group(1)} (home in {config}) no longer exists; recreate it")


def _ask(reference: str, executable: Path, environ: Optional[Mapping[str, str]]) -> dict:
    not_python = f"--python {reference}: {executable} is not a Python interpreter"
    try:
        finished = processes.run([str(executable), "-c", _QUESTION], _DEADLINE_S, _ANSWER_LIMIT, environ)
    except PermissionError:
        raise InputError(f"--python {reference}: {executable} is not executable") from None
    except OSError as exc:  # ENOEXEC: a file that is no program at all
        raise InputError(f"{not_python} (it cannot be run: {exc.strerror or exc})") from None
    if finished.returncode is None:
        raise InputError(f"--python {reference}: {executable} did not answer within {_DEADLINE_S:g} s "
                         "(too much output, or it hung)")
    if finished.returncode != 0:
        # Python's own last words ("Fatal Python error: ...", "ModuleNotFoundError: ...") say why an
        # interpreter could not start; another program's are noise, and may echo the question.
        last = [line for line in bytes(finished.stderr).decode(errors="replace").splitlines() if line.strip()]
        said = " ".join(last[-1].split())[:200] if last else ""
        if _PYTHON_ERROR.match(said):
            raise InputError(f"--python {reference}: {executable} did not start as Python (exit status "
                             f"{finished.returncode}): {said}")
        raise InputError(f"{not_python} (it exited with status {finished.returncode})")
    try:
        answer = json.loads(bytes(finished.stdout))
        if not (isinstance(answer, dict) and isinstance(answer.get("version_info"), list)
                and isinstance(answer.get("path"), list)):
            raise ValueError
    except ValueError:
        raise InputError(f"{not_python} (it did not answer as one)") from None
    return answer


def _same_file(one: str, other: str) -> bool:
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False
