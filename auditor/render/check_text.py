from __future__ import annotations

import io

from rich.console import Console
from rich.text import Text

from auditor.profiles.verdict import CheckReport, ProfileVerdict, RequirementResult
from auditor.render.check_base import CheckRenderer
from auditor.render.text import goal_texts

_STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}
_VERDICT_STYLE = {"ready": "bold green", "not-ready": "bold red"}
_INDENT = " " * 7


class CheckTextRenderer(CheckRenderer):
    """Each profile's verdict for a person at a terminal: every requirement with its status,
    the evidence and fix of those that did not pass, and the checks that found something."""

    name = "text"

    def __init__(self, color: bool = False, width: int = 100):
        self.color = color
        self.width = width

    def render(self, check: CheckReport) -> str:
        buffer = io.StringIO()
        console = Console(file=buffer, force_terminal=self.color, no_color=not self.color, width=self.width,
                          highlight=False, emoji=False)
        snapshot = check.report.snapshot
        console.print(Text(f"auditor {snapshot.auditor_version} · check · {snapshot.mode} audit of "
                           f"{snapshot.generated_at}", style="dim"))
        goals = {goal.goal: goal for goal in check.report.recommendation.goals}
        for verdict in check.verdicts:
            console.print()
            self._profile(console, verdict)
            if verdict.profile in goals:
                console.print(Text("  Recommended here:", style="bold"))
                for line in goal_texts([goals[verdict.profile]]):
                    console.print(Text("  ") + line)
        ready = sum(1 for verdict in check.verdicts if verdict.status == "ready")
        console.print()
        console.print(Text(f"{len(check.verdicts)} profile(s) checked: {ready} ready, "
                           f"{len(check.verdicts) - ready} not ready.", style="bold"))
        return buffer.getvalue()

    def _profile(self, console: Console, verdict: ProfileVerdict) -> None:
        console.print(Text.assemble((verdict.profile, "bold"), "  ",
                                    (verdict.label, _VERDICT_STYLE[verdict.status]),
                                    f"  {verdict.count('fail')} failed, {verdict.count('warn')} warning(s), "
                                    f"{verdict.count('pass')} passed"))
        console.print(Text(f"  {verdict.description}", style="dim"))
        quiet_checks = 0
        for result in verdict.requirements:
            if result.id.startswith("check.") and result.status == "pass":
                quiet_checks += 1
                continue
            self._result(console, result)
        if quiet_checks:
            console.print(Text.assemble("  ", ("PASS", _STATUS_STYLE["pass"]), f" {quiet_checks} other checks found nothing"))

    def _result(self, console: Console, result: RequirementResult) -> None:
        console.print(Text.assemble("  ", (f"{result.status.upper():4}", _STATUS_STYLE[result.status]),
                                    " ", (result.id, "bold"), f"  {result.title}"))
        if result.status == "pass":
            return
        for line in result.evidence:
            console.print(Text(f"{_INDENT}{line}", style="dim"))
        if result.waiver:
            console.print(Text(f"{_INDENT}waived until {result.waiver.expires}: {result.waiver.reason}"))
        if result.fix:
            console.print(Text(f"{_INDENT}fix: {result.fix}"))
