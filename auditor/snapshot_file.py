"""Saving a facts snapshot, and reading one back for replay (`audit --snapshot FILE`).

A saved report (`--format json`) is a snapshot too: the derived keys (findings,
readiness, recommendation) are ignored on reading and computed afresh, so a snapshot
recorded with an older auditor is judged by today's checks.
"""

from __future__ import annotations

import json
from pathlib import Path

from auditor.errors import InputError
from auditor.facts import SCHEMA_VERSION, Snapshot, SnapshotFormatError, from_dict, to_dict
from auditor.output import write_atomically


def save_snapshot(path: Path, snapshot: Snapshot) -> None:
    write_atomically(path, json.dumps(to_dict(snapshot), indent=2) + "\n")


def load_snapshot(path: Path) -> Snapshot:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read snapshot {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"snapshot {path} is not UTF-8 text") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"snapshot {path} is not JSON: {exc}") from exc
    version = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(version, str):
        raise InputError(f"snapshot {path}: $.schema_version is missing; is this an auditor snapshot?")
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise InputError(f"snapshot {path}: schema_version {version} cannot be read by this auditor "
                         f"(reads {SCHEMA_VERSION.split('.')[0]}.x)")
    try:
        snapshot = from_dict(Snapshot, data)
    except SnapshotFormatError as exc:
        raise InputError(f"snapshot {path}: {exc}") from exc
    snapshot.schema_version = SCHEMA_VERSION  # read into today's shape, so written out as today's
    return snapshot
