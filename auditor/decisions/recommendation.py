"""The one recommender: for each goal (a profile), which framework and path to use on this machine,
the reasons drawn from its facts and proofs, and the actions that make it ready; then, from those
goal answers and nothing else, the report's one-sentence answer, its choices and its next steps,
so that no two parts of the report can disagree.

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

from auditor.builds import framework_install
from auditor.facts import Snapshot
from auditor.decisions.compute_requirements import best_kind, compute_result
from auditor.decisions.fixes import MOVE_MACHINE
from auditor.profiles.document import FRAMEWORKS, ProfileDocument
from auditor.checks.selection import Selection
from auditor.decisions.export_requirements import export_result
from auditor.decisions.goals import evaluate
from auditor.profiles.loader import Profile, builtin_profiles
from auditor.decisions.verdict import ProfileVerdict
from auditor.checks.base import Finding
from auditor.decisions.readiness import Choice, GoalRecommendation, NextStep, Recommendation, command_in
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


def recommend(report: Report, profiles: list[Profile], selection: Optional[Selection],
              goals_left_out: dict[str, str]) -> tuple[Recommendation, list[ProfileVerdict]]:
    """Each goal's framework, then its verdict narrowed to that framework (a goal that any of
    several frameworks meets is not failed by a broken one it does not use), then the answer,
    choices and next steps drawn from those goal answers alone."""
    goals, verdicts = [], []
    for profile in profiles:
        best, ranked, tie = _rank(report, profile)
        verdict = evaluate(profile, report, selection, best.framework)
        goals.append(_recommend(report, profile, verdict, ranked, tie))
        verdicts.append(verdict)
    recommendation = Recommendation(_answer(report, goals), _choices(goals), _next_steps(goals, report.findings),
                                    goals, goals_left_out)
    return recommendation, verdicts


def _rank(report: Report, profile: Profile) -> tuple["_Candidate", list["_Candidate"], Optional[str]]:
    """The candidates best first, and why the first won a tie, if there was one.

    Ranked by how well each meets the goal here; a tie goes to the goal's own order of frameworks,
    the same from run to run (an import time or a speed is not: both depend on what else loads the
    cores)."""
    document = profile.document
    named = list(document.named_frameworks()) or list(FRAMEWORKS)
    candidates = sorted((_judge(name, profile, report) for name in named), key=lambda c: -c.score)
    tied = [c for c in candidates if c.score == candidates[0].score]
    best, why = _break_tie(tied, document)
    return best, [best] + [c for c in candidates if c is not best], why


def _answer(report: Report, goals: list[GoalRecommendation]) -> str:
    """The question answered in one sentence: which framework, on which device, for which goal;
    or what blocks it."""
    nothing = next((f for f in report.findings if f.code == "FW012"), None)
    if nothing:
        return (f"Nothing here is ready for ML work: {nothing.title[0].lower()}{nothing.title[1:]}; "
                f"{nothing.fix[0].lower()}{nothing.fix[1:]}")
    if not goals:
        if report.snapshot.mode == "quick":
            return ("Quick audit: no framework was imported, so nothing is proven yet; `auditor audit` proves "
                    "which framework computes correctly here.")
        return report.readiness.summary
    parts, ready = [], {}
    for goal in goals:
        if goal.status == "ready" and goal.framework:
            ready.setdefault((goal.framework, _where(goal.device)), []).append(goal.goal)
    unchecked = [g for g in goals if g.status == "not-checked"]
    # An accelerator proven for a goal is the headline: it leads, the CPU answers follow.
    for (framework, where), names in sorted(ready.items(), key=lambda item: item[0][1] == " on the CPU"):
        also = [g.goal for g in unchecked if g.framework == framework]
        parts.append(f"use {DISPLAY_NAMES.get(framework, framework)}{where} for {_names_plain(names)}"
                     + (f" (and for {_names_plain(also)} once checked in full: `auditor audit --deep`)"
                        if also else ""))
    rest = [g for g in unchecked if not any(g.framework == framework for framework, _ in ready)]
    if rest:
        picks = _names_plain(list(dict.fromkeys(DISPLAY_NAMES.get(g.framework, g.framework) for g in rest if g.framework)))
        parts.append(f"for {_names_plain([g.goal for g in rest])}: {picks or 'no framework'} so far, not checked "
                     "in full (`auditor audit --deep` on the machine itself checks them)")
    blocked: dict[str, list[str]] = {}
    for goal in goals:
        if goal.status == "not-ready":
            blocked.setdefault(goal.blocker or "a requirement failed", []).append(goal.goal)
    for blocker, names in blocked.items():
        parts.append(f"not ready for {_names_plain(names)}: {blocker}")
    sentence = "; ".join(parts) + "."
    return sentence[0].upper() + sentence[1:]


def _where(device: Optional[str]) -> str:
    if device is None:
        return ""
    return " on the CPU" if device.lower().startswith(("cpu", "/device:cpu")) else f" on {device}"


def _names_plain(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _choices(goals: list[GoalRecommendation]) -> list[Choice]:
    """Each framework the goals pick, in the order they pick it, on its best device proven for one
    of them, with the goals' own first reasons: the goals' answer, never a ranking of its own."""
    choices: dict[str, Choice] = {}
    for goal in goals:
        if goal.status == "not-ready" or not goal.framework:
            continue
        choice = choices.setdefault(goal.framework, Choice(goal.framework, goal.device, []))
        if goal.device and (choice.device is None or _where(choice.device) == " on the CPU"):
            choice.device = goal.device  # an accelerator proven for one of its goals names the choice
        choice.reasons.append(f"{goal.goal}: {goal.reasons[0]}" if goal.reasons else goal.goal)
    return list(choices.values())


def _next_steps(goals: list[GoalRecommendation], findings: list[Finding]) -> list[NextStep]:
    """Every step once, naming the goals it unblocks; then the error findings' fixes no goal asked for."""
    merged: dict[str, NextStep] = {}
    for goal in goals:
        for step in goal.next_steps:
            key = step.command or step.action
            if key in merged:
                merged[key].goals.append(goal.goal)
            else:
                merged[key] = dataclasses.replace(step, goals=[goal.goal])
    for finding in findings:
        if finding.severity == "error" and finding.fix:
            command = command_in(finding.fix)
            merged.setdefault(command or finding.fix, NextStep(f"{finding.code}: {finding.title}", finding.fix, command))
    return list(merged.values())


def _recommend(report: Report, profile: Profile, verdict: ProfileVerdict, ranked: list["_Candidate"],
               tie: Optional[str]) -> GoalRecommendation:
    document, best = profile.document, ranked[0]
    if tie and verdict.status != "not-ready":  # a blocked goal's reasons say what blocks it, not who won a tie
        best.reasons.append(tie)
    steps = best.steps
    if any(r.id == "accelerator" and r.status == "fail" for r in verdict.requirements):
        # The goal needs hardware this machine lacks: the accelerator requirement's step says where
        # to go, and the compute requirements' own "move to a machine that has one" would repeat it.
        steps = [step for step in steps if not step.action.startswith(MOVE_MACHINE)]
    steps = _profile_steps(verdict, best.framework) + steps
    unique: dict[str, NextStep] = {}
    for step in steps:
        unique.setdefault(step.command or step.action, step)
    for step in unique.values():
        step.goals = [profile.name]
    blocker = next((_blocking_fact(r, best.framework) for r in verdict.requirements if r.status == "fail"), None)
    return GoalRecommendation(
        goal=profile.name, description=document.description, status=verdict.status,
        framework=best.framework, device=best.device, path=best.path, reasons=best.reasons,
        next_steps=list(unique.values()),
        alternatives=[f"{DISPLAY_NAMES.get(c.framework, c.framework)}: {c.summary}" for c in ranked[1:]],
        warnings=verdict.count("warn"), blocker=blocker,
        caveat=next((_caveat(r) for r in verdict.requirements if r.status == "warn"), None),
        unchecked=list(dict.fromkeys(label for r in verdict.requirements if r.status == "not-checked"
                                     for label in _unchecked_labels(r))),
        check_command=f"auditor check --profile {_reference(profile)}")


def _blocking_fact(result, framework: str) -> str:
    """What a failed requirement says about this machine, in one line: a check's finding, the
    chosen framework's own reason for a computation, the shortfall of an accelerator."""
    if result.id.startswith("check."):
        code, _, finding = result.title.partition(": ")
        return f"{code.split()[0]}: {finding}"
    if result.id.startswith("compute.") and result.evidence:
        label = DISPLAY_NAMES.get(framework, framework)
        own = [line for line in result.evidence if line.startswith(label)]
        return (own or result.evidence)[-1]
    if result.id == "accelerator" and result.evidence:
        return result.evidence[0]
    return f"{result.title}: {result.evidence[0]}" if result.evidence else result.title


def _caveat(result) -> str:
    """What a requirement met with a warning warns of: a check's finding, else its last evidence line."""
    if result.id.startswith("check."):
        code, _, finding = result.title.partition(": ")
        return f"{code.split()[0]}: {finding}"
    return result.evidence[-1] if result.evidence else result.title


def _unchecked_labels(result) -> list[str]:
    """Short names of what a not-checked requirement left unmeasured: "proofs", "onnx", "memory"."""
    kind, _, rest = result.id.partition(".")
    if kind == "export":
        return [line.split(":")[0] for line in result.evidence if "not checked" in line]
    if kind == "compute":
        return ["proofs"]
    if kind == "machine":
        return [rest]
    return [{"accelerator": "accelerator", "python": "Python"}.get(kind, result.id)]


def _break_tie(tied: list["_Candidate"], document: ProfileDocument) -> tuple["_Candidate", Optional[str]]:
    """The tied candidate to pick, and the reason to give when there was a tie to break: the goal's own
    order of frameworks, which is the same on every run. Speed is not used: a figure timed on a machine
    that other work loads can halve, and the answer must not flip with it (the figures are shown beside
    their peaks for the user to weigh)."""
    if len(tied) == 1:
        return tied[0], None
    order = "the goal's first framework" if document.named_frameworks() else "first in the seed's order (PyTorch, TensorFlow, JAX)"
    return tied[0], (f"it met the goal as well as {_names([c.framework for c in tied[1:]])} here, so the tie goes "
                     f"to {order}; any of them will do")


def _names(frameworks: list[str]) -> str:
    listed = [DISPLAY_NAMES.get(name, name) for name in frameworks]
    return listed[0] if len(listed) == 1 else f"{', '.join(listed[:-1])} and {listed[-1]}"


def _judge(name: str, profile: Profile, report: Report) -> _Candidate:
    document, snapshot, label = profile.document, report.snapshot, DISPLAY_NAMES.get(name, name)
    facts = snapshot.frameworks.get(name)
    if facts is None:
        fitted = framework_install(snapshot, name)
        action = f"Install it: `{fitted.command}` ({fitted.reason})" if fitted.command else fitted.reason
        return _Candidate(name, -10, [], [NextStep(f"{label} is not installed", action, fitted.command)],
                          "not installed")
    if facts.probe.status != "ok":
        return _Candidate(name, -5, [], [], f"not proven here (probe {facts.probe.status})")
    readiness = next((fw for fw in report.readiness.frameworks if fw.framework == name), None)
    if readiness and readiness.status == "broken":  # it imports, but computed wrongly or not at all
        return _Candidate(name, -4, [], [], f"broken here: {readiness.reason}")
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
            steps.append(_step(result))
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
            command = f"auditor check --profile {_reference(profile)}"
            steps.append(NextStep(f"{', '.join(unchecked)} not converted in this audit",
                                  f"Convert {' and '.join(unchecked)} for real and run the result: `{command}`",
                                  command))
        elif ready:
            score += 3
            path = path or " + ".join(ready[0])
            reasons += [_export_reason(report, p) for p in ready[0]]
        else:
            narrowed = export_result(dataclasses.replace(entry, any_of=(owned[0],)), snapshot, report.findings)
            if narrowed.fix:
                command = command_in(narrowed.fix)
                gap = next(line for line in narrowed.evidence if ": ready" not in line)  # "onnx: not installed (...)"
                steps.append(NextStep(gap, narrowed.fix, command))
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
                [NextStep("TensorFlow does not use the Apple GPU without tensorflow-metal",
                          "Let TensorFlow use the Apple GPU: `pip install tensorflow-metal`", "pip install tensorflow-metal")]
        if name == "jax":
            return -1, ["JAX reaches Apple GPUs only through the experimental jax-metal plugin"], []
        return 0, [], []
    if name == "torch" and best in ("cuda", "rocm") and not document.exports:
        return 1, [f"on {found}: {RESEARCH_CASE}"], []
    return 0, [], []



def _research_on_cpu(name: str, document: ProfileDocument, best: str) -> tuple[int, list[str], list[NextStep]]:
    """With no accelerator, a research goal (the best device, no export) is decided by the goal."""
    research = (any("best" in e.device for e in document.compute) and not document.exports
                and document.accelerator is None)  # a GPU goal on a CPU machine is blocked, not a research case
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
        steps.append(_step(result))
    return steps


def _step(result) -> NextStep:
    """A failed requirement's fix as a step: the fact that makes it needed, then the action."""
    fact = result.evidence[0] if result.evidence else f"not met: {result.title}"
    # A command said to come after something else ("update the driver, then `pip install ...`") is
    # not the step's own: running it first would not work.
    command = command_in(result.fix) if " then " not in result.fix.split("`")[0] else None
    return NextStep(fact, result.fix, command)
