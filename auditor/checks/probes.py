"""AUD: the audit could not see part of the machine."""

from __future__ import annotations

from auditor.checks.base import Hit, check
from auditor.facts import Snapshot


@check("AUD001", "probe-failed", "warning",
       "A probe could not collect its facts.",
       "A probe failed, timed out or crashed, so the part of the report it feeds is missing. "
       "Verdicts that need those facts are not made, which can hide real problems. Framework "
       "probes have their own codes (FW001-FW003).")
def probe_failed(snapshot: Snapshot):
    for run in snapshot.probes:
        if run.status in ("error", "timeout", "crashed") and run.name not in snapshot.frameworks:
            yield Hit(f"The {run.name} probe {_verb(run.status)}: its facts are missing from this report",
                      [f"probe {run.name}: {run.status}: {run.reason}"],
                      "Re-run with the same user and check that /proc, /sys and /dev are readable; "
                      "the reason above names the file or call that failed.")


def _verb(status: str) -> str:
    return {"error": "failed", "timeout": "timed out", "crashed": "crashed"}[status]
