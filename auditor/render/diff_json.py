from __future__ import annotations

import json

from auditor.decisions.diff import ReportDiff
from auditor.render.diff_base import DiffRenderer


class DiffJsonRenderer(DiffRenderer):
    """The diff as JSON: `a` and `b` (each audit's source, time, auditor and mode), then
    `verdict_changes`, `explaining` and `other`, each entry with its `a` and `b` values, and
    `noise_hidden`, how many noisy facts that differ were left out."""

    name = "json"

    def render(self, diff: ReportDiff) -> str:
        return json.dumps(diff.to_dict(), indent=2, allow_nan=False) + "\n"
