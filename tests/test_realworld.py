"""The real-world corpus: environments from public threads and official tables, replayed.

Each case in tests/realworld/cases/ is a snapshot built from what its thread printed (unknown
where the thread is silent) plus the verdict, cause and fix the thread reached. The auditor
must reach the same verdict for the goal, name the cause, give a fix that fits, and raise no
false alarm (benchmarks/realworld.py prints the same score for all of them).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from realworld import CASES, score_case  # noqa: E402

CASE_FILES = sorted(CASES.glob("*.json"))


def test_the_corpus_is_large_balanced_and_sourced():
    cases = [json.loads(path.read_text())["case"] for path in CASE_FILES]
    broken = [c for c in cases if c["expected"] == "not-ready"]
    assert len(cases) >= 30
    assert 0.4 <= len(broken) / len(cases) <= 0.6
    assert all(c["source"].startswith("https://") and c["quote"] for c in cases)
    assert all(c["cause_codes"] and c["cause"] and c["fix"] for c in broken)
    assert sum(c["kind"].startswith("twin-of:") for c in cases) >= 5


@pytest.mark.parametrize("path", CASE_FILES, ids=[path.stem for path in CASE_FILES])
def test_each_case(path):
    result = score_case(path)
    assert result.verdict_right, f"expected {result.expected}, got {result.verdict}"
    assert result.causes_named, f"expected {result.causes_expected} among the findings"
    assert result.fix_fits, result.fix
    assert not result.false_alarms
