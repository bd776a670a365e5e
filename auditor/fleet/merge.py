"""`auditor fleet merge FILES...|DIR`: the fleet from snapshots that any engine saved, one per node:
`srun --ntasks-per-node=1 auditor audit --save-snapshot snap-%N.json` on Slurm, a Kubernetes
DaemonSet writing to a shared volume, an Ansible loop.

A file that cannot be read or parsed is that node's row, with the reason: one node's truncated
file does not hide the rest of the fleet. Only a path that names nothing, or a directory without a
snapshot in it, is an input error.
"""

from __future__ import annotations

from pathlib import Path

from auditor.errors import InputError
from auditor.fleet.nodes import NodeResult, node_result
from auditor.snapshot_file import SNAPSHOT_LIMIT_BYTES


def snapshot_files(paths: tuple[Path, ...]) -> list[Path]:
    """The files named, and the *.json files in each directory named (dot files left out: a writer's
    temporary file), in order, each once."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix == ".json" and not p.name.startswith(".") and p.is_file())
            if not found:
                raise InputError(f"{path} holds no snapshot (*.json)")
            files += found
        elif path.exists():
            files.append(path)
        else:
            raise InputError(f"{path}: no such file or directory")
    return list(dict.fromkeys(files))


def merge_files(files: list[Path]) -> list[NodeResult]:
    names = node_names(files)
    results = []
    for path in files:
        try:
            with open(path, "rb") as file:
                raw = file.read(SNAPSHOT_LIMIT_BYTES + 1)
        except OSError as exc:
            results.append(NodeResult(names[path], str(path), None, f"cannot read {path}: {exc.strerror}"))
            continue
        results.append(node_result(names[path], str(path), raw))
    return results


def node_names(files: list[Path]) -> dict[Path, str]:
    """Each file's node name: its stem (node07.json: node07); where two directories hold the same
    file name, its path without the suffix."""
    names = {path: path.stem for path in files}
    if len(set(names.values())) < len(names):
        names = {path: str(path.with_suffix("")) for path in files}
    return names
