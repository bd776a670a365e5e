"""The goal-fitted recommendation: for each goal (a profile), which framework and path to use on
this machine, the reasons drawn from its facts and proofs, and the commands that make it ready.

Each candidate framework is judged by the goal's own requirements, narrowed to it: the
compute requirements it proved, the export groups it owns that ran. The seed article's
trade-offs (PyTorch's dynamic graphs for research, TensorFlow's TPU, Serving and Lite story)
count only where this machine's facts make them matter: a TPU host, an Apple GPU, an NVIDIA
or AMD GPU for research, an export path proven here.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Optional

from auditor.facts import Snapshot
from auditor.decisions.compute_requirements import best_kind, compute_result
from auditor.profiles.document import FRAMEWORKS, ProfileDocument
from auditor.decisions.export_requirements import export_result
from auditor.profiles.loader import Profile, builtin_profiles
from auditor.decisions.verdict import ProfileVerdict
from auditor.decisions.readiness import GoalRecommendation, NextStep, command_in
from auditor.names import DISPLAY_NAMES
from auditor.report import Report

RESEARCH_CASE = "PyTorch's dynamic graphs and Python-first debugging suit eager experimentation"
# Which framework each export path starts from.
EXPORT_SOURCE = {"tflite": "tensorflow", "tflite-int8": "tensorflow", "tf-serving": "tensorflow",
                 "executorch": "torch", "onnx": "torch", "coreml": "torch", "torchscript": "torch"}


@dataclasses.dataclass
class _Candidate:
    framework: str
    score: int
    reasons: list[str]
    steps: list[NextStep]
    summary: str  # one line for the alternatives
    device: Optional[str] = None
    path: Optional[str] = None


def not_for_this_machine(profile: Profile, snapshot: Snapshot) -> Optional[str]:
    """Why a goal is not this machine's question, or None: it needs a TPU or Apple silicon, and the
    machine shows no sign of either (a TPU host's signals, macOS on arm64). Other hardware can be
    added to a machine, so a GPU goal is always asked: its answer says what blocks it."""
    kind = profile.document.accelerator.kind if profile.document.accelerator else None
    accelerators = snapshot.accelerators
    if kind == "tpu" and not accelerators.tpu:
        return "no TPU signal here"
    if kind == "mps" and not (accelerators.apple and accelerators.apple.arm64):
        return "not Apple silicon"
    return None


def recommend_for_goals(report: Report, profiles: list[Profile], verdicts: list[ProfileVerdict]) -> list[GoalRecommendation]:
    return [_recommend(report, profile, verdict) for profile, verdict in zip(profiles, verdicts)]


def _recommend(report: Report, profile: Profile, verdict: ProfileVerdict) -> GoalRecommendation:
    document, snapshot = profile.document, report.snapshot
    named = list(document.named_frameworks()) or [name for name in FRAMEWORKS]
    candidates = [_judge(name, profile, report) for name in named]
    # Ties go to the framework that imports fastest here: every job pays for the import.
    ranked = sorted(candidates, key=lambda c: (-c.score, _import_seconds(snapshot, c.framework)))
    best = ranked[0]
    ties = [c for c in ranked[1:] if c.score == best.score and _import_seconds(snapshot, c.framework) < float("inf")]
    if ties and best.device:  # only worth saying between frameworks that proved something
        best.reasons.append(f"imports in {_import_seconds(snapshot, best.framework):.1f} s here, the fastest of the "
                            f"equally proven frameworks ({', '.join(_import_note(snapshot, c.framework) for c in ties)})")
    steps = best.steps + _profile_steps(verdict, best.framework)
    unique: dict[str, NextStep] = {}
    for step in steps:
        unique.setdefault(step.command or step.reason, step)
    return GoalRecommendation(
        goal=profile.name, description=document.description, status=verdict.status,
        framework=best.framework, device=best.device, path=best.path, reasons=best.reasons,
        next_steps=list(unique.values()),
        alternatives=[f"{DISPLAY_NAMES.get(c.framework, c.framework)}: {c.summary}" for c in ranked[1:]])


def _judge(name: str, profile: Profile, report: Report) -> _Candidate:
    document, snapshot, label = profile.document, report.snapshot, DISPLAY_NAMES.get(name, name)
    facts = snapshot.frameworks.get(name)
    if facts is None:
        return _Candidate(name, -10, [], [NextStep(f"Install {label}", f"pip install {name}")], "not installed")
    if facts.probe.status != "ok":
        return _Candidate(name, -5, [], [], f"not proven here (probe {facts.probe.status})")
    reasons, steps, score, device = [], [], 1, None
    compute = [e for e in document.compute if not e.framework or name in e.framework]
    proven = 0
    for entry in compute:
        result = compute_result(dataclasses.replace(entry, framework=(name,)), snapshot, report.findings)
        if result.status in ("pass", "warn"):
            proven += 1
            score += 2 if result.status == "pass" else 1
            # "PyTorch 2.13.0 on cuda:0: train-step float32 ok (max error 1.0e-06)"
            line = next((e for e in result.evidence if e.startswith(label) and " ok (" in e), None)
            if line:
                proof = line.removeprefix(label).split(" on ", 1)[-1]
                device = device or proof.split(": ", 1)[0]
                reasons.append(f"proven here on {proof}")
            if result.status == "warn":
                reasons.append(result.evidence[-1])
        elif result.fix:
            command = command_in(result.fix)
            # Without a command the fix text is the step; said once however many entries share it.
            steps.append(NextStep(result.title, command) if command else NextStep(result.fix))
    path, unreachable = None, []
    for entry in document.exports:
        owned = [group for group in entry.any_of if all(EXPORT_SOURCE.get(p) == name for p in group)]
        if not owned:  # JAX has no path to TFLite or ExecuTorch of its own here
            score -= 2
            unreachable.append(" or ".join(" + ".join(group) for group in entry.any_of))
            continue
        ready = [g for g in owned if all(_export_ready(snapshot, p) for p in g)]
        unchecked = [p for p in owned[0] if p not in snapshot.exports]
        if not ready and unchecked:  # a plain audit converts nothing: checking this goal does
            steps.append(NextStep(f"{', '.join(unchecked)}: not checked in this audit",
                                  f"auditor check --profile {_reference(profile)}"))
        elif ready:
            score += 3
            path = path or " + ".join(ready[0])
            reasons += [_export_reason(report, p) for p in ready[0]]
        else:
            narrowed = export_result(dataclasses.replace(entry, any_of=(owned[0],)), snapshot, report.findings)
            if narrowed.fix:
                command = command_in(narrowed.fix)
                gap = next(line for line in narrowed.evidence if ": ready" not in line)  # "onnx: not installed (...)"
                steps.append(NextStep(gap, command) if command else NextStep(f"{gap}: {narrowed.fix}"))
    bonus, fact_reasons, fact_steps = _machine_facts(name, document, snapshot)
    score += bonus
    reasons += fact_reasons
    steps += fact_steps
    summary = f"{proven} of {len(compute)} compute requirement(s) proven" if compute else "proven here"
    if document.exports:
        summary += f"; export {'ready: ' + path if path else 'not ready'}"
    if unreachable:
        summary += f"; no path of its own to {', '.join(unreachable)}"
    if bonus < 0:  # what holds it back on this hardware, for the alternatives line
        summary += "; " + "; ".join(fact_reasons)
    return _Candidate(name, score, reasons, steps, summary, device, path)


def _machine_facts(name: str, document: ProfileDocument, snapshot: Snapshot) -> tuple[int, list[str], list[NextStep]]:
    """Where this machine's hardware makes the seed's trade-offs matter: (score, reasons, steps)."""
    best, found = best_kind(snapshot)
    # Only a goal that can use this machine's best accelerator makes it matter: a TPU says
    # nothing about a goal that wants an Apple GPU, nor about a CPU goal (CI).
    accepted = {kind for e in document.compute for kind in e.device}
    relevant = {best, "best", "accelerator"} | ({"gpu"} if best in ("cuda", "rocm") else set())
    if best == "cpu" or not accepted & relevant:
        return _research_on_cpu(name, document, best)
    label = DISPLAY_NAMES.get(name, name)
    if best == "tpu":
        if name in ("jax", "tensorflow"):
            return 1, [f"this is a TPU host ({found}): TPUs run XLA programs, which {label} builds natively"], []
        return -1, ["PyTorch reaches TPUs only through the separate torch-xla package"
                    + ("" if "torch-xla" in snapshot.packages or "torch_xla" in snapshot.packages else
                       ", which is not installed")], []
    if best == "mps":
        apple = snapshot.accelerators.apple
        if name == "tensorflow" and not (apple and apple.tensorflow_metal):
            return -1, ["TensorFlow uses the Apple GPU only through tensorflow-metal, which is not installed"], \
                [NextStep("Let TensorFlow use the Apple GPU", "pip install tensorflow-metal")]
        if name == "jax":
            return -1, ["JAX reaches Apple GPUs only through the experimental jax-metal plugin"], []
        return 0, [], []
    if name == "torch" and best in ("cuda", "rocm") and not document.exports:
        return 1, [f"on {found}: {RESEARCH_CASE}"], []
    return 0, [], []



def _research_on_cpu(name: str, document: ProfileDocument, best: str) -> tuple[int, list[str], list[NextStep]]:
    """With no accelerator, a research goal (the best device, no export) is decided by the goal."""
    research = any("best" in e.device for e in document.compute) and not document.exports
    if name == "torch" and research and best == "cpu":
        return 1, [f"no accelerator here, so the goal decides: {RESEARCH_CASE}"], []
    return 0, [], []


def _reference(profile: Profile) -> str:
    """How to name the profile on the command line: a built-in by name, any other by its file."""
    return profile.name if profile.source == str(builtin_profiles().get(profile.name)) else profile.source


def _export_ready(snapshot: Snapshot, path: str) -> bool:
    facts = snapshot.exports.get(path)
    return facts is not None and facts.status == "ready"


def _export_reason(report: Report, path: str) -> str:
    row = next((r for r in report.readiness.exports if r.path == path), None)
    detail = row.detail if row else ""
    extra = {"tflite-int8": " (int8 post-training quantization: how models ship to phones)",
             "tf-serving": " (what TF Serving loads as is)",
             "executorch": " (PyTorch's on-device runtime)"}.get(path, "")
    providers = report.snapshot.exports[path].details.get("providers_used")
    if providers:
        extra = f" on {providers}"
    return f"{path} proven here{extra}: {detail}"


def _profile_steps(verdict: ProfileVerdict, chosen: str) -> list[NextStep]:
    """Fixes of the goal's failed requirements that no framework choice changes: the machine,
    the accelerator, Python, and the checks the goal counts (minus commands that install a
    framework other than the one recommended)."""
    others = [name for name in FRAMEWORKS if name != chosen]
    steps = []
    for result in verdict.requirements:
        if result.status != "fail" or result.id.split(".")[0] in ("framework", "compute", "export") or not result.fix:
            continue
        command = command_in(result.fix)
        if command and any(re.search(rf"\b{other}\b", command) for other in others):
            continue
        steps.append(NextStep(f"{result.title}: {result.evidence[0] if result.evidence else 'not met'}", command)
                     if command else NextStep(f"{result.title}: {result.fix}"))
    return steps


def _import_seconds(snapshot: Snapshot, name: str) -> float:
    facts = snapshot.frameworks.get(name)
    return facts.import_seconds if facts and facts.import_seconds is not None else float("inf")


def _import_note(snapshot: Snapshot, name: str) -> str:
    return f"{DISPLAY_NAMES.get(name, name)} {_import_seconds(snapshot, name):.1f} s"
