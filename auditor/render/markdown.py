from __future__ import annotations

from auditor.redact import abbreviate_home, home_directory
from auditor.render import summary
from auditor.render.base import Renderer
from auditor.render.text import COLLECTIVE_COLUMNS, collective_rows
from auditor.report import Report


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def _row(cells) -> str:
    return "| " + " | ".join(_cell(str(cell)) for cell in cells) + " |"


class MarkdownRenderer(Renderer):
    """A Markdown report for onboarding docs, pull requests and CI job summaries."""

    name = "markdown"

    def render(self, report: Report) -> str:
        snapshot, readiness = report.snapshot, report.readiness
        recommendation = report.recommendation
        lines = [
            "# ML environment audit",
            "",
            f"_auditor {snapshot.auditor_version}, {snapshot.mode} audit of {_cell(summary.audited_python(snapshot))}, "
            f"{snapshot.generated_at}_",
            "",
            f"**Answer:** {recommendation.summary}",
            "",
            "| State | Area | What decides it |",
            "|---|---|---|",
            *(_row((summary.STATE_WORDS[line.state], line.name, summary.area_fact(line)))
              for line in recommendation.areas),
            "",
            "## Recommendation",
            "",
            f"**Readiness: {readiness.status.upper()}**: {readiness.summary}",
        ]
        if recommendation.goals:
            lines += ["", "### By goal", "", f"`{recommendation.check_command} --profile GOAL` lists every requirement of a goal.", ""]
            lines += goal_markdown(recommendation.goals)
        if recommendation.next_steps:
            lines += ["", "### Next steps", ""]
            lines += [f"{rank}. {summary.step_text(step)}" for rank, step in enumerate(recommendation.next_steps, 1)]
        if recommendation.goals_left_out:
            lines += ["", summary.goals_left_out_line(recommendation)]
        lines += ["", "## Findings", ""]
        if report.findings:
            lines += ["| Severity | Code | Finding | Fix |", "|---|---|---|---|"]
            for f in report.findings:
                title = _cell(f.title + "".join(f"\n<sub>{e}</sub>" for e in f.evidence))
                lines.append(f"| {f.severity} | `{f.code}` | {title} | {_cell(f.fix or '')} |")
        else:
            lines.append("No findings.")
        lines += ["", "## Machine", "", "| Part | Facts |", "|---|---|",
                  f"| Host | {_cell(summary.host_line(snapshot.machine.host))} |",
                  f"| Python | {_cell(summary.python_line(snapshot.machine.python))} |",
                  f"| CPU | {_cell(summary.cpu_line(snapshot.machine.cpu))} |",
                  f"| Memory | {_cell(summary.memory_line(snapshot.machine.memory))} |",
                  "", "## Accelerators", ""]
        rows = summary.accelerator_lines(snapshot)
        lines += ["| Accelerator | Facts |", "|---|---|", *(f"| {_cell(label)} | {_cell(value)} |" for label, value in rows)] if rows else ["None found."]
        lines += ["", "## Frameworks", ""]
        if snapshot.frameworks:
            lines += ["| Framework | Version | Build | Probe |", "|---|---|---|---|"]
            for fw in snapshot.frameworks.values():
                lines.append(f"| {summary.DISPLAY_NAMES.get(fw.name, fw.name)} | {fw.version or fw.distribution_version} "
                             f"(`{fw.distribution}`) | {_cell(summary.build_line(fw))} | {_cell(summary.framework_status(fw))} |")
        else:
            lines.append("No ML framework installed.")
        proofs = [(summary.DISPLAY_NAMES.get(fw.name, fw.name), *row)
                  for fw in snapshot.frameworks.values() for row in summary.proof_rows(fw)]
        if proofs:
            lines += ["", "## Compute proofs", "", "Each workload is compared with a float64 reference computed in pure Python.", "",
                      _row(("Framework", *summary.PROOF_COLUMNS)), _row(["---"] * (len(summary.PROOF_COLUMNS) + 1)),
                      *(_row(row) for row in proofs)]
        if snapshot.mode != "quick":
            lines += ["", "## Speed against the device's peak", ""]
            rows, bases = summary.throughput_rows(report.throughput)
            lines += ["| Matmul | Speed |", "|---|---|", *(_row(row) for row in rows)] if rows else ["No matmul was timed."]
            lines += ["", *(f"- peak, {basis}" for basis in bases)] if bases else []
            lines += ["", "## Export paths", ""]
            exports = summary.export_rows(readiness)
            lines += ([_row(summary.EXPORT_COLUMNS), _row(["---"] * 3), *(_row(row) for row in exports)]
                      if exports else [summary.exports_not_checked(report.recommendation)])
        if snapshot.collectives is not None:
            collectives = collective_rows(snapshot.collectives)
            lines += ["", "## Collective proofs", "", "Each all_reduce is checked against its exact sum.", ""]
            lines += ([_row(COLLECTIVE_COLUMNS), _row(["---"] * len(COLLECTIVE_COLUMNS)),
                       *(_row(row) for row in collectives)] if collectives else ["No framework could run a collective."])
        lines += ["", "<details><summary>Probes</summary>", "", "| Probe | Status | Seconds | Reason |", "|---|---|---|---|"]
        lines += [f"| {run.name} | {run.status} | {run.duration_s:.3f} | {_cell(run.reason or '')} |" for run in snapshot.probes]
        lines += ["", "</details>", ""]
        # Written for people and pasted where others read it: ~/... is shorter and names no one.
        return abbreviate_home("\n".join(lines), home_directory())


def goal_markdown(goals) -> list[str]:
    lines = []
    for goal in goals:
        lines.append(f"- **{summary.goal_headline(goal)}**")
        lines += [f"  - {reason}" for reason in goal.reasons]
        if goal.alternatives:
            lines.append(f"  - _others: {'; '.join(goal.alternatives)}_")
        if goal.blocker:
            lines.append(f"  - blocked: {goal.blocker}")
    return lines
