"""A node's answer, however it was gathered: its snapshot, or why there is none."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from auditor.errors import InputError
from auditor.facts import Snapshot
from auditor.snapshot_file import parse_snapshot


@dataclass(frozen=True)
class NodeResult:
    name: str  # the node's host name, or the file's name when that is all there is
    where: str  # "ray node 10.0.0.7, 3f9a2c1b", "snaps/snap-node07.json"
    snapshot: Optional[Snapshot]
    reason: Optional[str] = None  # why there is no snapshot


def node_result(name: str, where: str, raw: bytes) -> NodeResult:
    """A node's snapshot from its bytes; a node that wrote garbage is a row with the reason."""
    try:
        return NodeResult(name, where, parse_snapshot(raw, where))
    except InputError as exc:
        return NodeResult(name, where, None, str(exc))
