from __future__ import annotations

import io

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from auditor.render import summary
from auditor.render.base import Renderer
from auditor.report import Report

_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
_STATUS_STYLE = {"ready": "bold green", "not-ready": "bold red", "unproven": "bold yellow"}
_GOAL_STYLE = {"ready": "green", "not-ready": "yellow"}
_EXPORT_STYLE = {"ready": "green", "broken": "bold red", "not-installed": "yellow", "not-applicable": "dim"}


class TextRenderer(Renderer):
    """The terminal report: Machine, Accelerators, Frameworks, Findings, Recommendation."""

    name = "text"

    def __init__(self, color: bool = False, width: int = 100):
        self.color = color
        self.width = width

    def render(self, report: Report) -> str:
        buffer = io.StringIO()
        console = Console(file=buffer, force_terminal=self.color, no_color=not self.color, width=self.width,
                          highlight=False, emoji=False)
        snapshot = report.snapshot
        console.print(Text(f"auditor {snapshot.auditor_version} · {snapshot.mode} audit · {snapshot.generated_at}",
                           style="dim"))
        console.print(self._section("Machine", [
            ("Host", summary.host_line(snapshot.machine.host)),
            ("Python", summary.python_line(snapshot.machine.python)),
            ("CPU", summary.cpu_line(snapshot.machine.cpu)),
            ("Memory", summary.memory_line(snapshot.machine.memory)),
        ]))
        console.print(self._section("Accelerators", summary.accelerator_lines(snapshot) or [("", "none found")]))
        console.print(self._frameworks(report))
        if snapshot.mode != "quick":
            console.print(self._proofs(report))
            console.print(self._exports(report))
        console.print(self._findings(report))
        console.print(self._recommendation(report))
        return buffer.getvalue()

    def _section(self, title: str, rows: list[tuple[str, str]]) -> Panel:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for label, value in rows:
            table.add_row(label, value)
        return Panel(table, title=title, title_align="left")

    def _frameworks(self, report: Report) -> Panel:
        frameworks = report.snapshot.frameworks
        if not frameworks:
            return Panel("No ML framework installed.", title="Frameworks", title_align="left")
        table = Table(expand=True)
        for column in ("Framework", "Version", "Build", "Probe"):
            table.add_column(column)
        for fw in frameworks.values():
            version = f"{fw.version or fw.distribution_version} ({fw.distribution})"
            probe = summary.framework_status(fw)
            if fw.import_seconds is not None:
                probe += f", import {fw.import_seconds:.2f} s"
            table.add_row(summary.DISPLAY_NAMES.get(fw.name, fw.name), version, summary.build_line(fw), probe)
        return Panel(table, title="Frameworks", title_align="left")

    def _proofs(self, report: Report) -> Panel:
        table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
        for column in ("Framework", *summary.PROOF_COLUMNS):
            table.add_column(column, no_wrap=column != "Workloads",
                             min_width=len("matmul, conv2d, train-step") if column == "Workloads" else None)
        for fw in report.snapshot.frameworks.values():
            for index, row in enumerate(summary.proof_rows(fw)):
                table.add_row(summary.DISPLAY_NAMES.get(fw.name, fw.name) if index == 0 else "", *row,
                              end_section=index == len(fw.proofs) - 1)
        if not table.rows:
            return Panel("No computation was run.", title="Compute proofs", title_align="left")
        return Panel(table, title="Compute proofs (each vs a float64 NumPy reference)", title_align="left")

    def _exports(self, report: Report) -> Panel:
        rows = summary.export_rows(report.readiness)
        if not rows:
            return Panel(summary.EXPORTS_NOT_CHECKED, title="Export paths", title_align="left")
        table = Table(expand=True)
        for column in summary.EXPORT_COLUMNS:
            table.add_column(column)
        for path, status, detail in rows:
            table.add_row(path, Text(status, style=_EXPORT_STYLE.get(status, "")), detail)
        return Panel(table, title="Export paths (a tiny model converted and run in each target runtime)",
                     title_align="left")

    def _findings(self, report: Report) -> Panel:
        if not report.findings:
            return Panel(Text("No findings.", style="green"), title="Findings", title_align="left")
        parts = []
        for finding in report.findings:
            line = Text()
            line.append(f"{finding.severity.upper():8}", style=_SEVERITY_STYLE[finding.severity])
            line.append(f"{finding.code} ", style="bold")
            line.append(finding.title)
            parts.append(line)
            parts += [Text(f"         evidence: {item}", style="dim") for item in finding.evidence]
            if finding.fix:
                parts.append(Text(f"         fix: {finding.fix}"))
        return Panel(Group(*parts), title=f"Findings ({len(report.findings)})", title_align="left")

    def _recommendation(self, report: Report) -> Panel:
        readiness, recommendation = report.readiness, report.recommendation
        parts = [Text.assemble(("Readiness: ", "bold"), (readiness.status.upper(), _STATUS_STYLE[readiness.status]),
                               f"  {readiness.summary}"),
                 Text(recommendation.summary)]
        for rank, choice in enumerate(recommendation.choices, 1):
            parts.append(Text(f"{rank}. {summary.DISPLAY_NAMES.get(choice.framework, choice.framework)} on {choice.device}",
                              style="bold"))
            parts += [Text(f"   - {reason}") for reason in choice.reasons]
        if recommendation.next_steps:
            parts.append(Text("Next steps:", style="bold"))
            for step in recommendation.next_steps:
                parts.append(Text(f"   - {step.reason}" + (f":\n       {step.command}" if step.command else "")))
        if recommendation.goals:
            parts.append(Text("By goal (`auditor check --profile GOAL` for every requirement):", style="bold"))
            parts += goal_texts(recommendation.goals)
        return Panel(Group(*parts), title="Recommendation", title_align="left")


def goal_texts(goals) -> list[Text]:
    """Each goal's recommendation: the headline, its reasons, the alternatives, the next steps."""
    parts = []
    for goal in goals:
        parts.append(Text(f"{summary.goal_headline(goal)}", style=_GOAL_STYLE[goal.status]))
        parts += [Text(f"   - {reason}") for reason in goal.reasons]
        if goal.alternatives:
            parts.append(Text(f"   others: {'; '.join(goal.alternatives)}", style="dim"))
        for step in goal.next_steps:
            parts.append(Text(f"   > {step.reason}" + (f": {step.command}" if step.command else "")))
    return parts
