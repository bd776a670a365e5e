"""Requirements on the frameworks: what is installed, and what the auditor proved they compute."""

from __future__ import annotations

from typing import Optional

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from auditor.builds import jetson_of
from auditor.checks.base import Finding
from auditor.facts import ComputeProof, FrameworkDevice, FrameworkFacts, Snapshot
from auditor.profiles.document import FRAMEWORKS, ComputeRequirement, FrameworkRequirement
from auditor.decisions.fixes import accelerator_build, move_machine
from auditor.decisions.verdict import RequirementResult, unmet
from auditor.names import DISPLAY_NAMES

ACCELERATOR_KINDS = ("cuda", "rocm", "gpu", "mps", "xpu", "tpu")
KIND_GROUPS = {"gpu": ("cuda", "rocm", "gpu"), "accelerator": ACCELERATOR_KINDS, "any": ("cpu", *ACCELERATOR_KINDS)}
KIND_LABELS = {"cpu": "the CPU", "cuda": "an NVIDIA GPU (cuda)", "rocm": "an AMD GPU (rocm)", "gpu": "a GPU (cuda or rocm)",
               "mps": "an Apple GPU (mps)", "xpu": "an Intel GPU (xpu)", "tpu": "a TPU", "accelerator": "an accelerator",
               "any": "any device", "best": "the best accelerator here"}
_SYS_PLATFORMS = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}


# --- frameworks ----------------------------------------------------------------------


def framework_result(entry: FrameworkRequirement, snapshot: Snapshot) -> RequirementResult:
    key, title = f"framework.{entry.requirement_id()}", " or ".join(entry.any_of) + " installed"
    environment = marker_environment(snapshot)
    evidence, applicable, met = [], [], False
    for text in entry.any_of:
        requirement = Requirement(text)
        if requirement.marker and not requirement.marker.evaluate(environment):
            evidence.append(f"{text}: does not apply here (its marker is false on this machine)")
            continue
        applicable.append(requirement)
        installed = installed_version(snapshot, requirement.name)
        if installed is None:
            evidence.append(f"{requirement.name}: not installed")
        elif not requirement.specifier.contains(installed[1], prereleases=True):
            evidence.append(f"{installed[0]} {installed[1]} does not match {requirement.specifier}")
        else:
            met = True
            evidence.append(f"{installed[0]} {installed[1]} matches {requirement.specifier or 'any version'}"
                            + _import_note(snapshot.frameworks.get(requirement.name)))
    if met or not applicable:
        return RequirementResult(key, title, "pass", evidence)
    first = applicable[0]
    wanted = f"{first.name}{first.specifier}"
    upgrade = installed_version(snapshot, first.name) is not None
    return RequirementResult(key, title, unmet(entry.severity), evidence,
                             f'`pip install {"-U " if upgrade else ""}"{wanted}"`')


def installed_version(snapshot: Snapshot, name: str) -> Optional[tuple[str, str]]:
    """(distribution, version) installed for a requirement name; torch, tensorflow and jax by the
    distribution that provides the module (tensorflow may be tensorflow-cpu)."""
    name = canonicalize_name(name)
    framework = snapshot.frameworks.get(name)
    if framework and (framework.distribution_version or framework.version):
        return framework.distribution or name, framework.distribution_version or framework.version
    package = snapshot.packages.get(name)
    return (package.name, package.version) if package else None


def marker_environment(snapshot: Snapshot) -> dict[str, str]:
    """PEP 508 marker variables of the audited machine (not of the one replaying its snapshot)."""
    environment = {}
    python, host = snapshot.machine.python, snapshot.machine.host
    if python:
        environment.update(python_version=".".join(python.version.split(".")[:2]), python_full_version=python.version,
                           implementation_name=python.implementation.lower(),
                           platform_python_implementation=python.implementation)
    if host:
        environment.update(platform_system=host.os, sys_platform=_SYS_PLATFORMS.get(host.os, host.os.lower()),
                           os_name="nt" if host.os == "Windows" else "posix")
        if host.architecture:
            environment["platform_machine"] = host.architecture
        if host.kernel:
            environment["platform_release"] = host.kernel
    return environment


def _import_note(framework: Optional[FrameworkFacts]) -> str:
    if framework is None or framework.probe.status in ("ok", "skipped"):
        return ""
    return f" (but its import failed: {framework.probe.status}, {framework.probe.reason})"


# --- proven compute ------------------------------------------------------------------


def best_kind(snapshot: Snapshot) -> tuple[str, str]:
    """The best accelerator kind this machine has, by its drivers: (kind, what was found)."""
    acc = snapshot.accelerators
    if acc.nvidia and acc.nvidia.gpus:
        return "cuda", f"{len(acc.nvidia.gpus)} NVIDIA GPU(s)"
    jetson = jetson_of(snapshot)
    if jetson:
        return "cuda", f"a Jetson's integrated GPU ({jetson.model or jetson.soc or 'module unknown'})"
    if acc.amd and acc.amd.gpus:
        return "rocm", f"{len(acc.amd.gpus)} AMD GPU(s)"
    if acc.tpu and (acc.tpu.chip_count or acc.tpu.device_nodes):
        return "tpu", f"a {acc.tpu.accelerator_type or ''} TPU".replace("  ", " ")
    if acc.apple and acc.apple.mps_eligible:
        return "mps", "an Apple silicon GPU"
    return "cpu", "no accelerator"


def device_kind(framework: FrameworkFacts, device: FrameworkDevice, snapshot: Snapshot) -> str:
    """TensorFlow calls every GPU "gpu": it is CUDA or ROCm by its build, else Metal on a Mac."""
    if device.kind != "gpu":
        return device.kind
    variant = framework.build.variant if framework.build else None
    if variant in ("cuda", "rocm"):
        return variant
    apple = snapshot.accelerators.apple
    return "mps" if apple and apple.mps_eligible else "gpu"


def compute_result(entry: ComputeRequirement, snapshot: Snapshot, findings: list[Finding],
                   goal_frameworks: tuple[str, ...] = ()) -> RequirementResult:
    """``goal_frameworks``: the frameworks the profile names; a fix installs one of them."""
    key, title = f"compute.{entry.requirement_id()}", _compute_title(entry)
    best, found = best_kind(snapshot)
    kinds = _accepted_kinds(entry.device, best)
    names = entry.framework or tuple(name for name in FRAMEWORKS if name in snapshot.frameworks) or FRAMEWORKS
    evidence, proven_kinds, failed, unrun, unmeasured = [], set(), [], [], []
    if "best" in entry.device:
        evidence.append(f"best accelerator here: {found} ({best})")
    for name in names:
        framework = snapshot.frameworks.get(name)
        if framework is None:
            evidence.append(f"{name}: not installed")
            continue
        label = f"{DISPLAY_NAMES.get(name, name)} {framework.version or framework.distribution_version or '(version unknown)'}"
        if framework.probe.status != "ok":
            evidence.append(f"{label}: nothing proven, probe {framework.probe.status}: {framework.probe.reason}")
            (unrun if framework.probe.status == "skipped" else failed).append(name)
            continue
        if framework.devices is None or framework.proofs is None:
            reason = _known_unable(framework, kinds, snapshot)
            if reason:  # known facts rule it out: the fix is the build for this machine, below
                evidence.append(f"{label}: {reason}")
            else:
                unmeasured.append(name)
                evidence.append(f"{label}: not measured here ("
                                + ("its devices were not listed" if framework.devices is None else "no proof was run")
                                + "); nothing known rules it out")
            continue
        kinds_of = {device.id: device_kind(framework, device, snapshot) for device in framework.devices}
        # A proof left for --deep counts only where the entry asks for a compiler: otherwise the
        # eager proofs answer it, and the deferred ones are noise.
        matching = [p for p in framework.proofs if kinds_of.get(p.device) in kinds and _matches(entry, p)
                    and (entry.compiler or not p.skipped)]
        for device in dict.fromkeys(p.device for p in matching if p.ok):
            passed = [p for p in matching if p.device == device and p.ok]
            proven_kinds.add(kinds_of[device])
            worst = max(p.max_relative_error or 0.0 for p in passed)
            evidence.append(f"{label} on {device}: {', '.join(map(_proof_text, passed))} ok (max error {worst:.1e})")
        for proof in (p for p in matching if not p.ok):
            line = f"{label} on {proof.device}: {_proof_text(proof)}"
            if proof.skipped:
                unrun.append(name)
                evidence.append(f"{line} not run: {proof.skipped}")
            else:
                failed.append(name)
                evidence.append(f"{line} FAILED: {proof.error}")
        if not matching:
            build = framework.build.variant if framework.build else "unknown"
            seen = ", ".join(f"{d.id} ({kinds_of[d.id]})" for d in framework.devices) or "no device"
            evidence.append(f"{label} ({build} build): no matching proof; it sees {seen}")
    if proven_kinds == {"cpu"} and "best" in entry.device and best == "cpu":
        evidence.append("this machine has no accelerator, so this was proven on the CPU only")
        return RequirementResult(key, title, "warn", evidence)
    if proven_kinds:
        return RequirementResult(key, title, "pass", evidence)
    if unmeasured:  # unknown is never a failure: say how to measure it
        return RequirementResult(key, title, "not-checked", evidence,
                                 "Prove it on the machine itself: `auditor audit` there runs the computation on "
                                 "the device and compares it with a float64 reference.")
    return RequirementResult(key, title, unmet(entry.severity), evidence,
                             _compute_fix(entry, snapshot, findings,
                                          tuple(n for n in names if n in goal_frameworks) or names, best, failed, unrun))


def _known_unable(framework: FrameworkFacts, kinds: set[str], snapshot: Snapshot) -> Optional[str]:
    """Why a framework whose proofs were not recorded still cannot meet the requirement, from what
    is known: a build without the wanted backend, or a device list without the wanted kind."""
    variant = framework.build.variant if framework.build else None
    if variant and not kinds & ({"cpu", variant} | ({"gpu"} if variant in ("cuda", "rocm") else set())) \
            and not (variant == "cpu" and kinds & {"mps", "tpu", "xpu"}):
        return f"its {variant} build cannot run on {' or '.join(sorted(kinds))}"
    if framework.devices is not None:
        kinds_of = {device_kind(framework, device, snapshot) for device in framework.devices}
        if not kinds_of & kinds:
            seen = ", ".join(d.id for d in framework.devices) or "no device"
            return f"it sees {seen}, none of them {' or '.join(sorted(kinds))}"
    return None


def _accepted_kinds(devices: tuple[str, ...], best: str) -> set[str]:
    """The framework device kinds that meet a requirement's `device` on this machine."""
    kinds: set[str] = set()
    for wanted in devices:
        wanted = best if wanted == "best" else wanted
        kinds.update(KIND_GROUPS.get(wanted, (wanted,)))
    return kinds


def _matches(entry: ComputeRequirement, proof: ComputeProof) -> bool:
    workload = proof.workload or "matmul"  # 1.0 and 1.1 snapshots proved a matmul only
    compiler = proof.compiler or "eager"
    return (proof.dtype in entry.dtypes and (entry.workload is None or workload in entry.workload)
            and (entry.compiler is None or compiler in entry.compiler))


def _proof_text(proof: ComputeProof) -> str:
    """'train-step float32 torch.compile'"""
    return " ".join(part for part in ((proof.workload or "matmul"), proof.dtype, proof.compiler) if part)


def _compute_title(entry: ComputeRequirement) -> str:
    names = _either([DISPLAY_NAMES.get(n, n) for n in entry.framework]) if entry.framework else "A framework"
    what = _either(list(entry.workload)) if entry.workload else "a computation"
    devices = _either([KIND_LABELS.get(kind, kind) for kind in entry.device])
    compiled = f", compiled by {_either(list(entry.compiler))}" if entry.compiler else ""
    return f"{names} proven: {what} in {_either(list(entry.dtypes))} on {devices}{compiled}"


def _either(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def _compute_fix(entry: ComputeRequirement, snapshot: Snapshot, findings: list[Finding], names: tuple[str, ...],
                 best: str, failed: list[str], unrun: list[str]) -> Optional[str]:
    """The first thing to do: repair what failed, run what was not run, install what is missing,
    or install the build for this machine's accelerator."""
    if failed:
        finding = next((f for f in findings if f.code in ("FW001", "FW002", "FW003", "FW004") and f.fix), None)
        return f"{finding.code}: {finding.fix}" if finding else "See `auditor audit`: the framework's probe failed."
    if unrun:
        return ("Run `auditor check` on the machine itself: it runs the proofs its profiles need (a saved snapshot "
                "holds only what was proven when it was saved; `auditor audit --deep` proves everything).")
    installed = [name for name in names if name in snapshot.frameworks]
    if not installed:
        return f"`pip install {names[0]}`"
    target = _target_kind(entry, best)
    if target is None:
        return None
    if target != best:
        return move_machine(target)
    fitted = accelerator_build(snapshot, installed[0], target)
    return f"`{fitted.command}` ({fitted.reason})" if fitted.command else fitted.reason[0].upper() + fitted.reason[1:]


def _target_kind(entry: ComputeRequirement, best: str) -> Optional[str]:
    """The accelerator kind to install a build for: this machine's best one where the entry
    accepts it, else the first kind the entry names; None when the CPU is what it wants."""
    if best != "cpu" and best in _accepted_kinds(entry.device, best):
        return best
    return next((kind for kind in entry.device if kind not in ("cpu", "any", "best")), None)
