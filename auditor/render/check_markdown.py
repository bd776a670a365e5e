from __future__ import annotations

from auditor.decisions.verdict import CheckReport, ProfileVerdict
from auditor.redact import abbreviate_home, home_directory
from auditor.render.check_base import CheckRenderer
from auditor.render import summary
from auditor.render.markdown import MarkdownRenderer, goal_markdown

_STATUS = {"pass": "pass", "warn": "**warn**", "fail": "**FAIL**", "not-checked": "_not checked_",
           "not-applicable": "n/a"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


class CheckMarkdownRenderer(CheckRenderer):
    """The verdicts as Markdown tables (for pull requests and CI job summaries), followed by
    the full audit report they rest on, unless ``with_audit`` is False."""

    name = "markdown"

    def __init__(self, with_audit: bool = True):
        self.with_audit = with_audit

    def render(self, check: CheckReport) -> str:
        lines = ["# Readiness check", "", f"_{_cell(summary.audited_python(check.report.snapshot))}, "
                 f"{check.report.snapshot.mode} audit, {check.report.snapshot.generated_at}_", "",
                 "| Profile | Verdict | Failed | Warnings | Passed | Not checked | Not applicable |",
                 "|---|---|---|---|---|---|---|"]
        lines += [f"| `{v.profile}` | **{v.label}** | {v.count('fail')} | {v.count('warn')} | {v.count('pass')} "
                  f"| {v.count('not-checked')} | {v.count('not-applicable')} |" for v in check.verdicts]
        goals = {goal.goal: goal for goal in check.report.recommendation.goals}
        for verdict in check.verdicts:
            lines += self._profile(verdict)
            if verdict.profile in goals:
                lines += ["", "Recommended here:", "", *goal_markdown([goals[verdict.profile]])]
        text = "\n".join(lines) + "\n"
        text = text + "\n" + MarkdownRenderer().render(check.report) if self.with_audit else text
        # The verdicts quote paths too (a profile's file, evidence); the audit part is done already.
        return abbreviate_home(text, home_directory())

    def _profile(self, verdict: ProfileVerdict) -> list[str]:
        lines = ["", f"## `{verdict.profile}`: {verdict.label}", "", _cell(verdict.description), "",
                 "| Status | Requirement | Evidence | Fix |", "|---|---|---|---|"]
        quiet = [r.id.removeprefix("check.") for r in verdict.requirements if r.id.startswith("check.") and r.status == "pass"]
        for result in verdict.requirements:
            if result.id.startswith("check.") and result.status == "pass":
                continue
            evidence = "\n".join(result.evidence)
            if result.waiver:
                evidence += f"\nwaived until {result.waiver.expires}: {result.waiver.reason}"
            lines.append(f"| {_STATUS[result.status]} | `{result.id}`<br>{_cell(result.title)} | {_cell(evidence)} "
                         f"| {_cell(result.fix or '')} |")
        if quiet:
            lines += ["", f"Counted checks that ran and found nothing: {', '.join(quiet)}"]
        return lines
