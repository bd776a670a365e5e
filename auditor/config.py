"""Settings from `[tool.auditor]` in pyproject.toml, merged with the command line.

The file is the one named by `--config`, or else the first pyproject.toml with a
`[tool.auditor]` table in the current directory or one of its parents. Keys:

    select   = ["GPU", "FW004"]   # run only these checks (codes or code prefixes)
    ignore   = ["MEM002"]          # then skip these
    fail-on  = "warning"           # error | warning | never
    profiles = ["gpu-training"]    # what `auditor check` checks: built-in names, or paths
                                   # relative to the file

Each command-line option replaces the file's value of the same key (it does not add to
it); what neither gives takes the default (every check, `fail-on = "error"`). A file that
cannot be used is an input error naming the file and the problem.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from auditor.errors import InputError

if TYPE_CHECKING:
    from auditor.checks.selection import Selection

FAIL_ON = ("error", "warning", "never")
DEFAULT_FAIL_ON = "error"
KEYS = ("select", "ignore", "fail-on", "profiles")


@dataclass(frozen=True)
class Config:
    """The validated `[tool.auditor]` table; None where the file leaves a key out."""

    path: Optional[Path] = None
    select: Optional[tuple[str, ...]] = None
    ignore: Optional[tuple[str, ...]] = None
    fail_on: Optional[str] = None
    profiles: Optional[tuple[str, ...]] = None


@dataclass(frozen=True)
class Settings:
    """What a command runs with, the command line having won over the file."""

    selection: Selection
    fail_on: str
    profiles: tuple[str, ...]  # --profile values, else the file's profiles
    profiles_base: Path  # what relative profile paths are relative to
    profiles_origin: str  # where they came from, for errors


def resolve(config_path: Optional[Path], select: tuple[str, ...], ignore: tuple[str, ...],
            fail_on: Optional[str], profiles: tuple[str, ...] = ()) -> Settings:
    """The command line's --select/--ignore (repeatable, comma-separated), --fail-on and
    --profile over the config file over the defaults."""
    from auditor.checks.selection import Selection, parse_codes

    cli_select = parse_codes(select, "--select") if select else None
    cli_ignore = parse_codes(ignore, "--ignore") if ignore else None
    config = load_config(config_path)
    selection = Selection(select=cli_select if cli_select is not None else config.select,
                          ignore=cli_ignore if cli_ignore is not None else config.ignore or ())
    if profiles or not config.profiles:
        chosen, base, origin = profiles, Path.cwd(), "--profile"
    else:
        chosen, base, origin = config.profiles, config.path.parent, f"{config.path}: [tool.auditor] profiles"
    return Settings(selection, fail_on or config.fail_on or DEFAULT_FAIL_ON, chosen, base, origin)


def load_config(explicit: Optional[Path] = None, start: Optional[Path] = None) -> Config:
    """The config in `explicit` (which must have a [tool.auditor] table), or else the one
    found from `start` (default: the current directory) upwards; an empty Config if none."""
    if explicit is not None:
        table = _auditor_table(explicit, _read_toml(explicit))
        if table is None:
            raise InputError(f"{explicit}: no [tool.auditor] table")
        return _parse(explicit, table)
    found = find_config(start or Path.cwd())
    return _parse(*found) if found else Config()


def find_config(start: Path) -> Optional[tuple[Path, dict[str, Any]]]:
    """The first pyproject.toml with a [tool.auditor] table, from `start` up to the root,
    with that table."""
    start = start.absolute()
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            table = _auditor_table(candidate, _read_toml(candidate))
            if table is not None:
                return candidate, table
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise InputError(f"{path}: invalid TOML: nested too deeply for a config file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: invalid TOML: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _auditor_table(path: Path, document: dict[str, Any]) -> Optional[dict[str, Any]]:
    tool = document.get("tool")
    table = tool.get("auditor") if isinstance(tool, dict) else None
    if table is not None and not isinstance(table, dict):
        raise InputError(f"{path}: tool.auditor must be a table ([tool.auditor]), not {_kind(table)}")
    return table


def _parse(path: Path, table: dict[str, Any]) -> Config:
    from auditor.checks.selection import parse_codes

    for key in table:
        if key not in KEYS:
            raise InputError(f"{path}: unknown key '{key}' in [tool.auditor]; known keys: {', '.join(KEYS)}")
    codes: dict[str, Optional[tuple[str, ...]]] = {}
    for key in ("select", "ignore"):
        value = table.get(key)
        if value is None:
            codes[key] = None
            continue
        if not isinstance(value, list):
            raise InputError(f"{path}: [tool.auditor] {key} must be a list of strings such as "
                             f"[\"GPU\", \"FW004\"], not {_kind(value)}: {_show(value)}")
        bad = next((item for item in value if not isinstance(item, str)), None)
        if bad is not None:
            raise InputError(f"{path}: [tool.auditor] {key} must be a list of strings, "
                             f"but it holds {_kind(bad)}: {_show(bad)}")
        try:
            codes[key] = parse_codes(value, f"[tool.auditor] {key}")
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
    fail_on = table.get("fail-on")
    if fail_on is not None and fail_on not in FAIL_ON:
        raise InputError(f"{path}: [tool.auditor] fail-on must be one of "
                         f"{', '.join(_show(v) for v in FAIL_ON)}, not {_show(fail_on)}")
    return Config(path, codes["select"], codes["ignore"], fail_on, _profiles(path, table.get("profiles")))


def _profiles(path: Path, value: Any) -> Optional[tuple[str, ...]]:
    """Profile names or paths; whether each exists is checked when `auditor check` loads it."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise InputError(f"{path}: [tool.auditor] profiles must be a list of profile names or paths such as "
                         f"[\"gpu-training\"], not {_kind(value)}: {_show(value)}")
    bad = next((item for item in value if not isinstance(item, str) or not item.strip()), None)
    if bad is not None:
        raise InputError(f"{path}: [tool.auditor] profiles must be a list of profile names or paths, "
                         f"but it holds {_kind(bad) if not isinstance(bad, str) else 'an empty string'}: {_show(bad)}")
    return tuple(value)


def _kind(value: Any) -> str:
    """The TOML type of a parsed value, with its article."""
    for kind, name in ((bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string"),
                       (list, "an array"), (dict, "a table")):
        if isinstance(value, kind):
            return name
    return "a date/time"


def _show(value: Any) -> str:
    return json.dumps(value, default=str)
