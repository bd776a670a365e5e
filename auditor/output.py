"""Where a report goes: standard output, or the file named by --output / --save-snapshot.

Every target is opened, or tried, before anything is probed, so an audit never runs for
minutes to fail at its last step. A regular file (or a name not yet taken) is written
atomically: a temporary file beside it, renamed over it, so a failed run leaves no partial
file. The temporary file's name starts with a dot, so a directory watcher that skips dot files
(Kubernetes NFD's features.d, for `--format nfd`) never reads a half-written one. Anything else
that already exists (a character device such as /dev/null, a FIFO, /dev/stdout, a symlink to
one) is written in place: renaming over a device node would replace the node with a regular file.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from auditor.errors import InputError, OutputError

# Names of an already open file descriptor, written in place even when it is a regular file:
# `auditor audit -o /dev/stdout >> log` appends, as the shell asked.
_STREAM = re.compile(r"^/(dev/(stdout|stderr|fd/\d+)|proc/(self|\d+)/fd/\d+)$")


@dataclass
class OutputTarget:
    path: Path  # as the user wrote it, for messages
    resolved: Path
    stream_fd: Optional[int] = None  # opened in advance: a device, a FIFO, /dev/stdout
    fifo: bool = False  # opened only at write time: opening a FIFO blocks until a reader comes

    def write(self, text: str) -> None:
        if self.stream_fd is None and not self.fifo:
            _replace_atomically(self, text.encode("utf-8"))
            return
        fd = self.stream_fd if self.stream_fd is not None else _open_in_place(self, blocking=True)
        try:
            write_all(fd, text.encode("utf-8"), f"cannot write the report to {self.path}")
        finally:
            os.close(fd)
            self.stream_fd = None


def open_output(path: Path) -> OutputTarget:
    """Decide now whether the report can be written to ``path``; an InputError if not."""
    stream = bool(_STREAM.match(os.path.abspath(path)))
    try:
        mode = os.stat(path).st_mode  # through symlinks, /dev/stdout's included
        resolved = path.resolve()
    except FileNotFoundError:
        if stream:
            raise InputError(f"cannot write the report to {path}: that file descriptor is not open") from None
        mode, resolved = None, path.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise InputError(f"cannot write the report to {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if stat.S_ISDIR(mode or 0):
        raise InputError(f"cannot write the report to {path}: it is a directory")
    if mode is None or (stat.S_ISREG(mode) and not stream):
        target = OutputTarget(path, resolved)
        _try_a_temporary_file(target)
        return target
    # A device, a FIFO, or whatever the shell opened behind /dev/stdout: written into, in place.
    target = OutputTarget(path, Path(os.path.abspath(path)))
    try:
        target.stream_fd = _open_in_place(target, blocking=False)
    except InputError:
        # A FIFO with no reader yet: like a shell's `> fifo`, wait for one at write time.
        if not (stat.S_ISFIFO(mode) and os.access(path, os.W_OK)):
            raise
        target.fifo = True
    return target


def _open_in_place(target: OutputTarget, blocking: bool) -> int:
    flags = os.O_WRONLY | os.O_CLOEXEC | (0 if blocking else os.O_NONBLOCK)
    try:
        fd = os.open(target.resolved, flags)
    except OSError as exc:
        reason = "a FIFO with no reader" if exc.errno == errno.ENXIO else exc.strerror
        raise InputError(f"cannot write the report to {target.path}: {reason}") from None
    if not blocking:
        os.set_blocking(fd, True)  # a pipe or tty that is full must make the write wait, not fail
    return fd


def _try_a_temporary_file(target: OutputTarget) -> None:
    """The atomic write needs a new file beside the target: create and drop one to know.
    os.access would not tell: it answers yes to root on /proc, and knows nothing of
    read-only mounts or full quotas."""
    parent = target.resolved.parent
    if not parent.is_dir():
        raise InputError(f"cannot write the report to {target.path}: directory {parent} does not exist")
    try:
        fd, temporary = _create_temporary_file(target.resolved)
    except OSError as exc:
        raise InputError(f"cannot write the report to {target.path}: cannot create a file in {parent} "
                         f"({exc.strerror})") from None
    os.close(fd)
    os.unlink(temporary)


def _create_temporary_file(path: Path) -> tuple[int, str]:
    """A new, empty file beside ``path`` to be renamed over it: ``.NAME.XXXXXXXX.tmp``, a dot
    name (see the module's docstring); its descriptor and path."""
    return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")


def _replace_atomically(target: OutputTarget, data: bytes) -> None:
    path = target.resolved
    message = f"cannot write the report to {target.path}"
    try:
        fd, temporary = _create_temporary_file(path)
    except OSError as exc:
        raise OutputError(f"{message}: {exc.strerror}") from None
    try:
        # mkstemp creates 0600; a report is meant to be shared, so honour the umask
        # (or keep the mode of the file being replaced).
        os.fchmod(fd, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
        write_all(fd, data, message)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(temporary, path)
    except OSError as exc:
        raise OutputError(f"{message}: {exc.strerror}") from None
    finally:
        if fd != -1:
            os.close(fd)
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_all(fd: int, data: bytes, message: str) -> None:
    """os.write until done; a full device or an I/O error is an OutputError, a reader that
    went away a BrokenPipeError (the caller exits quietly, as command-line tools do)."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(f"{message}: {exc.strerror}") from None
        view = view[written:]


def check_stdout() -> None:
    """A report bound for standard output needs one: `auditor audit >&-` must fail before
    the audit runs, not print into nothing."""
    try:
        os.fstat(1)
    except OSError:
        raise OutputError("cannot write the report: standard output is closed") from None


def write_stdout(text: str) -> None:
    sys.stdout.flush()
    write_all(1, text.encode("utf-8"), "cannot write the report to standard output")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
