from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from auditor.facts import Snapshot
from auditor.probes.fsroot import FsRoot
from auditor.probes.base import ProbeContext
from auditor.probes.packages import collect_packages
from auditor.probes.registry import CHILD_PROBES
from auditor.probes.runner import ProbeOptions, collect_snapshot
from nvml_fake import fake_nvml_dir, nvml_env  # noqa: F401  (the session fixture simulated_audits needs)
from simulated_machines import MACHINES, SimulatedMachine


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


def machine_env(machine: SimulatedMachine, tmp_path: Path) -> dict:
    """The environment a simulated machine's audit runs in: its fake NVML (built by the
    fake_nvml_dir fixture), its fake site-packages, its variables."""
    env = nvml_env(machine.nvml, tmp_path) if machine.nvml else {
        key: value for key, value in os.environ.items() if key != "FAKE_NVML_MACHINE"}
    site = machine.site_packages(tmp_path / "site-packages")
    if site:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return {**env, **machine.env}


@dataclass(frozen=True)
class SimulatedAudit:
    result: subprocess.CompletedProcess  # `auditor audit --root ... --format json`
    snapshot: Path  # what it saved
    env: dict  # the environment it ran in, for replays


@pytest.fixture(scope="session")
def simulated_audits(tmp_path_factory, fake_nvml_dir) -> dict[str, SimulatedAudit]:  # noqa: F811
    """One full audit of each simulated machine (its fake root and NVML meeting this machine's real
    torch, TensorFlow and JAX), shared by the tests that judge, check and render them. Two at a
    time: an audit waits on its framework children about as long as it computes."""
    def audit(machine: SimulatedMachine) -> SimulatedAudit:
        work = tmp_path_factory.mktemp(machine.name)
        snapshot, env = work / "snapshot.json", machine_env(machine, work)
        result = run_auditor("audit", "--root", str(machine.build(work / "root")), "--format", "json",
                             "--save-snapshot", str(snapshot), env=env)
        return SimulatedAudit(result, snapshot, env)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip((machine.name for machine in MACHINES), pool.map(audit, MACHINES)))


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
