"""Throughput is timed in turns, with the machine to itself (auditor/probes/turns.py).

The coordinator is tested against real tiny children: ``python -c`` scripts that take their
turn through the child's side of the protocol (Turn), sleep to stand in for importing and
measuring, and print when each thing happened. time.monotonic() is the system's monotonic
clock, so times from different processes compare. Every run checks that nothing it started
is left alive or stopped, and that no descriptor or thread outlives the turns.

The real test runs a full audit, then each framework child's collect() in fresh processes,
one at a time, and compares the float32 GFLOP/s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest

import auditor
from auditor.probes import guardian, processes, turns
from auditor.probes.child import RunningChild
from auditor.probes.turns import Turn, Turns
from auditor.schema import published_schema
from leftovers import TAG, new_tag, survivors, tagged_processes

ROOT = str(Path(auditor.__file__).resolve().parent.parent)

# A framework child, as far as turns go. argv[1] is its plan (JSON): import_s, how long it
# "imports"; measure_s, how long its turn lasts (HANG_S: it hangs); die_waiting_s, dying that
# long after asking for its turn; die_in_turn; watch, PIDs whose /proc state it records in its
# turn (the export children's, when the plan says watch_exports); garbage, bytes it sends
# instead of the protocol.
CHILD = r"""
import json, os, sys, threading, time
from auditor.probes.turns import TURN_FDS, Turn

def state(pid):
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]

def stopped(pids):
    # A process stops when it next runs after the signal: within a scheduler tick or so.
    deadline = time.monotonic() + 0.5
    while not all(state(pid) == "T" for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.005)
    return [state(pid) for pid in pids]

plan = json.loads(sys.argv[1])
if "garbage" in plan:
    os.write(int(os.environ[TURN_FDS].split(",")[0]), plan["garbage"].encode())
    time.sleep(60)
turn = Turn.from_environment()
time.sleep(plan.get("import_s", 0))
record = {"waiting_at": time.monotonic()}
if "die_waiting_s" in plan:
    threading.Timer(plan["die_waiting_s"], os._exit, (4,)).start()

def measure():
    record["start"] = time.monotonic()
    if plan.get("die_in_turn"):
        os._exit(3)
    record["watched"] = stopped(plan.get("watch", ()))
    time.sleep(plan.get("measure_s", 0.2))
    record["end"] = time.monotonic()

record["alone"] = turn.take(measure)
print(json.dumps(record), flush=True)
"""
HANG_S = 60  # an import_s or measure_s this long: the child hangs there, and the test kills it
# An export child: busy converting, with a helper in its process group; prints both PIDs.
EXPORT = r"""
import subprocess, sys, time
helper = subprocess.Popen([sys.executable, "-c", "while True: pass"])
print(helper.pid, flush=True)
while True:
    pass
"""


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def _gone(pid: int, wait_s: float = 5.0) -> bool:
    deadline = time.monotonic() + wait_s
    while _state(pid) not in ("gone", "Z", "X"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _start(plan: dict, env: dict[str, str], pass_fds=()) -> subprocess.Popen:
    return processes.start([sys.executable, "-c", CHILD, json.dumps(plan)],
                           {**os.environ, "PYTHONPATH": ROOT, **env}, pass_fds)


class Run:
    """Children seated in plan order, granted by a real Turns, waited for as the runner does
    (each reported ended when it exits); the ones that hang are killed once the others end."""

    def __init__(self, plans: dict[str, dict], exports: int = 0):
        self.plans = plans
        guardian.run_environment()  # the guardian's pipe stays open for good: opened before counting
        self.fds_before = set(os.listdir("/proc/self/fd"))
        self.turns = Turns()
        self.exports = [processes.start([sys.executable, "-c", EXPORT]) for _ in range(exports)]
        self.helpers = [int(export.stdout.readline()) for export in self.exports]
        for index, export in enumerate(self.exports):
            self.turns.pause_during_turns(f"export-{index}", export.pid)
        self.children: dict[str, subprocess.Popen] = {}
        self.seated_at = time.monotonic()
        for name, plan in plans.items():
            if plan.get("watch_exports"):
                plan = {**plan, "watch": self.export_pids()}
            seat = self.turns.seat(name, plan.get("deadline_s", 120.0))
            try:
                self.children[name] = _start(plan, seat.environment, seat.child_fds)
            finally:
                seat.close_child_ends()

    def export_pids(self) -> list[int]:
        return [export.pid for export in self.exports] + self.helpers

    def go(self, wait_s: float = 20.0) -> dict[str, dict]:
        try:
            self.turns.start()
            self.turns.idle()
            pending = {name: child for name, child in self.children.items() if not self._hangs(name)}
            deadline = time.monotonic() + wait_s
            while pending and time.monotonic() < deadline:
                for name, child in list(pending.items()):
                    if child.poll() is not None:
                        self.turns.ended(name)
                        del pending[name]
                time.sleep(0.01)
        finally:
            results = self.finish()
        assert not pending, f"{sorted(pending)} still running after {wait_s} s"
        return results

    def finish(self) -> dict[str, dict]:
        """Leave the turns, end every process (reading what the children said), then check
        that nothing is left: no process, stopped or not, no descriptor, no thread."""
        self.turns.close()
        stopped = [pid for pid in self.export_pids() if _state(pid) in ("T", "t")]
        results = {}
        for name, child in self.children.items():
            processes.kill_group(child)
            child.wait(timeout=10)
            out = child.stdout.read().decode()
            results[name] = json.loads(out) if out.strip() else {"returncode": child.returncode}
            processes.end(child)
        for export in self.exports:
            processes.end(export)
        assert not stopped, "an export child was left stopped"
        assert all(_gone(pid) for pid in [*(child.pid for child in self.children.values()), *self.export_pids()])
        assert set(os.listdir("/proc/self/fd")) <= self.fds_before, "the turns left a descriptor open"
        assert not [t for t in threading.enumerate() if t.name == "turns"], "the coordinator thread outlived the turns"
        return results

    def _hangs(self, name: str) -> bool:
        plan = self.plans[name]
        return max(plan.get("import_s", 0), plan.get("measure_s", 0)) >= HANG_S or "garbage" in plan


def _disjoint(records: list[dict]) -> bool:
    ordered = sorted(records, key=lambda r: r["start"])
    return all(earlier["end"] <= later["start"] for earlier, later in zip(ordered, ordered[1:]))


# --- the coordinator -------------------------------------------------------------------------


def test_turns_go_one_at_a_time_in_seat_order_after_every_child_imported():
    results = Run({"a": {"import_s": 0.05}, "b": {"import_s": 0.4}, "c": {"import_s": 0.2}}).go()

    records = list(results.values())
    assert [r["alone"] for r in records] == [True, True, True]
    assert _disjoint(records), results  # no two children ever measured at once
    assert sorted(results, key=lambda name: results[name]["start"]) == ["a", "b", "c"]  # seat order, not arrival
    assert min(r["start"] for r in records) >= max(r["waiting_at"] for r in records)


def test_a_slow_importer_delays_every_other_turn():
    results = Run({"fast": {"import_s": 0.05}, "slow": {"import_s": 1.5}}).go()

    assert results["fast"]["start"] >= results["slow"]["waiting_at"]
    assert results["fast"]["alone"] is results["slow"]["alone"] is True
    assert _disjoint(list(results.values()))


def test_a_child_that_dies_waiting_gives_its_place_up():
    results = Run({"doomed": {"import_s": 0.05, "die_waiting_s": 0.3}, "other": {"import_s": 1.0}}).go()

    assert results["doomed"] == {"returncode": 4}
    other = results["other"]
    assert other["alone"] is True
    assert other["start"] - other["waiting_at"] < 0.5


def test_a_child_that_dies_holding_the_turn_releases_it():
    results = Run({"doomed": {"import_s": 0.05, "die_in_turn": True}, "other": {"import_s": 0.3}}).go()

    assert results["doomed"] == {"returncode": 3}
    other = results["other"]
    assert other["alone"] is True
    assert other["start"] - other["waiting_at"] < 0.5


def test_a_child_outside_the_protocol_drops_out_of_it():
    results = Run({"hostile": {"garbage": "wwdxyz"}, "other": {"import_s": 0.3}}).go()

    other = results["other"]
    assert other["alone"] is True
    assert other["start"] - other["waiting_at"] < 0.5


def test_a_child_near_its_deadline_is_granted_at_once_not_alone():
    # 11 s of deadline: the last 10 s are near it, so it may wait 1 s for a hung importer.
    run = Run({"hung": {"import_s": HANG_S}, "hurried": {"import_s": 0.05, "deadline_s": 11.0}})
    results = run.go()

    hurried = results["hurried"]
    assert hurried["alone"] is False
    assert 0.9 <= hurried["start"] - run.seated_at < 2.5
    assert results["hung"] == {"returncode": -9}  # killed by the test, once the others had ended


def test_a_turn_granted_alone_is_reported_shared_when_a_hurried_child_joined_it():
    run = Run({"first": {"import_s": 0.05, "measure_s": 2.0}, "hurried": {"import_s": 0.05, "deadline_s": 11.5}})
    results = run.go()

    first, hurried = results["first"], results["hurried"]
    assert hurried["start"] < first["end"]  # it did not wait for the turn in progress
    assert first["alone"] is False and hurried["alone"] is False


def test_a_turn_that_overruns_stops_counting_as_alone(monkeypatch):
    monkeypatch.setattr(turns, "TURN_LIMIT_S", 0.5)
    results = Run({"stuck": {"import_s": 0.05, "measure_s": HANG_S}, "next": {"import_s": 0.05}}).go()

    after = results["next"]
    assert after["alone"] is False
    assert 0.4 <= after["start"] - after["waiting_at"] < 1.5


def test_export_children_are_stopped_during_an_alone_turn_and_continued_after():
    results = Run({"a": {"import_s": 0.3, "watch_exports": True}, "b": {"import_s": 0.1, "watch_exports": True}},
                  exports=2).go()

    assert results["a"]["watched"] == results["b"]["watched"] == ["T"] * 4, results
    assert results["a"]["alone"] is results["b"]["alone"] is True


def test_a_child_run_on_its_own_measures_at_once_and_cannot_say_alone():
    child = _start({"import_s": 0.0}, {})
    out, _ = child.communicate(timeout=30)
    record = json.loads(out)
    assert record["alone"] is None
    assert record["start"] - record["waiting_at"] < 0.05
    processes.end(child)


def test_descriptors_that_are_not_the_processes_own_mean_no_turn(monkeypatch):
    monkeypatch.setenv(turns.TURN_FDS, "not,numbers")
    assert Turn.from_environment().take(lambda: None) is None
    monkeypatch.setenv(turns.TURN_FDS, "1000001,1000002")
    assert Turn.from_environment().take(lambda: None) is None
    assert turns.TURN_FDS not in os.environ  # the framework's own processes do not see it


def test_ending_the_turns_mid_turn_continues_the_stopped_and_lets_the_waiting_measure():
    run = Run({"holder": {"import_s": 0.05, "measure_s": 3.0}, "waiter": {"import_s": 0.05}}, exports=1)
    try:
        run.turns.start()
        run.turns.idle()
        deadline = time.monotonic() + 10
        while _state(run.exports[0].pid) != "T":  # the holder's alone turn has begun
            assert time.monotonic() < deadline, "the export child was never stopped"
            time.sleep(0.01)
        run.turns.close()  # what leaving the with block does when the audit is interrupted
        assert _state(run.exports[0].pid) == "R"  # SIGCONT wakes a stopped process as it is sent
        for child in run.children.values():
            child.wait(timeout=10)
    finally:
        results = run.finish()

    assert results["holder"]["alone"] is None  # no verdict came: the parent went away
    assert results["waiter"]["alone"] is None and results["waiter"]["start"] < results["holder"]["end"]


# --- a real audit, interrupted in a turn ---------------------------------------------------


def test_an_audit_interrupted_while_export_children_are_stopped_leaves_nothing_behind(tmp_path):
    pytest.importorskip("torch")
    # coremltools, spinning for ever once imported: the export-coreml child is still converting
    # when the framework children take their turns, so it is stopped for each of them.
    package = tmp_path / "fakes" / "coremltools"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("while True:\n    pass\n")
    tag = new_tag()
    env = {**os.environ, TAG: tag, "PYTHONPATH": str(tmp_path / "fakes"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    audit = subprocess.Popen([sys.executable, "-m", "auditor", "audit", "--deep", "--format", "json"], cwd=ROOT,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not [pid for pid in tagged_processes(tag) if _state(pid) == "T"]:
            assert audit.poll() is None, "the audit ended before any turn stopped an export child"
            assert time.monotonic() < deadline, "no export child was stopped within 300 s"
            time.sleep(0.01)
        audit.send_signal(signal.SIGTERM)
        _, stderr = audit.communicate(timeout=30)
        assert audit.returncode == 128 + signal.SIGTERM, stderr
        assert stderr.decode().strip() == "auditor: error: interrupted by SIGTERM"
        assert survivors(tag) == []  # stopped ones included: SIGKILL ends them too
    finally:
        if audit.poll() is None:
            audit.kill()
        audit.communicate()
        for pid in tagged_processes(tag):
            os.kill(pid, signal.SIGKILL)


# --- the real frameworks: inside a full audit, and alone ----------------------------------------

FRAMEWORKS = {"torch": ("auditor.probes.torch_child", "cpu"),
              "tensorflow": ("auditor.probes.tensorflow_child", "/device:CPU:0"),
              "jax": ("auditor.probes.jax_child", "cpu:0")}
ATTEMPTS = 4  # other work on a shared 2-core machine can spoil an attempt or two; not four
TOLERANCE = 0.2


def _float32_cpu(proofs: list[dict], device: str) -> dict:
    (proof,) = [p for p in proofs if p["workload"] == "matmul" and p["device"] == device and p["dtype"] == "float32"
                and p["compiler"] is None]
    return proof


def _alone(framework: str) -> dict:
    """The float32 CPU matmul proof of the framework's child run as the audit runs it, but on its
    own: no other child, and no turn descriptors. The best of two fresh processes."""
    module, device = FRAMEWORKS[framework]
    env = {key: value for key, value in os.environ.items() if key != turns.TURN_FDS}
    runs = []
    for _ in range(2):
        outcome = RunningChild(module, 180.0, {**env, "TF_CPP_MIN_LOG_LEVEL": "3"}).wait()
        assert outcome.status == "ok", outcome.reason
        runs.append(_float32_cpu(outcome.payload["proofs"], device))
    return max(runs, key=lambda proof: proof["gflops"])


def _wait_for_a_quiet_machine(wait_s: float = 30.0) -> None:
    """Give other work on the machine (another test run) a chance to end: until the CPUs are
    90% idle over half a second, for at most wait_s."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        before = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        time.sleep(0.5)
        after = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        delta = [b - a for a, b in zip(before, after)]
        if sum(delta) and (delta[3] + delta[4]) / sum(delta) > 0.9:  # idle + iowait
            return


def test_throughput_inside_an_audit_is_the_throughput_alone(tmp_path):
    for framework in FRAMEWORKS:
        pytest.importorskip(framework)
    schema = json.loads(published_schema())
    missing, figures = set(FRAMEWORKS), {}
    for attempt in range(ATTEMPTS):
        _wait_for_a_quiet_machine()
        report_path = tmp_path / f"audit-{attempt}.json"
        audit = subprocess.run([sys.executable, "-m", "auditor", "audit", "--format", "json", "-o", str(report_path)],
                               capture_output=True, text=True, timeout=300)
        assert audit.returncode in (0, 1), audit.stderr
        report = json.loads(report_path.read_text())
        jsonschema.validate(report, schema, cls=jsonschema.Draft202012Validator)
        for framework in sorted(missing):
            fw = report["frameworks"][framework]
            inside = _float32_cpu(fw["proofs"], FRAMEWORKS[framework][1])
            timed = [p for p in fw["proofs"] if p["gflops"] is not None]
            assert timed and all(p["measured_alone"] is True for p in timed), timed
            alone = _alone(framework)
            assert alone["measured_alone"] is None  # no audit around it: it cannot say
            if framework == "jax":
                assert inside["threads"] is None
            else:
                assert isinstance(inside["threads"], int) and inside["threads"] >= 1
                assert inside["threads"] == alone["threads"]
            figures.setdefault(framework, []).append((inside["gflops"], alone["gflops"]))
            if abs(inside["gflops"] - alone["gflops"]) <= TOLERANCE * alone["gflops"]:
                missing.discard(framework)
        if not missing:
            return
    pytest.fail(f"float32 GFLOP/s inside the audit vs alone, per attempt, off by more than {TOLERANCE:.0%}: "
                + "; ".join(f"{name}: {figures[name]}" for name in sorted(missing)))
