"""What runs first inside a probe child, on whichever interpreter the child was started with.

A framework child runs under the audited interpreter, which may be any Python from 3.7 on
(`auditor audit --python PATH`), with only the standard library and that environment's own
packages. So this module, and everything a child imports from the auditor, keeps to the
language and library of Python 3.7 and imports nothing from outside the standard library;
tests/test_child_pythons.py checks that with vermin and by running the children under old
interpreters.
"""

from __future__ import annotations

import json
import os
import sys

_REASON_LIMIT = 300


def describe_exception(exc: BaseException) -> str:
    """One line: native libraries often spread one error over several ("Error code:\n\t8 | ...")."""
    return " ".join("{}: {}".format(type(exc).__name__, exc).split())[:_REASON_LIMIT]


def child_main(module: str, auditor_pid: int) -> None:
    """Run ``module.collect()`` and write the result (the protocol is in child.py)."""
    import importlib

    from auditor.probes import guardian, processes
    from auditor.probes.base import ProbeAbsent

    processes.die_with_parent(auditor_pid)  # before anything slow: a SIGKILLed auditor takes it along
    guardian.join_parent_run()
    result_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        facts = importlib.import_module(module).collect()
        result = {"status": "ok", "facts": facts}
    except ProbeAbsent as absent:
        result = {"status": "absent", "reason": str(absent)}
    except BaseException as exc:  # the child exists to turn any failure into a status
        result = {"status": "error", "reason": describe_exception(exc)}
    with os.fdopen(result_fd, "w") as out:
        json.dump(result, out, default=str)
    # Skip interpreter teardown: some framework builds hang or crash in their atexit hooks.
    sys.stderr.flush()
    os._exit(0)
