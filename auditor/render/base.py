"""A renderer turns a finished report into text. It computes nothing of its own."""

from __future__ import annotations

from abc import ABC, abstractmethod

from auditor.report import Report


class Renderer(ABC):
    #: the --format value that selects this renderer
    name: str

    @abstractmethod
    def render(self, report: Report) -> str:
        """The whole document, ending with a newline."""
