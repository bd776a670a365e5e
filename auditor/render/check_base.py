"""A check renderer turns the verdicts of `auditor check` into text. It computes nothing of its own."""

from __future__ import annotations

from abc import ABC, abstractmethod

from auditor.decisions.verdict import CheckReport


class CheckRenderer(ABC):
    #: the `auditor check --format` value that selects this renderer
    name: str

    @abstractmethod
    def render(self, check: CheckReport) -> str:
        """The whole document, ending with a newline."""
