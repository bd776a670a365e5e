from __future__ import annotations

from auditor.decisions.verdict import CheckReport, ProfileVerdict, RequirementResult
from auditor.render.check_base import CheckRenderer
from auditor.render.html import audit_sections, goal_cards, meta_line
from auditor.render.html_page import badge, bullets, document, esc, prose, section, table, tone

# Every status a requirement can have, in the order the counts are shown.
_STATUSES = ("fail", "warn", "pass", "not-checked", "not-applicable")


class CheckHtmlRenderer(CheckRenderer):
    """The verdicts as one self-contained HTML page, followed by the full audit they rest on;
    the embedded JSON is the check's JSON report."""

    name = "html"

    def render(self, check: CheckReport) -> str:
        rows = [(f'<a href="#profile-{esc(v.profile)}"><code>{esc(v.profile)}</code></a>', badge(v.status),
                 esc(_counts(v))) for v in check.verdicts]
        goals = {goal.goal: goal for goal in check.report.recommendation.goals}
        body = [section("verdicts", "Verdicts", table(("Profile", "Verdict", "Requirements"), rows))]
        body += [_profile(verdict, goal_cards([goals[verdict.profile]]) if verdict.profile in goals else "")
                 for verdict in check.verdicts]
        return document("Readiness check", meta_line(check.report.snapshot, "check"),
                        "\n".join(body + audit_sections(check.report)), check.to_dict())


def _counts(verdict: ProfileVerdict) -> str:
    return ", ".join(f"{verdict.count(status)} {status}" for status in _STATUSES if verdict.count(status))


def _quiet(result: RequirementResult) -> bool:
    """A check that found nothing: named in one line, as in every other check format, not listed."""
    return result.id.startswith("check.") and result.status == "pass"


def _profile(verdict: ProfileVerdict, recommended: str) -> str:
    quiet = ", ".join(r.id.removeprefix("check.") for r in verdict.requirements if _quiet(r))
    body = (f'<p>{badge(verdict.status)} {esc(_counts(verdict))}</p><p class="note">{esc(verdict.description)}</p>'
            + "".join(_result(r) for r in verdict.requirements if not _quiet(r))
            + (f'<p class="note">Checks that found nothing: {esc(quiet)}.</p>' if quiet else "")
            + (f"<h3>Recommended here</h3>{recommended}" if recommended else ""))
    return section(f"profile-{verdict.profile}", f"Profile {verdict.profile}", body)


def _result(result: RequirementResult) -> str:
    waiver = (f"<p>Waived until {esc(result.waiver.expires)}: {esc(result.waiver.reason)}</p>" if result.waiver else "")
    return (f'<div class="card requirement {tone(result.status)}" data-requirement="{esc(result.id)}" '
            f'data-status="{esc(result.status)}"><h3>{badge(result.status)} <code>{esc(result.id)}</code> '
            f'{esc(result.title)}</h3>{bullets((esc(e) for e in result.evidence), "evidence")}{waiver}'
            + (f"<p>Fix: {prose(result.fix)}</p>" if result.fix else "") + "</div>")
