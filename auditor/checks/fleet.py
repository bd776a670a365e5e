"""FLT: skew between the nodes of a fleet, the differences that break distributed jobs.

A job spanning nodes needs the same NCCL (the version each framework loads, the net plugin), the
same framework versions and builds, and drivers that support the same CUDA: "could it be possible
that you have different NCCL versions on different nodes?" is NCCL's maintainers' first question on
a multi-node hang (NVIDIA/nccl#354); a hang between some host pairs only came from libnccl-net.so
existing on part of the hosts (NVIDIA/nccl#1634). These checks compare the nodes' configurations
(auditor/configuration.py) and verdicts; each machine's own checks run on each node as usual.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

from auditor.checks.base import Hit, check
from auditor.configuration import ConfigEntry
from auditor.facts import CollectiveProof, Snapshot


@dataclass(frozen=True)
class FleetMember:
    """One node as the fleet checks see it: its facts, configuration and verdicts, or why it has none."""

    name: str
    snapshot: Optional[Snapshot]  # None: the node was not audited
    reason: Optional[str] = None  # why it was not
    configuration: dict[str, ConfigEntry] = field(default_factory=dict)
    verdicts: dict[str, tuple[str, Optional[str]]] = field(default_factory=dict)  # goal -> (status, blocker)

    @property
    def audited(self) -> bool:
        return self.snapshot is not None


@dataclass(frozen=True)
class Fleet:
    members: list[FleetMember]
    collective: Optional[CollectiveProof] = None  # the all_reduce across the nodes, when one ran


_ABSENT = "(none)"


def _skew(members: list[FleetMember], keys: Callable[[FleetMember], Iterable[str]], absent_counts: bool = False,
          value: Callable[[ConfigEntry], str] = lambda entry: entry.value) -> Iterable[tuple[str, str, dict[str, list[str]]]]:
    """(key, label, {value: [node, ...]}) for each configuration key whose known value differs between
    audited nodes. With ``absent_counts``, a node without the entry (no GPU, the framework not
    installed) shows as "(none)"; otherwise only the nodes that have a measured value compare."""
    audited = [m for m in members if m.audited]
    all_keys = list(dict.fromkeys(key for m in audited for key in keys(m)))
    for key in all_keys:
        by_value: dict[str, list[str]] = {}
        label = next(m.configuration[key].label for m in audited if key in m.configuration)
        for member in audited:
            entry = member.configuration.get(key)
            if entry is None and not absent_counts:
                continue
            shown = _ABSENT if entry is None else value(entry) if entry.value is not None else None
            if shown is not None:
                by_value.setdefault(shown, []).append(member.name)
        if len(by_value) > 1:
            yield key, label, dict(sorted(by_value.items(), key=lambda item: -len(item[1])))


def _title(label: str, by_value: dict[str, list[str]]) -> str:
    return f"{label} differs across nodes: " + "; ".join(f"{value} on {_nodes(names)}" for value, names in by_value.items())


def _evidence(by_value: dict[str, list[str]]) -> list[str]:
    return [f"{value}: {len(names)} node{'s' if len(names) != 1 else ''} ({', '.join(names)})"
            for value, names in by_value.items()]


def _nodes(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 3 else f"{', '.join(names[:2])} and {len(names) - 2} more"


def _majority(by_value: dict[str, list[str]]) -> tuple[str, list[str]]:
    """The value most nodes have, and the nodes that differ from it."""
    common = next(iter(by_value))
    return common, [name for value, names in by_value.items() if value != common for name in names]


def _keys_of(aspects: tuple[str, ...]) -> Callable[[FleetMember], Iterable[str]]:
    return lambda member: [key for key, entry in member.configuration.items() if entry.aspect in aspects]


@check("FLT001", "nvidia-driver-skew", "warning",
       "The nodes run different NVIDIA drivers.",
       "A driver fixes the newest CUDA its node can run and carries its own bugs and NVLink/NCCL behaviour; "
       "a job whose nodes run different drivers can work on one pair of nodes and hang or fail on another. "
       "Fleet health tools pin one driver fleet-wide (imbue-ai/cluster-health pins 535.129.03).",
       fix="Install the same driver branch and version on every node (the one most nodes run), then audit the "
           "fleet again.",
       example="NVIDIA driver differs across nodes: 570.133.20 on node-1, node-2; 550.54.15 on node-3\n"
               "570.133.20: 2 nodes (node-1, node-2)",
       scope="fleet")
def nvidia_driver_skew(fleet: Fleet):
    return _toward_majority(fleet, "driver", "Install {label} {common} on {others}, as on the other nodes.")


@check("FLT002", "cuda-driver-skew", "warning",
       "The nodes' drivers support different CUDA versions.",
       "The driver decides the newest CUDA runtime a node can load; a framework build for CUDA 12.8 runs on a "
       "node whose driver supports 12.8 and fails, or falls back to PTX JIT, on one that supports 12.4. Mixed "
       "support makes the same container or environment behave differently by node.",
       fix="Upgrade the drivers on the nodes that support an older CUDA, so every node runs the same builds.",
       example="CUDA the driver supports differs across nodes: 12.8 on node-1, node-2; 12.4 on node-3\n"
               "12.8: 2 nodes (node-1, node-2)",
       scope="fleet")
def cuda_driver_skew(fleet: Fleet):
    return _toward_majority(fleet, "cuda-driver",
                            "Upgrade the NVIDIA driver on {others} to one that supports CUDA {common}.")


def _toward_majority(fleet: Fleet, aspect: str, fix: str) -> Iterable[Hit]:
    """A finding per entry of ``aspect`` that differs, whose fix brings the others to what most nodes have."""
    for _key, label, by_value in _skew(fleet.members, _keys_of((aspect,))):
        common, others = _majority(by_value)
        yield Hit(_title(label, by_value), _evidence(by_value), fix.format(label=label, common=common,
                                                                           others=_nodes(others)))


@check("FLT003", "nccl-version-skew", "error",
       "The nodes load different NCCL versions.",
       "NCCL's protocol is not guaranteed across versions: ranks with different NCCL versions can hang in their "
       "first collective or fail with internal errors. NCCL's maintainers ask this first on a multi-node hang "
       "(NVIDIA/nccl#354). torch's and JAX's pip wheels bring NCCL as the nvidia-nccl-cuXX package, so two "
       "nodes with different torch builds load different NCCLs whatever the system has.",
       fix="Install the same framework build, and with it the same nvidia-nccl-cuXX wheel, on every node.",
       example="NCCL torch loads differs across nodes: 2.26.2 on node-1, node-2; 2.21.5 on node-3\n"
               "2.26.2: 2 nodes (node-1, node-2)",
       scope="fleet")
def nccl_version_skew(fleet: Fleet):
    members = fleet.members
    for key, label, by_value in _skew(members, _keys_of(("nccl",))):
        common, others = _majority(by_value)
        framework = _framework_of(key, members)
        if framework:  # the NCCL a framework loads comes with its build: pin the build
            fix = _pin(framework, _version_on(members, by_value[common][0], framework), others, by_value[common])
        else:
            fix = (f"On {_nodes(others)}: `python -m pip install '{key.removeprefix('package.')}=={common}'`, or "
                   f"better, the same framework build as the other nodes, which pins it.")
        yield Hit(_title(label, by_value), _evidence(by_value),
                  fix or f"Make {label} {common} on {_nodes(others)}, as on the others.", framework)


@check("FLT004", "nccl-net-plugin-skew", "error",
       "An NCCL net plugin (libnccl-net.so) is on some nodes only.",
       "NCCL loads libnccl-net.so when it finds one (the InfiniBand/EFA/AWS OFI plugins); nodes with and "
       "without it pick different transports, and a job hung only between some host pairs for that reason "
       "(NVIDIA/nccl#1634).",
       fix="Install the same NCCL net plugin on every node, or remove it from all of them.",
       example="NCCL net plugin (libnccl-net.so) differs across nodes: present on node-1, node-2; none on node-3\n"
               "present: 2 nodes (node-1, node-2)",
       scope="fleet")
def nccl_net_plugin_skew(fleet: Fleet):
    members = fleet.members
    presence = lambda entry: "none" if entry.value == "none" else "present"  # noqa: E731 - paths may differ by node
    for _key, label, by_value in _skew(members, _keys_of(("nccl-net",)), value=presence):
        evidence = _evidence(by_value) + [
            f"{m.name}: {m.configuration['nccl.net_plugin'].value}" for m in members
            if m.audited and "nccl.net_plugin" in m.configuration and m.configuration["nccl.net_plugin"].value != "none"]
        yield Hit(_title(label, by_value), evidence,
                  f"Install the NCCL net plugin on {_nodes(by_value.get('none', []))}, or remove it from "
                  f"{_nodes(by_value.get('present', []))}, so every node uses the same transport.")


@check("FLT005", "framework-skew", "error",
       "The nodes have different versions or builds of a framework.",
       "Every rank of a distributed job must run the same framework version and build: torch.distributed, "
       "jax.distributed and TensorFlow's collectives exchange tensors in the layout and protocol of their own "
       "version, and a node that got the CPU wheel cannot join a GPU job at all. A cluster where half the nodes "
       "got another build fails in ways that name no version.",
       fix="Install the same framework version and build on every node (pin it with its index URL), then "
           "audit the fleet again.",
       example="torch build differs across nodes: cuda 12.8, cuDNN 9.10 on node-1, node-2; cpu on node-3\n"
               "cuda 12.8, cuDNN 9.10: 2 nodes (node-1, node-2)",
       scope="fleet")
def framework_skew(fleet: Fleet):
    members = fleet.members
    frameworks = dict.fromkeys(entry.framework for m in members if m.audited for entry in m.configuration.values()
                               if entry.aspect == "framework")
    for framework in frameworks:
        # One finding per framework: its version, build and architectures side by side.
        by_value = _combined(members, lambda entry: entry.aspect == "framework" and entry.framework == framework)
        if len(by_value) < 2:
            continue
        reference, others = _reference(by_value, members)
        fix = _pin(framework, _version_on(members, by_value[reference][0], framework), others, by_value[reference])
        yield Hit(_title(framework, by_value), _evidence(by_value),
                  fix or f"Make {framework} {reference} on {_nodes(others)}, as on the other nodes.", framework)


def _combined(members: list[FleetMember], concerns: Callable[[ConfigEntry], bool]) -> dict[str, list[str]]:
    """{the entries' values joined: [node, ...]}, "(none)" for a node without any of them."""
    by_value: dict[str, list[str]] = {}
    for member in members:
        if member.audited:
            values = [entry.value or "unknown" for entry in member.configuration.values() if concerns(entry)]
            by_value.setdefault(" · ".join(values) or _ABSENT, []).append(member.name)
    return dict(sorted(by_value.items(), key=lambda item: -len(item[1])))


def _reference(by_value: dict[str, list[str]], members: list[FleetMember]) -> tuple[str, list[str]]:
    """The value to make every node have: the one whose nodes are readiest for their goals (ready
    over not checked over not ready), then the one most nodes have; and the nodes that differ.
    The majority is not always right: four nodes with a build that lacks the GPU's kernels are
    not the model for the one node whose build has them."""
    score = {"ready": 2, "not-checked": 1}
    verdicts = {m.name: m.verdicts for m in members}

    def readiness(names: list[str]) -> float:
        marks = [score.get(status, 0) for name in names for status, _ in verdicts[name].values()]
        return sum(marks) / len(marks) if marks else 0.0

    reference = max(by_value, key=lambda value: (readiness(by_value[value]), len(by_value[value])))
    return reference, [name for value, names in by_value.items() if value != reference for name in names]


@check("FLT006", "gpu-skew", "warning",
       "The nodes have different GPU models or counts.",
       "A data-parallel job runs at the pace of its slowest rank and sizes its batches to its smallest GPU; "
       "a node with fewer or other GPUs than the rest is usually a scheduling mistake or a failed GPU.",
       fix="Run `nvidia-smi -L` and `dmesg | grep -i xid` on the node that shows fewer GPUs (a lost GPU), or keep "
           "the job on nodes with the same GPUs (a node label from `auditor audit --format nfd` selects them).",
       example="NVIDIA GPUs differs across nodes: 8 x NVIDIA H100 80GB HBM3 on node-1, node-2; 7 x NVIDIA H100 80GB "
               "HBM3 on node-3\n8 x NVIDIA H100 80GB HBM3: 2 nodes (node-1, node-2)",
       scope="fleet")
def gpu_skew(fleet: Fleet):
    members = fleet.members
    for _key, label, by_value in _skew(members, _keys_of(("gpu",)), absent_counts=True):
        yield Hit(_title(label, by_value), _evidence(by_value))


@check("FLT007", "python-skew", "warning",
       "The nodes run different Python versions.",
       "Pickled objects, compiled extensions and wheels are per Python version: ranks on different Pythons "
       "may fail to exchange objects (torch.distributed's object collectives pickle them) or run other builds "
       "of the same packages.",
       fix="Create every node's environment from the same Python version (`uv venv --python 3.X`), then install "
           "the same packages there.",
       example="Python differs across nodes: CPython 3.11.7 on node-1, node-2; CPython 3.10.12 on node-3\n"
               "CPython 3.11.7: 2 nodes (node-1, node-2)",
       scope="fleet")
def python_skew(fleet: Fleet):
    members = fleet.members
    for _key, label, by_value in _skew(members, _keys_of(("python",))):
        yield Hit(_title(label, by_value), _evidence(by_value))


@check("FLT008", "verdict-differs", "error",
       "A goal is ready on some nodes and not on others.",
       "A job scheduled across the fleet meets every node, so the node that is not ready for the goal is the "
       "one that breaks it: \"it works on node 3 but not on node 7\". The node's own findings say why.",
       fix="Run `auditor check --profile GOAL` on the nodes that are not ready for their blocker and its fix, or "
           "keep jobs off them.",
       example="gpu-training is ready on node-1, node-2 but not-ready on node-3\n"
               "node-3: not-ready: torch 2.8.0+cpu is a CPU-only build",
       scope="fleet")
def verdict_differs(fleet: Fleet):
    members = fleet.members
    audited = [m for m in members if m.audited]
    for goal in dict.fromkeys(goal for m in audited for goal in m.verdicts):
        by_status: dict[str, list[FleetMember]] = {}
        for member in audited:
            if goal in member.verdicts:
                by_status.setdefault(member.verdicts[goal][0], []).append(member)
        if len(by_status) < 2:
            continue
        ready = [m.name for m in by_status.pop("ready", [])]
        rest = "; ".join(f"{status} on {_nodes([m.name for m in group])}" for status, group in by_status.items())
        title = f"{goal} is ready on {_nodes(ready)} but {rest}" if ready else f"{goal} differs across nodes: {rest}"
        evidence = [f"{m.name}: {status}" + (f": {m.verdicts[goal][1]}" if m.verdicts[goal][1] else "")
                    for status, group in by_status.items() for m in group]
        yield Hit(title, evidence, f"Run `auditor check --profile {shlex.quote(goal)}` on "
                                   f"{_nodes([m.name for group in by_status.values() for m in group])} for every "
                                   f"requirement and its fix.")


@check("FLT009", "node-not-audited", "error",
       "A node of the fleet could not be audited.",
       "A node that died, hung past its deadline, lacks the auditor or wrote no readable snapshot is a node "
       "whose readiness is unknown; a job scheduled there meets whatever it has.",
       fix="Install the auditor on the node (`pipx install ml-env-auditor`), check that it is alive, and run "
           "`auditor audit` there to see why it did not answer.",
       example="node-3 was not audited: no answer within 600 s; its audit was cancelled\n"
               "node-3 (ray node 10.0.0.7, 3f9a2c1b)",
       scope="fleet")
def node_not_audited(fleet: Fleet):
    members = fleet.members
    for member in members:
        if not member.audited:
            yield Hit(f"{member.name} was not audited: {member.reason}", [member.name])


def _framework_of(key: str, members: list[FleetMember]) -> Optional[str]:
    return next((m.configuration[key].framework for m in members if key in m.configuration), None)


def _version_on(members: list[FleetMember], name: str, framework: Optional[str]) -> Optional[str]:
    """The framework's version on the named node; None when that node does not have it."""
    member = next(m for m in members if m.name == name)
    entry = member.configuration.get(f"{framework}.version")
    return entry.value if entry else None


def _pin(framework: Optional[str], version: Optional[str], others: list[str], model: list[str]) -> Optional[str]:
    """The command that installs on the ``others`` the framework build the ``model`` nodes run: torch's
    local version tag (+cu128, +cpu) names the index that serves it."""
    distribution = {"torch": "torch", "jax": "jax", "tensorflow": "tensorflow"}.get(framework or "")
    if not version or distribution is None:
        return None
    public, _, local = version.partition("+")
    if framework == "torch" and local:
        command = (f"python -m pip install 'torch=={public}' --index-url "
                   f"https://download.pytorch.org/whl/{local}")
    else:
        command = f"python -m pip install '{distribution}=={public}'"
    return f"On {_nodes(others)}: `{command}`, the {framework} {version} that {_nodes(model)} run{'s' if len(model) == 1 else ''}."



@check("FLT010", "collective-across-nodes-failed", "error",
       "The all_reduce across the nodes gave a wrong sum, hung, or a rank failed.",
       "Each node working alone is not a cluster that works: a multi-node job needs its ranks to reach each "
       "other (rendezvous, the network NCCL or gloo chooses, firewalls between nodes) and every rank to reduce "
       "the same way. The proof runs one torch.distributed rank on each node and checks the exact sum, as a "
       "job's first all_reduce would; a hang in the first `barrier` is the classic sign of a network problem "
       "between nodes (stas00/ml-engineering, debug/torch-distributed-gpu-test.py).",
       fix="Run the job's launcher with `NCCL_DEBUG=INFO` (or `TORCH_DISTRIBUTED_DEBUG=DETAIL` for gloo) on the "
           "ranks named, and check that every node reaches rank 0's address and port, and picks the same network "
           "interface (`NCCL_SOCKET_IFNAME`, `GLOO_SOCKET_IFNAME`).",
       example="torch gloo all_reduce across 3 nodes failed: rank 2 hung: no answer within 120 s\n"
               "ranks: node-1 (cpu), node-2 (cpu), node-3 (cpu)",
       scope="fleet")
def collective_across_nodes_failed(fleet: Fleet):
    proof = fleet.collective
    if proof is None or proof.ok or proof.skipped:
        return
    ranks = ", ".join(f"{node} ({device})" for node, device in zip(proof.nodes, proof.devices))
    yield Hit(f"{proof.framework} {proof.backend} {proof.operation} across {proof.world_size} nodes failed: "
              f"{proof.error}", [f"ranks: {ranks}"], framework=proof.framework)
