"""GitHub Actions: workflow-command annotations for the top results, and the job summary.

GitHub shows at most 10 error, 10 warning and 10 notice annotations per step (actions/toolkit,
docs/problem-matchers.md), so failures come first, then warnings, each capped at 10, and one
notice gives the verdict and says how many more are in the job summary. A result that several
profiles share is annotated once. Values are escaped as actions/toolkit's command.ts escapes
them: % CR LF in messages, and also : and , in properties.

The job summary is the Markdown report, appended to $GITHUB_STEP_SUMMARY (other steps write
there too, so it is never overwritten). GitHub rejects a summary over 1 MiB; a report that
would not fit leaves out the full audit and keeps the verdicts.
"""

from __future__ import annotations

from pathlib import Path

from auditor.errors import OutputError
from auditor.decisions.verdict import CheckReport, RequirementResult
from auditor.render.summary import audited_python, requirement_counts
from auditor.render.check_base import CheckRenderer
from auditor.render.check_markdown import CheckMarkdownRenderer

ANNOTATIONS_PER_LEVEL = 10
SUMMARY_LIMIT_BYTES = 1024 * 1024
_LEVELS = {"fail": "error", "warn": "warning", "not-checked": "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


class GithubRenderer(CheckRenderer):
    name = "github"

    def render(self, check: CheckReport) -> str:
        shared: dict[tuple[str, str, str], tuple[list[str], RequirementResult]] = {}
        for verdict in check.verdicts:
            for result in verdict.requirements:
                if result.status in _LEVELS:
                    key = (result.status, result.id, result.title)
                    shared.setdefault(key, ([], result))[0].append(verdict.profile)
        # Failures first, then warnings; within each, the profiles' own requirements before the checks.
        ranked = sorted(shared.values(), key=lambda item: (list(_LEVELS).index(item[1].status), item[1].id.startswith("check.")))
        lines, left_out = [], 0
        for level in _LEVELS:
            of_level = [item for item in ranked if item[1].status == level]
            lines += [_annotation(profiles, result) for profiles, result in of_level[:ANNOTATIONS_PER_LEVEL]]
            left_out += max(0, len(of_level) - ANNOTATIONS_PER_LEVEL)
        ready = sum(1 for verdict in check.verdicts if verdict.status == "ready")
        verdict_line = f"{ready} of {len(check.verdicts)} profile(s) ready for {audited_python(check.report.snapshot)}"
        if left_out:
            verdict_line += f"; {left_out} more result(s) are in the job summary"
        lines.append(f"::notice title={escape_property('auditor check')}::{escape_data(verdict_line)}")
        lines += [f"{v.profile}: {v.label} ({requirement_counts(v)})" for v in check.verdicts]
        return "\n".join(lines) + "\n"


def _annotation(profiles: list[str], result: RequirementResult) -> str:
    message = [result.title, *result.evidence]
    if result.waiver:
        message.append(f"waived until {result.waiver.expires}: {result.waiver.reason}")
    if result.fix:
        message.append(f"fix: {result.fix}")
    title = f"{', '.join(profiles)}: {result.id}"
    return f"::{_LEVELS[result.status]} title={escape_property(title)}::{escape_data(chr(10).join(message))}"


def append_step_summary(path: Path, check: CheckReport) -> None:
    """Append the Markdown report to the job summary file ($GITHUB_STEP_SUMMARY)."""
    text = CheckMarkdownRenderer().render(check)
    if len(text.encode("utf-8")) > SUMMARY_LIMIT_BYTES:
        text = CheckMarkdownRenderer(with_audit=False).render(check)
    try:
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(text)
    except OSError as exc:
        raise OutputError(f"cannot append the job summary to $GITHUB_STEP_SUMMARY ({path}): {exc.strerror}") from None
