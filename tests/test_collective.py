"""The collective proofs (auditor/probes/collective_child.py, collective.py) for real on this
machine's CPUs, their faults, the DST checks, and their place in the reports.

Real runs: torch.distributed's gloo all_reduce between two rank processes, JAX's psum over two host
CPU devices and TensorFlow's MirroredStrategy over two logical CPUs, in the collective child as the
audit starts it. Faults are injected from outside only: a sitecustomize.py on the ranks' PYTHONPATH
wraps torch.distributed.all_reduce in the rank whose RANK is 1, so that it adds 1 to its result,
kills its process, or never returns. They all run at once, in one module fixture: most of their time
is spent importing torch and waiting for the hung rank's deadline.
"""

from __future__ import annotations

import dataclasses
import json
import os
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from auditor.checks import run_checks
from auditor.facts import (AcceleratorFacts, CollectiveProof, FrameworkBuild, FrameworkDevice, FrameworkFacts,
                           GpuPeerStatus, MachineFacts, MemoryFacts, NvidiaFacts, NvidiaGpu, ProbeRun, Snapshot,
                           from_dict, to_dict)
from auditor.pipeline import build_report
from auditor.probes import collective, collective_child
from auditor.probes.base import ProbeContext
from auditor.probes.child import ChildOutcome, RunningChild
from auditor.probes.cuda_toolkit import collect_cuda_toolkit
from auditor.probes.fsroot import FsRoot
from auditor.probes.registry import COLLECTIVES
from auditor.profiles.document import AcceleratorRequirement, ProfileDocument
from auditor.profiles.loader import Profile
from auditor.profiles.needs import needs_collective_proof
from auditor.render.html import HtmlRenderer
from auditor.render.markdown import MarkdownRenderer
from auditor.render.text import TextRenderer
from leftovers import TAG, kill_tagged, new_tag, survivors

CPU_RUNS = [  # what collective.plan gives for CPU-only frameworks, with a shorter deadline
    {"framework": "torch", "backend": "gloo", "devices": ["cpu", "cpu"], "bytes": 4 << 20, "deadline_s": 60.0},
    {"framework": "jax", "backend": "xla:cpu", "devices": ["cpu:0", "cpu:1"], "bytes": 4 << 20, "deadline_s": 60.0},
    {"framework": "tensorflow", "backend": "ReductionToOneDevice", "devices": ["/cpu:0", "/cpu:1"],
     "bytes": 4 << 20, "deadline_s": 60.0},
]
FAULT_DEADLINE_S = 20.0  # a hung rank costs this; the rank left waiting gives up 5 s before
# The outside seam: imported at start-up by every process with this directory on PYTHONPATH.
SITECUSTOMIZE = textwrap.dedent('''
    import importlib.abc, os, signal, sys, time

    FAULT = os.environ.get("COLLECTIVE_FAULT")


    def _patch(module):
        real = module.all_reduce

        def all_reduce(tensor, *args, **kwargs):
            if FAULT == "hang":
                while True:  # before the real one: the other rank waits in vain
                    time.sleep(60)
            if FAULT == "crash":
                os.kill(os.getpid(), signal.SIGSEGV)
            work = real(tensor, *args, **kwargs)
            tensor.add_(1)
            return work

        module.all_reduce = all_reduce


    class _Finder(importlib.abc.MetaPathFinder):
        """Wraps torch.distributed once it has loaded."""

        def find_spec(self, name, path, target=None):
            if name != "torch.distributed":
                return None
            found = (finder.find_spec(name, path, target) for finder in sys.meta_path
                     if finder is not self and hasattr(finder, "find_spec"))
            spec = next(filter(None, found), None)
            if spec is not None:
                load = spec.loader.exec_module

                def exec_module(module):
                    load(module)
                    _patch(module)

                spec.loader.exec_module = exec_module
            return spec


    if FAULT and os.environ.get("RANK") == "1":
        sys.meta_path.insert(0, _Finder())
''')


@dataclasses.dataclass
class Run:
    proof: dict  # what the run returned: the CollectiveProof fields
    seconds: float  # how long it took
    left: list[str]  # its processes still alive once it returned


def _real_child(tag: str) -> tuple[ChildOutcome, list[str]]:
    """The collective child as the runner starts it, with the CPU plan."""
    env = {**COLLECTIVES.env, **os.environ, **collective.child_environment(CPU_RUNS), TAG: tag}
    outcome = RunningChild(COLLECTIVES.module, collective.child_deadline(CPU_RUNS), env).wait()
    return outcome, survivors(tag, wait_s=2)


def _faulty(fault: str, seam: Path) -> Run:
    tag = new_tag()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(seam), os.environ.get("PYTHONPATH")))),
           "COLLECTIVE_FAULT": fault, TAG: tag}
    started = time.monotonic()
    try:
        proof = collective_child.prove({"framework": "torch", "backend": "gloo", "devices": ["cpu", "cpu"],
                                        "bytes": 1 << 20, "deadline_s": FAULT_DEADLINE_S}, env)
        return Run(proof, time.monotonic() - started, survivors(tag, wait_s=2))
    finally:
        kill_tagged(tag)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Everything real, at once: the child's three proofs, and the three faults."""
    seam = tmp_path_factory.mktemp("seam")
    (seam / "sitecustomize.py").write_text(SITECUSTOMIZE)
    tag = new_tag()
    try:
        with ThreadPoolExecutor(4) as pool:
            real = pool.submit(_real_child, tag)
            faults = {fault: pool.submit(_faulty, fault, seam) for fault in ("wrong", "crash", "hang")}
            yield {"real": real.result(), **{fault: future.result() for fault, future in faults.items()}}
    finally:
        kill_tagged(tag)


@pytest.fixture(scope="module")
def proofs(runs) -> list[CollectiveProof]:
    outcome, left = runs["real"]
    assert left == []
    run, proofs = collective.judge(COLLECTIVES.name, outcome, CPU_RUNS)
    assert (run.status, run.reason) == ("ok", None)
    return proofs


# --- for real ---------------------------------------------------------------------------------


def test_gloo_all_reduce_between_two_processes_gives_the_exact_sum(proofs):
    torch = proofs[0]
    assert (torch.framework, torch.backend, torch.world_size, torch.devices) == ("torch", "gloo", 2, ["cpu", "cpu"])
    assert (torch.ok, torch.max_abs_error, torch.error, torch.failed_ranks, torch.skipped) == (
        True, 0.0, None, [], None)
    assert (torch.operation, torch.dtype, torch.bytes, torch.scope, torch.nodes) == (
        "all_reduce", "float32", 4 << 20, "local", [])
    assert 0 < torch.seconds < 5
    assert torch.algbw_gbps == pytest.approx(torch.bytes / torch.seconds / 1e9, rel=1e-3)
    n = torch.world_size
    assert torch.busbw_gbps == pytest.approx(torch.algbw_gbps * 2 * (n - 1) / n, abs=1e-3)


def test_jax_psum_and_tensorflow_mirrored_all_reduce_over_two_cpu_devices(proofs):
    jax, tensorflow = proofs[1:]
    assert (jax.framework, jax.backend, jax.devices) == ("jax", "xla:cpu", ["cpu:0", "cpu:1"])
    assert (tensorflow.framework, tensorflow.backend, tensorflow.devices) == (
        "tensorflow", "ReductionToOneDevice", ["device:CPU:0", "device:CPU:1"])
    for proof in (jax, tensorflow):
        assert (proof.ok, proof.world_size, proof.max_abs_error, proof.error) == (True, 2, 0.0, None), proof
        assert proof.seconds > 0 and proof.algbw_gbps > 0
        assert proof.busbw_gbps == pytest.approx(proof.algbw_gbps, abs=1e-3)  # 2(n-1)/n is 1 for two


def test_the_proofs_are_json_facts_and_raise_no_finding(proofs):
    assert [from_dict(CollectiveProof, json.loads(json.dumps(to_dict(proof)))) for proof in proofs] == proofs
    assert _distributed(_snapshot(collectives=proofs)) == []


# --- faults ------------------------------------------------------------------------------------


def test_a_rank_returning_a_wrong_sum_is_named(runs):
    run = runs["wrong"]
    assert (run.proof["ok"], run.proof["failed_ranks"], run.proof["max_abs_error"]) == (False, [1], 1.0)
    assert run.proof["error"] == "rank 1 returned a wrong sum (off by up to 1 from the exact sum)"
    assert run.proof["busbw_gbps"] is None and run.left == []


def test_a_rank_that_crashes_is_named_with_its_signal(runs):
    run = runs["crash"]
    assert (run.proof["ok"], run.proof["failed_ranks"]) == (False, [1])
    assert run.proof["error"].startswith("rank 1 crashed: killed by SIGSEGV")
    assert run.seconds < FAULT_DEADLINE_S and run.left == []


def test_a_rank_that_hangs_is_killed_at_the_deadline_and_named(runs):
    run = runs["hang"]
    proof = run.proof
    assert (proof["ok"], proof["failed_ranks"]) == (False, [1])
    assert proof["error"].startswith(f"rank 1 hung: no answer within {FAULT_DEADLINE_S:g} s; killed with its "
                                     "process group; then rank 0 raised ")  # rank 0's collective timed out
    assert FAULT_DEADLINE_S <= run.seconds < FAULT_DEADLINE_S + 5
    assert run.left == []  # neither rank, nor anything they started


# --- judging ranks, planning, the child's failures --------------------------------------------


def test_ranks_failing_alike_are_named_together_and_cluster_proofs_name_their_nodes():
    ranks = [{"rank": 0, "device": "cuda:0", "host": "gpu-a", "error": "DistBackendError: NCCL timeout"},
             {"rank": 1, "device": "cuda:0", "host": "gpu-b", "crashed": "killed by SIGKILL"},
             {"rank": 2, "device": "cuda:0", "host": "gpu-c", "crashed": "killed by SIGKILL"}]
    proof = collective_child.proof_from_ranks("torch", "nccl", ranks, 64 << 20, scope="cluster")
    assert proof["error"] == ("ranks 1, 2 crashed: killed by SIGKILL; "
                              "then rank 0 raised DistBackendError: NCCL timeout")
    assert (proof["failed_ranks"], proof["nodes"], proof["scope"]) == ([1, 2], ["gpu-a", "gpu-b", "gpu-c"], "cluster")
    # When every rank only raised, they are the ones to blame.
    raised = collective_child.proof_from_ranks("torch", "gloo", [ranks[0], dict(ranks[0], rank=1)], 1 << 20)
    assert (raised["failed_ranks"], raised["error"]) == ([0, 1], "ranks 0, 1 raised DistBackendError: NCCL timeout")


def test_bus_bandwidth_follows_nccl_tests_for_eight_ranks():
    ranks = [{"rank": rank, "ok": True, "max_abs_error": 0.0, "seconds": 0.002 + rank * 1e-4} for rank in range(8)]
    proof = collective_child.proof_from_ranks("torch", "nccl", ranks, 64 << 20)
    assert proof["seconds"] == pytest.approx(0.0027)  # the slowest rank's
    assert proof["algbw_gbps"] == pytest.approx((64 << 20) / 0.0027 / 1e9, abs=1e-3)
    assert proof["busbw_gbps"] == pytest.approx(proof["algbw_gbps"] * 2 * 7 / 8, abs=1e-3)


def test_a_torch_without_distributed_is_skipped_not_failed():
    ranks = [{"rank": rank, "ok": False, "skipped": "this torch build has no torch.distributed"} for rank in range(2)]
    proof = from_dict(CollectiveProof, collective_child.proof_from_ranks("torch", "gloo", ranks, 4 << 20))
    assert (proof.skipped, proof.failed, proof.failed_ranks) == ("this torch build has no torch.distributed", False, [])
    assert _distributed(_snapshot(collectives=[proof])) == []


def _framework(name: str, variant: str, devices: list[tuple[str, str]]) -> FrameworkFacts:
    return FrameworkFacts(name=name, probe=ProbeRun(name, "ok"), build=FrameworkBuild(variant=variant),
                          devices=[FrameworkDevice(device_id, kind) for device_id, kind in devices])


def test_the_plan_uses_the_gpus_each_framework_sees_and_two_cpus_otherwise():
    cuda = [("cpu", "cpu"), *((f"cuda:{index}", "cuda") for index in range(4))]
    frameworks = {"torch": _framework("torch", "cuda", cuda),
                  "jax": _framework("jax", "cuda", [("gpu:0", "cuda"), ("gpu:1", "cuda"), ("cpu:0", "cpu")]),
                  "tensorflow": _framework("tensorflow", "cuda", [("/physical_device:CPU:0", "cpu"),
                                                                  ("/physical_device:GPU:0", "gpu")])}
    assert collective.plan(frameworks, 30.0) == [
        {"framework": "torch", "backend": "nccl", "devices": ["cuda:0", "cuda:1", "cuda:2", "cuda:3"],
         "bytes": 64 << 20, "deadline_s": 30.0},
        {"framework": "jax", "backend": "xla:cuda", "devices": ["gpu:0", "gpu:1"], "bytes": 64 << 20,
         "deadline_s": 30.0},
        {"framework": "tensorflow", "backend": "ReductionToOneDevice", "devices": ["/cpu:0", "/cpu:1"],
         "bytes": 4 << 20, "deadline_s": 30.0},  # one GPU is no collective
    ]
    rocm = _framework("torch", "rocm", [("cpu", "cpu"), ("cuda:0", "rocm"), ("cuda:1", "rocm")])
    assert collective.plan({"torch": rocm}, 60.0)[0]["backend"] == "rccl"
    cpu_build = _framework("torch", "cpu", [("cpu", "cpu")])  # on a GPU machine too: gloo between CPU ranks
    failed = dataclasses.replace(_framework("jax", "cpu", []), probe=ProbeRun("jax", "error", "ImportError"))
    assert collective.plan({"torch": cpu_build, "jax": failed}, 60.0) == [CPU_RUNS[0]]


def test_a_child_that_times_out_leaves_every_planned_proof_broken():
    timed_out = ChildOutcome("timeout", None, "no answer within 195 s; killed", 195.0)
    run, proofs = collective.judge("collectives", timed_out, CPU_RUNS)
    assert run.status == "timeout"
    assert [(proof.framework, proof.ok, proof.world_size) for proof in proofs] == [
        ("torch", False, 2), ("jax", False, 2), ("tensorflow", False, 2)]
    assert proofs[0].error == "the collectives probe timeout: no answer within 195 s; killed"
    assert {finding.code for finding in _distributed(_snapshot(collectives=proofs))} == {"DST001"}
    malformed, none = collective.judge("collectives", ChildOutcome("ok", {"collectives": []}, None, 1.0), CPU_RUNS)
    assert malformed.status == "error" and "expected 3 proofs" in malformed.reason and len(none) == 3


def test_a_profile_asks_for_the_collectives_when_its_goal_spans_several_accelerators():
    def profile(count):
        accelerator = None if count is None else AcceleratorRequirement(kind="cuda", min_count=count)
        return Profile("goal", "goal.toml", ProfileDocument("auditor-profile-v1", "a goal", accelerator=accelerator))

    assert needs_collective_proof([profile(1), profile(8)])
    assert not needs_collective_proof([profile(None), profile(1)])


# --- checks ------------------------------------------------------------------------------------


def _distributed(snapshot: Snapshot) -> list:
    """The DST findings (a snapshot without frameworks has FW012 besides)."""
    return [finding for finding in run_checks(snapshot) if finding.code.startswith("DST")]


def _snapshot(collectives=None, nvidia=None, shm_bytes=None, frameworks=None) -> Snapshot:
    return Snapshot(schema_version="1.8", generated_at="2026-01-01T00:00:00+00:00", auditor_version="test",
                    machine=MachineFacts(memory=MemoryFacts(None, None, None, None, None, None, shm_bytes,
                                                            sources={"shm_bytes": "/proc/self/mounts"})),
                    accelerators=AcceleratorFacts(nvidia=nvidia), frameworks=frameworks or {}, packages={},
                    collectives=collectives)


def _h100s(links: list, pairs: list = ()) -> NvidiaFacts:
    gpus = [NvidiaGpu(index, name="NVIDIA H100 80GB HBM3", nvlinks_active=active, nvlinks_total=None if active is None
                      else 18) for index, active in enumerate(links)]
    return NvidiaFacts(gpus=gpus, p2p=[GpuPeerStatus(*pair) for pair in pairs])


def test_dst001_names_the_rank_and_for_nccl_what_it_depends_on():
    proof = CollectiveProof("torch", "nccl", 8, False, devices=[f"cuda:{i}" for i in range(8)], bytes=64 << 20,
                            error="rank 3 hung: no answer within 60 s; killed with its process group", failed_ranks=[3])
    torch = _framework("torch", "cuda", [])
    torch.build.details["nccl"] = "2.21.5"
    snapshot = _snapshot([proof], nvidia=_h100s([18] * 8, [(0, 1, "ok", "ok"), (2, 5, "disabled-by-regkey", None)]),
                         shm_bytes=64 << 20, frameworks={"torch": torch})
    (finding,) = [f for f in _distributed(snapshot) if f.code == "DST001"]
    assert (finding.severity, finding.framework) == ("error", "torch")
    assert finding.title == "PyTorch nccl all_reduce across 8 ranks is broken: rank 3 hung"
    assert finding.evidence == [
        "collective: rank 3 hung: no answer within 60 s; killed with its process group (8 ranks on cuda:0, cuda:1, "
        "cuda:2, cuda:3, cuda:4, cuda:5, cuda:6, cuda:7)",
        "torch loads NCCL 2.21.5 (torch.cuda.nccl.version())",
        "/dev/shm: 64 MiB (/proc/self/mounts)",
        "GPU 2 and GPU 5: peer-to-peer disabled-by-regkey (nvmlDeviceGetP2PStatus, READ)"]
    assert "`NCCL_DEBUG=INFO`" in finding.fix and "`NCCL_P2P_DISABLE=1`" in finding.fix


def test_dst001_for_gloo_points_at_the_interface_and_passes_unknowns_by():
    broken = CollectiveProof("torch", "gloo", 2, False, devices=["cpu", "cpu"], failed_ranks=[1],
                             error="rank 1 returned a wrong sum (off by up to 1 from the exact sum)")
    (finding,) = _distributed(_snapshot([broken]))
    assert finding.title == ("PyTorch gloo all_reduce across 2 ranks is broken: rank 1 returned a wrong sum (off by "
                             "up to 1 from the exact sum)")
    assert "`GLOO_SOCKET_IFNAME`" in finding.fix
    assert _distributed(_snapshot(None)) == _distributed(_snapshot([])) == []  # not run is no failure


def test_dst002_a_gpu_with_fewer_nvlinks_up_than_its_peers():
    (finding,) = _distributed(_snapshot(nvidia=_h100s([18, 18, 12, 18])))
    assert finding.code == "DST002"
    assert finding.title == "GPU 2 (NVIDIA H100 80GB HBM3) has 12 of 18 NVLinks up; its peers have 18"
    assert finding.severity == "warning" and "`nvidia-smi nvlink --status -i 2`" in finding.fix
    # No NVLink (PCIe GPUs), links not read, GPUs alike, one GPU, or a MIG GPU: nothing to judge.
    for links in ([None, None], [18, None], [12, 12], [0]):
        assert _distributed(_snapshot(nvidia=_h100s(links))) == []
    mig = _h100s([18, 12])
    mig.gpus[1].mig_mode_current = True
    assert _distributed(_snapshot(nvidia=mig)) == []


def test_dst003_peer_to_peer_unavailable_is_information_with_the_measured_bandwidth():
    pairs = [(0, 1, "ok", "ok"), (0, 2, "topology-not-supported", None), (1, 2, "topology-not-supported", None)]
    measured = CollectiveProof("torch", "nccl", 3, True, seconds=0.01, algbw_gbps=6.7, busbw_gbps=8.947)
    (finding,) = _distributed(_snapshot([measured], nvidia=_h100s([None] * 3, pairs)))
    assert (finding.code, finding.severity) == ("DST003", "info")
    assert finding.title == "Peer-to-peer is unavailable between 2 of 3 GPU pairs"
    assert finding.evidence[-1] == "measured: PyTorch nccl all_reduce across 3 ranks, bus bandwidth 8.947 GB/s"
    unknown = [(0, 1, None, None)]
    assert _distributed(_snapshot(nvidia=_h100s([None, None], unknown))) == []


# --- the NCCL net plugin, and the reports ------------------------------------------------------


def test_the_nccl_net_plugin_is_among_the_libraries_the_loader_resolves(tmp_path):
    plugins = tmp_path / "aws-ofi-nccl"
    plugins.mkdir()
    (plugins / "libnccl-net.so").write_bytes(b"")
    bin_dir = tmp_path / "bin"  # an ld.so cache that lists the plugin unversioned
    bin_dir.mkdir()
    (bin_dir / "ldconfig").write_text("#!/bin/sh\nprintf '\\tlibnccl.so.2 (libc6,x86-64) => /usr/lib/libnccl.so.2\\n"
                                      "\\tlibnccl-net.so (libc6,x86-64) => /opt/other/libnccl-net.so\\n'\n")
    (bin_dir / "ldconfig").chmod(0o755)
    old_path = os.environ["PATH"]
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{old_path}"
    try:
        facts = collect_cuda_toolkit(ProbeContext(FsRoot(), {"LD_LIBRARY_PATH": str(plugins), "PATH": str(bin_dir)}))
    finally:
        os.environ["PATH"] = old_path
    assert facts.libraries["libnccl-net.so"] == str(plugins / "libnccl-net.so")  # LD_LIBRARY_PATH first
    assert facts.libraries["libnccl.so"] == "/usr/lib/libnccl.so.2"


def test_every_report_shows_one_line_per_collective_and_none_when_not_run():
    proofs = [CollectiveProof("torch", "gloo", 2, True, bytes=4 << 20, seconds=0.0034, algbw_gbps=1.236,
                              busbw_gbps=1.236),
              CollectiveProof("jax", "xla:cpu", 2, False, error="ranks 0, 1 hung: no answer within 60 s")]
    report = build_report(_snapshot(proofs))
    text = TextRenderer(width=120).render(report)
    assert "1.236 GB/s (4 MiB in 3.4 ms)" in text and "broken: ranks 0, 1 hung" in text
    markdown = MarkdownRenderer().render(report)
    assert "| PyTorch | gloo | 2 | ok | 1.236 GB/s (4 MiB in 3.4 ms) |" in markdown
    assert "| JAX | xla:cpu | 2 | broken: ranks 0, 1 hung: no answer within 60 s |  |" in markdown
    page = HtmlRenderer().render(report)
    assert '<h3 id="collectives">Collective proofs</h3>' in page and "ranks 0, 1 hung" in page
    quiet = build_report(_snapshot(None))
    for rendered in (TextRenderer().render(quiet), MarkdownRenderer().render(quiet), HtmlRenderer().render(quiet)):
        assert "Collective proofs" not in rendered
