"""Exit codes and the errors that map to them (documented in the README)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # the audit ran and no finding reached --fail-on
    FINDINGS = 1  # findings at or above --fail-on
    INPUT_ERROR = 2  # bad usage or input: flag, value, unwritable output, malformed file
    INTERNAL_ERROR = 3  # a bug in the auditor itself


class InputError(Exception):
    """The user's input cannot be used; the message is the one line shown to them."""
