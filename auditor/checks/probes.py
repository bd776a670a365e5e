"""AUD: the audit could not see part of the machine."""

from __future__ import annotations

from auditor.checks.base import Hit, check
from auditor.facts import Snapshot


@check("AUD001", "probe-failed", "warning",
       "A probe could not collect its facts.",
       "A probe failed, timed out or crashed, so the part of the report it feeds is missing. "
       "Verdicts that need those facts are not made, which can hide real problems. Framework "
       "probes have their own codes (FW001-FW003).",
       fix="Run the audit again as the same user and check that /proc, /sys and /dev are readable; the probe's "
           "reason names the file or call that failed.",
       example="The amd-smi probe crashed: its facts are missing from this report\n"
               "probe amd-smi: crashed: killed by SIGSEGV")
def probe_failed(snapshot: Snapshot):
    for run in snapshot.probes:
        if run.status in ("error", "timeout", "crashed") and run.name not in snapshot.frameworks:
            yield Hit(f"The {run.name} probe {_verb(run.status)}: its facts are missing from this report",
                      [f"probe {run.name}: {run.status}: {run.reason}"],
                      "Re-run with the same user and check that /proc, /sys and /dev are readable; "
                      "the reason above names the file or call that failed.")


@check("AUD002", "probe-input-capped", "warning",
       "The driver reported more GPUs than a report lists; the rest are counted, not described.",
       "A report lists at most a few hundred GPUs (more than any single machine holds), so that a "
       "driver answering with an absurd count (a corrupted NVML, an nvidia-smi printing 100,000 rows) "
       "costs the audit neither minutes nor gigabytes. The GPUs past that limit are counted and left "
       "out, and the checks about each GPU saw only the ones listed.",
       fix="Compare `nvidia-smi -L` with the GPUs physically installed and look for NVRM errors in `dmesg`: a "
           "count this large usually means a broken driver.",
       example="The NVIDIA driver reported 100000 GPUs; only the first 256 are in this report\n"
               "nvidia-smi: 100000 GPUs, 99744 left out")
def input_capped(snapshot: Snapshot):
    nvidia = snapshot.accelerators.nvidia
    if nvidia and nvidia.gpus_left_out:
        listed = len(nvidia.gpus)
        yield Hit(f"The NVIDIA driver reported {listed + nvidia.gpus_left_out} GPUs; only the first {listed} are "
                  "in this report",
                  [f"{nvidia.source}: {listed + nvidia.gpus_left_out} GPUs, {nvidia.gpus_left_out} left out"],
                  "A count this large usually means a broken driver: compare `nvidia-smi -L` with the GPUs "
                  "physically installed, and look for NVRM errors in `dmesg`.")


def _verb(status: str) -> str:
    return {"error": "failed", "timeout": "timed out", "crashed": "crashed"}[status]
