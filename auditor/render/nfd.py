"""Kubernetes Node Feature Discovery: the audit as a local feature file, so that a pod can ask for
"a node ready for gpu-training with torch" (`ml-auditor.io/goal.gpu-training.torch: "true"`)
rather than for a GPU count.

nfd-worker reads every file in /etc/kubernetes/node-feature-discovery/features.d/ except dot
files (output.py writes one and renames it into place): one `<namespace>/<name>[=<value>]` a
line, `#` comments, `# +` directives, and no file over 64 KiB (source/local/local.go). nfd-master
drops a label whose key fails Kubernetes' IsQualifiedName, whose value fails IsValidLabelValue,
or whose namespace is kubernetes.io's (pkg/apis/nfd/validate/validate.go). So every name and
value is cleaned as NVIDIA's GPU Feature Discovery cleans its own: what a label cannot hold (a
space, the '+' of 2.8.0+cu128) becomes '-', trimmed to 63 characters, alphanumeric at both ends;
a value that cleans to nothing leaves its label out.

The labels expire EXPIRY after the audit: a "ready" that outlives what it rests on (a driver
upgraded, the auditing DaemonSet gone) would keep sending pods to a node nobody proved. The
DaemonSet in the README audits again well within it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Optional

from auditor.errors import OutputError
from auditor.decisions.readiness import FrameworkReadiness
from auditor.facts import ComputeProof, Snapshot
from auditor.render.base import Renderer
from auditor.report import Report

NAMESPACE = "ml-auditor.io"
EXPIRY = timedelta(hours=24)
MAX_FILE_BYTES = 65536  # NFD's MaxFeatureFileSize: a larger file is skipped whole
MAX_LENGTH = 63  # of a label's name (after the namespace) and of its value

_NOT_IN_VALUE = re.compile(r"[^-A-Za-z0-9_.]")
_NOT_IN_SEGMENT = re.compile(r"[^-A-Za-z0-9_]")  # a dot inside a goal's name would read as a level
_EDGES = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")


def label_text(text: str, forbidden: re.Pattern = _NOT_IN_VALUE) -> str:
    """``text`` as a label's value (or name) can hold it; "" when nothing of it can."""
    cleaned = _EDGES.sub("", forbidden.sub("-", text))
    return _EDGES.sub("", cleaned[:MAX_LENGTH])


class NfdRenderer(Renderer):
    """An NFD feature file: readiness, goals, proofs, builds and accelerators as node labels."""

    name = "nfd"

    def render(self, report: Report) -> str:
        snapshot = report.snapshot
        labels: dict[str, str] = {}

        def add(segments: tuple[str, ...], value: object) -> None:
            name = label_text(".".join(label_text(s, _NOT_IN_SEGMENT) for s in segments))
            text = label_text(str(value))
            # A name cleaned or trimmed into one already given keeps the first: NFD would keep the last.
            if name and text and name not in labels:
                labels[name] = text

        add(("readiness",), report.readiness.status)
        for goal in report.recommendation.goals:
            add(("goal", goal.goal), goal.status)
            if goal.status == "ready" and goal.framework:
                add(("goal", goal.goal, goal.framework), "true")
        for framework in report.readiness.frameworks:
            facts = snapshot.frameworks.get(framework.framework)
            add((framework.framework, "readiness"), framework.status)
            add((framework.framework, "version"), framework.version or "")
            if facts and facts.build:
                add((framework.framework, "build"), _build(facts.build.variant, facts.build.cuda_version,
                                                          facts.build.rocm_version))
            for kind, dtypes in _proven(framework, facts.proofs if facts else None).items():
                add((framework.framework, "proven", kind), "true")
                for dtype in dtypes:
                    add((framework.framework, "proven", kind, dtype), "true")
        for export in report.readiness.exports:
            add(("export", export.path), export.status)
        for segments, value in _inventory(snapshot):
            add(segments, value)
        add(("auditor", "version"), snapshot.auditor_version)
        add(("schema", "version"), snapshot.schema_version)
        add(("audit", "mode"), snapshot.mode)

        # On one line whatever a replayed snapshot holds: a line break would start a label of its own.
        audited = " ".join(f"{snapshot.generated_at} by auditor {snapshot.auditor_version}".split())
        lines = ["# Kubernetes NFD feature file written by `auditor audit --format nfd`; the next audit replaces it.",
                 f"# Audited at {audited} ({snapshot.mode} audit)."]
        expires = _expiry(snapshot.generated_at)
        lines.append(f"# +expiry-time={expires}" if expires else
                     "# The audit time is not an RFC 3339 time, so these labels do not expire.")
        lines += [f"{NAMESPACE}/{name}={value}" for name, value in labels.items()]
        text = "\n".join(lines) + "\n"
        if len(text.encode("utf-8")) > MAX_FILE_BYTES:
            raise OutputError(f"the NFD feature file would be {len(text.encode('utf-8')):,} bytes, and NFD ignores "
                              f"one over {MAX_FILE_BYTES:,}: audit fewer goals (--goal)")
        return text


def _build(variant: str, cuda: Optional[str], rocm: Optional[str]) -> str:
    """cuda-12.8, rocm-6.2, cpu: the variant and the toolkit it was compiled against."""
    version = {"cuda": cuda, "rocm": rocm}.get(variant)
    return f"{variant}-{version}" if version else variant


def _proven(framework: FrameworkReadiness, proofs: Optional[list[ComputeProof]]) -> dict[str, list[str]]:
    """Device kind -> the dtypes proven on it: the kinds of the devices readiness found ready, and
    each dtype whose eager proofs on one of those devices all passed (compilers are left out)."""
    proven: dict[str, list[str]] = {}
    for device in framework.devices:
        if device.status != "ready":
            continue
        dtypes = proven.setdefault(device.kind, [])
        ran = [p for p in proofs or [] if p.device == device.device and p.compiler is None and not p.skipped]
        for dtype in dict.fromkeys(p.dtype for p in ran):
            if all(p.ok for p in ran if p.dtype == dtype) and dtype not in dtypes:
                dtypes.append(dtype)
    return proven


def _inventory(snapshot: Snapshot) -> list[tuple[tuple[str, ...], object]]:
    """What a scheduler may also select on: the accelerators, as their drivers report them. A
    per-GPU fact is labelled only when every GPU that reports it agrees (a mixed node has no one
    product)."""
    accelerators, labels = snapshot.accelerators, []
    nvidia, kernel = accelerators.nvidia, accelerators.nvidia_kernel
    driver = (nvidia and nvidia.driver_version) or (kernel and kernel.driver_version)
    if driver:
        labels += [(("nvidia", "driver"), driver), (("nvidia", "driver", "major"), driver.split(".")[0])]
    if nvidia:
        gpus = nvidia.gpus
        memory = _shared([g.memory_total_bytes // 2**20 for g in gpus if g.memory_total_bytes])
        labels += [(("nvidia", "driver", "cuda"), nvidia.cuda_driver_version or ""),
                   (("nvidia", "gpu", "count"), len(gpus) + nvidia.gpus_left_out),
                   (("nvidia", "gpu", "product"), _shared([g.name for g in gpus])),
                   (("nvidia", "gpu", "compute"), _shared([g.compute_capability for g in gpus])),
                   (("nvidia", "gpu", "memory"), memory)]  # MiB, as GFD's nvidia.com/gpu.memory
    amd, amd_smi = accelerators.amd, accelerators.amd_smi
    if amd and amd.gpus:
        labels += [(("amd", "gpu", "count"), len(amd.gpus)),  # KFD nodes: a partitioned GPU counts per partition
                   (("amd", "gpu", "product"), _shared([g.name for g in amd_smi.gpus] if amd_smi else [])),
                   (("amd", "gpu", "gfx"), _shared([g.gfx_target for g in amd.gpus])),
                   (("amd", "rocm"), amd.rocm_version or "")]
    if amd_smi:
        labels.append((("amd", "driver"), amd_smi.driver_version or ""))
    tpu = accelerators.tpu
    if tpu:
        labels += [(("tpu", "type"), tpu.accelerator_type or ""), (("tpu", "chips"), tpu.chip_count or "")]
    jetson = accelerators.jetson
    if jetson:
        labels += [(("jetson", "soc"), jetson.soc or ""), (("jetson", "l4t"), jetson.l4t_release or "")]
    return labels


def _shared(values: list) -> object:
    """The one value the GPUs that report it share; "" (no label) when none reports it or they differ."""
    known = set(value for value in values if value is not None)
    return known.pop() if len(known) == 1 else ""


def _expiry(generated_at: str) -> Optional[str]:
    """EXPIRY after the audit, in the RFC 3339 form NFD parses; None when the time is not one."""
    try:
        audited = datetime.fromisoformat(generated_at)
    except ValueError:
        return None
    if audited.tzinfo is None:  # the auditor writes UTC; a time without a zone is read as that
        audited = audited.replace(tzinfo=timezone.utc)
    return (audited + EXPIRY).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
