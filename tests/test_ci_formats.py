"""The formats of `auditor check` for CI: JUnit XML validated against the Ant/Jenkins JUnit schema,
GitHub workflow commands checked line by line, the job summary appended, and the audit's own
formats carrying the verdicts. Every run replays a saved snapshot: nothing is probed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import jsonschema
import pytest
import xmlschema

from auditor.decisions.verdict import CheckReport, ProfileVerdict, RequirementResult, WaiverNote
from auditor.render.github import GithubRenderer, escape_data, escape_property
from auditor.pipeline import build_report
from auditor.schema import published_schema
from auditor.snapshot_file import load_snapshot

TESTS = Path(__file__).resolve().parent
CPU_ONLY = TESTS / "snapshots" / "v1.0-cpu-only-linux.json"  # 2 CPUs, 23.5 GiB, torch and TensorFlow on the CPU
JUNIT_SCHEMA = TESTS / "fakes" / "junit" / "junit-ant.xsd"
PROFILES = ["--profile", "gpu-training", "--profile", "research", "--profile", "ci-cpu"]
AUDITED = "CPython 3.11.7 at /work/main/.venv/bin/python3"  # CPU_ONLY's machine.python, as every format names it


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditor", "check", "--snapshot", str(CPU_ONLY), *args],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def verdicts() -> dict:
    return json.loads(run(*PROFILES, "--format", "json").stdout)


# --- JUnit ---------------------------------------------------------------------------


def test_junit_validates_against_the_junit_schema_with_a_test_case_per_requirement(verdicts):
    result = run(*PROFILES, "--format", "junit")
    assert result.returncode == 1
    xmlschema.XMLSchema(JUNIT_SCHEMA).validate(result.stdout)
    suites = ElementTree.fromstring(result.stdout).findall("testsuite")
    assert [suite.get("name") for suite in suites] == ["gpu-training", "research", "ci-cpu"]
    for suite, profile in zip(suites, verdicts["profiles"]):
        cases = suite.findall("testcase")
        assert [case.get("name") for case in cases] == [r["id"] for r in profile["requirements"]]
        assert {case.get("classname") for case in cases} == {profile["profile"]}
        failed = [r for r in profile["requirements"] if r["status"] == "fail"]
        assert suite.get("failures") == str(len(failed)) and suite.get("tests") == str(len(cases))
        assert [case.get("name") for case in cases if case.find("failure") is not None] == [r["id"] for r in failed]
        properties = {p.get("name"): p.get("value") for p in suite.find("properties")}
        assert properties["verdict"] == profile["status"] and properties["description"] == profile["description"]


def test_a_junit_failure_carries_the_evidence_and_the_fix():
    suite = ElementTree.fromstring(run(*PROFILES, "--format", "junit").stdout).find("testsuite")
    failure = next(case for case in suite.findall("testcase") if case.get("name") == "accelerator").find("failure")
    assert failure.get("message") == ("At least 1 GPU (NVIDIA or AMD) with 16 GiB of memory and compute capability "
                                      "7.0 (NVIDIA)") and failure.get("type") == "requirement"
    assert failure.text == ("evidence: 0 of the required 1 GPU (NVIDIA or AMD) found\n"
                            "evidence: no GPU (NVIDIA or AMD) on the PCI bus or reported by a driver\n"
                            "fix: Move this work to a machine with an NVIDIA or AMD GPU (a cloud VM with an L4, A10G, "
                            "A100, H100 or MI300X: AWS g6/g5/p5, Google Cloud g2/a3, Azure NC/ND), with 16 GiB or more "
                            "and compute capability 7.0 or newer (NVIDIA).")
    # a machine smaller than the built-in profile recommends warns: the minimum is capacity, not compatibility
    cpus = next(case for case in suite.findall("testcase") if case.get("name") == "machine.cpus")
    assert list(cpus) == []


def test_junit_warnings_pass_and_are_listed_in_the_suite_output():
    suites = ElementTree.fromstring(run(*PROFILES, "--format", "junit").stdout).findall("testsuite")
    research = suites[1]
    best = next(case for case in research.findall("testcase") if case.get("name") == "compute.any.best.float32")
    assert list(best) == []  # a warning is not a failure
    assert research.find("system-out").text.startswith(
        "WARNING compute.any.best.float32: A framework proven: a computation in float32 on the best accelerator here\n"
        "evidence: best accelerator here: no accelerator (cpu)\n")
    assert suites[2].find("system-out").text is None  # ci-cpu: nothing to say


def test_junit_stays_valid_xml_whatever_a_profile_says(tmp_path):
    profile = tmp_path / "odd.toml"
    profile.write_text('schema = "auditor-profile-v1"\n'
                       'description = "R&D <team> \\"fast\\" lane \\u001b[31m red"\n'
                       '[python]\nrequires = "<3.0"\n')
    result = run("--profile", str(profile), "--format", "junit")
    xmlschema.XMLSchema(JUNIT_SCHEMA).validate(result.stdout)
    suite = ElementTree.fromstring(result.stdout).find("testsuite")
    description = next(p for p in suite.find("properties") if p.get("name") == "description").get("value")
    assert description == 'R&D <team> "fast" lane \ufffd[31m red'  # the escape character cannot be XML
    assert suite.find("testcase/failure").get("message") == "Python <3.0"


# --- GitHub annotations ------------------------------------------------------------------


def test_github_annotations_line_by_line():
    result = run(*PROFILES, "--format", "github", env=_without_summary())
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines == [
        "::error title=gpu-training%3A accelerator::At least 1 GPU (NVIDIA or AMD) with 16 GiB of memory and compute "
        "capability 7.0 (NVIDIA)%0A0 of the required 1 GPU (NVIDIA or AMD) found%0Ano GPU (NVIDIA or AMD) on the PCI "
        "bus or reported by a driver%0Afix: Move this work to a machine with an NVIDIA or AMD GPU (a cloud VM with an "
        "L4, A10G, A100, H100 or MI300X: AWS g6/g5/p5, Google Cloud g2/a3, Azure NC/ND), with 16 GiB or more and "
        "compute capability 7.0 or newer (NVIDIA).",
        "::error title=gpu-training%3A compute.any.gpu.float32.train-step::A framework proven: train-step in float32 "
        "on a GPU (cuda or rocm)%0APyTorch 2.13.0+cpu (cpu build): no matching proof; it sees cpu (cpu)%0ATensorFlow "
        "2.21.0 (cpu build): no matching proof; it sees /device:CPU:0 (cpu)%0Afix: Move this work to a machine with an "
        "NVIDIA or AMD GPU (a cloud VM with an L4, A10G, A100, H100 or MI300X: AWS g6/g5/p5, Google Cloud g2/a3, "
        "Azure NC/ND).",
        "::error title=gpu-training%3A compute.any.gpu.bfloat16-or-float16.train-step::A framework proven: train-step "
        "in bfloat16 or float16 on a GPU (cuda or rocm)%0APyTorch 2.13.0+cpu (cpu build): no matching proof; it sees "
        "cpu (cpu)%0ATensorFlow 2.21.0 (cpu build): no matching proof; it sees /device:CPU:0 (cpu)%0Afix: Move this "
        "work to a machine with an NVIDIA or AMD GPU (a cloud VM with an L4, A10G, A100, H100 or MI300X: AWS "
        "g6/g5/p5, Google Cloud g2/a3, Azure NC/ND).",
        "::warning title=gpu-training%3A machine.cpus::At least 4 usable CPUs%0A2 usable CPUs (2 logical, affinity 2, "
        "cgroup quota none)%0Afix: Give the job at least 4 CPUs (`docker run --cpus=4`, or the Kubernetes CPU limit).",
        "::warning title=gpu-training%3A machine.memory::At least 32 GiB of usable memory%0A23.5 GiB usable (23.5 GiB "
        "total, cgroup limit none)%0Afix: Give the job at least 32 GiB of memory (`docker run --memory=32g`, or the "
        "Kubernetes memory limit).",
        # one annotation for a result two profiles share
        "::warning title=gpu-training%2C research%3A compute.any.best.float32::A framework proven: a computation in "
        "float32 on the best accelerator here%0Abest accelerator here: no accelerator (cpu)%0APyTorch 2.13.0+cpu on "
        "cpu: matmul float32 ok (max error 6.6e-07)%0ATensorFlow 2.21.0 on /device:CPU:0: matmul float32, matmul "
        "float32 xla ok (max error 6.6e-07)%0Athis machine has no accelerator, so this was proven on the CPU only",
        f"::notice title=auditor check::2 of 3 profile(s) ready for {AUDITED}",
        "gpu-training: NOT READY (3 failed, 3 warning(s), 2 passed)",
        "research: READY (0 failed, 1 warning(s), 2 passed)",
        "ci-cpu: READY (0 failed, 0 warning(s), 4 passed)",
    ]


def test_github_escaping_follows_the_actions_toolkit():
    assert escape_data("50% done\r\nnext: a, b") == "50%25 done%0D%0Anext: a, b"
    assert escape_property("50% done\r\nnext: a, b") == "50%25 done%0D%0Anext%3A a%2C b"


def _synthetic(fails: int, warns: int, *, extra: list[RequirementResult] = ()) -> CheckReport:
    report = build_report(load_snapshot(CPU_ONLY))
    results = [RequirementResult(f"fail.{n}", f"failure {n}", "fail", [f"evidence {n}"], f"fix {n}") for n in range(fails)]
    results += [RequirementResult(f"warn.{n}", f"warning {n}", "warn") for n in range(warns)]
    return CheckReport(report, [ProfileVerdict("p", "a profile", "p.toml", [*results, *extra])])


def test_github_annotates_at_most_ten_errors_and_ten_warnings():
    lines = GithubRenderer().render(_synthetic(12, 11)).splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["::error"] * 10 + ["::warning"] * 10 + ["::notice", "p:"]
    assert lines[0] == "::error title=p%3A fail.0::failure 0%0Aevidence 0%0Afix: fix 0"
    assert lines[10] == "::warning title=p%3A warn.0::warning 0"
    assert lines[20] == (f"::notice title=auditor check::0 of 1 profile(s) ready for {AUDITED}; 3 more result(s) are in "
                         "the job summary")
    assert lines[21] == "p: NOT READY (12 failed, 11 warning(s), 0 passed)"


def test_github_escapes_what_a_result_says():
    odd = RequirementResult("check.MEM002", "MEM002 small-dev-shm: 64% of 100 MiB, used", "warn",
                            ["line one\r\nline two"], "resize: `--shm-size=1g`",
                            WaiverNote("INFRA-1: accepted, for now", "2099-12-31"))
    lines = GithubRenderer().render(_synthetic(0, 0, extra=[odd])).splitlines()
    assert lines[0] == ("::warning title=p%3A check.MEM002::MEM002 small-dev-shm: 64%25 of 100 MiB, used%0Aline one"
                        "%0D%0Aline two%0Awaived until 2099-12-31: INFRA-1: accepted, for now%0Afix: resize: "
                        "`--shm-size=1g`")


# --- the job summary -----------------------------------------------------------------------


def _without_summary() -> dict:
    return {key: value for key, value in os.environ.items() if key != "GITHUB_STEP_SUMMARY"}


def test_the_job_summary_is_appended_never_overwritten(tmp_path):
    summary = tmp_path / "step-summary.md"
    summary.write_text("## Tests\n\nan earlier step wrote this\n")
    env = {**_without_summary(), "GITHUB_STEP_SUMMARY": str(summary)}
    first = run(*PROFILES, "--format", "github", env=env)
    assert first.returncode == 1
    text = summary.read_text()
    assert text.startswith("## Tests\n\nan earlier step wrote this\n# Readiness check\n")
    assert "| `gpu-training` | **NOT READY** | 3 | 3 | 2 | 0 | 0 |" in text
    assert "# ML environment audit" in text  # the audit the verdicts rest on
    run(*PROFILES, "--format", "github", env=env)
    assert summary.read_text() == text + text.removeprefix("## Tests\n\nan earlier step wrote this\n")


def test_without_the_variable_the_summary_is_not_printed_either():
    result = run("--profile", "ci-cpu", "--format", "github", env=_without_summary())
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (f"::notice title=auditor check::1 of 1 profile(s) ready for {AUDITED}\n"
                             "ci-cpu: READY (0 failed, 0 warning(s), 4 passed)\n")


# --- the audit's formats, with the verdicts ----------------------------------------------


def test_json_is_the_audit_report_plus_the_profiles(verdicts):
    jsonschema.validate(verdicts, json.loads(published_schema()), cls=jsonschema.Draft202012Validator)
    training = verdicts["profiles"][0]
    assert (training["profile"], training["status"]) == ("gpu-training", "not-ready")
    assert set(training) == {"profile", "description", "source", "status", "requirements"}
    assert set(training["requirements"][0]) == {"id", "title", "status", "evidence", "fix", "waiver"}
    assert verdicts["findings"] == [] and verdicts["readiness"]["status"] == "ready"


def test_markdown_has_a_verdict_table_then_the_audit():
    text = run(*PROFILES, "--format", "markdown").stdout
    assert text.startswith(f"# Readiness check\n\n_{AUDITED}, full audit, 2026-11-24T21:29:23+00:00_\n\n| Profile | Verdict | Failed | Warnings | Passed | Not checked | "
                           "Not applicable |\n|---|---|---|---|---|---|---|\n"
                           "| `gpu-training` | **NOT READY** | 3 | 3 | 2 | 0 | 0 |\n| `research` | **READY** | 0 | 1 | 2 | 0 | 0 |\n"
                           "| `ci-cpu` | **READY** | 0 | 0 | 4 | 0 | 0 |\n")
    assert "| **warn** | `machine.cpus`<br>At least 4 usable CPUs | 2 usable CPUs" in text
    assert text.index("## `ci-cpu`: READY") < text.index("# ML environment audit")


def test_text_shows_what_failed_with_its_evidence_and_fix(tmp_path):
    output = tmp_path / "check.txt"
    assert run(*PROFILES, "--output", str(output)).returncode == 1
    text = output.read_text()
    assert "gpu-training  NOT READY  3 failed, 3 warning(s), 2 passed" in text
    assert ("  WARN machine.cpus  At least 4 usable CPUs\n       2 usable CPUs (2 logical, affinity 2, cgroup quota "
            "none)\n       fix: Give the job at least 4 CPUs") in text
    assert "  FAIL accelerator  At least 1 GPU (NVIDIA or AMD) with 16 GiB of memory" in text
    assert "\n       0 of the required 1 GPU (NVIDIA or AMD) found\n" in text
    assert "  57 other counted checks ran and found nothing" in text
    assert text.rstrip().endswith("3 profile(s) checked: 2 ready, 1 not ready.")
    assert "\x1b[" not in text
