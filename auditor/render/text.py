from __future__ import annotations

import io
import re
from typing import Iterable, Optional

from rich.align import Align
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from auditor.facts import CollectiveProof
from auditor.names import DISPLAY_NAMES
from auditor.render import summary
from auditor.render.base import Renderer
from auditor.report import Report

_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
_STATUS_STYLE = {"ready": "bold green", "not-ready": "bold red", "unproven": "bold yellow"}
_GOAL_STYLE = {"ready": "green", "not-ready": "yellow", "not-checked": "cyan"}
_STATE_STYLE = {"ready": "bold green", "warning": "bold yellow", "not-ready": "bold red", "not-checked": "bold cyan",
                "not-applicable": "dim"}
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
        room = max(options.max_width - indent, 1)
        lines = (_wrap_keeping_commands(self.body, room) if "`" in self.body.plain
                 else self.body.wrap(console, room, overflow="fold"))
        for index, line in enumerate(lines):
            line.rstrip()
            yield Text.assemble(self.marker if index == 0 else " " * indent, line)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        body = Measurement.get(console, options, self.body)
        return Measurement(body.minimum + self.marker.cell_len, body.maximum + self.marker.cell_len)


def _wrap_keeping_commands(body: Text, room: int) -> list[Text]:
    """Word-wrap ``body`` keeping each `backticked command` on one line, so that it can be copied
    whole; a command wider than the room starts a line of its own and is folded there."""
    lines, current = [], ""
    for token in re.findall(r"`[^`]*`\S*|\S+", body.plain):
        candidate = f"{current} {token}" if current else token
        if len(candidate) <= room:
            current = candidate
            continue
        if current:
            lines.append(current)
        while len(token) > room:
            lines.append(token[:room])
            token = token[room:]
        current = token
    if current:
        lines.append(current)
    return [Text(line, style=body.style) for line in lines]


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
            *self._first_screen(report),
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
            parts += [self._proofs(report), self._throughput(report), self._exports(report)]
        if snapshot.collectives is not None:
            parts.append(self._collectives(snapshot.collectives))
        parts += [self._findings(report), self._recommendation(report)]
        return render_text(parts, self.color, self.width)

    def _first_screen(self, report: Report) -> list[RenderableType]:
        """One line per area, then the answer: what a reader needs before any detail."""
        areas = report.recommendation.areas
        room = min(max((len(line.name) for line in areas), default=0), 22)
        parts: list[RenderableType] = []
        for line in areas:
            marker = Text.assemble((summary.STATE_MARKS[line.state], _STATE_STYLE[line.state]),
                                   f" {line.name.ljust(room)}  ")
            room_left = self.width - marker.cell_len
            if not line.command or len(summary.area_fact(line)) <= room_left:
                parts.append(Hanging(marker, summary.area_fact(line)))
            elif len(line.command) + 2 <= room_left and line.state in ("not-ready", "not-checked") and \
                    line.area != "goal":  # a goal's is in the answer; a warning's under Next steps
                # A command is copied whole: it starts a line of its own rather than break.
                parts += [Hanging(marker, line.fact), Hanging(" " * marker.cell_len, f"`{line.command}`")]
            else:  # too long to copy from a summary line: it is under Next steps, or in the answer
                parts.append(Hanging(marker, line.fact))
        parts.append(Hanging(Text("Answer: ", style="bold"), Text(report.recommendation.summary, style="bold")))
        return parts

    def _throughput(self, report: Report) -> Panel:
        rows, bases = summary.throughput_rows(report.throughput)
        if not rows:
            return Panel(Text("No matmul was timed."), title="Speed against the device's peak", title_align="left")
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
        for label, speed in rows:
            table.add_row(label, speed)
        parts: list[RenderableType] = [table]
        parts += [Hanging(Text("peak ", style="dim"), Text(basis, style="dim")) for basis in bases]
        return Panel(Group(*parts), title="Speed against the device's peak", title_align="left")

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
            if column in ("Workloads", summary.RESULT_COLUMN):  # lists and failure messages wrap
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
            return Panel(summary.exports_not_checked(report.recommendation), title="Export paths", title_align="left")
        table = Table(expand=True)
        table.add_column(summary.EXPORT_COLUMNS[0], overflow="fold")
        table.add_column(summary.EXPORT_COLUMNS[1], no_wrap=True)
        table.add_column(summary.EXPORT_COLUMNS[2], overflow="fold")
        for path, status, detail in rows:
            table.add_row(path, Text(status, style=_EXPORT_STYLE.get(status, "")), detail)
        return Panel(table, title="Export paths (a tiny model converted and run in each target runtime)",
                     title_align="left")

    def _collectives(self, collectives: list[CollectiveProof]) -> Panel:
        title = "Collective proofs (an all_reduce checked against its exact sum)"
        if not collectives:
            return Panel("No framework could run a collective.", title=title, title_align="left")
        table = Table(expand=True)
        for column in COLLECTIVE_COLUMNS:  # names and numbers are never cut; the result, at length, wraps
            table.add_column(column, overflow="fold", no_wrap=column in ("Framework", "Ranks"))
        for row in collective_rows(collectives):
            table.add_row(*row)
        return Panel(table, title=title, title_align="left")

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
                          f"  {readiness.summary}")]
        if recommendation.goals:
            parts.append(Text(f"By goal (`{recommendation.check_command} --profile GOAL` for every requirement):",
                              style="bold"))
            parts += goal_texts(recommendation.goals)
        if recommendation.next_steps:
            parts.append(Text("Next steps:", style="bold"))
            parts += [Hanging(f"{rank:>2}. ", summary.step_text(step)) for rank, step in
                      enumerate(recommendation.next_steps, 1)]
        if recommendation.goals_left_out:
            parts.append(Text(summary.goals_left_out_line(recommendation), style="dim"))
        return Panel(Group(*parts), title="Recommendation", title_align="left")


COLLECTIVE_COLUMNS = ("Framework", "Backend", "Ranks", "Result", "Bus bandwidth")
RESULT_COLUMN = "Result"


def collective_rows(collectives: list[CollectiveProof]) -> list[tuple[str, str, str, str, str]]:
    """One row per collective proof, for every format: framework, backend, world size, whether it
    gave the exact sum (or why not), and its bus bandwidth with what it was timed on."""
    rows = []
    for proof in collectives:
        if proof.ok:
            result = "ok"
            bandwidth = (f"{proof.busbw_gbps:g} GB/s ({proof.bytes / 2**20:g} MiB in {proof.seconds * 1e3:.3g} ms)"
                         if proof.busbw_gbps is not None and proof.bytes and proof.seconds else "")
        else:
            result = f"skipped: {proof.skipped}" if proof.skipped else f"broken: {proof.error}"
            bandwidth = ""
        rows.append((DISPLAY_NAMES.get(proof.framework, proof.framework), proof.backend, str(proof.world_size),
                     result, bandwidth))
    return rows


def goal_texts(goals, indent: str = "") -> list[RenderableType]:
    """Each goal's recommendation, every line `indent` further in: the headline, its reasons, the
    alternatives, and what blocks it (the steps themselves are listed once, under Next steps)."""
    parts: list[RenderableType] = []
    for goal in goals:
        parts.append(Hanging(indent, Text(summary.goal_headline(goal), style=_GOAL_STYLE[goal.status])))
        parts += [Hanging(f"{indent}   - ", reason) for reason in goal.reasons]
        if goal.blocker:
            parts.append(Hanging(f"{indent}   ✗ ", f"blocked: {goal.blocker}"))
        if goal.alternatives:
            parts.append(Hanging(f"{indent}   ", Text(f"others: {'; '.join(goal.alternatives)}", style="dim")))
    return parts
