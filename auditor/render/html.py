from __future__ import annotations

from auditor.facts import Snapshot
from auditor.render import summary
from auditor.render.base import Renderer
from auditor.render.html_charts import probe_timeline, throughput_chart
from auditor.render.html_page import badge, bullets, command, document, esc, kv_table, prose, section, table, tone
from auditor.render.text import COLLECTIVE_COLUMNS, collective_rows
from auditor.report import Report


class HtmlRenderer(Renderer):
    """One self-contained HTML page for onboarding docs: readable on a phone, printable, with
    the JSON report embedded for tools (see auditor/render/html_page.py)."""

    name = "html"

    def render(self, report: Report) -> str:
        return document("ML environment audit", meta_line(report.snapshot, "audit"), "\n".join(audit_sections(report)),
                        report.to_dict())


def meta_line(snapshot: Snapshot, what: str) -> str:
    return (f"auditor {snapshot.auditor_version} · {what} · {snapshot.mode} audit of {summary.audited_python(snapshot)} "
            f"· {snapshot.generated_at}")


def audit_sections(report: Report) -> list[str]:
    """The audit, in the order a reader needs it: the answer first, the facts it rests on last."""
    return [_summary(report), _recommendation(report), _findings(report), throughput_chart(report.throughput),
            probe_timeline(report.snapshot.probes), _exports(report), _machine(report.snapshot)]


def _summary(report: Report) -> str:
    lines = [f'<li class="area" data-area="{esc(line.area)}" data-state="{esc(line.state)}">'
             f'<div>{badge(line.state)}</div><div><strong class="area-name">{esc(line.name)}</strong> '
             f'<span class="kind">{esc(line.area)}</span> <span class="fact">{prose(line.fact)}</span>'
             + (f' <code class="area-cmd">{esc(line.command)}</code>' if line.command else "") + "</div></li>"
             for line in report.recommendation.areas]
    readiness = report.readiness
    return section("summary", "Summary", (f'<ul class="areas">{"".join(lines)}</ul>' if lines else "")
                   + f'<p class="answer" id="answer">{prose(report.recommendation.summary)}</p>'
                   + f'<p id="readiness">Readiness: {badge(readiness.status)} {prose(readiness.summary)}</p>')


def _steps(steps) -> str:
    return bullets(prose(step.reason) + command(step.command) for step in steps)


def goal_cards(goals) -> str:
    """Each goal's recommendation: the headline, its reasons, the alternatives, the next steps."""
    cards = []
    for goal in goals:
        others = f'<p class="note">Others: {esc("; ".join(goal.alternatives))}</p>' if goal.alternatives else ""
        steps = f"<p>Next steps:</p>{_steps(goal.next_steps)}" if goal.next_steps else ""
        cards.append(f'<div class="card goal {tone(goal.status)}" data-goal="{esc(goal.goal)}">'
                     f'<h4>{badge(goal.status)} {esc(summary.goal_headline(goal))}</h4>'
                     f'<p class="note">{esc(goal.description)}</p>{bullets(prose(r) for r in goal.reasons)}'
                     f'{others}{steps}</div>')
    return "".join(cards)


def _recommendation(report: Report) -> str:
    recommendation = report.recommendation
    choices = "".join(f"<li><strong>{esc(summary.DISPLAY_NAMES.get(c.framework, c.framework))} on "
                      f"{esc(c.device)}</strong>{bullets(prose(reason) for reason in c.reasons)}</li>"
                      for c in recommendation.choices)
    body = f"<ol>{choices}</ol>" if choices else ""
    if recommendation.next_steps:
        body += f"<h3>Next steps</h3>{_steps(recommendation.next_steps)}"
    if recommendation.goals:
        body += (f"<h3>By goal</h3><p class=\"note\"><code>{esc(recommendation.check_command)} --profile GOAL</code> lists "
                 f"every requirement of a goal.</p>{goal_cards(recommendation.goals)}")
    if recommendation.goals_left_out:
        body += f'<p class="note">{prose(summary.goals_left_out_line(recommendation))}</p>'
    return section("recommendation", "Recommendation", body or '<p class="note">No recommendation.</p>')


def _findings(report: Report) -> str:
    cards = [f'<div class="card finding {tone(f.severity)}" data-code="{esc(f.code)}"><h3>{badge(f.severity)} '
             f'<code>{esc(f.code)}</code> {esc(f.title)}</h3>{bullets((esc(e) for e in f.evidence), "evidence")}'
             + (f"<p>Fix: {prose(f.fix)}</p>" if f.fix else "") + "</div>" for f in report.findings]
    return section("findings", f"Findings ({len(cards)})", "".join(cards) or '<p class="note">No findings.</p>')


def _exports(report: Report) -> str:
    exports = report.readiness.exports
    if not exports:
        return section("exports", "Export paths",
                       f'<p class="note">{prose(summary.exports_not_checked(report.recommendation))}</p>')
    columns = ("Path", "Title", "Status", "Detail", "Command")[:5 if any(e.command for e in exports) else 4]
    rows = [(f"<code>{esc(e.path)}</code>", esc(e.title), badge(e.status), prose(e.detail),
             command(e.command))[:len(columns)] for e in exports]
    return section("exports", "Export paths", table(columns, rows))


def _machine(snapshot: Snapshot) -> str:
    machine = snapshot.machine
    facts = kv_table([("Host", summary.host_line(machine.host)), ("Python", summary.python_line(machine.python)),
                      ("CPU", summary.cpu_line(machine.cpu)), ("Memory", summary.memory_line(machine.memory))])
    accelerators = summary.accelerator_lines(snapshot)
    frameworks = [(esc(summary.DISPLAY_NAMES.get(fw.name, fw.name)),
                   esc(f"{fw.version or fw.distribution_version} ({fw.distribution})"), esc(summary.build_line(fw)),
                   esc(summary.framework_status(fw))) for fw in snapshot.frameworks.values()]
    return section("machine", "Machine", facts + "<h3>Accelerators</h3>"
                   + (kv_table(accelerators) if accelerators else '<p class="note">None found.</p>')
                   + "<h3>Frameworks</h3>" + (table(("Framework", "Version", "Build", "Probe"), frameworks)
                                              if frameworks else '<p class="note">No ML framework installed.</p>')
                   + _collectives(snapshot))


def _collectives(snapshot: Snapshot) -> str:
    """The collective proofs, when they were run: each row's result as a badge, then why."""
    if snapshot.collectives is None:
        return ""
    rows = [(esc(framework), esc(backend), esc(ranks), _result(result), esc(bandwidth))
            for framework, backend, ranks, result, bandwidth in collective_rows(snapshot.collectives)]
    return '<h3 id="collectives">Collective proofs</h3>' + (table(COLLECTIVE_COLUMNS, rows) if rows else
                                                        '<p class="note">No framework could run a collective.</p>')


def _result(result: str) -> str:
    status, _, why = result.partition(": ")
    return badge(status) + (f" {esc(why)}" if why else "")
