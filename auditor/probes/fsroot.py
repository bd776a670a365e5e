"""The one door through which probes read /proc, /sys, /dev and /etc.

Tests hand the audit a fake machine tree by pointing this root elsewhere
(``auditor audit --root DIR`` or ``AUDITOR_ROOT``); product code has no other way of
being told about hardware that is not there.

Reads are bounded, because what sits at a path is not always a file: a FIFO blocks its
reader for ever, a device such as /dev/zero never ends, and a runaway file can be larger
than memory. Each of these is refused in milliseconds (UnreadableFile, which fails the
probe with a one-line reason) instead of hanging the audit or filling its memory.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

# /proc/cpuinfo on a 1,000-CPU machine and /proc/self/mounts on a busy Kubernetes node are
# a few MiB; nothing a probe reads comes near this.
READ_LIMIT = 16 << 20
_CHUNK = 1 << 20
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


class UnreadableFile(Exception):
    """What is at a path cannot be a text file the probes read; the message says why, in one line."""


@dataclass(frozen=True)
class FsRoot:
    root: Path = Path("/")

    @property
    def is_live(self) -> bool:
        """Whether this is the running machine's own /: only then may a probe ask the kernel (uname)
        instead of the tree, since a fake tree is another machine."""
        return os.path.realpath(self.root) == os.path.realpath("/")

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def read_text(self, absolute: str) -> Optional[str]:
        """The file's text, or None when it does not exist, is a directory, or cannot be read.

        Raises UnreadableFile for a FIFO, a device or a socket, and for more than READ_LIMIT
        bytes. The size is checked before reading and again while reading, because files under
        /proc and /sys say they are empty whatever they hold.
        """
        path = self.path(absolute)
        try:
            # Refused before opening, so that opening a device has no effect of its own;
            # opened without blocking, in case a FIFO took the file's place meanwhile.
            _refuse_special(path, os.stat(path))
            fd = os.open(path, _OPEN_FLAGS)
        except (OSError, ValueError):
            return None
        try:
            info = os.fstat(fd)
            _refuse_special(path, info)
            if info.st_size > READ_LIMIT:
                raise _too_large(path)
            data = bytearray()
            while chunk := os.read(fd, min(_CHUNK, READ_LIMIT + 1 - len(data))):
                data += chunk
                if len(data) > READ_LIMIT:
                    raise _too_large(path)
        except OSError:  # a directory, a file that vanished, or one we may not read
            return None
        finally:
            os.close(fd)
        return data.decode(errors="replace")

    def exists(self, absolute: str) -> bool:
        return self.path(absolute).exists()

    def listdir(self, absolute: str) -> list[str]:
        try:
            return sorted(os.listdir(self.path(absolute)))
        except OSError:
            return []


def _refuse_special(path: Path, info: os.stat_result) -> None:
    for test, kind in _KINDS:
        if test(info.st_mode):
            raise UnreadableFile(f"{path} is {kind}, not a file")


def _too_large(path: Path) -> UnreadableFile:
    return UnreadableFile(f"{path} holds more than {READ_LIMIT >> 20} MiB, more than any file the audit reads")
