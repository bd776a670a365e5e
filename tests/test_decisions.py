"""The decision layer: one recommender whose answer, choices, steps and states agree, with a stable
tie-breaker, reasons that fit the goal, and states that never call the unmeasured "not ready"."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from auditor.decisions.recommendation import RESEARCH_CASE
from auditor.facts import ComputeProof, PackageFacts
from auditor.pipeline import build_report
from auditor.profiles.loader import load_profile
from conftest import quick_snapshot
from machines import linux_machine
from test_checks import _framework

ROOT = Path(__file__).resolve().parents[1]
CPU_ONLY = ROOT / "tests/snapshots/v1.0-cpu-only-linux.json"


@pytest.fixture
def base(fake_root):
    """torch, TensorFlow and JAX proven on the CPU of a machine without accelerators."""
    snapshot = quick_snapshot(fake_root(linux_machine()))
    snapshot.mode = "full"
    snapshot.packages = {name: PackageFacts(name, version, modules=[name])
                         for name, version in (("torch", "2.13.0"), ("tensorflow", "2.21.0"), ("jax", "0.10.2"))}
    snapshot.frameworks = {"tensorflow": _framework("tensorflow", "2.21.0", "/device:CPU:0"),
                           "torch": _framework("torch", "2.13.0+cpu", "cpu"),
                           "jax": _framework("jax", "0.10.2", "cpu:0")}
    snapshot.accelerators.nvidia = None
    return snapshot


def _goal(report, name):
    return next(goal for goal in report.recommendation.goals if goal.goal == name)


def _timed(snapshot, framework, gflops, alone=True, import_seconds=None):
    fw = snapshot.frameworks[framework]
    fw.proofs[0] = dataclasses.replace(fw.proofs[0], gflops=gflops, measured_alone=alone)
    fw.import_seconds = import_seconds


def test_a_tie_is_not_broken_by_import_time(base):
    # TensorFlow imports fastest and comes first in the snapshot: neither decides.
    for name, seconds in (("tensorflow", 0.5), ("torch", 9.0), ("jax", 4.0)):
        _timed(base, name, 200.0, import_seconds=seconds)
    ci = _goal(build_report(base), "ci-cpu")
    assert ci.framework == "torch"  # the goal's own order of frameworks
    assert any("tie goes to the goal's first framework" in reason for reason in ci.reasons)
    assert not any("import" in reason for reason in ci.reasons)


def test_a_tie_is_not_broken_by_speed_which_other_work_can_halve(base):
    for speeds in ((100.0, 400.0, 90.0), (250.0, 20.0, 240.0)):  # torch, TensorFlow, JAX: any order of speeds
        for name, gflops in zip(("torch", "tensorflow", "jax"), speeds):
            _timed(base, name, gflops)
        ci = _goal(build_report(base), "ci-cpu")
        assert ci.framework == "torch"
        assert any("tie goes to the goal's first framework" in reason for reason in ci.reasons)


def test_reasons_fit_the_goal(base):
    report = build_report(base)
    research, gpu = _goal(report, "research"), _goal(report, "gpu-training")
    assert any(RESEARCH_CASE in reason for reason in research.reasons)
    # A GPU goal on a machine without one is blocked by the machine, not argued for as research.
    assert gpu.status == "not-ready" and not any(RESEARCH_CASE in reason for reason in gpu.reasons)
    assert gpu.blocker == "0 of the required 1 GPU (NVIDIA or AMD) found"


def test_next_steps_are_actions_said_once(base):
    report = build_report(base)
    steps = report.recommendation.next_steps
    keys = [step.command or step.action for step in steps]
    assert len(keys) == len(set(keys))
    move = [step for step in steps if step.action.startswith("Move this work to a machine with")]
    assert len(move) == 1 and move[0].goals == ["gpu-training"]  # the accelerator's step, not the compute ones too
    verdicts = {verdict.profile: verdict for verdict in report.verdicts}
    for step in steps:
        for goal in step.goals:
            titles = [r.title for r in verdicts[goal].requirements]
            assert not any(step.action.rstrip(".").startswith(title) for title in titles), step


def test_a_broken_framework_does_not_fail_a_goal_another_one_meets(base):
    base.frameworks["torch"].proofs = [ComputeProof("cpu", "matmul 256x256", "float32", False, 0.7, 2e-3, 0.001,
                                                    "result differs from the float64 reference by 0.7")]
    report = build_report(base)
    assert "FW004" in [f.code for f in report.findings]
    ci = _goal(report, "ci-cpu")
    assert (ci.framework, ci.status) == ("tensorflow", "ready")
    # The answer and the goals agree.
    assert "Use TensorFlow on the CPU for ci-cpu" in report.recommendation.summary
    assert [c.framework for c in report.recommendation.choices] == ["tensorflow"]


def test_a_goal_naming_one_framework_is_failed_by_its_finding(base, tmp_path):
    base.frameworks["torch"].proofs = [ComputeProof("cpu", "matmul 256x256", "float32", False, 0.7, 2e-3, 0.001,
                                                    "result differs from the float64 reference by 0.7")]
    profile = tmp_path / "torch-only.toml"
    profile.write_text('schema = "auditor-profile-v1"\ndescription = "torch on the CPU"\n'
                       '[[frameworks]]\nany-of = ["torch"]\n')
    goal = build_report(base, goals=[load_profile(str(profile), tmp_path)]).recommendation.goals[0]
    assert (goal.framework, goal.status) == ("torch", "not-ready")
    assert goal.blocker.startswith("FW004: ")


def test_not_checked_and_not_applicable_are_skipped_in_junit_and_counted_apart(tmp_path):
    profile = tmp_path / "driver.toml"
    profile.write_text('schema = "auditor-profile-v1"\ndescription = "an NVIDIA driver minimum, and an export"\n'
                       '[accelerator]\nkind = "any"\nmin-driver = "550.54.15"\nseverity = "warning"\n'
                       '[[exports]]\nany-of = ["onnx"]\n')
    result = subprocess.run([sys.executable, "-m", "auditor", "check", "--profile", str(profile), "--snapshot",
                             str(CPU_ONLY), "--format", "junit"], capture_output=True, text=True, timeout=120)
    suite = ElementTree.fromstring(result.stdout).find("testsuite")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    driver = cases["accelerator.driver"].find("skipped")
    assert driver is not None and driver.get("message").startswith("not applicable: no NVIDIA driver here")
    export = cases["export.onnx"].find("skipped")
    assert export is not None and export.get("message").startswith("not checked: onnx: not checked in this audit")
    assert suite.get("skipped") == "2"
    data = json.loads(subprocess.run([sys.executable, "-m", "auditor", "check", "--profile", str(profile),
                                      "--snapshot", str(CPU_ONLY), "--format", "json"],
                                     capture_output=True, text=True, timeout=120).stdout)
    statuses = {r["id"]: r["status"] for r in data["profiles"][0]["requirements"]}
    assert statuses["accelerator.driver"] == "not-applicable" and statuses["export.onnx"] == "not-checked"
    assert data["profiles"][0]["status"] == "not-checked"
    text = subprocess.run([sys.executable, "-m", "auditor", "check", "--profile", str(profile), "--snapshot",
                           str(CPU_ONLY)], capture_output=True, text=True, timeout=120).stdout
    text = " ".join(text.split())
    assert "0 passed, 1 not checked, 1 not applicable" in text and "NOT CHECKED export.onnx" in text


def test_nothing_usable_makes_audit_exit_1_on_fail_on_error(tmp_path):
    snapshot = json.loads(CPU_ONLY.read_text())
    snapshot["frameworks"], snapshot["packages"] = {}, {}
    path = tmp_path / "empty.json"
    path.write_text(json.dumps(snapshot))
    result = subprocess.run([sys.executable, "-m", "auditor", "audit", "--snapshot", str(path), "--fail-on", "error",
                             "--format", "json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert [f["code"] for f in report["findings"] if f["severity"] == "error"] == ["FW012"]
    assert report["recommendation"]["summary"].startswith("Nothing here is ready for ML work")


def test_the_decision_layer_has_one_direction_and_no_cycle():
    """profiles/ (the policy language) and report.py sit under decisions/; pipeline.py above it;
    renderers above both; nothing below imports upward, and no import hides in a function."""
    package = ROOT / "auditor"
    paths = {".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
             for path in package.rglob("*.py")}
    imports: dict[str, set[str]] = {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("auditor"):
                # "from auditor.render import summary" needs the module summary, not the package's __init__.
                named = {f"{node.module}.{alias.name}" for alias in node.names}
                submodules = named & paths.keys()
                found.update(submodules or {node.module, *named})
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names if alias.name.startswith("auditor"))
        imports[module] = found

    def reaches(start: str, prefix: str) -> bool:
        return any(name == prefix or name.startswith(prefix + ".") for name in imports.get(start, ()))

    for module in imports:
        if module.startswith(("auditor.profiles", "auditor.checks", "auditor.facts", "auditor.knowledge",
                              "auditor.report", "auditor.peaks")):
            assert not reaches(module, "auditor.decisions") or module == "auditor.report", module
            assert not reaches(module, "auditor.pipeline") and not reaches(module, "auditor.render"), module
        if module.startswith("auditor.decisions"):
            assert not reaches(module, "auditor.pipeline") and not reaches(module, "auditor.render"), module
    # report.py needs only the decision types, never the deciding modules.
    assert {name for name in imports["auditor.report"] if name.startswith("auditor.decisions")} <= {
        "auditor.decisions.readiness", "auditor.decisions.readiness.Readiness",
        "auditor.decisions.readiness.Recommendation"}
    # No cycle among the modules (a function-local import would still show in the AST walk).
    known = {module for module in imports}
    graph = {module: {name for name in targets if name in known and name != module} for module, targets in imports.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in graph[node]:
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target] if target in path else [node, target]
                # A package's __init__ importing its own modules is how checks register; not a cycle of layers.
                if not all(step.startswith("auditor.checks") for step in cycle):
                    pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            elif target not in state:
                visit(target, path + [target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
