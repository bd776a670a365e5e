from __future__ import annotations

from auditor.decisions.diff import ReportDiff, VerdictChange
from auditor.redact import abbreviate_home, home_directory
from auditor.render.diff_base import DiffRenderer, other_heading, shown, side_line, status_word, subject


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


class DiffMarkdownRenderer(DiffRenderer):
    """The diff as Markdown (for pull requests and CI job summaries): the verdicts that differ and
    the configuration as tables, the other facts in a collapsed <details> block."""

    name = "markdown"

    def render(self, diff: ReportDiff) -> str:
        lines = ["# Audit diff", "", f"- **A**: {_cell(side_line(diff.a))}", f"- **B**: {_cell(side_line(diff.b))}",
                 ""]
        if diff.verdict_changes:
            lines += [f"## Verdicts that differ ({len(diff.verdict_changes)})", "",
                      "| What | A | B | Cause | Explained by |", "|---|---|---|---|---|"]
            lines += [self._verdict_row(diff, change) for change in diff.verdict_changes]
        else:
            lines.append("**No verdict differs.**")
        lines.append("")
        if diff.explaining:
            lines += [f"## Configuration that differs ({len(diff.explaining)})", "", "| Entry | A | B |",
                      "|---|---|---|"]
            lines += [f"| {_cell(change.label)} | {_cell(shown(change.a, change.absent_from == 'a'))} "
                      f"| {_cell(shown(change.b, change.absent_from == 'b'))} |" for change in diff.explaining]
        else:
            lines.append("No configuration differs.")
        lines.append("")
        if diff.other:
            lines += [f"<details><summary>{_cell(other_heading(diff))}</summary>", "", "| Fact | A | B |",
                      "|---|---|---|"]
            lines += [f"| `{_cell(change.path)}`{' (noise)' if change.noise else ''} "
                      f"| {_cell(shown(change.a, change.absent_from == 'a'))} "
                      f"| {_cell(shown(change.b, change.absent_from == 'b'))} |" for change in diff.other]
            lines += ["", "</details>"]
        elif diff.noise_hidden:
            lines.append(f"{other_heading(diff)}; `auditor diff --all` shows the list.")
        else:
            lines.append("No other fact differs.")
        # Facts quote paths (the interpreter, a module's file); a report shared in a pull request
        # should not carry the user's name.
        return abbreviate_home("\n".join(lines) + "\n", home_directory())

    @staticmethod
    def _verdict_row(diff: ReportDiff, change: VerdictChange) -> str:
        cause = [change.title] if change.kind in ("finding", "requirement") else []
        cause += [f"<sub>{line}</sub>" if change.kind in ("finding", "requirement") else line for line in change.cause]
        because = "\n".join(f"{entry.label}: {shown(entry.a, entry.absent_from == 'a')} → "
                             f"{shown(entry.b, entry.absent_from == 'b')}"
                             for entry in (diff.change(key) for key in change.explained_by))
        cells = (subject(change), status_word(change, change.a), status_word(change, change.b),
                 f"{change.side.upper()}: " + "\n".join(cause), because)
        return "| " + " | ".join(_cell(cell) for cell in cells) + " |"
