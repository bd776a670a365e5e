"""The answer first: the report's first screen, as a person meets it in an 80x24 terminal.

Every recorded machine (the real-world cases from public issue threads, the snapshots in
tests/snapshots, this machine's own live audit) must answer "which framework, on which device,
for which goal, or what blocks it" within 24 lines at 80 columns, before any detail; and that
answer must be the same sentence in text, Markdown and JSON, agreeing with the goal verdicts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from concurrent.futures import ThreadPoolExecutor

import pytest

from auditor.pipeline import build_report
from auditor.render.json import JsonRenderer
from auditor.snapshot_file import load_snapshot
from conftest import run_auditor
from test_terminal import assert_clean, run_in_terminal, terminal_env

ROOT = Path(__file__).resolve().parents[1]
RECORDED = sorted((ROOT / "tests/realworld/cases").glob("*.json")) + sorted((ROOT / "tests/snapshots").glob("*.json"))
MARKS = {"ready": "[✓]", "warning": "[!]", "not-ready": "[✗]", "not-checked": "[?]", "not-applicable": "[-]"}


def flat(text: str) -> str:
    return " ".join(text.replace("*", "").split())


def first_screen(text: str) -> list[str]:
    """The lines before the first detail box."""
    lines = text.split("\n")
    return lines[:next(i for i, line in enumerate(lines) if line.startswith("╭─ "))]


@pytest.fixture(scope="module")
def live_snapshot(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("live") / "snapshot.json"
    result = run_auditor("audit", "--format", "json", "--save-snapshot", str(path))
    assert result.returncode in (0, 1), result.stderr
    return path


def machines(live_snapshot: Path) -> list[Path]:
    return [live_snapshot, *RECORDED]


def report_of(snapshot: Path) -> dict:
    """The JSON report of a replayed snapshot, as `auditor audit --snapshot FILE --format json` writes it."""
    return json.loads(JsonRenderer().render(build_report(load_snapshot(snapshot))))


def test_every_recorded_machine_answers_within_one_80x24_screen(live_snapshot):
    assert len(RECORDED) > 40
    snapshots = machines(live_snapshot)
    # Each screen is a real terminal's; four at a time, as most of each is Python starting.
    with ThreadPoolExecutor(max_workers=4) as pool:
        screens = list(pool.map(lambda path: run_in_terminal("audit", "--snapshot", str(path), columns=80,
                                                             env=terminal_env(colour=False)), snapshots))
    for snapshot, screen in zip(snapshots, screens):
        report = report_of(snapshot)
        assert_clean(screen, 80, codes=(0, 1))
        lines = first_screen(screen.text)
        assert len(lines) <= 24, (snapshot.name, "\n".join(lines))
        answer = next(i for i, line in enumerate(lines) if line.startswith("Answer: "))
        assert flat(" ".join(lines[answer:])).removeprefix("Answer: ") == flat(report["recommendation"]["summary"])
        # One line (or one wrapped entry) per area, in the order the JSON lists them, each with its state.
        marked = [line for line in lines[1:answer] if line.startswith("[")]
        assert [line[:3] for line in marked] == [MARKS[a["state"]] for a in report["recommendation"]["areas"]]
        for line, area in zip(marked, report["recommendation"]["areas"]):
            assert line[4:].startswith(area["name"]), (snapshot.name, line)


def test_the_answer_names_each_ready_goal_with_the_framework_its_verdict_picked(live_snapshot):
    for snapshot in machines(live_snapshot):
        report = report_of(snapshot)
        recommendation = report["recommendation"]
        answer = recommendation["summary"]
        if any(f["code"] == "FW012" for f in report["findings"]):  # nothing usable: that is the answer
            assert answer.startswith("Nothing here is ready for ML work: ")
            continue
        for goal in recommendation["goals"]:
            assert goal["goal"] in answer, (snapshot.name, goal["goal"], answer)
            area = next(a for a in recommendation["areas"] if a["area"] == "goal" and a["name"] == goal["goal"])
            expected = goal["status"] if goal["status"] != "ready" else "warning" if goal["warnings"] else "ready"
            assert area["state"] == expected, (snapshot.name, goal["goal"])
            if goal["status"] == "ready":
                name = {"torch": "PyTorch", "tensorflow": "TensorFlow", "jax": "JAX"}[goal["framework"]]
                assert re.search(rf"[Uu]se {name}[^;]*\b{re.escape(goal['goal'])}\b", answer), (snapshot.name, answer)
        # The choices are the goals' picks, never a ranking of their own.
        picked = [g["framework"] for g in recommendation["goals"] if g["status"] != "not-ready" and g["framework"]]
        assert [c["framework"] for c in recommendation["choices"]] == list(dict.fromkeys(picked))


def test_markdown_opens_with_the_same_answer_and_area_table(live_snapshot):
    for snapshot in (live_snapshot, ROOT / "tests/realworld/cases/jetson-jp512-pypi-torch.json"):
        report = report_of(snapshot)
        markdown = run_auditor("audit", "--snapshot", str(snapshot), "--format", "markdown").stdout
        head = markdown.split("## Recommendation")[0]
        assert flat(report["recommendation"]["summary"]) in flat(head)
        rows = [line for line in head.splitlines() if line.startswith("| ") and not line.startswith("| State")]
        assert len(rows) == len(report["recommendation"]["areas"])
        # No table with an empty header row, no doubled punctuation.
        assert not re.search(r"^\|\s*\|\s*\|$", markdown, re.M)
        assert not re.search(r"(?<![.])\.\.(?![.])|[:;,]\.|\.:", re.sub(r"`[^`]*`|\d\.\.\d", "", markdown))


def test_a_quick_audit_says_nothing_is_proven_yet_and_how_to_prove_it():
    screen = run_in_terminal("audit", "--quick", columns=80, env=terminal_env(colour=False))
    assert_clean(screen, 80)
    lines = first_screen(screen.text)
    assert len(lines) <= 24
    assert any(line.startswith("[?] PyTorch") and "not imported (--quick)" in line for line in lines)
    assert "Quick audit: no framework was imported" in flat(" ".join(lines))
