from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text

from auditor.decisions.verdict import CheckReport, ProfileVerdict, RequirementResult
from auditor.render import summary
from auditor.render.check_base import CheckRenderer
from auditor.render.text import Hanging, goal_texts, render_text

_STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "not-checked": "cyan", "not-applicable": "dim"}
_STATUS_WORDS = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "not-checked": "NOT CHECKED", "not-applicable": "N/A"}
_VERDICT_STYLE = {"ready": "bold green", "not-ready": "bold red", "not-checked": "bold cyan"}
_INDENT = " " * 7


class CheckTextRenderer(CheckRenderer):
    """Each profile's verdict for a person at a terminal: every requirement with its status,
    the evidence and fix of those that did not pass, and the checks that found something.
    A wrapped line keeps the indent of the line it continues."""

    name = "text"

    def __init__(self, color: bool = False, width: int = 100):
        self.color = color
        self.width = width

    def render(self, check: CheckReport) -> str:
        snapshot = check.report.snapshot
        parts: list[RenderableType] = [Hanging("", Text(f"auditor {snapshot.auditor_version} · check · {snapshot.mode} "
                                                        f"audit of {summary.audited_python(snapshot)} · "
                                                        f"{snapshot.generated_at}", style="dim"))]
        goals = {goal.goal: goal for goal in check.report.recommendation.goals}
        for verdict in check.verdicts:
            parts.append(Text())
            parts += self._profile(verdict)
            if verdict.profile in goals:
                parts.append(Text("  Recommended here:", style="bold"))
                parts += goal_texts([goals[verdict.profile]], indent="  ")
        states = [sum(1 for verdict in check.verdicts if verdict.status == state)
                  for state in ("ready", "not-ready", "not-checked")]
        parts += [Text(), Hanging("", Text(f"{len(check.verdicts)} profile(s) checked: {states[0]} ready, "
                                           f"{states[1]} not ready" + (f", {states[2]} not checked in full"
                                                                       if states[2] else "") + ".", style="bold"))]
        return render_text(parts, self.color, self.width)

    def _profile(self, verdict: ProfileVerdict) -> list[RenderableType]:
        parts: list[RenderableType] = [
            Hanging("", Text.assemble((verdict.profile, "bold"), "  ", (verdict.label, _VERDICT_STYLE[verdict.status]),
                                      f"  {summary.requirement_counts(verdict)}")),
            Hanging("  ", Text(verdict.description, style="dim"))]
        quiet_checks = 0
        for result in verdict.requirements:
            if result.id.startswith("check.") and result.status == "pass":
                quiet_checks += 1
                continue
            parts += self._result(result)
        if quiet_checks:
            parts.append(Hanging("  ", Text(f"{quiet_checks} other counted checks ran and found nothing", style="dim")))
        return parts

    def _result(self, result: RequirementResult) -> list[RenderableType]:
        status = Text.assemble("  ", (f"{_STATUS_WORDS[result.status]:4}", _STATUS_STYLE[result.status]), " ")
        parts: list[RenderableType] = [Hanging(status, Text.assemble((result.id, "bold"), f"  {result.title}"))]
        if result.status in ("pass", "not-applicable") and not result.fix:
            return parts + [Hanging(_INDENT, Text(line, style="dim")) for line in result.evidence
                            if result.status == "not-applicable"]
        parts += [Hanging(_INDENT, Text(line, style="dim")) for line in result.evidence]
        if result.waiver:
            parts.append(Hanging(_INDENT, f"waived until {result.waiver.expires}: {result.waiver.reason}"))
        if result.fix:
            parts.append(Hanging(_INDENT, f"fix: {result.fix}"))
        return parts
