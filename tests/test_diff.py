"""`auditor diff A B`, as a person meets it: through the CLI, on pairs from the real-world corpus
(tests/realworld/cases, replayable snapshots), on pairs derived from them by editing one fact, on
the simulated machines' snapshots (conftest's one audit of each), and on this machine: its one
shared real audit (conftest's real_report) against a fresh one (`-`), which must differ in noise
only. The text output is read piped and on a real pseudo-terminal.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from rich.cells import cell_len

from conftest import run_auditor
from test_terminal import run_in_terminal, terminal_env

CASES = Path(__file__).parent / "realworld" / "cases"
CU126, CU128 = CASES / "v100-torch2110-cu126.json", CASES / "v100-torch2110-cu128.json"


def diff(*args: str, env: dict | None = None):
    return run_auditor("diff", *args, env=env)


def diff_json(*args: str) -> tuple[int, dict]:
    result = diff("--format", "json", *args)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def derived(tmp_path: Path, source: Path, name: str, edit) -> Path:
    """``source`` with ``edit`` applied to its JSON: one machine changed in one respect."""
    data = json.loads(source.read_text())
    edit(data)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def changes(report: dict, kind: str) -> dict:
    return {(c["subject"], c["goal"] if kind == "requirement" else c["framework"]): c
            for c in report["verdict_changes"] if c["kind"] == kind}


def explaining(report: dict) -> dict[str, tuple]:
    return {c["key"]: (c["a"], c["b"], c["absent_from"]) for c in report["explaining"]}


# --- pairs from the real-world corpus ---------------------------------------------------------


def test_a_cu128_node_beside_a_cu126_one_is_not_ready_because_of_arc001_and_its_torch_build():
    code, report = diff_json(str(CU126), str(CU128))
    assert code == 1
    kinds = [c["kind"] for c in report["verdict_changes"]]
    assert kinds == sorted(kinds, key=["goal", "readiness", "finding", "requirement"].index)
    goals = changes(report, "goal")
    assert {goal for goal, _ in goals} == {"gpu-training", "inference-serving", "research"}
    assert all(c["a"] == "not-checked" and c["b"] == "not-ready" and c["side"] == "b" for c in goals.values())
    assert all(c["cause"][0].startswith("ARC001: torch 2.11.0+cu128 has no kernels") for c in goals.values())
    arc = changes(report, "finding")[("ARC001", "torch")]
    assert (arc["a"], arc["b"], arc["side"]) == (None, "error", "b")
    assert "Tesla V100, compute capability 7.0" in arc["title"]
    assert any("sm_75 sm_80" in line for line in arc["cause"])
    assert arc["explained_by"] == ["torch.version", "torch.build"]
    assert explaining(report) == {"torch.version": ("2.11.0+cu126", "2.11.0+cu128", None),
                                  "torch.build": ("cuda 12.6", "cuda 12.8", None)}
    # The build's CUDA is also a fact of its own; nothing noisy differs between two replayed cases.
    assert [(c["path"], c["a"], c["b"]) for c in report["other"]] == [
        ("frameworks.torch.build.cuda_version", "12.6", "12.8")]
    assert report["noise_hidden"] == 0
    assert report["a"]["source"] == str(CU126) and report["b"]["mode"] == "full"


def test_the_text_puts_the_verdicts_first_then_the_configuration_then_a_count_of_the_rest():
    result = diff(str(CU126), str(CU128), env={**terminal_env(), "COLUMNS": "80"})
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert all(cell_len(line) <= 80 and line == line.rstrip() for line in lines), result.stdout
    headings = [lines.index(h) for h in ("Verdicts that differ (5)", "Configuration that differs (2)")]
    assert headings == sorted(headings)
    assert lines[headings[0] + 1] == "goal gpu-training: not checked on A, NOT READY on B"
    finding = lines.index("ARC001 (torch): not found on A, error on B")
    assert headings[0] < finding < headings[1]
    assert lines[finding + 1].startswith("    B: torch 2.11.0+cu128 has no kernels for GPU 0")
    assert "    explained by: torch version 2.11.0+cu126 → 2.11.0+cu128" in lines
    assert "                  torch build cuda 12.6 → cuda 12.8" in lines
    assert lines[headings[1] + 2].split() == ["torch", "version", "2.11.0+cu126", "2.11.0+cu128"]
    assert lines[-1] == "1 other fact differs; `--all` shows the list."
    assert "frameworks.torch.build.cuda_version" not in result.stdout

    shown = diff(str(CU126), str(CU128), "--all").stdout.splitlines()
    fact = shown.index("frameworks.torch.build.cuda_version")
    assert shown[fact + 1:fact + 3] == ["    A  12.6", "    B  12.8"]


def test_markdown_tables_the_verdicts_and_configuration_and_folds_the_rest(tmp_path):
    out = tmp_path / "diff.md"
    result = diff(str(CU126), str(CU128), "--format", "markdown", "-o", str(out))
    assert (result.returncode, result.stdout) == (1, "")
    text = out.read_text()
    assert text.index("## Verdicts that differ (5)") < text.index("## Configuration that differs (2)") \
        < text.index("<details><summary>1 other fact differs</summary>")
    assert "| ARC001 (torch) | not found | error | B: torch 2.11.0+cu128 has no kernels" in text
    assert "| torch build | cuda 12.6 | cuda 12.8 |" in text
    assert "| `frameworks.torch.build.cuda_version` | 12.6 | 12.8 |" in text


def _driver(version: str, cuda: str):
    def edit(data: dict) -> None:
        data["accelerators"]["nvidia"].update(driver_version=version, cuda_driver_version=cuda)
    return edit


def test_an_older_driver_is_the_cause_of_drv001_on_the_node_that_has_it(tmp_path):
    current = derived(tmp_path, CU126, "driver-560", _driver("560.35.03", "12.6"))
    older = derived(tmp_path, CU126, "driver-470", _driver("470.82.01", "11.4"))
    code, report = diff_json(str(older), str(current))  # the older one as A: the cause is read on A
    assert code == 1
    drv = changes(report, "finding")[("DRV001", "torch")]
    assert (drv["a"], drv["b"], drv["side"]) == ("error", None, "a")
    assert drv["title"] == "Driver 470.82.01 is too old for torch 2.11.0+cu126 (CUDA 12.6)"
    assert drv["explained_by"] == ["nvidia.driver", "nvidia.cuda"]
    assert explaining(report) == {"nvidia.driver": ("470.82.01", "560.35.03", None),
                                  "nvidia.cuda": ("11.4", "12.6", None)}
    gpu_training = changes(report, "goal")[("gpu-training", None)]
    assert (gpu_training["a"], gpu_training["side"]) == ("not-ready", "a")
    assert gpu_training["cause"][0].startswith("DRV001: Driver 470.82.01")
    readiness = changes(report, "readiness")[("readiness", None)]
    assert (readiness["a"], readiness["b"]) == ("not-ready", "unproven")
    # The driver's version is its configuration entry; no other fact says it again.
    assert report["other"] == []


def _cpu_wheel(data: dict) -> None:
    torch = data["frameworks"]["torch"]
    torch.update(version="2.11.0+cpu", distribution_version="2.11.0+cpu", build={"variant": "cpu"},
                 devices=[{"id": "cpu", "kind": "cpu"}])
    data["packages"]["torch"]["version"] = "2.11.0+cpu"


def test_torch_s_cpu_wheel_on_a_gpu_node_fails_the_gpu_goals_by_its_build(tmp_path):
    cpu_wheel = derived(tmp_path, CU126, "cpu-wheel", _cpu_wheel)
    code, report = diff_json(str(CU126), str(cpu_wheel))
    assert code == 1
    assert {goal for goal, _ in changes(report, "goal")} == {"gpu-training", "research"}
    fw006 = changes(report, "finding")[("FW006", "torch")]
    assert (fw006["a"], fw006["b"]) == (None, "warning")
    assert "is a CPU-only build, but this machine has 1 NVIDIA GPU(s)" in fw006["title"]
    requirement = changes(report, "requirement")[("compute.any.best.float32", "gpu-training")]
    assert (requirement["a"], requirement["b"], requirement["side"]) == ("not-checked", "fail", "b")
    assert "PyTorch 2.11.0+cpu: its cpu build cannot run on cuda" in requirement["cause"]
    assert requirement["explained_by"] == ["torch.version", "torch.build"]
    assert explaining(report)["torch.build"] == ("cuda 12.6", "cpu", None)
    # The CUDA device the CPU wheel does not see is one change, not one per field.
    device = next(c for c in report["other"] if c["path"] == "frameworks.torch.devices[cuda:0]")
    assert (device["a"], device["b"], device["absent_from"]) == ({"id": "cuda:0", "kind": "cuda"}, None, "b")


def test_a_snapshot_against_itself_differs_in_nothing():
    result = diff(str(CU128), str(CU128))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[lines.index("No verdict differs."):] == ["No verdict differs.", "", "No configuration differs.", "",
                                                          "No other fact differs."]
    code, report = diff_json(str(CU128), str(CU128))
    assert (code, report["verdict_changes"], report["explaining"], report["other"], report["noise_hidden"]) \
        == (0, [], [], [], 0)


def test_goal_and_check_selection_narrow_what_is_compared():
    code, report = diff_json(str(CU126), str(CU128), "--goal", "gpu-training")
    assert code == 1
    assert [c["subject"] for c in report["verdict_changes"] if c["kind"] == "goal"] == ["gpu-training"]
    # Without ARC001 nothing tells the two nodes apart but their configuration: exit 0.
    code, report = diff_json(str(CU126), str(CU128), "--ignore", "ARC001")
    assert (code, report["verdict_changes"]) == (0, [])
    assert set(explaining(report)) == {"torch.version", "torch.build"}


@pytest.mark.parametrize(("args", "mentions"), [
    (("missing.json", str(CU126)), ("cannot read snapshot missing.json",)),
    (("-", "-"), ("A and B are both -",)),
    ((str(CU126), str(CU128), "--goal", "no-such-goal"), ("no-such-goal",)),
    ((str(CU126), str(CU128), "--select", "XYZ"), ("unknown check code 'XYZ'",)),
])
def test_input_errors_are_one_line_and_exit_2(args, mentions):
    result = diff(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("auditor: error: "), result.stderr
    assert all(text in result.stderr for text in mentions), result.stderr


def test_a_file_that_is_not_a_snapshot_is_refused_before_any_audit(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"hello": 1}')
    for name, message in (("bad.json", "is not JSON"), ("other.json", "is this an auditor snapshot?")):
        began = time.monotonic()
        result = diff("-", str(tmp_path / name))  # - would audit this machine; the bad file stops it first
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert time.monotonic() - began < 8  # an interpreter's start, not an audit


# --- the simulated machines -------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated(simulated_audits) -> dict[str, Path]:
    for name, audited in simulated_audits.items():
        assert audited.result.returncode in (0, 1), (name, audited.result.stderr)
    return {name: audited.snapshot for name, audited in simulated_audits.items()}


def test_an_h100_node_beside_a_laptop_without_a_gpu(simulated):
    code, report = diff_json(str(simulated["h100-node"]), str(simulated["laptop-no-gpu"]))
    assert code == 1
    entries = explaining(report)
    assert entries["nvidia.gpus"] == ("8 x NVIDIA H100 80GB HBM3", None, "b")
    assert entries["nvidia.driver"] == ("550.90.07", None, "b")
    if "torch" in json.loads(simulated["h100-node"].read_text())["frameworks"]:
        # This environment's CPU torch beside 8 GPUs, explained by the GPUs the laptop lacks.
        fw006 = changes(report, "finding")[("FW006", "torch")]
        assert fw006["side"] == "a" and fw006["explained_by"][:2] == ["nvidia.gpus", "nvidia.driver"]
    # The NVIDIA section only the node has is one change (its eight GPUs in it); its UUIDs and
    # free memory, noise, are not listed.
    nvidia = next(c for c in report["other"] if c["path"] == "accelerators.nvidia")
    assert nvidia["absent_from"] == "b" and nvidia["a"]["driver_version"] == "550.90.07"
    assert not any(c["path"].startswith("accelerators.nvidia.") or "uuid" in c["path"] for c in report["other"])
    assert report["noise_hidden"] > 0


def test_two_workstations_whose_drivers_differ_but_not_their_verdicts(simulated):
    code, report = diff_json(str(simulated["rtx4090-workstation"]), str(simulated["rtx5090-workstation"]))
    entries = explaining(report)
    assert entries["nvidia.driver"] == ("560.35.03", "570.133.07", None)
    assert entries["nvidia.gpus"] == ("1 x NVIDIA GeForce RTX 4090", "1 x NVIDIA GeForce RTX 5090", None)
    # Both run this environment's frameworks, which use neither GPU: the same verdicts, exit 0.
    assert (code, report["verdict_changes"]) == (0, [])


@pytest.mark.parametrize("name", ["h100-node", "mi300x-node"])
def test_a_simulated_machine_against_itself_differs_in_nothing(simulated, name):
    code, report = diff_json(str(simulated[name]), str(simulated[name]), "--all")
    assert (code, report["verdict_changes"], report["explaining"], report["other"]) == (0, [], [], [])


# --- this machine -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(real_report, tmp_path_factory) -> Path:
    """conftest's one real audit of this machine, saved as the JSON report it is (a snapshot too)."""
    path = tmp_path_factory.mktemp("diff") / "this-machine.json"
    path.write_text(json.dumps(real_report))
    return path


def test_two_real_audits_of_this_machine_in_a_row_differ_in_noise_only(saved):
    # In the environment the saved audit ran in: its variables are facts too. PRF001 judges a timed
    # matmul against the CPU's peak, and this machine runs other work too: under a burst of it one
    # audit times far below the peak and the other not, a real difference in findings, left out here.
    result = diff("-", str(saved), "--ignore", "PRF001")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("A  this machine, audited now · full audit · ")
    verdicts = lines.index("No verdict differs.")
    assert lines[verdicts:verdicts + 3] == ["No verdict differs.", "", "No configuration differs."]
    rest = " ".join(lines[verdicts + 4:])
    assert rest.startswith("No other fact differs; "), result.stdout
    assert rest.endswith("noisy ones left out (timings, free memory, clocks, UUIDs); `--all` shows the list."), \
        rest


def _rerun_noise(data: dict) -> None:
    """What a second audit of the same machine changes: the time, free memory, every timing."""
    data["generated_at"] = "2030-01-01T00:00:00+00:00"
    data["machine"]["memory"]["available_bytes"] = 12345
    for run in data["probes"]:
        run["duration_s"] += 1
    for fw in data["frameworks"].values():
        fw["import_seconds"] = (fw["import_seconds"] or 0) + 1
        for proof in fw["proofs"] or []:
            proof["seconds"] = (proof["seconds"] or 0) + 1
            if proof["gflops"]:  # a little faster: slower could reach PRF001's threshold, a real finding
                proof["gflops"] *= 1.01


def test_noise_is_left_out_unless_all_is_asked_for_and_a_real_change_still_shows(saved, tmp_path):
    rerun = derived(tmp_path, saved, "rerun", _rerun_noise)
    code, report = diff_json(str(saved), str(rerun))
    assert (code, report["verdict_changes"], report["explaining"], report["other"]) == (0, [], [], [])
    assert report["noise_hidden"] > 5
    code, everything = diff_json(str(saved), str(rerun), "--all")
    assert all(c["noise"] for c in everything["other"]) and len(everything["other"]) == report["noise_hidden"]
    assert {"generated_at", "machine.memory.available_bytes"} <= {c["path"] for c in everything["other"]}
    text = diff(str(saved), str(rerun), "--all").stdout
    assert "Noise (" in text and "generated_at" in text

    installed = derived(tmp_path, rerun, "installed", lambda data: data["packages"].update(
        {"left-pad": {"name": "left-pad", "version": "1.3.0"}}))
    code, report = diff_json(str(saved), str(installed))
    assert code == 0
    assert [(c["path"], c["a"], c["b"], c["absent_from"]) for c in report["other"]] == [
        ("packages.left-pad", None, {"name": "left-pad", "version": "1.3.0"}, "a")]


# --- on a terminal ----------------------------------------------------------------------------


@pytest.mark.parametrize("columns", [80, 120])
def test_on_a_terminal_the_diff_fits_and_keeps_its_words(columns):
    screen = run_in_terminal("diff", str(CU126), str(CU128), columns=columns, env=terminal_env(), timeout=60)
    assert screen.returncode == 1, screen.stderr
    assert "\x1b[" in screen.raw  # colour on a terminal
    assert all(cell_len(line) <= columns for line in screen.lines), screen.text
    words = screen.text.split()
    for token in ("ARC001", "2.11.0+cu126", "2.11.0+cu128", "sm_75", "NOT", "READY", "`--all`"):
        assert token in words, token
    plain = run_in_terminal("diff", str(CU126), str(CU128), columns=columns, env=terminal_env(colour=False),
                            timeout=60)
    assert "\x1b[" not in plain.raw and plain.text.split() == words
