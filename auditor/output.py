"""Writing a report file: all of it or nothing, never a half-written file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from auditor.errors import InputError


def check_writable(path: Path) -> None:
    """Fail before the audit runs, not after, when the report could not be written."""
    parent = path.resolve().parent
    if path.is_dir():
        raise InputError(f"cannot write the report to {path}: it is a directory")
    if not parent.is_dir():
        raise InputError(f"cannot write the report to {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"cannot write the report to {path}: directory {parent} is not writable")


def write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside the target, then rename it over the target."""
    path = path.resolve()
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"cannot write the report to {path}: {exc.strerror}") from exc
    try:
        # mkstemp creates 0600; a report is meant to be shared, so honour the umask
        # (or keep the mode of the file being replaced).
        os.fchmod(fd, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        os.unlink(temporary)
        raise InputError(f"cannot write the report to {path}: {exc.strerror}") from exc
    except BaseException:
        os.unlink(temporary)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
