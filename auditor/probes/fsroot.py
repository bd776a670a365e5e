"""The one door through which probes read /proc, /sys, /dev and /etc.

Tests hand the audit a fake machine tree by pointing this root elsewhere
(``auditor audit --root DIR`` or ``AUDITOR_ROOT``); product code has no other way of
being told about hardware that is not there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class FsRoot:
    root: Path = Path("/")

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def read_text(self, absolute: str) -> Optional[str]:
        """The file's text, or None when it does not exist or cannot be read."""
        try:
            return self.path(absolute).read_text(errors="replace")
        except (OSError, ValueError):
            return None

    def exists(self, absolute: str) -> bool:
        return self.path(absolute).exists()

    def listdir(self, absolute: str) -> list[str]:
        try:
            return sorted(os.listdir(self.path(absolute)))
        except OSError:
            return []
