"""What a probe is: a declaration the runner can schedule, time and isolate.

Like Ansible's fact collectors, a probe says what it provides and what it needs; the
runner, not the probe, owns deadlines, timing and the status it records. A probe only
raises ``ProbeAbsent`` (nothing to find here) or lets any other exception escape
(recorded as ``error``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

if TYPE_CHECKING:  # the children import this module, on Pythons as old as 3.7: no more than they need
    from auditor.probes.fsroot import FsRoot
    from auditor.probes.interpreter import Interpreter


# Set in the framework children's environment when the machine shows TPU signals, so that
# they initialise the TPU system before listing devices.
LOOK_FOR_TPU = "AUDITOR_LOOK_FOR_TPU"
# Set in the framework children's environment under --deep: run the slow proofs too
# (torch.compile, XLA training steps).
DEEP = "AUDITOR_DEEP"
# Set in an export child's environment: the comma-separated export paths it should check
# (all of its own when unset).
EXPORT_PATHS = "AUDITOR_EXPORT_PATHS"


class ProbeAbsent(Exception):
    """The thing this probe looks for is not on this machine; not a failure."""


@dataclass(frozen=True)
class ProbeContext:
    root: FsRoot
    environ: Mapping[str, str]
    packages: Mapping[str, Any] = field(default_factory=dict)  # facts probes may build on (tpu, apple)
    python: Optional[Interpreter] = None  # the audited interpreter; None: the auditor's own


@dataclass(frozen=True)
class InlineProbe:
    """A cheap probe run in the main process: file reads and stdlib calls only."""

    name: str
    provides: str  # where its facts land in the snapshot
    collect: Callable[[ProbeContext], Any]


@dataclass(frozen=True)
class ChildProbe:
    """A probe whose module is imported and run in a child process with a deadline.

    ``module`` must expose ``collect() -> dict``; it runs only in the child. ``provides``
    says where its facts land ("frameworks.<name>" or "accelerators.nvidia"), and
    ``imports_framework`` marks the probes that --quick skips.
    ``distributions`` gate it: the probe runs when one of them is installed, or always
    when the tuple is empty.
    ``exports`` names the export paths an export probe checks; such a probe runs only when
    one of them is asked for (--deep, or a profile), and lands in ``snapshot.exports``.
    """

    name: str
    provides: str
    module: str
    distributions: tuple[str, ...] = ()
    imports_framework: bool = True
    deadline_s: float = 120.0
    env: Mapping[str, str] = field(default_factory=dict)
    exports: tuple[str, ...] = ()

    def applies(self, installed: Mapping[str, Any]) -> Optional[str]:
        """The installed distribution that makes this probe worth running, '' if ungated, None if not installed."""
        if not self.distributions:
            return ""
        return next((d for d in self.distributions if d in installed), None)
