"""Output formats: one small class per format, registered by its --format name."""

from __future__ import annotations

from auditor.render.base import Renderer
from auditor.render.json import JsonRenderer
from auditor.render.markdown import MarkdownRenderer
from auditor.render.text import TextRenderer

FORMATS: dict[str, type[Renderer]] = {cls.name: cls for cls in (TextRenderer, JsonRenderer, MarkdownRenderer)}
