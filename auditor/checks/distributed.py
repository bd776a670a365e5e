"""DST: what a job across several GPUs or processes needs beyond each device working: a collective
that returns the exact sum on every rank, and the links between the GPUs.

A small /dev/shm, which NCCL's shared-memory transport between GPUs needs, is MEM002's for every
machine; here it is evidence when a NCCL collective fails.
"""

from __future__ import annotations

from auditor.checks.base import Hit, check
from auditor.facts import CollectiveProof, NvidiaGpu, Snapshot
from auditor.names import DISPLAY_NAMES

MIB = 1024**2
# The backends whose collectives between GPUs go through NCCL (RCCL on ROCm): XLA's and
# TensorFlow's too.
_NCCL_BACKENDS = ("nccl", "rccl", "xla:cuda", "xla:rocm", "NcclAllReduce")
_PAIRS_SHOWN = 8


def _described(proof: CollectiveProof) -> str:
    ranks = "ranks" if proof.framework == "torch" else "devices"
    return (f"{DISPLAY_NAMES.get(proof.framework, proof.framework)} {proof.backend} {proof.operation} across "
            f"{proof.world_size} {ranks}")


@check("DST001", "collective-proof-failed", "error",
       "An all_reduce across ranks or devices gave a wrong sum, hung, or a rank crashed.",
       "A job on several GPUs or processes needs more than each device working: its ranks must meet, "
       "and every all_reduce of the gradients must give every rank the exact sum. The audit ran one for "
       "real (torch.distributed, one process per rank, with gloo between CPU processes or NCCL between "
       "the GPUs; JAX's psum; TensorFlow's MirroredStrategy) on integer-valued data whose sum is exact. "
       "A rank that got another sum trains on wrong gradients without an error; one that hangs or "
       "crashes stops the job at its first step, often only after the collective's timeout of minutes.",
       fix="Run the job's collective with `NCCL_DEBUG=INFO` (NCCL) or `TORCH_DISTRIBUTED_DEBUG=DETAIL` "
           "(torch.distributed) to see which rank stops and where; between GPUs, try `NCCL_P2P_DISABLE=1` (a "
           "broken peer-to-peer path) and give containers a larger /dev/shm (`docker run --shm-size=8g`, or "
           "`--ipc=host`).",
       example="PyTorch nccl all_reduce across 8 ranks is broken: rank 3 hung\n"
               "collective: rank 3 hung: no answer within 60 s; killed with its process group (8 ranks on "
               "cuda:0, ..., cuda:7)")
def collective_failed(snapshot: Snapshot):
    for proof in snapshot.collectives or ():
        if not proof.failed:
            continue
        error = proof.error or "no rank reported"
        evidence = [f"collective: {error} ({proof.world_size} {'ranks' if proof.framework == 'torch' else 'devices'}"
                    f" on {', '.join(proof.devices)})"]
        if proof.backend in _NCCL_BACKENDS:
            evidence += _nccl_evidence(snapshot, proof)
        yield Hit(f"{_described(proof)} is broken: {error.split(':')[0]}", evidence, _fix(snapshot, proof),
                  framework=proof.framework)


def _nccl_evidence(snapshot: Snapshot, proof: CollectiveProof) -> list[str]:
    """What NCCL depends on between the GPUs of one machine, where it was measured."""
    lines = []
    torch = snapshot.frameworks.get("torch")
    nccl = torch.build.details.get("nccl") if torch and torch.build else None
    if proof.framework == "torch" and nccl:
        source = torch.sources.get("build.details.nccl", "torch.cuda.nccl.version()")
        lines.append(f"torch loads NCCL {nccl} ({source})")
    memory = snapshot.machine.memory
    if memory and memory.shm_bytes is not None:
        lines.append(f"/dev/shm: {memory.shm_bytes // MIB} MiB ({memory.sources.get('shm_bytes')})")
    nvidia = snapshot.accelerators.nvidia
    lines += [_pair_line(pair) for pair in _unreachable_pairs(nvidia.gpus, nvidia.p2p)][:_PAIRS_SHOWN] if nvidia else []
    return lines


def _fix(snapshot: Snapshot, proof: CollectiveProof) -> str:
    if proof.backend in _NCCL_BACKENDS:
        return ("Run it again with `NCCL_DEBUG=INFO` to see where NCCL stops. If it hangs between GPUs, try "
                "`NCCL_P2P_DISABLE=1`: when that works, the peer-to-peer path is broken (PCIe ACS or the IOMMU "
                "on bare metal, the hypervisor in a VM). In a container, give it a larger /dev/shm "
                "(`docker run --shm-size=8g`, or `--ipc=host`).")
    if proof.backend == "gloo":
        return ("Run it again with `TORCH_DISTRIBUTED_DEBUG=DETAIL` to see which rank stops. Ranks that hang at "
                "the rendezvous usually cannot reach the address gloo picks, the one the host name resolves to: "
                "set `GLOO_SOCKET_IFNAME` to an interface they share (`lo` on one machine).")
    framework = snapshot.frameworks.get(proof.framework)
    reinstall = (f"`pip install --force-reinstall {framework.distribution}=={framework.distribution_version}`"
                 if framework and framework.distribution else "reinstall it")
    return (f"Run the audit again with `--deep`: a collective between devices of one process that fails again "
            f"means the framework's own collectives are broken; {reinstall}, and report it with the versions "
            "shown if it still fails.")


def _whole_gpus(gpus: list[NvidiaGpu]) -> dict[int, NvidiaGpu]:
    """The GPUs peer-to-peer and NVLink concern: not in MIG mode, where CUDA offers neither."""
    return {gpu.index: gpu for gpu in gpus if not gpu.mig_mode_current}


def _unreachable_pairs(gpus: list[NvidiaGpu], pairs) -> list:
    whole = _whole_gpus(gpus)
    return [pair for pair in pairs or () if pair.read not in (None, "ok") and pair.gpu in whole and pair.peer in whole]


def _pair_line(pair) -> str:
    return f"GPU {pair.gpu} and GPU {pair.peer}: peer-to-peer {pair.read} (nvmlDeviceGetP2PStatus, READ)"


@check("DST002", "nvlink-links-down", "warning",
       "A GPU has fewer NVLinks up than the other GPUs of its model on this machine.",
       "GPUs of one model in one machine are wired alike: an HGX board's H100s each have 18 NVLinks to "
       "the NVSwitches, a pair bridged over PCIe has as many as the bridge gives. A GPU with fewer links up "
       "than its peers sends its share of every all_reduce over fewer links, or over PCIe, and the whole "
       "job waits for it. NVML reports each link's state; a GPU without NVLink reports none and is not "
       "judged.",
       fix="Check each link with `nvidia-smi nvlink --status`; on an NVSwitch system make sure "
           "nvidia-fabricmanager runs (`systemctl status nvidia-fabricmanager`), then reset the GPU or reboot. "
           "A link that stays down is a hardware fault for the vendor.",
       example="GPU 5 (NVIDIA H100 80GB HBM3) has 12 of 18 NVLinks up; its peers have 18\n"
               "GPU 5: 12 of 18 NVLinks active (nvmlDeviceGetNvLinkState per link)")
def nvlink_links_down(snapshot: Snapshot):
    nvidia = snapshot.accelerators.nvidia
    gpus = list(_whole_gpus(nvidia.gpus).values()) if nvidia else []
    if len(gpus) < 2:
        return
    source = nvidia.sources.get("gpus.nvlinks_active", "NVML")
    for gpu in gpus:
        peers = [other.nvlinks_active for other in gpus
                 if other is not gpu and other.name == gpu.name and other.nvlinks_active is not None]
        if gpu.nvlinks_active is None or not peers or gpu.nvlinks_active >= max(peers):
            continue
        yield Hit(f"GPU {gpu.index} ({gpu.name}) has {gpu.nvlinks_active} of {gpu.nvlinks_total} NVLinks up; "
                  f"its peers have {max(peers)}",
                  [f"GPU {gpu.index}: {gpu.nvlinks_active} of {gpu.nvlinks_total} NVLinks active ({source})",
                   f"the other {gpu.name} GPUs: {', '.join(map(str, peers))} active"],
                  f"Check GPU {gpu.index}'s links with `nvidia-smi nvlink --status -i {gpu.index}`; on an NVSwitch "
                  "system make sure nvidia-fabricmanager runs, then reset the GPU or reboot. A link that stays down "
                  "is a hardware fault for the vendor.")


@check("DST003", "gpu-peer-to-peer-unavailable", "info",
       "Some pairs of GPUs cannot reach each other's memory directly (peer to peer).",
       "Between GPUs that can, NCCL copies each all_reduce's data from one GPU's memory to the other's, "
       "over NVLink or PCIe. Between GPUs that cannot (NVML says why: the chipset, the PCIe topology, a "
       "driver setting, a GPU without the feature such as recent GeForce cards), the data goes through "
       "host memory, and all_reduce between them is slower. Jobs still work; this explains a bus "
       "bandwidth below the links'.",
       fix="Run `nvidia-smi topo -p2p r` and `nvidia-smi topo -m` to see the path between these GPUs; on bare "
           "metal, PCIe ACS or the IOMMU settings block peer-to-peer, in a VM the hypervisor's passthrough does.",
       example="Peer-to-peer is unavailable between 4 of 6 GPU pairs\n"
               "GPU 0 and GPU 2: peer-to-peer topology-not-supported (nvmlDeviceGetP2PStatus, READ)")
def peer_to_peer_unavailable(snapshot: Snapshot):
    nvidia = snapshot.accelerators.nvidia
    if not nvidia:
        return
    unreachable = _unreachable_pairs(nvidia.gpus, nvidia.p2p)
    if not unreachable:
        return
    whole = _whole_gpus(nvidia.gpus)
    judged = [pair for pair in nvidia.p2p if pair.read is not None and pair.gpu in whole and pair.peer in whole]
    evidence = [_pair_line(pair) for pair in unreachable[:_PAIRS_SHOWN]]
    if len(unreachable) > _PAIRS_SHOWN:
        evidence.append(f"and {len(unreachable) - _PAIRS_SHOWN} more pairs")
    evidence += [f"measured: {_described(proof)}, bus bandwidth {proof.busbw_gbps:g} GB/s"
                 for proof in snapshot.collectives or () if proof.ok and proof.backend in _NCCL_BACKENDS]
    yield Hit(f"Peer-to-peer is unavailable between {len(unreachable)} of {len(judged)} GPU pairs", evidence,
              "Run `nvidia-smi topo -p2p r` to see which paths allow it; on bare metal, PCIe ACS or the IOMMU "
              "block it (BIOS settings), in a VM the hypervisor's passthrough does. Until then NCCL routes "
              "between these GPUs through host memory.")
