"""The report's first screen, in flutter doctor's style: one line per framework, accelerator, export
path and goal, each with its state and the one fact that decides it.

Every line is drawn from decisions already made (readiness, findings, the goal answers), so the
first screen cannot disagree with the details below it. A fact is kept short: the line is a
verdict, the details follow.
"""

from __future__ import annotations

from collections import Counter
from typing import Optional

from auditor.checks.base import SEVERITY_RANK, Finding
from auditor.decisions.commands import audited_python
from auditor.decisions.readiness import AreaLine, FrameworkReadiness, GoalRecommendation, command_in
from auditor.names import DISPLAY_NAMES
from auditor.peaks import percent
from auditor.report import Report

# Findings that say an accelerator cannot be used, by the accelerator family they concern.
# A framework's own findings (FW006 a CPU-only build, FW007 a GPU it cannot see) are on its line.
ACCELERATOR_CODES = {"nvidia": ("GPU001", "GPU002", "GPU003", "GPU004", "GPU005", "GPU007", "GPU008", "GPU010", "DRV",
                                "ARC"),
                     "amd": ("GPU006", "ROC"), "tpu": ("TPU",), "apple": ("PLT002", "PLT003"), "jetson": ("GPU009",)}


# Findings about the audited Python itself: no framework publishes wheels for it, or the shell's
# active environment is another one.
PYTHON_CODES = ("ENV006", "ENV007")


def _python_lines(report: Report) -> list[AreaLine]:
    """The audited interpreter, when it is not the auditor's own or a finding concerns it: on the
    first screen, the reader sees which environment every line below is about."""
    python = report.snapshot.machine.python
    worst = _worst([f for f in report.findings if f.code in PYTHON_CODES])
    if python is None or (worst is None and audited_python(report.snapshot) is None):
        return []
    where = f"{python.environment} {python.environment_path}" if python.environment_path else python.executable
    fact = f"{python.version} ({where})" + (f"; {worst.code}" if worst else "")
    return [AreaLine("python", "Python", "warning" if worst else "ready", fact, _command(worst))]


def _framework_lines(report: Report) -> list[AreaLine]:
    lines = []
    quick = report.snapshot.mode == "quick"
    for fw in report.readiness.frameworks:
        # The version leads the fact, so the name column stays narrow ("2.21.0-dev20250729" is long).
        name, version = DISPLAY_NAMES.get(fw.framework, fw.framework), f"{fw.version}: " if fw.version else ""
        worst = _worst([f for f in report.findings if f.framework == fw.framework])
        if fw.status == "ready":
            # Proven, with the code of the check a warning comes from: its title is below, in the findings.
            fact = _proven(fw, report.throughput) + (f"; {worst.code}" if worst else "")
            lines.append(AreaLine("framework", name, "warning" if worst else "ready", version + fact, _command(worst)))
        elif fw.status == "unproven":
            lines.append(AreaLine("framework", name, "not-checked", version + (
                "installed; not imported (--quick)" if quick else "installed; no proof recorded here"), "auditor audit"))
        else:
            fact = f"{worst.code}: {worst.title}" if worst else fw.reason
            lines.append(AreaLine("framework", name, "not-ready", version + fact, _command(worst)))
    if not report.readiness.frameworks:
        nothing = next((f for f in report.findings if f.code == "FW012"), None)
        lines.append(AreaLine("framework", "ML frameworks", "not-ready", "none installed (PyTorch, TensorFlow, JAX)",
                              _command(nothing)))
    return lines


def _proven(fw: FrameworkReadiness, figures: list) -> str:
    """'proven on cuda:0, cuda:1, fp32 at 76% of peak': the accelerators, else the CPU, and the speed
    of the first of them, as a share of its peak when that is known."""
    ready = [d for d in fw.devices if d.status == "ready"]
    shown = [d for d in ready if d.kind != "cpu"] or ready
    fact = f"proven on {', '.join(d.device for d in shown)}"
    speed = next((f for f in figures if f.framework == fw.framework and f.device == shown[0].device
                  and f.dtype == "float32" and f.compiler is None), None)
    if speed and speed.peak:
        fact += f", fp32 at {percent(speed.fraction)} of peak"
    elif speed:
        fact += f", fp32 {speed.gflops:,.0f} GFLOP/s"
    return fact


def _accelerator_lines(report: Report) -> list[AreaLine]:
    snapshot, findings = report.snapshot, report.findings
    acc = snapshot.accelerators
    used = {d.kind for fw in report.readiness.frameworks if fw.status == "ready" for d in fw.ready_accelerators}
    lines = []
    if acc.nvidia and acc.nvidia.gpus:
        models = Counter(gpu.name or "GPU (name unknown)" for gpu in acc.nvidia.gpus)
        described = ", ".join(f"{count} x {model}" for model, count in models.items())
        driver = f", driver {acc.nvidia.driver_version}" if acc.nvidia.driver_version else ""
        lines.append(_accelerator("NVIDIA", f"{described}{driver}", findings, "nvidia", bool(used & {"cuda", "gpu"})))
    elif _family_findings(findings, "nvidia"):
        lines.append(_accelerator("NVIDIA", "GPU on the bus, not usable", findings, "nvidia", False))
    if acc.jetson:
        lines.append(_accelerator("Jetson", acc.jetson.model or acc.jetson.soc or "module", findings, "jetson",
                                  bool(used & {"cuda", "gpu"})))
    if acc.amd and acc.amd.gpus:
        targets = Counter(gpu.gfx_target or "gfx unknown" for gpu in acc.amd.gpus)
        described = ", ".join(f"{count} x {target}" for target, count in targets.items())
        rocm = f", ROCm {acc.amd.rocm_version}" if acc.amd.rocm_version else ""
        lines.append(_accelerator("AMD", f"{described} (KFD nodes){rocm}", findings, "amd",
                                  bool(used & {"rocm", "gpu"})))
    if acc.tpu:
        chips = acc.tpu.chip_count or len(acc.tpu.device_nodes)
        lines.append(_accelerator("TPU", f"{acc.tpu.accelerator_type or 'TPU host'}, {chips} chip(s)", findings, "tpu",
                                  "tpu" in used))
    if acc.apple and acc.apple.mps_eligible:
        lines.append(_accelerator("Apple GPU", f"MPS on macOS {acc.apple.macos_version}", findings, "apple",
                                  bool(used & {"mps", "gpu"})))
    if not lines:
        lines.append(AreaLine("accelerator", "Accelerators", "not-applicable",
                              "none found: CPU only"))
    return lines


def _accelerator(name: str, described: str, findings: list[Finding], family: str, used: bool) -> AreaLine:
    worst = _worst(_family_findings(findings, family))
    if worst and worst.severity == "error":
        return AreaLine("accelerator", name, "not-ready", f"{worst.code}: {worst.title}", _command(worst))
    if worst:
        return AreaLine("accelerator", name, "warning", f"{worst.code}: {worst.title}", _command(worst))
    if not used:
        return AreaLine("accelerator", name, "warning", f"{described}; no framework proved a computation on it")
    return AreaLine("accelerator", name, "ready", described)


def _family_findings(findings: list[Finding], family: str) -> list[Finding]:
    return [f for f in findings if f.code.startswith(ACCELERATOR_CODES[family]) and f.severity != "info"]


def _export_lines(report: Report) -> list[AreaLine]:
    exports = report.readiness.exports
    if not exports:
        return [AreaLine("export", "Export paths", "not-checked", "none converted in this audit",
                         "auditor audit --deep")]
    lines = []
    ready = [e.path for e in exports if e.status == "ready"]
    if ready:
        lines.append(AreaLine("export", "Export paths", "ready", f"{', '.join(ready)}: converted, run, matched"))
    for export in exports:
        if export.status == "not-installed":
            lines.append(AreaLine("export", export.path, "not-ready", export.detail, export.command))
        elif export.status == "not-applicable":
            lines.append(AreaLine("export", export.path, "not-applicable", export.detail))
        elif export.status != "ready":
            lines.append(AreaLine("export", export.path, "not-ready", export.detail))
    return lines


def area_lines(report: Report) -> list[AreaLine]:
    lines = [*_python_lines(report), *_framework_lines(report), *_accelerator_lines(report), *_export_lines(report)]
    for line in _goal_lines(report):
        # A goal blocked by what a line above already says points there instead of saying it again.
        same = next((earlier for earlier in lines if earlier.fact.endswith(line.fact)), None)
        if line.state == "not-ready" and same:
            line.fact = f"blocked by {line.fact.split(':')[0]} (see {same.name})" if _coded(line.fact) else \
                f"blocked, as {same.name} above"
        lines.append(line)
    return lines


def _coded(fact: str) -> bool:
    """Whether a fact starts with a check code ("ARC001: ...")."""
    code = fact.split(":")[0]
    return code[:3].isalpha() and code[:3].isupper() and code[3:].isdigit()


def _goal_lines(report: Report) -> list[AreaLine]:
    recommendation = report.recommendation
    lines = [_goal_line(goal) for goal in recommendation.goals]
    if recommendation.goals_left_out:
        names = ", ".join(recommendation.goals_left_out)
        why = "; ".join(dict.fromkeys(recommendation.goals_left_out.values()))
        lines.append(AreaLine("goal", names, "not-applicable", f"not asked: {why}", "auditor audit --goal all"))
    return lines


def _goal_line(goal: GoalRecommendation) -> AreaLine:
    label = DISPLAY_NAMES.get(goal.framework, goal.framework) if goal.framework else None
    where = f"{label} on {goal.device}" if label and goal.device else label or "no framework"
    if goal.path:
        where += f", {goal.path}"
    if goal.status == "not-ready":
        return AreaLine("goal", goal.goal, "not-ready", goal.blocker or "a requirement failed")
    if goal.status == "not-checked":
        return AreaLine("goal", goal.goal, "not-checked", f"{where} so far; not checked: {', '.join(goal.unchecked)}",
                        goal.check_command)
    if goal.warnings:
        more = f" (+{goal.warnings - 1} more)" if goal.warnings > 1 else ""
        return AreaLine("goal", goal.goal, "warning", f"{where}; {goal.caveat}{more}")
    return AreaLine("goal", goal.goal, "ready", where)


def _worst(findings: list[Finding]) -> Optional[Finding]:
    serious = [f for f in findings if f.severity != "info"]
    return max(serious, key=lambda f: SEVERITY_RANK[f.severity], default=None)


def _command(finding: Optional[Finding]) -> Optional[str]:
    return command_in(finding.fix) if finding and finding.fix else None
