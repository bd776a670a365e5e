"""Each simulated machine, audited through the real CLI: fake root, fake NVML library, environment.

The first audit saves its snapshot; the text and Markdown reports are then rendered by
replaying it, so every format is checked against the same facts.
"""

from __future__ import annotations

import json
import re

import pytest

from conftest import run_auditor
from simulated_machines import MACHINES

_BOX = re.compile(r"[│╭╮╰╯─┃┏┓┗┛━┡┩┠┨╇┯┷┼┿╋┳┻┣┫]")


def lookup(report: dict, path: str):
    value = report
    for part in path.split("."):
        if part == "#":
            return len(value)
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def flatten(text: str) -> str:
    """Text as a reader sees it: no box drawing, and wrapped lines joined."""
    return " ".join(_BOX.sub(" ", text).split())


@pytest.mark.parametrize("machine", MACHINES, ids=lambda machine: machine.name)
def test_simulated_machine_in_every_format(machine, simulated_audits):
    # A full audit: the real torch, TensorFlow and JAX of this machine meet the simulated hardware.
    audited = simulated_audits[machine.name]
    result, snapshot, env = audited.result, audited.snapshot, audited.env
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    for path, value in machine.expected.items():
        assert lookup(report, path) == value, path
    # EXP004-006 judge this test environment's export tools (coremltools, executorch, onnx)
    # from package metadata, whatever the hardware; tests/test_export_checks.py covers them.
    codes = {f["code"] for f in report["findings"] if f["code"] not in ("EXP004", "EXP005", "EXP006")}
    assert codes == machine.expected_findings, report["findings"]
    assert result.returncode == (1 if any(f["severity"] == "error" for f in report["findings"]) else 0)

    # The answer first: within one 80x24 screen, before any detail box, on every simulated machine.
    narrow = run_auditor("audit", "--snapshot", str(snapshot), env={**env, "COLUMNS": "80"})
    lines = narrow.stdout.split("\n")
    first_screen = lines[:next(i for i, line in enumerate(lines) if line.startswith("╭─ "))]
    assert len(first_screen) <= 24 and any(line.startswith("Answer: ") for line in first_screen), first_screen
    assert max(len(line) for line in first_screen) <= 80
    assert flatten(" ".join(first_screen)).split("Answer: ", 1)[1] == flatten(report["recommendation"]["summary"])

    for output_format in ("text", "markdown"):
        replay = run_auditor("audit", "--snapshot", str(snapshot), "--format", output_format, env=env)
        assert replay.returncode == result.returncode, replay.stderr
        shown = flatten(replay.stdout)
        for mention in machine.mentions:
            assert flatten(mention) in shown, f"{output_format}: {mention!r} missing"
