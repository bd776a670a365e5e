"""Exit codes and the errors that map to them (documented in the README)."""

from __future__ import annotations

import signal
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # the audit ran and no finding reached --fail-on
    FINDINGS = 1  # findings at or above --fail-on
    INPUT_ERROR = 2  # bad usage or input: flag, value, unwritable output, malformed file
    INTERNAL_ERROR = 3  # a bug in the auditor itself
    OUTPUT_ERROR = 4  # the report was made but could not be written: stdout closed, device full, I/O error
    BROKEN_PIPE = 128 + signal.SIGPIPE  # stdout's reader left (`| head`); what a shell shows for tools killed by SIGPIPE


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived. A BaseException, like KeyboardInterrupt, so that no
    handler meant for errors swallows it, but not KeyboardInterrupt itself, which click
    would turn into its own Abort."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.exit_code = 128 + signum


class InputError(Exception):
    """The user's input cannot be used; the message is the one line shown to them."""


class OutputError(Exception):
    """The report could not be written where it was going; the message is the one line shown."""
