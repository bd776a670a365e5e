"""Saving a facts snapshot, and reading one back for replay (`audit --snapshot FILE`).

A saved report (`--format json`) is a snapshot too: the derived keys (findings,
readiness, recommendation) are ignored on reading and computed afresh, so a snapshot
recorded with an older auditor is judged by today's checks.
"""

from __future__ import annotations

import json
from pathlib import Path

from auditor.errors import InputError
from auditor.facts import SCHEMA_VERSION, Snapshot, SnapshotFormatError, from_dict, reject_non_finite, to_dict
from auditor.output import OutputTarget
from auditor.redact import scrub_snapshot


def save_snapshot(target: OutputTarget, snapshot: Snapshot) -> None:
    target.write(json.dumps(to_dict(snapshot), indent=2, allow_nan=False) + "\n")


SNAPSHOT_LIMIT_BYTES = 64 << 20


def load_snapshot(path: Path) -> Snapshot:
    try:
        with open(path, "rb") as file:  # a pipe (`--snapshot /dev/stdin`) is fine; /dev/zero is not endless
            raw = file.read(SNAPSHOT_LIMIT_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read snapshot {path}: {exc.strerror}") from None
    return parse_snapshot(raw, path)


def parse_snapshot(raw: bytes, path: object) -> Snapshot:
    """A snapshot from the bytes of a file, or of a fleet node's answer; ``path`` names it in errors."""
    if len(raw) > SNAPSHOT_LIMIT_BYTES:
        raise InputError(f"snapshot {path} is larger than {SNAPSHOT_LIMIT_BYTES >> 20} MiB; a snapshot is a few hundred KiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"snapshot {path} is not UTF-8 text") from None
    try:
        data = json.loads(text, parse_constant=reject_non_finite)
    except ValueError as exc:
        raise InputError(f"snapshot {path} is not JSON: {exc}") from None
    except RecursionError:
        raise InputError(f"snapshot {path} is nested too deeply to be a snapshot") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(version, str):
        raise InputError(f"snapshot {path}: $.schema_version is missing; is this an auditor snapshot?")
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise InputError(f"snapshot {path}: schema_version {version} cannot be read by this auditor "
                         f"(reads {SCHEMA_VERSION.split('.')[0]}.x)")
    try:
        snapshot = from_dict(Snapshot, data)
    except SnapshotFormatError as exc:
        raise InputError(f"snapshot {path}: {exc}") from None
    except RecursionError:
        raise InputError(f"snapshot {path} is nested too deeply to be a snapshot") from None
    for section, records in (("frameworks", snapshot.frameworks), ("exports", snapshot.exports)):
        for key, record in records.items():
            if record.name != key:
                raise InputError(f"snapshot {path}: $.{section}.{key}.name: expected {key!r}, got {record.name!r}")
    snapshot.schema_version = SCHEMA_VERSION  # read into today's shape, so written out as today's
    # A snapshot saved by an older auditor, or edited, may hold secrets or terminal escapes.
    return scrub_snapshot(snapshot)
