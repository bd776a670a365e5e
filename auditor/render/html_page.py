"""The page both HTML formats share: one self-contained document (inline CSS and SVG, no script
that runs, nothing fetched), its small building blocks, and the report embedded as JSON.

Every string from the report goes through `esc` (or a helper that calls it) before it is
written: a GPU name or a probe's reason is text, never markup.
"""

from __future__ import annotations

import html
import json
from typing import Any, Iterable, Optional

# Only what the inline <style> needs: no script, no image, no font, no connection.
CSP = "default-src 'none'; style-src 'unsafe-inline'"

# Each status word the report uses, by the colour it is shown in; any other word is neutral.
_TONES = {
    "good": ("ready", "pass", "ok"),
    "warn": ("warning", "warn", "unproven", "not-installed", "skipped", "timeout"),
    "bad": ("not-ready", "fail", "broken", "error", "not-importable", "crashed"),
    "info": ("not-checked", "info"),
}
TONE = {status: tone for tone, statuses in _TONES.items() for status in statuses}

_CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--panel:#f6f8fa;
--good:#1a7f37;--good-bg:#dafbe1;--warn:#9a6700;--warn-bg:#fff8c5;--bad:#cf222e;--bad-bg:#ffebe9;
--info:#0969da;--info-bg:#ddf4ff;--none:#59636e;--none-bg:#eff2f5}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;color:var(--fg);background:#fff;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
overflow-wrap:break-word}
main{max-width:62rem;margin:0 auto;padding:1rem 1rem 3rem}
h1{font-size:1.6rem;margin:.5rem 0 0}
h2{font-size:1.25rem;margin:2.2rem 0 .6rem;padding-bottom:.3rem;border-bottom:1px solid var(--line)}
h3{font-size:1.05rem;margin:1.4rem 0 .4rem}
p,ul,ol{margin:.4rem 0}
ul,ol{padding-left:1.3rem}
code{font:.86em/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--panel);
padding:.05em .3em;border-radius:4px;overflow-wrap:anywhere}
code.cmd{display:block;margin:.25rem 0;padding:.35rem .6rem;white-space:pre-wrap;border:1px solid var(--line)}
.meta,.note{color:var(--muted);font-size:.88rem}
.evidence{color:var(--muted);font-size:.9rem}
.badge{display:inline-block;min-width:4.2rem;padding:0 .5em;border:1px solid;border-radius:1em;font-size:.78rem;
font-weight:600;line-height:1.5;text-align:center;white-space:nowrap;vertical-align:.08em}
.t-good{color:var(--good);background:var(--good-bg)}
.t-warn{color:var(--warn);background:var(--warn-bg)}
.t-bad{color:var(--bad);background:var(--bad-bg)}
.t-info{color:var(--info);background:var(--info-bg)}
.t-none{color:var(--none);background:var(--none-bg)}
.answer{font-size:1.15rem;font-weight:600;margin:1rem 0 .4rem;padding:.7rem 1rem;border-left:4px solid var(--info);
background:var(--panel);border-radius:0 6px 6px 0}
ul.areas{list-style:none;padding:0;margin:0}
li.area{display:grid;grid-template-columns:7.5rem minmax(0,1fr);gap:.15rem .8rem;padding:.3rem 0;
border-bottom:1px solid var(--line)}
li.area .kind{color:var(--muted);font-size:.8rem}
li.area .fact::before{content:"\\2014\\a0"}
li.area .area-cmd{display:inline-block;max-width:100%;margin-left:.3rem}
.card{margin:.7rem 0;padding:.6rem .9rem;border:1px solid var(--line);border-left:4px solid var(--none);border-radius:6px;
color:inherit;background:#fff}
.card.t-good{border-left-color:var(--good)}.card.t-warn{border-left-color:var(--warn)}
.card.t-bad{border-left-color:var(--bad)}.card.t-info{border-left-color:var(--info)}
.card h3,.card h4{margin:0 0 .2rem;font-size:1rem}
.scroll{overflow-x:auto}
table{width:100%;border-collapse:collapse;font-size:.92rem}
th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;border-bottom:1px solid var(--line);overflow-wrap:anywhere}
th{font-weight:600;white-space:nowrap}
td>code:only-child{overflow-wrap:normal;white-space:nowrap}
table.kv th{width:1%;white-space:nowrap}
.chart{margin:.6rem 0}
.row{display:grid;grid-template-columns:minmax(0,15rem) minmax(0,1fr) minmax(0,13rem);gap:.1rem .8rem;align-items:center;
padding:.3rem 0;border-bottom:1px solid var(--line)}
.timeline .row{grid-template-columns:minmax(0,12rem) minmax(0,1fr) 10rem;padding:.15rem 0}
.throughput .row{grid-template-columns:minmax(0,1fr) auto}
.throughput .row svg.bar{grid-column:1/-1;grid-row:2;height:18px}
.row .badge{min-width:0;margin-left:.3rem}
.row-value{font-size:.85rem;font-variant-numeric:tabular-nums;white-space:nowrap}
.row-note{grid-column:1/-1;color:var(--muted);font-size:.82rem;overflow-wrap:anywhere}
svg.bar{display:block;width:100%;height:14px}
svg.bar .track{fill:var(--none-bg)}
svg.bar .bar-peak{fill:#d8dee4}
svg.bar .bar-achieved{fill:var(--info)}
svg.bar .peak-unknown{fill:#8c959f}
svg.bar .bar-probe{fill:var(--good)}
svg.bar .bar-probe.t-warn{fill:#bf8700}
svg.bar .bar-probe.t-bad{fill:var(--bad)}
svg.bar .bar-probe.t-none{fill:#8c959f}
footer{margin-top:3rem;color:var(--muted);font-size:.82rem}
@media (max-width:40rem){
main{padding:.75rem .75rem 2rem}
li.area{grid-template-columns:6.4rem minmax(0,1fr);gap:0 .5rem}
li.area .badge{min-width:0;font-size:.7rem}
.answer{font-size:1.02rem;padding:.6rem .75rem}
ul,ol{padding-left:1.1rem}
.row{grid-template-columns:minmax(0,1fr)}
.timeline .row{grid-template-columns:minmax(0,1fr) auto}
.timeline .row svg.bar{grid-column:1/-1;grid-row:2}
.throughput .row{grid-template-columns:minmax(0,1fr)}
.throughput .row svg.bar{grid-row:auto}
table.stack thead{display:none}
table.stack tr{display:block;padding:.35rem 0;border-bottom:1px solid var(--line)}
table.stack td{display:block;padding:.1rem 0;border:0}
table.stack td:empty{display:none}
td>code:only-child{white-space:normal;overflow-wrap:anywhere}
table.stack td[data-label]::before{content:attr(data-label) ": ";font-weight:600;color:var(--muted)}
table.kv th,table.kv td{display:block;width:auto;padding:.1rem 0;border:0;white-space:normal}
table.kv tr{display:block;padding:.3rem 0;border-bottom:1px solid var(--line)}
}
@page{margin:1.5cm}
@media print{
body{font-size:10.5pt;background:#fff}
main{max-width:none;padding:0}
.answer,code,code.cmd{background:#fff}
h2,h3{break-after:avoid}
li.area,.card,.row,tr,code.cmd{break-inside:avoid}
section{break-before:auto}
}
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def tone(status: str) -> str:
    return "t-" + TONE.get(status, "none")


def badge(status: str) -> str:
    return f'<span class="badge {tone(status)}">{esc(status.replace("-", " "))}</span>'


def prose(text: str) -> str:
    """Escaped text whose `backticked` spans (commands, flags) are set as code."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: the text stays as it was written
        return esc(text)
    return "".join(f"<code>{esc(part)}</code>" if index % 2 else esc(part) for index, part in enumerate(parts))


def command(text: Optional[str]) -> str:
    return f'<code class="cmd">{esc(text)}</code>' if text else ""


def bullets(texts: Iterable[str], css: str = "") -> str:
    """A list of pre-formatted items; nothing when there are none."""
    items = "".join(f"<li>{text}</li>" for text in texts)
    return f'<ul class="{css}">{items}</ul>' if items else ""


def table(columns: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    """A table of pre-formatted cells; on a narrow screen each row becomes a block of labelled lines."""
    columns = list(columns)
    head = "".join(f"<th>{esc(column)}</th>" for column in columns)
    body = "".join("<tr>" + "".join(f'<td data-label="{esc(column)}">{cell}</td>' for column, cell in zip(columns, row))
                   + "</tr>" for row in rows)
    return f'<div class="scroll"><table class="stack"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def kv_table(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{esc(label)}</th><td>{esc(value)}</td></tr>" for label, value in rows)
    return f'<table class="kv"><tbody>{body}</tbody></table>'


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def embedded_json(data: Any) -> str:
    """The report for machines to read back. `<`, `>` and `&` occur only inside JSON strings,
    where \\u escapes mean the same characters, so no value can close the element."""
    text = json.dumps(data, allow_nan=False)
    text = text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return f'<script type="application/json" id="auditor-report">{text}</script>'


def document(title: str, meta: str, body: str, data: Any) -> str:
    """The whole page: `body` is pre-formatted HTML, `data` the JSON report it shows."""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n'
            f'<header><h1>{esc(title)}</h1><p class="meta">{esc(meta)}</p></header>\n{body}\n'
            '<footer>The full report is embedded in this file as JSON '
            '(<code>script#auditor-report</code>) for tools to read back.</footer>\n'
            f'</main>\n{embedded_json(data)}\n</body>\n</html>\n')
