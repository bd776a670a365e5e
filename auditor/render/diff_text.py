from __future__ import annotations

import io

from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from auditor.decisions.diff import FactChange, ReportDiff, VerdictChange
from auditor.render.diff_base import DiffRenderer, other_heading, shown, side_line, status_word, subject
from auditor.render.text import Hanging, render_text

_STATUS_STYLE = {"not-ready": "bold red", "fail": "bold red", "error": "bold red", "warning": "yellow",
                 "warn": "yellow", "not-checked": "cyan", "unproven": "yellow", "ready": "green", "pass": "green"}
_INDENT = "    "


class DiffTextRenderer(DiffRenderer):
    """`auditor diff` for a person at a terminal: the verdicts that differ with their causes, the
    configuration that differs as a table, then the rest: counted, or with ``expanded`` (--all)
    listed, noise last. A wrapped line keeps the indent of the line it continues."""

    name = "text"

    def __init__(self, color: bool = False, width: int = 100, expanded: bool = False):
        self.color = color
        self.width = width
        self.expanded = expanded

    def render(self, diff: ReportDiff) -> str:
        parts: list[RenderableType] = [Text("auditor diff", style="bold"), Hanging("A  ", side_line(diff.a)),
                                       Hanging("B  ", side_line(diff.b)), Text()]
        parts += self._verdicts(diff)
        parts.append(Text())
        parts += self._configuration(diff)
        parts.append(Text())
        parts += self._other(diff)
        # A table pads its last column to the widest cell; a line's trailing blanks are no use to anyone.
        return "".join(f"{line.rstrip()}\n" for line in render_text(parts, self.color, self.width).splitlines())

    def _verdicts(self, diff: ReportDiff) -> list[RenderableType]:
        if not diff.verdict_changes:
            return [Text("No verdict differs.", style="bold green")]
        parts: list[RenderableType] = [Text(f"Verdicts that differ ({len(diff.verdict_changes)})", style="bold")]
        for change in diff.verdict_changes:
            parts.append(Hanging("", Text.assemble(
                (subject(change), "bold"), ": ", self._status(change, change.a), " on A, ",
                self._status(change, change.b), " on B")))
            parts += self._cause(change)
            parts += self._explanation(diff, change)
        return parts

    @staticmethod
    def _status(change: VerdictChange, status) -> tuple[str, str]:
        return status_word(change, status), _STATUS_STYLE.get(status, "dim")

    @staticmethod
    def _cause(change: VerdictChange) -> list[RenderableType]:
        side = change.side.upper()
        if change.kind in ("finding", "requirement"):  # what it is there, then the facts it rests on
            return [Hanging(f"{_INDENT}{side}: ", change.title),
                    *(Hanging(f"{_INDENT}evidence: ", Text(line, style="dim")) for line in change.cause)]
        return [Hanging(f"{_INDENT}{side}: ", line) for line in change.cause]

    @staticmethod
    def _explanation(diff: ReportDiff, change: VerdictChange) -> list[RenderableType]:
        marker = f"{_INDENT}explained by: "
        if not change.explained_by:
            return [Hanging(marker, Text("nothing in the configuration; `--all` lists every other fact that differs",
                                         style="dim"))]
        entries = [diff.change(key) for key in change.explained_by]
        if change.kind in ("goal", "readiness"):  # its findings and requirements, listed with it, give the values
            return [Hanging(marker, ", ".join(entry.label for entry in entries))]
        return [Hanging(marker if index == 0 else " " * len(marker),
                        f"{entry.label} {shown(entry.a, entry.absent_from == 'a')} → "
                        f"{shown(entry.b, entry.absent_from == 'b')}")
                for index, entry in enumerate(entries)]

    def _configuration(self, diff: ReportDiff) -> list[RenderableType]:
        if not diff.explaining:
            return [Text("No configuration differs.", style="bold green")]
        table = self._configuration_table(diff, shared=False)
        console = Console(file=io.StringIO(), width=self.width, markup=False)
        if Measurement.get(console, console.options, table).maximum > self.width:
            # Too wide for its values side by side: A and B share the room left equally, so that
            # neither wraps while the other has room to spare.
            table = self._configuration_table(diff, shared=True)
        return [Text(f"Configuration that differs ({len(diff.explaining)})", style="bold"), table]

    @staticmethod
    def _configuration_table(diff: ReportDiff, shared: bool) -> Table:
        table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold", expand=shared)
        table.add_column("", overflow="fold")
        for header in ("A", "B"):
            table.add_column(header, overflow="fold", ratio=1 if shared else None)
        for change in diff.explaining:
            table.add_row(change.label, shown(change.a, change.absent_from == "a"),
                          shown(change.b, change.absent_from == "b"))
        return table

    def _other(self, diff: ReportDiff) -> list[RenderableType]:
        if not diff.other and not diff.noise_hidden:
            return [Text("No other fact differs.")]
        if not self.expanded:
            return [Hanging("", Text(f"{other_heading(diff)}; `--all` shows the list.", style="dim"))]
        facts = [change for change in diff.other if not change.noise]
        noise = [change for change in diff.other if change.noise]
        parts: list[RenderableType] = [Hanging("", Text(other_heading(diff), style="bold"))]
        parts += [line for change in facts for line in self._fact(change)]
        if noise:
            parts.append(Text(f"Noise ({len(noise)}): what changes from run to run on one machine", style="bold"))
            parts += [line for change in noise for line in self._fact(change, style="dim")]
        return parts

    @staticmethod
    def _fact(change: FactChange, style: str = "") -> list[RenderableType]:
        return [Hanging("", Text(change.path, style=style or "bold")),
                Hanging(f"{_INDENT}A  ", Text(shown(change.a, change.absent_from == "a"), style=style)),
                Hanging(f"{_INDENT}B  ", Text(shown(change.b, change.absent_from == "b"), style=style))]
