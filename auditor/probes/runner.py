"""Runs every probe and assembles the snapshot.

Order matters for speed: package metadata first (it decides which children to start),
then the children (frameworks import in parallel), then the cheap inline probes while
the children work. The framework children time their matmuls last, one at a time, in
turns granted while the runner waits (turns.py). The collective proofs, when asked for, run
last of all, planned from what the framework children found. Every failure becomes a ProbeRun
status; nothing escapes.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping, Optional

import auditor
from auditor.facts import (SCHEMA_VERSION, AcceleratorFacts, AmdSmiFacts, CollectiveProof, ExportPath, FrameworkFacts,
                           MachineFacts, NvidiaFacts, ProbeRun, Snapshot, SnapshotFormatError, from_dict)
from auditor.probes import collective
from auditor.probes.base import DEEP, EXPORT_PATHS, LOOK_FOR_TPU, ChildProbe, InlineProbe, ProbeAbsent, ProbeContext
from auditor.probes.child import ChildOutcome, RunningChild
from auditor.probes.child_entry import describe_exception
from auditor.probes.fsroot import FsRoot
from auditor.probes.host import python_facts
from auditor.probes.interpreter import Interpreter, own_interpreter
from auditor.probes.packages import PackageScan, collect_packages
from auditor.probes.registry import CHILD_PROBES, COLLECTIVES, EXPORT_PROBES, INLINE_PROBES, PACKAGES, TPU
from auditor.probes.turns import Turns
from auditor.redact import scrub_snapshot

ProgressCallback = Callable[[str, str], None]  # (probe name, status)

# Inline probes read files and run helpers (nvcc, ldconfig) with their own 10 s deadlines;
# this bounds everything else, such as a call that blocks where no bound was thought of.
INLINE_DEADLINE_S = 30.0


@dataclass(frozen=True)
class ProbeOptions:
    root: FsRoot = field(default_factory=FsRoot)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    quick: bool = False
    deep: bool = False  # also the slow proofs: torch.compile, XLA train steps
    exports: frozenset[str] = frozenset()  # export paths to check (all of them under --deep)
    collectives: bool = False  # prove the collectives without --deep too (a profile's multi-GPU goal asks)
    framework_deadline_s: Optional[float] = None  # None: each probe's own default
    python: Interpreter = field(default_factory=own_interpreter)  # the audited interpreter (--python)


def collect_snapshot(options: ProbeOptions, on_progress: Optional[ProgressCallback] = None) -> Snapshot:
    runs: list[ProbeRun] = []
    began = time.monotonic()  # each probe's start is recorded from here: the report's timeline
    target = options.python
    scan = _run_inline(PACKAGES, ProbeContext(root=options.root, environ=options.environ, python=target), runs,
                       began) or PackageScan()
    packages = scan.installed
    # Hardware probes (NVML, amd-smi) need only their bindings, which the auditor's own environment
    # usually holds (nvidia-ml-py is its dependency) even when the audited one does not.
    own_packages = packages if target.own else _own_packages(options)
    ctx = ProbeContext(root=options.root, environ=options.environ, packages=packages, python=target)
    machine, accelerators = MachineFacts(), AcceleratorFacts()
    sections = {"machine": machine, "accelerators": accelerators}
    tpu = _place(sections, TPU, _run_inline(TPU, ctx, runs, began))

    exports: dict[str, ExportPath] = {}
    export_probes = [p for p in EXPORT_PROBES if set(p.exports) & options.exports]
    started: dict[str, RunningChild] = {}
    unstarted: dict[str, ChildOutcome] = {}
    with Turns() as turns:
        try:
            for probe in (*CHILD_PROBES, *export_probes):
                python = _interpreter_for(probe, target, packages, own_packages)
                distribution = probe.applies(packages if python is target else own_packages)
                wanted = [path for path in probe.exports if path in options.exports]
                if distribution is None:
                    runs.append(ProbeRun(probe.name, "absent", f"none of {', '.join(probe.distributions)} is installed"))
                    exports.update((path, ExportPath(path, "not-installed", missing=[probe.distributions[0]])) for path in wanted)
                elif options.quick and probe.imports_framework:
                    runs.append(ProbeRun(probe.name, "skipped", "--quick reads package metadata only"))
                else:
                    deadline = options.framework_deadline_s if probe.imports_framework and options.framework_deadline_s else probe.deadline_s
                    env = {**probe.env, **options.environ}
                    if tpu:
                        env[LOOK_FOR_TPU] = "1"
                    if options.deep:
                        env[DEEP] = "1"
                    if wanted:
                        env[EXPORT_PATHS] = ",".join(wanted)
                    try:
                        started[probe.name] = _start_child(probe, deadline, env, turns, python.executable)
                    except OSError as exc:  # no process to be had (fork limits, memory): this probe's failure
                        unstarted[probe.name] = ChildOutcome("error", None, f"its process could not start: {exc}", 0.0)
            turns.start()

            for probe in INLINE_PROBES:
                _place(sections, probe, _run_inline(probe, ctx, runs, began))
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM, SIGHUP) before the wait: no child may outlive the audit.
            for child in started.values():
                child.abandon()
            raise
        outcomes = {**unstarted, **_wait_all(started, on_progress, turns)}

    for probe in export_probes:
        if probe.name in outcomes:
            run, paths = _judge_exports(probe, outcomes[probe.name], options.exports)
            runs.append(run)
            exports.update(paths)

    frameworks: dict[str, FrameworkFacts] = {}
    for probe in CHILD_PROBES:
        if probe.name in outcomes:
            run, payload = _judge_payload(probe, outcomes[probe.name])
            runs.append(run)
        elif probe.imports_framework and probe.applies(packages) is not None:
            run, payload = next(r for r in runs if r.name == probe.name), None  # skipped by --quick
        else:
            continue
        section, _, attribute = probe.provides.partition(".")
        if section == "frameworks":
            distribution = probe.applies(packages)
            facts = payload or FrameworkFacts(name=probe.name, probe=run)
            facts.probe, facts.distribution = run, distribution
            facts.distribution_version = packages[distribution].version
            frameworks[probe.name] = facts
        else:
            setattr(accelerators, attribute, payload)
    _match_gpus_by_uuid(frameworks, accelerators)
    for run in runs:
        if run.name in started:
            run.started_s = round(started[run.name].started - began, 3)
    collectives = (_prove_collectives(options, frameworks, packages, runs, began, on_progress)
                   if options.deep or options.collectives else None)

    order = {name: i for i, name in enumerate(["packages", TPU.name, *(p.name for p in INLINE_PROBES),
                                                *(p.name for p in CHILD_PROBES), *(p.name for p in EXPORT_PROBES),
                                                COLLECTIVES.name])}
    # Every string that leaves a probe passes here: secrets redacted, control characters escaped.
    return scrub_snapshot(Snapshot(
        schema_version=SCHEMA_VERSION,
        generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        auditor_version=auditor.__version__,
        machine=machine,
        accelerators=accelerators,
        frameworks=frameworks,
        packages=packages,
        exports={path: exports[path] for path in sorted(exports)},
        probes=sorted(runs, key=lambda run: order[run.name]),
        mode="quick" if options.quick else "deep" if options.deep else "full",
        unreadable_distributions=scan.unreadable,
        auditor_python=python_facts(own_interpreter(), options.environ),
        collectives=collectives,
    ))


def _prove_collectives(options: ProbeOptions, frameworks: dict[str, FrameworkFacts], packages: Mapping[str, Any],
                       runs: list[ProbeRun], began: float,
                       on_progress: Optional[ProgressCallback]) -> list[CollectiveProof]:
    """The collective proofs, once every other child has ended: nothing else shares the machine with
    their timings. [] when no framework is installed or none proved a device to plan them on."""
    probe = COLLECTIVES
    if probe.applies(packages) is None:
        runs.append(ProbeRun(probe.name, "absent", f"none of {', '.join(probe.distributions)} is installed"))
        return []
    planned = collective.plan(frameworks, options.framework_deadline_s or probe.deadline_s)
    if not planned:
        runs.append(ProbeRun(probe.name, "skipped", "no framework listed its devices to plan a collective on"))
        return []
    env = {**probe.env, **options.environ, **collective.child_environment(planned)}
    started_s = None
    try:
        child = RunningChild(probe.module, collective.child_deadline(planned), env, python=options.python.executable)
    except OSError as exc:  # no process to be had (fork limits, memory): this probe's failure
        outcome = ChildOutcome("error", None, f"its process could not start: {exc}", 0.0)
    else:
        started_s = round(child.started - began, 3)
        outcome = child.wait()  # interrupted, it kills the child's group; the ranks die with their parent
    run, proofs = collective.judge(probe.name, outcome, planned)
    run.started_s = started_s
    runs.append(run)
    if on_progress:
        on_progress(probe.name, run.status)
    return proofs


def _interpreter_for(probe: ChildProbe, target: Interpreter, packages: Mapping[str, Any],
                     own_packages: Mapping[str, Any]) -> Interpreter:
    """A framework or export probe runs under the audited interpreter: its framework is the one
    the audit is about. A hardware probe runs under the auditor's own when that has its
    bindings, else under the audited one when that has them."""
    if probe.imports_framework or target.own:
        return target
    if probe.applies(own_packages) is None and probe.applies(packages) is not None:
        return target
    return own_interpreter()


def _own_packages(options: ProbeOptions) -> Mapping[str, Any]:
    """The auditor's own distributions, for the probes that run in its interpreter; a scan that
    fails leaves those probes absent, as an unreadable environment would."""
    try:
        return collect_packages(ProbeContext(root=options.root, environ=options.environ)).installed
    except Exception:
        return {}


# The fact type each accelerator child probe returns, by where it lands.
_ACCELERATOR_TYPES = {"accelerators.nvidia": NvidiaFacts, "accelerators.amd_smi": AmdSmiFacts}


def _place(sections: dict[str, Any], probe: InlineProbe, facts: Any) -> Any:
    """Put a probe's facts where it declared they go ("machine.cpu" -> machine.cpu)."""
    section, _, attribute = probe.provides.partition(".")
    if facts is not None:
        setattr(sections[section], attribute, facts)
    return facts


def _match_gpus_by_uuid(frameworks: dict[str, FrameworkFacts], accelerators: AcceleratorFacts) -> None:
    """Name the NVML GPU behind each framework device: indices differ once CUDA_VISIBLE_DEVICES
    reorders or hides GPUs, UUIDs do not (torch prints them without the "GPU-" prefix)."""
    if not accelerators.nvidia:
        return
    by_uuid = {_bare_uuid(gpu.uuid): gpu.index for gpu in accelerators.nvidia.gpus if gpu.uuid}
    for framework in frameworks.values():
        for device in framework.devices:
            if device.uuid:
                device.nvml_index = by_uuid.get(_bare_uuid(device.uuid))


def _bare_uuid(uuid: str) -> str:
    return uuid.lower().removeprefix("gpu-").removeprefix("mig-")


def _run_inline(probe: InlineProbe, ctx: ProbeContext, runs: list[ProbeRun], began: float,
                deadline_s: float = INLINE_DEADLINE_S) -> Any:
    """``began``: the audit's start (time.monotonic()), from which the probe's own start is recorded."""
    offset = round(time.monotonic() - began, 4)
    started = time.perf_counter()
    facts, status, reason = None, "ok", None
    try:
        with _deadline(deadline_s):
            facts = probe.collect(ctx)
    except ProbeAbsent as absent:
        status, reason = "absent", str(absent)
    except _InlineTimeout:
        status, reason = "timeout", f"no answer within {deadline_s:g} s; stopped"
    except Exception as exc:  # one probe's failure is recorded, never raised
        status, reason = "error", describe_exception(exc)
    runs.append(ProbeRun(probe.name, status, reason, round(time.perf_counter() - started, 4), offset))
    return facts


class _InlineTimeout(BaseException):
    """An inline probe ran past its deadline. A BaseException, so that no ``except Exception``
    in the probe's own code can swallow it."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Interrupt the code inside after `seconds`: SIGALRM's handler raises in the main thread,
    which ends a blocking call (a read that never returns) as well as a busy loop.

    Only the main thread can take signals; elsewhere, and where there is no SIGALRM, the
    probe runs without a deadline, its helpers' and reads' own bounds still applying.
    """
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum, _frame):
        raise _InlineTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _start_child(probe: ChildProbe, deadline_s: float, env: dict[str, str], turns: Turns,
                 python: str) -> RunningChild:
    """Start a probe's child: a framework child takes a seat in the turns, in registry order; an
    export child, which takes none, is stopped during them. Raises OSError when it cannot start."""
    seat = turns.seat(probe.name, deadline_s) if probe.provides.startswith("frameworks.") else None
    try:
        child = RunningChild(probe.module, deadline_s, {**env, **seat.environment} if seat else env,
                             seat.child_fds if seat else (), python)
    except BaseException:
        turns.ended(probe.name)
        raise
    finally:
        if seat:
            seat.close_child_ends()  # the child holds them now: its end-of-file must be its own
    if probe.provides == "exports":
        turns.pause_during_turns(probe.name, child.process.pid)  # its own session: the pid is its group
    return child


def _wait_all(started: dict[str, RunningChild], on_progress: Optional[ProgressCallback],
              turns: Turns) -> dict[str, ChildOutcome]:
    if not started:
        return {}
    outcomes = {}
    turns.idle()
    pool = ThreadPoolExecutor(max_workers=len(started))
    try:
        futures = {pool.submit(child.wait): name for name, child in started.items()}
        for future in as_completed(futures):
            name = futures[future]
            turns.ended(name)
            outcomes[name] = future.result()
            if on_progress:
                on_progress(name, outcomes[name].status)
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM, SIGHUP): no child may outlive the audit, and killing them
        # lets the waiting threads return at once instead of at their deadlines. SIGKILL ends a
        # child the turns stopped, too; leaving the turns then continues its group.
        for child in started.values():
            child.kill()
        raise
    finally:
        pool.shutdown(wait=True)
    return outcomes


def _judge_payload(probe: ChildProbe, outcome: ChildOutcome) -> tuple[ProbeRun, Any]:
    """The probe's run record and its facts, typed; a payload of the wrong shape is an error."""
    run = ProbeRun(probe.name, outcome.status, outcome.reason, outcome.duration_s)
    if outcome.status != "ok":
        return run, None
    try:
        if probe.provides.startswith("frameworks."):
            return run, from_dict(FrameworkFacts, {**outcome.payload, "name": probe.name, "probe": {"name": probe.name, "status": "ok"}})
        return run, from_dict(_ACCELERATOR_TYPES[probe.provides], outcome.payload)
    except SnapshotFormatError as exc:
        return ProbeRun(probe.name, "error", f"the probe returned malformed facts: {exc}", outcome.duration_s), None
    except RecursionError:
        return ProbeRun(probe.name, "error", "the probe returned facts nested too deeply", outcome.duration_s), None


def _judge_exports(probe: ChildProbe, outcome: ChildOutcome, asked: frozenset[str]) -> tuple[ProbeRun, dict[str, ExportPath]]:
    """The export paths a probe checked. A probe that crashed or ran out of time mid-conversion
    leaves its paths broken: a converter that hangs or segfaults is what a user would hit too."""
    run = ProbeRun(probe.name, outcome.status, outcome.reason, outcome.duration_s)
    wanted = [path for path in probe.exports if path in asked]
    if outcome.status == "ok":
        try:
            returned = outcome.payload["paths"]
            return run, {path: from_dict(ExportPath, returned[path], f"$.paths.{path}") for path in wanted}
        except (KeyError, TypeError, SnapshotFormatError) as exc:
            run = ProbeRun(probe.name, "error", f"the probe returned malformed facts: {exc}", outcome.duration_s)
    failure = f"the {probe.name} probe {run.status}: {run.reason}"
    return run, {path: ExportPath(path, "broken", error=failure) for path in wanted}
