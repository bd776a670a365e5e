"""Output formats: one small class per format, registered by its --format name."""

from __future__ import annotations

from auditor.render.base import Renderer
from auditor.render.check_base import CheckRenderer
from auditor.render.check_html import CheckHtmlRenderer
from auditor.render.check_json import CheckJsonRenderer
from auditor.render.check_markdown import CheckMarkdownRenderer
from auditor.render.check_text import CheckTextRenderer
from auditor.render.github import GithubRenderer
from auditor.render.html import HtmlRenderer
from auditor.render.json import JsonRenderer
from auditor.render.junit import JunitRenderer
from auditor.render.markdown import MarkdownRenderer
from auditor.render.nfd import NfdRenderer
from auditor.render.text import TextRenderer

FORMATS: dict[str, type[Renderer]] = {
    cls.name: cls for cls in (TextRenderer, JsonRenderer, MarkdownRenderer, HtmlRenderer, NfdRenderer)}
# `auditor check`: the audit's formats, showing the verdicts, plus the CI formats.
CHECK_FORMATS: dict[str, type[CheckRenderer]] = {
    cls.name: cls for cls in (CheckTextRenderer, CheckJsonRenderer, CheckMarkdownRenderer, CheckHtmlRenderer,
                              JunitRenderer, GithubRenderer)}
