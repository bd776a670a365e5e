from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.facts import Snapshot
from auditor.probes.fsroot import FsRoot
from auditor.probes.base import ProbeContext
from auditor.probes.packages import collect_packages
from auditor.probes.registry import CHILD_PROBES
from auditor.probes.runner import ProbeOptions, collect_snapshot


def _framework_installed() -> bool:
    """Whether this environment has a framework the audit would probe (the lowest-versions CI
    venv has none, on purpose)."""
    packages = collect_packages(ProbeContext(root=FsRoot(), environ={})).installed
    return any(probe.imports_framework and probe.applies(packages) is not None for probe in CHILD_PROBES)


# A clean `auditor audit --quick` exits 0, or 1 where no framework is installed: FW012 says
# nothing is usable there, an error.
QUICK_EXIT = 0 if _framework_installed() else 1




def run_auditor(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditor", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.fixture(scope="session")
def real_report() -> dict:
    """One real, full audit of this machine through the CLI, shared by the tests that read it."""
    result = run_auditor("audit", "--format", "json")
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def fake_root(tmp_path: Path):
    """Build a fake machine tree: fake_root({"/proc/cpuinfo": "..."}) -> FsRoot."""

    def build(files: dict[str, str]) -> FsRoot:
        for absolute, text in files.items():
            path = tmp_path / absolute.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return FsRoot(tmp_path)

    return build


def quick_snapshot(root: FsRoot) -> Snapshot:
    """Inline probes against a fake root, real package metadata, no framework imported."""
    return collect_snapshot(ProbeOptions(root=root, quick=True))
