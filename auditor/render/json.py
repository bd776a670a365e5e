from __future__ import annotations

import json

from auditor.render.base import Renderer
from auditor.report import Report


class JsonRenderer(Renderer):
    """The report as JSON, valid against auditor/schemas/report-v1.json."""

    name = "json"

    def render(self, report: Report) -> str:
        return json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"
