"""What the probes must do for a set of profiles: which export paths to check, whether the slow
proofs (torch.compile, XLA train steps: `--deep`) must run, and whether the collective proofs must."""

from __future__ import annotations

from auditor.profiles.document import ComputeRequirement
from auditor.profiles.loader import Profile

# Proofs that run without --deep: every eager workload, and XLA's matmul and conv2d.
_WITHOUT_DEEP = {("eager", "matmul"), ("eager", "conv2d"), ("eager", "train-step"), ("xla", "matmul"), ("xla", "conv2d")}


def export_paths(profiles: list[Profile]) -> frozenset[str]:
    return frozenset(name for profile in profiles for entry in profile.document.exports
                     for paths in entry.any_of for name in paths)


def needs_deep_proofs(profiles: list[Profile]) -> bool:
    return any(_needs_deep(entry) for profile in profiles for entry in profile.document.compute)


def needs_collective_proof(profiles: list[Profile]) -> bool:
    """True when a profile's goal spans several accelerators ([accelerator] min-count of 2 or more): a
    multi-GPU job needs its collectives to work, which only running one proves (DST001)."""
    return any(profile.document.accelerator and (profile.document.accelerator.min_count or 1) >= 2
               for profile in profiles)


def _needs_deep(entry: ComputeRequirement) -> bool:
    """True when no proof the entry accepts runs without --deep."""
    compilers = entry.compiler or ("eager", "xla", "torch.compile")
    workloads = entry.workload or ("matmul", "conv2d", "train-step")
    return not any((compiler, workload) in _WITHOUT_DEEP for compiler in compilers for workload in workloads)
