"""The fleet report's formats (`auditor fleet`): text, json, markdown, html. The summary first, then
one row per node, the fleet's findings, and the configuration groups."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod

from rich.console import RenderableType
from rich.text import Text

from auditor.decisions.fleet import FleetReport, NodeRow
from auditor.render.html_page import badge, bullets, document, esc, kv_table, prose, section, table
from auditor.render.text import Hanging, render_text

_MARK = {"ready": ("✓", "bold green"), "not-ready": ("✗", "bold red"), "unproven": ("?", "bold cyan"),
         None: ("!", "bold red")}
_SEVERITY_STYLE = {"error": "bold red", "warning": "bold yellow", "info": "cyan"}


class FleetRenderer(ABC):
    name: str

    @abstractmethod
    def render(self, fleet: FleetReport) -> str:
        """The whole document, ending with a newline."""


def _meta(fleet: FleetReport) -> str:
    return f"auditor {fleet.auditor_version} · fleet audit of {fleet.source} · {fleet.generated_at}"


def _node_facts(row: NodeRow) -> list[str]:
    """What a node is and what it is ready for, in reading order."""
    if row.status != "audited":
        return [f"not audited: {row.reason}"]
    facts = [f"group {row.group}", row.gpus or "no GPU", *([f"driver {row.driver}"] if row.driver else []),
             *(row.frameworks or ["no framework"])]
    facts += [f"{goal}: {status}" for goal, status in row.verdicts.items()]
    findings = [f"{count} {word}{'s' if count != 1 else ''}" for count, word in ((row.errors, "error"),
                                                                                (row.warnings, "warning")) if count]
    return facts + ([", ".join(findings)] if findings else [])


def _collective_line(fleet: FleetReport) -> str:
    proof = fleet.collective
    if proof is None:
        return ""
    outcome = "ok" if proof.ok else f"BROKEN: {proof.error}"
    speed = f", bus bandwidth {proof.busbw_gbps:.3g} GB/s" if proof.ok and proof.busbw_gbps else ""
    return (f"{proof.framework} {proof.backend} {proof.operation} across {proof.world_size} nodes: {outcome}{speed}")


class FleetTextRenderer(FleetRenderer):
    name = "text"

    def __init__(self, color: bool = False, width: int = 100):
        self.color = color
        self.width = width

    def render(self, fleet: FleetReport) -> str:
        parts: list[RenderableType] = [Hanging("", Text(_meta(fleet), style="dim")),
                                       Hanging("", Text(fleet.summary, style="bold")), Text(), Text("Nodes", style="bold")]
        room = min(max((len(row.name) for row in fleet.nodes), default=0), 24)
        for row in fleet.nodes:
            mark, style = _MARK[row.readiness]
            parts.append(Hanging(Text.assemble("  ", (mark, style), f" {row.name:<{room}}  "),
                                 " · ".join(_node_facts(row))))
        for goal in fleet.goals:
            parts.append(Hanging("  ", f"{goal.goal}: ready on {goal.ready} of {goal.audited} nodes"
                                       + (f" (not on {', '.join(goal.not_ready)})" if goal.not_ready else "")))
        if fleet.collective is not None:
            parts += [Text(), Hanging("", Text("Collective across the nodes", style="bold")),
                      Hanging("  ", _collective_line(fleet))]
        parts += [Text(), Text("Fleet findings", style="bold")]
        if not fleet.findings:
            parts.append(Hanging("  ", "none: every audited node has the same drivers, NCCL, frameworks and verdicts"))
        for finding in fleet.findings:
            parts.append(Hanging(Text.assemble("  ", (f"{finding.severity:<7}", _SEVERITY_STYLE[finding.severity]),
                                               f" {finding.code}  "), finding.title))
            parts += [Hanging("                  ", Text(line, style="dim")) for line in finding.evidence]
            if finding.fix:
                parts.append(Hanging("                  fix: ", finding.fix))
        parts += [Text(), Text("Configurations", style="bold")]
        for group in fleet.groups:
            parts.append(Hanging(f"  group {group.number}: ", ", ".join(group.nodes)))
            parts += [Hanging("      ", f"{label}: {value}") for label, value in group.differs.items()]
        if fleet.common:
            parts.append(Hanging("  alike on every audited node: ",
                                 "; ".join(f"{label} {value}" for label, value in fleet.common.items())))
        return render_text(parts, self.color, self.width)


class FleetJsonRenderer(FleetRenderer):
    name = "json"

    def render(self, fleet: FleetReport) -> str:
        return json.dumps(fleet.to_dict(), indent=2, allow_nan=False) + "\n"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", "<br>")


class FleetMarkdownRenderer(FleetRenderer):
    name = "markdown"

    def render(self, fleet: FleetReport) -> str:
        goals = [goal.goal for goal in fleet.goals]
        lines = ["# Fleet audit", "", f"_{_cell(_meta(fleet))}_", "", f"**{_cell(fleet.summary)}**", "",
                 "## Nodes", "", "| Node | Group | GPUs | Driver | Frameworks | " + " | ".join(map(_cell, goals)) + " |",
                 "|---" * (5 + len(goals)) + "|"]
        for row in fleet.nodes:
            if row.status != "audited":
                lines.append(f"| {_cell(row.name)} | not audited: {_cell(row.reason)} |" + " |" * (3 + len(goals)))
                continue
            lines.append(f"| {_cell(row.name)} | {row.group} | {_cell(row.gpus or 'none')} | {_cell(row.driver or '')} | "
                         f"{_cell('<br>'.join(row.frameworks))} | "
                         + " | ".join(_cell(row.verdicts.get(goal, "")) for goal in goals) + " |")
        if fleet.collective is not None:
            lines += ["", "## Collective across the nodes", "", _cell(_collective_line(fleet))]
        lines += ["", "## Fleet findings", ""]
        if not fleet.findings:
            lines.append("None: every audited node has the same drivers, NCCL, frameworks and verdicts.")
        for finding in fleet.findings:
            lines += [f"- **{finding.severity} {finding.code}** {_cell(finding.title)}",
                      *(f"  - {_cell(line)}" for line in finding.evidence),
                      *([f"  - Fix: {_cell(finding.fix)}"] if finding.fix else [])]
        lines += ["", "## Configurations", ""]
        for group in fleet.groups:
            lines.append(f"- **Group {group.number}**: {_cell(', '.join(group.nodes))}")
            lines += [f"  - {_cell(label)}: {_cell(value)}" for label, value in group.differs.items()]
        if fleet.common:
            lines += ["", "<details><summary>Alike on every audited node</summary>", "",
                      *(f"- {_cell(label)}: {_cell(value)}" for label, value in fleet.common.items()), "", "</details>"]
        return "\n".join(lines) + "\n"


class FleetHtmlRenderer(FleetRenderer):
    name = "html"

    def render(self, fleet: FleetReport) -> str:
        goals = [goal.goal for goal in fleet.goals]
        rows = []
        for row in fleet.nodes:
            if row.status != "audited":
                rows.append([f"<code>{esc(row.name)}</code>", badge("error"), esc(f"not audited: {row.reason}"), "", "",
                             *("" for _ in goals)])
                continue
            rows.append([f"<code>{esc(row.name)}</code>", badge(row.readiness or "unproven"), esc(row.group),
                         esc(row.gpus or "none") + (f"<br>driver {esc(row.driver)}" if row.driver else ""),
                         "<br>".join(esc(fw) for fw in row.frameworks),
                         *(badge(row.verdicts[goal]) if goal in row.verdicts else "" for goal in goals)])
        body = [f'<p class="answer"><strong>{esc(fleet.summary)}</strong></p>',
                section("nodes", "Nodes", table(("Node", "Readiness", "Group", "GPUs", "Frameworks", *goals), rows))]
        if fleet.collective is not None:
            body.append(section("collective", "Collective across the nodes", f"<p>{esc(_collective_line(fleet))}</p>"))
        cards = "".join(
            f'<div class="card t-{"bad" if f.severity == "error" else "warn"}" data-code="{esc(f.code)}">'
            f"<h3>{badge(f.severity)} <code>{esc(f.code)}</code> {esc(f.title)}</h3>"
            f'{bullets((esc(line) for line in f.evidence), "evidence")}'
            + (f"<p>Fix: {prose(f.fix)}</p>" if f.fix else "") + "</div>" for f in fleet.findings)
        body.append(section("findings", "Fleet findings", cards or "<p>None: every audited node has the same drivers, "
                                                                    "NCCL, frameworks and verdicts.</p>"))
        groups = "".join(f"<h3>Group {group.number}: {esc(', '.join(group.nodes))}</h3>"
                         + (kv_table(group.differs.items()) if group.differs else "") for group in fleet.groups)
        if fleet.common:
            groups += f"<h3>Alike on every audited node</h3>{kv_table(fleet.common.items())}"
        body.append(section("configurations", "Configurations", groups))
        return document("Fleet audit", _meta(fleet), "\n".join(body), fleet.to_dict())


FLEET_FORMATS: dict[str, type[FleetRenderer]] = {
    cls.name: cls for cls in (FleetTextRenderer, FleetJsonRenderer, FleetMarkdownRenderer, FleetHtmlRenderer)}
