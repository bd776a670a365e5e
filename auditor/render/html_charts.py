"""The HTML report's two charts, as inline SVG bars beside HTML text (which wraps on a phone,
where text inside a scaled SVG would shrink): measured throughput against each device's
peak, and the timeline of the probes."""

from __future__ import annotations

from auditor.facts import ProbeRun
from auditor.names import DISPLAY_NAMES
from auditor.peaks import percent
from auditor.render.html_page import badge, esc, section, tone

_BAR = '<svg class="bar" role="img" aria-label="{label}">{rects}</svg>'


def _rect(css: str, x: float, width: float, extra: str = "") -> str:
    return f'<rect class="{css}" x="{x:.2f}%" width="{width:.2f}%" height="100%" rx="3"{extra}/>'


def _row(label: str, bar: str, value: str, note: str = "") -> str:
    note = f'<div class="row-note">{note}</div>' if note else ""
    return f'<div class="row"><div class="row-label">{label}</div>{bar}<div class="row-value">{value}</div>{note}</div>'


def throughput_chart(figures: list) -> str:
    """One row per figure (auditor.peaks.ThroughputFigure): the device's peak as the track and
    the achieved GFLOP/s on it, or, without a known peak, the achieved bar alone, drawn to the
    largest such figure."""
    if not figures:
        return section("throughput", "Throughput against peak",
                       '<p class="note">No matmul was timed in this audit.</p>')
    unknown_scale = max((f.gflops for f in figures if f.peak is None), default=0.0) or 1.0
    rows = []
    for index, figure in enumerate(figures):
        framework = DISPLAY_NAMES.get(figure.framework, figure.framework)
        name = " · ".join(part for part in (framework, figure.device, figure.dtype, figure.compiler) if part)
        mark, peak = f' data-figure="{index}"', figure.peak
        if peak is None:
            rects = _rect("bar-achieved peak-unknown", 0, 100 * figure.gflops / unknown_scale, mark)
            value = f"{figure.gflops:,.0f} GFLOP/s, peak unknown"
        else:
            rects = _rect("bar-peak", 0, 100) + _rect("bar-achieved", 0, min(100 * figure.fraction, 100), mark)
            value = f"{figure.gflops:,.0f} of {peak.gflops:,.0f} GFLOP/s ({percent(figure.fraction)})"
        notes = [(f"peak of {peak.device}" + ("" if peak.rate in peak.device else f", {peak.rate}")) if peak else "",
                 f"{figure.threads} thread(s)" if figure.threads else "",
                 "timed while other probes ran" if figure.measured_alone is False else ""]
        rows.append(_row(f"<strong>{esc(name)}</strong>", _BAR.format(label=esc(f"{name}: {value}"), rects=rects),
                         esc(value), esc("; ".join(n for n in notes if n))))
    note = ('<p class="note">Each bar is a timed matmul on the track of its device\'s peak in that dtype. A figure '
            "whose peak is unknown shows its achieved bar alone, drawn to the largest such figure.</p>")
    return section("throughput", "Throughput against peak",
                   note + f'<div class="chart throughput">{"".join(rows)}</div>')


def probe_timeline(probes: list[ProbeRun]) -> str:
    """Each probe's start and duration on one time axis; where the snapshot recorded no start
    times (those older than 1.6), every bar starts at 0."""
    if not probes:
        return section("timeline", "Probe timeline", '<p class="note">This snapshot records no probe.</p>')
    # A probe that never started (its tool is not installed) has no start even in a 1.6 snapshot.
    recorded = any(run.started_s is not None for run in probes)
    starts = [run.started_s or 0.0 for run in probes]
    total = max(start + run.duration_s for start, run in zip(starts, probes)) or 1.0
    rows = []
    for start, run in zip(starts, probes):
        at = f"at {start:.2f} s, " if run.started_s is not None else ""
        rect = _rect(f"bar-probe {tone(run.status)}", 100 * start / total, max(100 * run.duration_s / total, 0.4),
                     f' data-probe="{esc(run.name)}"')
        rows.append(_row(f"<strong>{esc(run.name)}</strong> {badge(run.status)}",
                         _BAR.format(label=esc(f"{run.name}: {at}{run.duration_s:.2f} s"),
                                     rects=_rect("track", 0, 100) + rect),
                         esc(f"{at}{run.duration_s:.2f} s"), esc(run.reason or "")))
    note = (f"Each bar starts when its probe did, in seconds since the audit began, and lasts as long as it ran; "
            f"the axis ends at {total:.2f} s." if recorded else
            "Start times were not recorded in this snapshot: every bar starts at 0.")
    return section("timeline", "Probe timeline",
                   f'<p class="note">{esc(note)}</p><div class="chart timeline">{"".join(rows)}</div>')
