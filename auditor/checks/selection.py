"""Which checks run: ruff-style `select` and `ignore` lists of codes and code prefixes.

Every entry is a full code (`GPU004`) or a prefix of one or more codes (`GPU`, `GPU00`, `FW`),
compared case-insensitively. Without `select` every check is selected; `ignore` then removes
checks. Where a select and an ignore entry both match a check, the longer (more specific)
entry decides, and ignore wins a tie: `--ignore GPU --select GPU004` runs GPU004 alone, and
`--select GPU --ignore GPU004` runs every GPU check but GPU004.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Iterable, Optional

from auditor.checks.base import REGISTRY
from auditor.errors import InputError


@dataclass(frozen=True)
class Selection:
    select: Optional[tuple[str, ...]] = None  # None: every check; () selects none
    ignore: tuple[str, ...] = ()

    def includes(self, code: str) -> bool:
        code = code.upper()
        selected_by = 0 if self.select is None else _longest_match(code, self.select)
        return selected_by >= 0 and selected_by > _longest_match(code, self.ignore)

    @property
    def is_everything(self) -> bool:
        """True when no select or ignore narrows the checks."""
        return self.select is None and not self.ignore


def _longest_match(code: str, prefixes: Iterable[str]) -> int:
    """The length of the longest prefix of `code` among `prefixes`, -1 when none matches."""
    return max((len(prefix) for prefix in prefixes if code.startswith(prefix)), default=-1)


def parse_codes(values: Iterable[str], where: str) -> tuple[str, ...]:
    """Split comma-separated entries, upper-case them, and check that each one matches a
    registered check; `where` names the source in the error (`--select`, ...)."""
    values = list(values)
    entries = [item.strip() for value in values for item in value.split(",") if item.strip()]
    if values and not entries:
        # `--select ''` from an unset shell variable would otherwise run no check and pass.
        raise InputError(f"{where} names no check code: give codes or prefixes such as GPU,FW004")
    known = [check.code for check in REGISTRY]
    for entry in entries:
        if not any(code.startswith(entry.upper()) for code in known):
            raise InputError(unknown_code_message(entry, where, prefixes=True))
    return tuple(dict.fromkeys(entry.upper() for entry in entries))


def unknown_code_message(code: str, where: Optional[str] = None, *, prefixes: bool = False) -> str:
    """`unknown check code 'X' [in WHERE]; did you mean Y?`, Y the nearest known code (or,
    with `prefixes`, code family), or a pointer to `auditor checks` when none is close."""
    close = closest_code(code, prefixes=prefixes)
    return (f"unknown check code '{code}'" + (f" in {where}" if where else "")
            + (f"; did you mean {close}?" if close else "; `auditor checks` lists them"))


def closest_code(text: str, *, prefixes: bool = False) -> Optional[str]:
    codes = [check.code for check in REGISTRY]
    if prefixes:
        codes += sorted({re.sub(r"\d+$", "", code) for code in codes})
    close = difflib.get_close_matches(text.upper(), codes, n=1)
    return close[0] if close else None
