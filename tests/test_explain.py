"""`auditor explain CODE`: every check documents its fix and an example finding, and explain
prints them after the summary and the explanation, piped and on a terminal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len

from auditor.checks import REGISTRY, base

ROOT = Path(__file__).resolve().parents[1]
# The imperative a fix may open with when it quotes no command.
ACTION_VERBS = {"check", "compare", "create", "install", "keep", "move", "reboot", "reinstall", "remove",
                "replace", "reproduce", "run", "serve", "set", "size", "start", "time", "train", "uninstall",
                "unset", "update", "upgrade", "use"}
BACKTICKED = re.compile(r"`[^`]+`")
EXPLAINED = "FW004"


def by_code(code: str):
    return next(c for c in REGISTRY if c.code == code)


def explain(*args: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "AUDITOR_DEBUG"}
    return subprocess.run([sys.executable, "-m", "auditor", "explain", *args], capture_output=True, text=True,
                          env=environ, cwd=ROOT, stdin=subprocess.DEVNULL, timeout=120)


def explain_on_terminal(code: str, columns: int) -> str:
    """stdout of `auditor explain CODE` on a pseudo-terminal nobody sized: it reports 0 columns,
    so COLUMNS decides the width."""
    controller, terminal = os.openpty()
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "AUDITOR_DEBUG")}
    environ.update(COLUMNS=str(columns), TERM="xterm-256color")
    process = subprocess.Popen([sys.executable, "-m", "auditor", "explain", code], stdin=terminal, stdout=terminal,
                               stderr=subprocess.PIPE, env=environ, cwd=ROOT)
    os.close(terminal)
    received = b""
    try:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the process closed its end
                break
            if not chunk:
                break
            received += chunk
    finally:
        os.close(controller)
    assert process.wait(timeout=60) == 0, process.stderr.read()
    return received.decode("utf-8").replace("\r\n", "\n")


def expected_output(code: str) -> str:
    check = by_code(code)
    title, evidence = check.example.split("\n")
    return (f"{check.code} ({check.name}), default severity {check.severity}\n\n{check.summary}\n\n"
            f"{check.explanation}\n\nFix: {check.fix}\n\nExample:\n  {title}\n  evidence: {evidence}\n")


# --- every check's fix and example ------------------------------------------------------------


@pytest.mark.parametrize("code", [c.code for c in REGISTRY])
def test_every_check_has_a_fix_and_an_example_finding(code):
    check = by_code(code)
    assert check.fix.strip()
    title, evidence = check.example.split("\n")
    assert title.strip() and evidence.strip()
    assert title == title.strip() and evidence == evidence.strip()


@pytest.mark.parametrize("code", [c.code for c in REGISTRY])
def test_a_fix_says_what_to_do_not_what_is_wrong(code):
    check = by_code(code)
    fix, summary = check.fix.lower(), check.summary.lower().rstrip(".")
    assert fix.rstrip(".") != summary and not fix.startswith(summary)
    first_word = re.sub(r"\W", "", fix.split()[0])
    assert first_word in ACTION_VERBS or BACKTICKED.search(check.fix), check.fix


# --- registration -----------------------------------------------------------------------------


def _evaluate(snapshot):
    return []


@pytest.mark.parametrize("missing", ["fix", "example"])
def test_registering_a_check_without_fix_or_example_raises(missing):
    texts = {"fix": "Run `true`.", "example": "A title\nan evidence line"}
    del texts[missing]
    before = list(REGISTRY)
    with pytest.raises(TypeError, match=missing):
        base.check("TST901", "test-check", "info", "A summary.", "An explanation.", **texts)(_evaluate)
    assert REGISTRY == before


@pytest.mark.parametrize("fix, example, complaint", [
    ("", "A title\nan evidence line", "no fix"),
    ("   ", "A title\nan evidence line", "no fix"),
    ("Run `true`.", "", "title line, then one evidence line"),
    ("Run `true`.", "A title alone", "title line, then one evidence line"),
    ("Run `true`.", "A title\n", "title line, then one evidence line"),
    ("Run `true`.", "A title\none evidence line\nanother", "title line, then one evidence line"),
], ids=["empty-fix", "blank-fix", "empty-example", "title-only", "blank-evidence", "three-lines"])
def test_registering_a_check_with_an_empty_fix_or_a_partial_example_raises(fix, example, complaint):
    before = list(REGISTRY)
    with pytest.raises(ValueError, match=complaint):
        base.check("TST902", "test-check", "info", "A summary.", "An explanation.", fix=fix, example=example)(_evaluate)
    assert REGISTRY == before


# --- auditor explain --------------------------------------------------------------------------


def test_explain_prints_summary_explanation_fix_and_example():
    check = by_code(EXPLAINED)
    result = explain(EXPLAINED)
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.split("\n")
    title, evidence = check.example.split("\n")
    assert lines[2] == check.summary
    assert lines[4] == check.explanation
    assert lines[6] == f"Fix: {check.fix}"
    assert lines[8:11] == ["Example:", f"  {title}", f"  evidence: {evidence}"]
    assert result.stdout == expected_output(EXPLAINED)


def test_explain_takes_a_lowercase_code():
    result = explain(EXPLAINED.lower())
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == expected_output(EXPLAINED)


@pytest.mark.parametrize("code", [EXPLAINED, max(REGISTRY, key=lambda c: len(c.fix) + len(c.example)).code])
def test_explain_fits_100_columns_and_keeps_every_word(code):
    shown = explain_on_terminal(code, columns=100)
    lines = shown.rstrip("\n").split("\n")
    too_wide = [line for line in lines if cell_len(line) > 100]
    assert not too_wide, too_wide
    assert len(lines) > len(expected_output(code).rstrip("\n").split("\n"))  # it wrapped
    assert shown.split() == expected_output(code).split()
    # Each part wraps under its own first character: the fix under "Fix: ", the evidence under "evidence: ".
    fix = next(i for i, line in enumerate(lines) if line.startswith("Fix: "))
    example = lines.index("Example:")
    assert all(line.startswith(" " * 5) for line in lines[fix + 1:example - 1]) and lines[example - 1] == ""
    evidence = next(i for i, line in enumerate(lines) if line.startswith("  evidence: "))
    assert all(line.startswith("  ") for line in lines[example + 1:evidence])
    assert all(line.startswith(" " * 12) for line in lines[evidence + 1:])


def test_explain_of_an_unknown_code_is_still_a_one_line_error():
    result = explain("ZZZ999")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [result.stderr.rstrip("\n")]
    assert result.stderr.startswith("auditor: error: unknown check code 'ZZZ999'")
    assert "auditor checks" in result.stderr
