from __future__ import annotations

import json

from auditor.decisions.verdict import CheckReport
from auditor.render.check_base import CheckRenderer


class CheckJsonRenderer(CheckRenderer):
    """The audit's JSON report plus `profiles`: each profile's status and requirement results.
    Valid against auditor/schemas/report-v1.json, whose readers ignore keys they do not know."""

    name = "json"

    def render(self, check: CheckReport) -> str:
        return json.dumps(check.to_dict(), indent=2, allow_nan=False) + "\n"
