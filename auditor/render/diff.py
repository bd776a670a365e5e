"""`auditor diff`'s output formats, by their --format name."""

from __future__ import annotations

from auditor.render.diff_base import DiffRenderer
from auditor.render.diff_json import DiffJsonRenderer
from auditor.render.diff_markdown import DiffMarkdownRenderer
from auditor.render.diff_text import DiffTextRenderer

DIFF_FORMATS: dict[str, type[DiffRenderer]] = {
    cls.name: cls for cls in (DiffTextRenderer, DiffJsonRenderer, DiffMarkdownRenderer)}
