"""Progress goes to stderr only when a person is watching it."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

from conftest import QUICK_EXIT


def test_progress_is_shown_on_a_terminal_stderr_and_keeps_stdout_clean():
    controller, terminal = pty.openpty()
    result = subprocess.run([sys.executable, "-m", "auditor", "audit", "--quick", "--format", "json"],
                            stdout=subprocess.PIPE, stderr=terminal, timeout=60)
    os.close(terminal)
    shown = b""
    try:
        while chunk := os.read(controller, 4096):
            shown += chunk
    except OSError:  # EIO once the terminal's other end is closed
        pass
    os.close(controller)
    assert result.returncode == QUICK_EXIT
    assert b"Probing" in shown
    assert json.loads(result.stdout)["mode"] == "quick"  # the report itself is untouched
