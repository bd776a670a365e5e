"""The nvidia-smi fallback for the NVIDIA probe, used when NVML itself cannot be used.

nvidia-smi ships with the driver and talks to it through its own copy of NVML, so it can
answer where pynvml could not load or initialize the library (a library outside the
loader's path, a pynvml too new for the driver). Its CSV query output is a documented,
stable interface (``nvidia-smi --help-query-gpu``); the human-readable table is not,
and is read only for the one value the CSV lacks: the highest CUDA version the driver
supports, from the header line ``... CUDA Version: 12.8 |``.

Every run has a deadline: a wedged driver makes nvidia-smi hang in the kernel, and the
process is killed when the deadline passes. Both invocations run at the same time, so
the table costs no extra wall time. Output is bounded, and so is the number of GPUs kept:
a broken driver listing 100,000 GPUs costs a count (``gpus_left_out``), not a huge report.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from typing import Any, Optional

from auditor.probes import processes

DEFAULT_TIMEOUT_S = 10.0
# The most GPUs a report lists, from NVML or from here; the largest single hosts have 16.
MAX_GPUS = 256
# A CSV row is about 150 bytes: room for far more rows than MAX_GPUS, and the count of the rest.
_QUERY_OUTPUT_LIMIT = 32 << 20
_TABLE_OUTPUT_LIMIT = 1 << 20  # only its header is read

# Order matters: parse_query_output reads the columns in this order.
QUERY_FIELDS = ("index", "uuid", "name", "memory.total", "memory.free", "compute_cap", "pci.bus_id",
                "driver_version", "mig.mode.current", "mig.mode.pending", "compute_mode", "power.limit")
QUERY_ARGS = (f"--query-gpu={','.join(QUERY_FIELDS)}", "--format=csv,noheader,nounits")

# What nvidia-smi prints for a value this GPU or driver does not have.
_NOT_AVAILABLE = {"[n/a]", "n/a", "[not supported]", "not supported", ""}
_CUDA_HEADER = re.compile(r"CUDA Version\s*:\s*(\d+\.\d+)")
_COMPUTE_CAP = re.compile(r"\d+\.\d+")
_NO_DEVICES = "no devices were found"
_QUOTE_LIMIT = 72
_MIB = 1024 * 1024
_HEADER_GRACE_S = 1.0  # how long the table may lag behind the query that already answered

# Which nvidia-smi field each NvidiaFacts / NvidiaGpu field comes from.
SOURCES = {
    "driver_version": "nvidia-smi --query-gpu=driver_version",
    "cuda_driver_version": "nvidia-smi (table header 'CUDA Version')",
    "gpus.index": "nvidia-smi --query-gpu=index",
    "gpus.uuid": "nvidia-smi --query-gpu=uuid",
    "gpus.name": "nvidia-smi --query-gpu=name",
    "gpus.memory_total_bytes": "nvidia-smi --query-gpu=memory.total (MiB)",
    "gpus.memory_free_bytes": "nvidia-smi --query-gpu=memory.free (MiB)",
    "gpus.compute_capability": "nvidia-smi --query-gpu=compute_cap",
    "gpus.pci_bus_id": "nvidia-smi --query-gpu=pci.bus_id",
    "gpus.mig_mode_current": "nvidia-smi --query-gpu=mig.mode.current",
    "gpus.mig_mode_pending": "nvidia-smi --query-gpu=mig.mode.pending",
    "gpus.compute_mode": "nvidia-smi --query-gpu=compute_mode",
    "gpus.power_limit_watts": "nvidia-smi --query-gpu=power.limit (W)",
}


class NvidiaSmiError(Exception):
    """nvidia-smi could not tell us anything; the message says why, in one line."""


class NvidiaSmiMissing(NvidiaSmiError):
    """There is no nvidia-smi on PATH."""


class NvidiaSmiFailed(NvidiaSmiError):
    """nvidia-smi ran and exited with an error status (it could not reach the driver)."""


class NvidiaSmiTimeout(NvidiaSmiError):
    """nvidia-smi did not answer within the deadline and was killed."""


class NvidiaSmiParseError(NvidiaSmiError):
    """nvidia-smi answered with output this module cannot read."""


def find() -> Optional[str]:
    return shutil.which("nvidia-smi")


def collect(timeout_s: float = DEFAULT_TIMEOUT_S, executable: Optional[str] = None) -> dict[str, Any]:
    """Ask nvidia-smi about the driver and every GPU; an NvidiaFacts-shaped dict.

    Raises an NvidiaSmiError subclass when it cannot: missing, failed, hung, unreadable.
    """
    executable = executable or find()
    if not executable:
        raise NvidiaSmiMissing("nvidia-smi is not on PATH")
    deadline = time.monotonic() + timeout_s
    started: list[subprocess.Popen] = []
    try:
        query = _start(executable, started, *QUERY_ARGS)
        table = _start(executable, started)
        answer = processes.finish(query, deadline, _QUERY_OUTPUT_LIMIT)
        if answer.returncode is None:
            raise NvidiaSmiTimeout(f"nvidia-smi did not answer within the {timeout_s:g} s deadline; killed")
        # The table only adds the CUDA version: wait for it a little, never past the deadline.
        header = processes.finish(table, min(deadline, time.monotonic() + _HEADER_GRACE_S), _TABLE_OUTPUT_LIMIT)
    except OSError as exc:
        raise NvidiaSmiFailed(f"{executable} could not be run: {exc}") from exc
    finally:
        for process in started:
            processes.end(process)
    if answer.overflowed:
        raise NvidiaSmiParseError(f"nvidia-smi wrote more than {_QUERY_OUTPUT_LIMIT >> 20} MiB of CSV; killed, not read")
    code, out, err = answer.returncode, answer.stdout.decode(errors="replace"), answer.stderr.decode(errors="replace")
    if code != 0 and out.strip().lower() != _NO_DEVICES:
        message = _first_line(out) or _first_line(err) or "no output"
        raise NvidiaSmiFailed(f"nvidia-smi exited with status {code}: {_quote(message)}")
    gpus = parse_query_output(out, limit=MAX_GPUS)
    # The header comes first, so a table cut short at its limit still has it.
    table_out = header.stdout.decode(errors="replace") if header.returncode == 0 or header.overflowed else ""
    return {
        "source": "nvidia-smi",
        "driver_version": next((gpu["driver_version"] for gpu in gpus if gpu["driver_version"]), None),
        "cuda_driver_version": parse_cuda_version(table_out),
        "nvml_version": None,
        "gpus": [{key: value for key, value in gpu.items() if key != "driver_version"} for gpu in gpus],
        "gpus_left_out": count_rows(out) - len(gpus),
        "sources": dict(SOURCES),
    }


def parse_query_output(text: str, limit: Optional[int] = None) -> list[dict[str, Any]]:
    """Parse ``--query-gpu=<QUERY_FIELDS> --format=csv,noheader,nounits`` output.

    Each GPU dict carries the NvidiaGpu keys plus ``driver_version``. A value in brackets
    that is not "not available" (``[Unknown Error]``, ``[GPU is lost]``) leaves the field
    None and is recorded in the GPU's ``errors``. With a limit, the rows past the first
    ``limit`` are not read (count_rows counts them).
    """
    gpus: list[dict[str, Any]] = []
    if text.strip().lower() == _NO_DEVICES:
        return gpus
    for line in text.splitlines():
        if not line.strip():
            continue
        if limit is not None and len(gpus) == limit:
            break
        fields = [value.strip() for value in line.split(",")]
        if len(fields) != len(QUERY_FIELDS):
            raise _unparsable(line, f"{len(fields)} fields, expected {len(QUERY_FIELDS)}")
        raw = dict(zip(QUERY_FIELDS, fields))
        errors: list[str] = []
        value = _Reader(raw, errors, line)
        index = value.integer("index")
        if index is None:
            raise _unparsable(line, "no GPU index")
        cc = value.text("compute_cap")
        if cc is not None and not _COMPUTE_CAP.fullmatch(cc):
            raise _unparsable(line, f"compute_cap {cc!r} is not M.m")
        total, free = value.integer("memory.total"), value.integer("memory.free")
        gpus.append({
            "index": index,
            "uuid": value.text("uuid"),
            "name": value.text("name"),
            "memory_total_bytes": None if total is None else total * _MIB,
            "memory_free_bytes": None if free is None else free * _MIB,
            "compute_capability": cc,
            "pci_bus_id": value.text("pci.bus_id"),
            "driver_version": value.text("driver_version"),
            "mig_mode_current": value.flag("mig.mode.current"),
            "mig_mode_pending": value.flag("mig.mode.pending"),
            "mig_instances": [],
            "compute_mode": value.text("compute_mode"),
            "power_limit_watts": value.number("power.limit"),
            "process_count": None,
            "errors": errors,
        })
    return gpus


def count_rows(text: str) -> int:
    """How many GPUs a query output lists, read or not."""
    if text.strip().lower() == _NO_DEVICES:
        return 0
    return sum(1 for line in text.splitlines() if line.strip())


def parse_cuda_version(text: str) -> Optional[str]:
    """The "CUDA Version: 12.8" of nvidia-smi's table header, or None."""
    match = _CUDA_HEADER.search(text or "")
    return match.group(1) if match else None


class _Reader:
    """Typed access to one CSV row; "not available" reads as None."""

    def __init__(self, raw: dict[str, str], errors: list[str], line: str):
        self.raw, self.errors, self.line = raw, errors, line

    def text(self, name: str) -> Optional[str]:
        value = self.raw[name]
        if value.lower() in _NOT_AVAILABLE:
            return None
        if value.startswith("[") and value.endswith("]"):
            self.errors.append(f"nvidia-smi {name}: {value[1:-1]}")
            return None
        return value

    def number(self, name: str) -> Optional[float]:
        value = self.text(name)
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            raise _unparsable(self.line, f"{name} {value!r} is not a number") from None

    def integer(self, name: str) -> Optional[int]:
        value = self.text(name)
        if value is None:
            return None
        if not value.isdigit():
            raise _unparsable(self.line, f"{name} {value!r} is not a whole number")
        return int(value)

    def flag(self, name: str) -> Optional[bool]:
        value = self.text(name)
        if value is None:
            return None
        if value.lower() not in ("enabled", "disabled"):
            raise _unparsable(self.line, f"{name} {value!r} is neither Enabled nor Disabled")
        return value.lower() == "enabled"


def _unparsable(line: str, why: str) -> NvidiaSmiParseError:
    return NvidiaSmiParseError(f"nvidia-smi output could not be parsed ({why}): {_quote(line)}")


def _quote(text: str) -> str:
    text = text.strip()
    return repr(text if len(text) <= _QUOTE_LIMIT else text[:_QUOTE_LIMIT - 3] + "...")


def _first_line(text: str) -> str:
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")


def _start(executable: str, started: list[subprocess.Popen], *args: str) -> subprocess.Popen:
    process = processes.start([executable, *args])
    started.append(process)
    return process
