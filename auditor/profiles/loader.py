"""Finding, reading and validating profiles, and resolving `extends`.

A profile is named (a built-in from the `profiles/` folder, shipped in the package as
``auditor.builtin_profiles``) or given as a path to a TOML file. Every problem with a file is
an InputError of one line: the file, the key, and what was expected there.
"""

from __future__ import annotations

import datetime
import difflib
import sys
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from auditor.errors import InputError
from auditor.profiles.document import ProfileDocument
from auditor.profiles.merge import merge
from auditor.profiles.typed_toml import FormatError, parse

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

BUILTIN_PACKAGE = "auditor.builtin_profiles"


@dataclass(frozen=True)
class Profile:
    """A profile ready to evaluate: its own document with everything it extends merged in."""

    name: str
    source: str  # the file it was read from
    document: ProfileDocument


def builtin_profiles() -> dict[str, Traversable]:
    """Built-in profile name -> its file."""
    folder = resources.files(BUILTIN_PACKAGE)
    return {entry.name[:-len(".toml")]: entry for entry in sorted(folder.iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".toml")}


def _is_path(reference: str) -> bool:
    """Whether a --profile value names a file rather than a built-in profile."""
    return "/" in reference or "\\" in reference or reference.endswith(".toml")


def load_profile(reference: str, base: Path, where: str = "--profile",
                 today: Optional[datetime.date] = None) -> Profile:
    """The profile a name or path (relative to ``base``) refers to; ``where`` names the
    reference's origin in errors."""
    location = locate(reference, base, where)
    document = _resolve(location, today or datetime.date.today())
    return Profile(document.name or _stem(location), str(location), document)


def read_document(location: Path | Traversable, today: datetime.date) -> ProfileDocument:
    """One file, checked against the format and for waivers past their date; extends unresolved."""
    try:
        text = location.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{location}: invalid TOML: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{location}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{location}: invalid TOML: {exc}") from None
    except RecursionError:
        raise InputError(f"{location}: invalid TOML: nested too deeply for a profile") from None
    try:
        document = parse(ProfileDocument, data)
        _check_ids(document)
        _check_waivers(document, today)
    except FormatError as exc:
        raise InputError(f"{location}: {exc}") from None
    return document


# Deeper than any team's layering (research -> gpu-training -> team -> project); a chain of
# thousands is a generated file gone wrong, said in one line rather than merged for minutes.
MAX_EXTENDS_DEPTH = 32


@dataclass
class _Pending:
    """A profile whose parents are being resolved: the walk's explicit stack frame."""

    location: Path | Traversable
    document: ProfileDocument
    inherited: list[ProfileDocument] = field(default_factory=list)
    next_parent: int = 0


def _resolve(location: Path | Traversable, today: datetime.date) -> ProfileDocument:
    """The document with everything it extends merged in, parents in order, each before the
    child. A walk with its own stack: recursion would end a long chain in a RecursionError."""
    stack = [_Pending(location, read_document(location, today))]
    resolved: dict[str, ProfileDocument] = {}
    while True:
        top = stack[-1]
        if top.next_parent < len(top.document.extends):
            index = top.next_parent
            top.next_parent += 1
            parent = locate(top.document.extends[index], Path(str(top.location)).parent,
                            f"{top.location}: extends[{index}]")
            chain = [str(pending.location) for pending in stack]
            if str(parent) in chain:
                cycle = " -> ".join((*chain[chain.index(str(parent)):], str(parent)))
                raise InputError(f"{top.location}: extends[{index}]: expected a profile that does not extend this "
                                 f"one, got a cycle: {cycle}")
            if str(parent) in resolved:
                top.inherited.append(resolved[str(parent)])
            elif len(stack) >= MAX_EXTENDS_DEPTH:
                raise InputError(f"{top.location}: extends[{index}]: expected at most {MAX_EXTENDS_DEPTH} levels of "
                                 f"extends, got a deeper chain from {location}")
            else:
                stack.append(_Pending(parent, read_document(parent, today)))
            continue
        stack.pop()
        merged: Optional[ProfileDocument] = None
        for inherited in top.inherited:
            merged = inherited if merged is None else merge(merged, inherited)
        document = replace(top.document, extends=()) if merged is None else merge(merged, top.document)
        if not stack:
            return document
        resolved[str(top.location)] = document
        stack[-1].inherited.append(document)


def locate(reference: str, base: Path, where: str) -> Path | Traversable:
    """The file a profile name or path refers to; ``where`` names the reference's origin in errors."""
    if _is_path(reference):
        path = (base / Path(reference).expanduser()).resolve()
        if not path.is_file():
            raise InputError(f"{where}: expected a profile file, but {path} does not exist or is not a file")
        return path
    builtins = builtin_profiles()
    if reference in builtins:
        return builtins[reference]
    close = difflib.get_close_matches(reference, list(builtins), n=1)
    raise InputError(f"{where}: expected a built-in profile ({', '.join(builtins)}) or a path to a .toml file, "
                     f"got {reference!r}" + (f"; did you mean {close[0]}?" if close else ""))


def _stem(location: Path | Traversable) -> str:
    return location.name[:-len(".toml")] if location.name.endswith(".toml") else location.name


def _check_ids(document: ProfileDocument) -> None:
    for section in ("frameworks", "compute", "exports"):
        seen: dict[str, int] = {}
        for index, entry in enumerate(getattr(document, section)):
            key = entry.requirement_id()
            if key in seen:
                raise FormatError(f"{section}[{index}]", f"expected an entry of its own, but {section}[{seen[key]}] "
                                  f"has the same id {key!r}; set id to tell them apart")
            seen[key] = index


def _check_waivers(document: ProfileDocument, today: datetime.date) -> None:
    for index, waiver in enumerate(document.waivers):
        if waiver.expires < today:
            raise FormatError(f"waivers[{index}].expires", f"expected a date not yet past, but the waiver for "
                              f"{waiver.code} expired on {waiver.expires.isoformat()}; renew it or fix the finding")
