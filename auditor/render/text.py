from __future__ import annotations

import io
from typing import Iterable, Optional

from rich.align import Align
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
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
# A Panel's border and its padding take two columns on each side.
_PANEL_FRAME = 4


def render_text(renderables: Iterable[RenderableType], color: bool, width: int) -> str:
    """Lay renderables out `width` columns wide, as a terminal of that width shows them.

    Markup is off: a report quotes what packages, drivers and users wrote, and "[and-cuda]" in
    a pip command or "[redacted]" in a value is text, not a style tag to drop.
    """
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width, highlight=False,
                      emoji=False, markup=False)
    for renderable in renderables:
        console.print(renderable)
    return buffer.getvalue()


def render_rows(rows: list[tuple[str, str]], width: Optional[int]) -> str:
    """Lines of `marker` then `body`. With a width (a terminal's), each body wraps beside its
    marker; without one (a pipe, a file), each row stays one line, for grep and scripts."""
    if width is None:
        return "".join(f"{marker}{body}\n" for marker, body in rows)
    return render_text([Hanging(marker, body) for marker, body in rows], color=False, width=width)


class Hanging:
    """`marker`, then `body` wrapped beside it: every wrapped line starts under the body's first
    character, so a wrapped line keeps its indent. Words wrap whole; a word wider than the room
    left is folded onto the next line, never cut. Lines carry no trailing blanks."""

    def __init__(self, marker: str | Text, body: str | Text):
        self.marker = Text(marker) if isinstance(marker, str) else marker
        self.body = Text(body) if isinstance(body, str) else body

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        indent = self.marker.cell_len
        lines = self.body.wrap(console, max(options.max_width - indent, 1), overflow="fold")
        for index, line in enumerate(lines):
            line.rstrip()
            yield Text.assemble(self.marker if index == 0 else " " * indent, line)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        body = Measurement.get(console, options, self.body)
        return Measurement(body.minimum + self.marker.cell_len, body.maximum + self.marker.cell_len)


class TextRenderer(Renderer):
    """The terminal report: Machine, Accelerators, Frameworks, Findings, Recommendation.

    Columns that carry a number or a name never wrap; prose columns wrap at word boundaries
    (rich's own layout), so every line fits `width` and no number is cut.
    """

    name = "text"

    def __init__(self, color: bool = False, width: int = 100):
        self.color = color
        self.width = width

    def render(self, report: Report) -> str:
        snapshot = report.snapshot
        parts: list[RenderableType] = [
            Text(f"auditor {snapshot.auditor_version} · {snapshot.mode} audit · {snapshot.generated_at}", style="dim"),
            self._section("Machine", [
                ("Host", summary.host_line(snapshot.machine.host)),
                ("Python", summary.python_line(snapshot.machine.python)),
                ("CPU", summary.cpu_line(snapshot.machine.cpu)),
                ("Memory", summary.memory_line(snapshot.machine.memory)),
            ]),
            self._section("Accelerators", summary.accelerator_lines(snapshot) or [("", "none found")]),
            self._frameworks(report),
        ]
        if snapshot.mode != "quick":
            parts += [self._proofs(report), self._exports(report)]
        parts += [self._findings(report), self._recommendation(report)]
        return render_text(parts, self.color, self.width)

    def _section(self, title: str, rows: list[tuple[str, str]]) -> Panel:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for label, value in rows:
            table.add_row(label, value)
        return Panel(table, title=title, title_align="left")

    def _frameworks(self, report: Report) -> Panel:
        frameworks = report.snapshot.frameworks
        if not frameworks:
            return Panel("No ML framework installed.", title="Frameworks", title_align="left")
        table = Table(expand=True)
        table.add_column("Framework", no_wrap=True)
        for column in ("Version", "Build", "Probe"):
            table.add_column(column, overflow="fold")
        for fw in frameworks.values():
            version = f"{fw.version or fw.distribution_version} ({fw.distribution})"
            probe = summary.framework_status(fw)
            if fw.import_seconds is not None:
                probe += f", import {fw.import_seconds:.2f} s"
            table.add_row(summary.DISPLAY_NAMES.get(fw.name, fw.name), version, summary.build_line(fw), probe)
        return Panel(table, title="Frameworks", title_align="left")

    def _proofs(self, report: Report) -> Panel:
        rows = [(summary.DISPLAY_NAMES.get(fw.name, fw.name), summary.proof_rows(fw))
                for fw in report.snapshot.frameworks.values()]
        if not any(proofs for _, proofs in rows):
            return Panel("No computation was run.", title="Compute proofs", title_align="left")
        table = self._proof_table(rows, framework_column=True)
        if self._measure(table).maximum > self.width - _PANEL_FRAME:
            # Where the seven columns do not fit side by side, each framework's name heads its
            # rows instead, and the width of its column goes to the workloads and the result.
            table = self._proof_table(rows, framework_column=False)
        return Panel(table, title="Compute proofs (each vs a float64 reference)", title_align="left")

    @staticmethod
    def _proof_table(rows: list[tuple[str, list[tuple[str, ...]]]], framework_column: bool) -> Table:
        table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
        columns = ("Framework", *summary.PROOF_COLUMNS) if framework_column else summary.PROOF_COLUMNS
        for column in columns:
            justify = "right" if column == "GFLOP/s" else "left"
            # A header that wraps sits on the row's last line, level with the others.
            header = Align(column, justify, vertical="bottom")
            if column in ("Workloads", "Result (max error)"):  # lists and failure messages wrap
                table.add_column(header, overflow="fold")
            else:  # names, dtypes and GFLOP/s never wrap, so they are never cut
                table.add_column(header, no_wrap=True, justify=justify)
        for name, proofs in rows:
            if proofs and not framework_column:
                table.add_row(Text(name, style="bold"))
            for index, row in enumerate(proofs):
                table.add_row(*((name if index == 0 else "",) if framework_column else ()), *row)
        return table

    def _measure(self, table: Table) -> Measurement:
        """The table's narrowest and widest layout at this report's width."""
        console = Console(file=io.StringIO(), width=self.width, markup=False)
        return Measurement.get(console, console.options, table)

    def _exports(self, report: Report) -> Panel:
        rows = summary.export_rows(report.readiness)
        if not rows:
            return Panel(summary.EXPORTS_NOT_CHECKED, title="Export paths", title_align="left")
        table = Table(expand=True)
        table.add_column(summary.EXPORT_COLUMNS[0], overflow="fold")
        table.add_column(summary.EXPORT_COLUMNS[1], no_wrap=True)
        table.add_column(summary.EXPORT_COLUMNS[2], overflow="fold")
        for path, status, detail in rows:
            table.add_row(path, Text(status, style=_EXPORT_STYLE.get(status, "")), detail)
        return Panel(table, title="Export paths (a tiny model converted and run in each target runtime)",
                     title_align="left")

    def _findings(self, report: Report) -> Panel:
        if not report.findings:
            return Panel(Text("No findings.", style="green"), title="Findings", title_align="left")
        parts: list[RenderableType] = []
        for finding in report.findings:
            parts.append(Hanging(Text(f"{finding.severity.upper():8}", style=_SEVERITY_STYLE[finding.severity]),
                                 Text.assemble((finding.code, "bold"), " ", finding.title)))
            parts += [Hanging(" " * 9, Text(f"evidence: {item}", style="dim")) for item in finding.evidence]
            if finding.fix:
                parts.append(Hanging(" " * 9, f"fix: {finding.fix}"))
        return Panel(Group(*parts), title=f"Findings ({len(report.findings)})", title_align="left")

    def _recommendation(self, report: Report) -> Panel:
        readiness, recommendation = report.readiness, report.recommendation
        parts: list[RenderableType] = [
            Text.assemble(("Readiness: ", "bold"), (readiness.status.upper(), _STATUS_STYLE[readiness.status]),
                          f"  {readiness.summary}"),
            Text(recommendation.summary)]
        for rank, choice in enumerate(recommendation.choices, 1):
            parts.append(Hanging(Text(f"{rank}. ", style="bold"), Text(
                f"{summary.DISPLAY_NAMES.get(choice.framework, choice.framework)} on {choice.device}", style="bold")))
            parts += [Hanging("   - ", reason) for reason in choice.reasons]
        if recommendation.next_steps:
            parts.append(Text("Next steps:", style="bold"))
            for step in recommendation.next_steps:
                parts.append(Hanging("   - ", step.reason + (":" if step.command else "")))
                if step.command:
                    parts.append(Hanging(" " * 7, step.command))
        if recommendation.goals:
            parts.append(Text("By goal (`auditor check --profile GOAL` for every requirement):", style="bold"))
            parts += goal_texts(recommendation.goals)
        if recommendation.goals_left_out:
            parts.append(Text(summary.goals_left_out_line(recommendation.goals_left_out), style="dim"))
        return Panel(Group(*parts), title="Recommendation", title_align="left")


def goal_texts(goals, indent: str = "") -> list[RenderableType]:
    """Each goal's recommendation, every line `indent` further in: the headline, its reasons,
    the alternatives, the next steps."""
    parts: list[RenderableType] = []
    for goal in goals:
        parts.append(Hanging(indent, Text(summary.goal_headline(goal), style=_GOAL_STYLE[goal.status])))
        parts += [Hanging(f"{indent}   - ", reason) for reason in goal.reasons]
        if goal.alternatives:
            parts.append(Hanging(f"{indent}   ", Text(f"others: {'; '.join(goal.alternatives)}", style="dim")))
        for step in goal.next_steps:
            parts.append(Hanging(f"{indent}   > ", step.reason + (f": {step.command}" if step.command else "")))
    return parts
