"""The command-line contract: exit codes, one-line errors, output files, formats, secrets.

Everything runs through real subprocesses (``python -m auditor`` and once the ``auditor``
console script), with stderr captured, so stderr is never a terminal. Audits here use
--quick (package metadata only, well under a second) unless a test needs more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

import auditor
from auditor.checks import REGISTRY
from auditor.facts import SCHEMA_VERSION
from auditor.probes.registry import TENSORFLOW_DISTRIBUTIONS
from conftest import QUICK_EXIT

CONSOLE_SCRIPT = Path(sys.executable).with_name("auditor")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AUDITOR_DEBUG"}
    env.update(extra)
    return env


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 120,
            command: list[str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*(command or [sys.executable, "-m", "auditor"]), *args], capture_output=True, text=True,
                          env=env or clean_env(), cwd=cwd, stdin=subprocess.DEVNULL, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, *mentions: str) -> str:
    """Exit 2, nothing on stdout, exactly one 'auditor: error:' line on stderr; returns it."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("auditor: error: ")
    for text in mentions:
        assert text in line
    return line


def installed_tensorflow() -> str:
    return next(name for name in TENSORFLOW_DISTRIBUTIONS if _installed(name))


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def _frameworks_installed() -> bool:
    return _installed("torch") and any(_installed(name) for name in TENSORFLOW_DISTRIBUTIONS)


# The lowest-versions CI run has no framework; these tests read the frameworks' own metadata.
needs_frameworks = pytest.mark.skipif(not _frameworks_installed(), reason="torch and TensorFlow are not installed")


# --- version and usage errors --------------------------------------------------------------


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout == f"auditor, version {auditor.__version__}\n"
    assert result.stderr == ""


def test_console_script_runs_the_same_cli():
    assert CONSOLE_SCRIPT.exists(), f"the project is installed, so {CONSOLE_SCRIPT} must exist"
    version = run_cli("--version", command=[str(CONSOLE_SCRIPT)])
    assert version.returncode == 0
    assert version.stdout == f"auditor, version {auditor.__version__}\n"
    # the entry point maps errors to exit codes too, not only `python -m auditor`
    assert_one_line_error(run_cli("audit", "--bogus", command=[str(CONSOLE_SCRIPT)]), "--bogus")


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    assert result.stderr == ""
    for command in ("audit", "checks", "explain"):
        assert f"  {command}" in result.stdout


@pytest.mark.parametrize("args, mentions", [
    (["audit", "--bogus"], ["No such option", "--bogus"]),
    (["frobnicate"], ["No such command", "frobnicate"]),
    (["audit", "--format", "xml"], ["--format", "'xml'", "json"]),
    (["audit", "--fail-on", "sometimes"], ["--fail-on", "'sometimes'", "never"]),
    (["audit", "--timeout", "0"], ["--timeout"]),
    (["explain"], ["Missing argument", "CODE"]),
], ids=["unknown-option", "unknown-command", "bad-format", "bad-fail-on", "bad-timeout", "missing-argument"])
def test_usage_errors_are_one_line_and_exit_2(args, mentions):
    assert_one_line_error(run_cli(*args), *mentions)


def test_bare_auditor_is_a_one_line_error():
    assert_one_line_error(run_cli(), "no command given", "auditor audit")


# --- --output ------------------------------------------------------------------------------


def test_report_file_mode_follows_the_umask(tmp_path):
    target = tmp_path / "report.md"
    result = subprocess.run(["sh", "-c", f"umask 022 && exec {sys.executable} -m auditor audit --quick --format markdown -o {target}"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == QUICK_EXIT, result.stderr
    assert target.stat().st_mode & 0o777 == 0o644  # shareable, not mkstemp's 0600


def test_output_into_a_missing_directory(tmp_path):
    target = tmp_path / "missing" / "report.json"
    line = assert_one_line_error(run_cli("audit", "--quick", "--output", str(target)), str(target), "does not exist")
    assert "cannot write the report" in line
    assert list(tmp_path.iterdir()) == []  # the directory was not created either


def test_output_under_a_regular_file(tmp_path):
    blocker = tmp_path / "somefile.txt"
    blocker.write_text("keep me\n")
    target = blocker / "report.json"
    assert_one_line_error(run_cli("audit", "--quick", "--output", str(target)), "cannot write the report", str(target))
    assert [p.name for p in tmp_path.iterdir()] == ["somefile.txt"]
    assert blocker.read_text() == "keep me\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_output_into_a_read_only_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = run_cli("audit", "--quick", "--output", str(locked / "report.json"))
        assert_one_line_error(result, "cannot write the report", "not writable")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_output_that_is_a_directory(tmp_path):
    assert_one_line_error(run_cli("audit", "--quick", "--output", str(tmp_path)), "--output", "is a directory")
    assert list(tmp_path.iterdir()) == []


def test_output_writes_the_report_atomically_and_nothing_to_stdout(tmp_path):
    (tmp_path / "report.json").write_text("an older report\n")
    result = run_cli("audit", "--quick", "--format", "json", "--output", "report.json", cwd=tmp_path)
    assert result.returncode == QUICK_EXIT, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # replaced, no .report.json.*.tmp left
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["schema_version"] == SCHEMA_VERSION
    assert report["mode"] == "quick"
    assert report["auditor_version"] == auditor.__version__


def test_output_in_text_format_has_no_colour_codes(tmp_path):
    target = tmp_path / "report.txt"
    result = run_cli("audit", "--quick", "--output", str(target))
    assert result.returncode == QUICK_EXIT and result.stdout == ""
    text = target.read_text()
    assert "Readiness: UNPROVEN" in text
    assert "\x1b[" not in text


# --- a quick audit -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_audit() -> subprocess.CompletedProcess:
    return run_cli("audit", "--quick", "--format", "json")


def test_quick_audit_exits_0_quietly(quick_audit):
    assert quick_audit.returncode == QUICK_EXIT, quick_audit.stderr
    assert quick_audit.stderr == ""  # stderr is not a terminal: no progress display


@needs_frameworks
def test_quick_audit_reads_metadata_only(quick_audit):
    report = json.loads(quick_audit.stdout)
    assert report["mode"] == "quick"
    tensorflow = installed_tensorflow()
    expected = {"torch": ("torch", metadata.version("torch")), "tensorflow": (tensorflow, metadata.version(tensorflow))}
    for name, (distribution, version) in expected.items():
        fw = report["frameworks"][name]
        assert fw["probe"]["status"] == "skipped"
        assert fw["probe"]["reason"] == "--quick reads package metadata only"
        assert fw["distribution"] == distribution
        assert fw["distribution_version"] == version
        assert fw["version"] is None and fw["proofs"] == []  # nothing was imported
    statuses = {run["name"]: run["status"] for run in report["probes"]}
    assert statuses["torch"] == statuses["tensorflow"] == "skipped"
    assert report["readiness"]["status"] == "unproven"
    assert {fw["status"] for fw in report["readiness"]["frameworks"]} == {"unproven"}


@needs_frameworks
def test_markdown_report_has_every_section():
    result = run_cli("audit", "--quick", "--format", "markdown")
    assert result.returncode == 0 and result.stderr == ""
    out = result.stdout
    assert out.startswith("# ML environment audit\n")
    sections = ["## Recommendation", "## Findings", "## Machine", "## Accelerators", "## Frameworks"]
    positions = [out.find(f"\n{section}\n") for section in sections]
    assert -1 not in positions, [s for s, p in zip(sections, positions) if p == -1]
    assert positions == sorted(positions)
    assert "**Readiness: UNPROVEN**" in out
    assert "(`torch`)" in out and f"(`{installed_tensorflow()}`)" in out


def test_secrets_never_reach_the_report():
    env = clean_env(HF_TOKEN="hf_supersecret123", WANDB_API_KEY="abc123secret",
                    TORCH_HOME="https://user:pa55word@host/x")
    result = run_cli("audit", "--quick", "--format", "json", env=env)
    assert result.returncode == QUICK_EXIT, result.stderr
    for secret in ("hf_supersecret123", "abc123secret", "pa55word"):
        assert secret not in result.stdout
    recorded = json.loads(result.stdout)["machine"]["host"]["environment_variables"]
    assert recorded["HF_TOKEN"] == "[redacted]"
    assert recorded["WANDB_API_KEY"] == "[redacted]"
    assert recorded["TORCH_HOME"] == "https://user:[redacted]@host/x"


# --- checks and explain --------------------------------------------------------------------


def test_checks_lists_every_registered_check():
    result = run_cli("checks")
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    codes = [line.split()[0] for line in lines]
    assert codes == sorted(check.code for check in REGISTRY)
    assert len(set(codes)) == len(REGISTRY) >= 10
    by_code = {check.code: check for check in REGISTRY}
    for code, line in zip(codes, lines):
        check = by_code[code]
        assert line.split()[1:3] == [check.severity, check.name]
        assert line.endswith(check.summary)


@pytest.mark.parametrize("typed", ["FW001", "fw001"])
def test_explain_prints_the_explanation(typed):
    check = next(c for c in REGISTRY if c.code == "FW001")
    result = run_cli("explain", typed)
    assert result.returncode == 0 and result.stderr == ""
    title, evidence = check.example.split("\n")
    assert result.stdout == (f"FW001 (framework-not-importable), default severity error\n\n"
                             f"{check.summary}\n\n{check.explanation}\n\nFix: {check.fix}\n\n"
                             f"Example:\n  {title}\n  evidence: {evidence}\n")


def test_explain_a_near_miss_suggests_the_code():
    line = assert_one_line_error(run_cli("explain", "FW0001"), "FW0001")
    assert line == "auditor: error: unknown check code 'FW0001'; did you mean FW001?"


def test_explain_an_unknown_code_points_to_checks():
    assert_one_line_error(run_cli("explain", "ZZZ"), "unknown check code 'ZZZ'", "auditor checks")


# --- internal errors -----------------------------------------------------------------------

# A seam in the test, not in the product: replace build_report before the CLI runs.
BREAK_BUILD_REPORT = textwrap.dedent("""
    import auditor.pipeline
    import auditor.cli

    def build_report(snapshot, selection=None, goals=None):
        raise RuntimeError("boom from the test seam")

    auditor.pipeline.build_report = build_report
    auditor.cli.main(["audit", "--quick"])
""")


def test_internal_error_is_one_line_and_exit_3():
    result = run_cli("-c", BREAK_BUILD_REPORT, command=[sys.executable])
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr == ("auditor: error: internal error: RuntimeError: boom from the test seam "
                             "(set AUDITOR_DEBUG=1 for the traceback)\n")


def test_internal_error_traceback_with_auditor_debug():
    result = run_cli("-c", BREAK_BUILD_REPORT, command=[sys.executable], env=clean_env(AUDITOR_DEBUG="1"))
    assert result.returncode == 3  # the same exit code as without it: scripts must not see a change
    assert "Traceback" in result.stderr
    assert "RuntimeError: boom from the test seam" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("auditor: error: internal error: RuntimeError: boom")
