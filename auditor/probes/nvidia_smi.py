"""The nvidia-smi fallback for the NVIDIA probe, used when NVML itself cannot be used.

nvidia-smi ships with the driver and talks to it through its own copy of NVML, so it can
answer where pynvml could not load or initialize the library (a library outside the
loader's path, a pynvml too new for the driver). Its CSV query output is a documented,
stable interface (``nvidia-smi --help-query-gpu``); two other outputs fill what the CSV lacks:
the table's header holds the highest CUDA version the driver supports (``CUDA Version: 12.8``,
``CUDA UMD Version: 13.3`` from the 610 drivers on) and its MIG box each MIG device's memory, and
``nvidia-smi -L`` lists the MIG devices.

A driver older than a field refuses the whole query (``Field "compute_cap" is not a valid
field to query.``, before driver 510): the query is asked again without that field, or with
its other spelling, or the field reads as unknown.

Every run has a deadline: a wedged driver makes nvidia-smi hang in the kernel, and the
process is killed when the deadline passes. The three invocations run at the same time, so
the table and the list cost no extra wall time. Output is bounded, and so is the number of
GPUs kept: a broken driver listing 100,000 GPUs costs a count (``gpus_left_out``), not a huge
report.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from typing import Any, Optional

from auditor.probes import clock_events, processes

DEFAULT_TIMEOUT_S = 10.0
# The most GPUs a report lists, from NVML or from here; the largest single hosts have 16.
MAX_GPUS = 256
# A CSV row is about 150 bytes: room for far more rows than MAX_GPUS, and the count of the rest.
_QUERY_OUTPUT_LIMIT = 32 << 20
_TABLE_OUTPUT_LIMIT = 1 << 20  # only its header is read
_LIST_OUTPUT_LIMIT = 1 << 20  # a line per GPU and per MIG device

# The fields asked, in this order.
QUERY_FIELDS = ("index", "uuid", "name", "memory.total", "memory.free", "compute_cap", "pci.bus_id",
                "driver_version", "mig.mode.current", "mig.mode.pending", "compute_mode", "power.limit",
                "power.default_limit", "pcie.link.gen.current", "pcie.link.gen.max", "pcie.link.width.current",
                "pcie.link.width.max", "clocks_event_reasons.active")
# The other spelling of a field, asked when a driver refuses the first: 610 deprecates
# driver_version for kmd_version (to be removed), and drivers before 535 know the clock-event
# reasons only as clocks_throttle_reasons.
OTHER_SPELLING = {"driver_version": "kmd_version", "clocks_event_reasons.active": "clocks_throttle_reasons.active"}
# Without the index, rows cannot be told apart: a driver refusing it cannot be read.
_REQUIRED = {"index"}
_REFUSED_FIELD = re.compile(r'Field "([^"]+)" is not a valid field to query')

# What nvidia-smi prints for a value this GPU or driver does not have.
_NOT_AVAILABLE = {"[n/a]", "n/a", "[not supported]", "not supported", ""}
_CUDA_HEADER = re.compile(r"CUDA (?:UMD )?Version\s*:\s*(\d+\.\d+)")
# nvidia-smi -L: "GPU 0: NVIDIA H200 (UUID: GPU-...)", then "  MIG 3g.71gb  Device  0: (UUID: MIG-...)"
# (drivers before R470 spell a MIG UUID "MIG-GPU-<gpu uuid>/<gi>/<ci>").
_LIST_GPU = re.compile(r"GPU (\d+):")
_LIST_MIG = re.compile(r"\s+MIG\s+(\S+)\s+Device\s+(\d+):\s*\(UUID:\s*([^)\s]+)\)")
# The table's "MIG devices:" box: "|  0    2   0   0  |   44MiB / 71424MiB   | ...", GPU, GPU instance,
# compute instance and MIG device, then the device's memory used and total (its BAR1 on the next line).
_TABLE_MIG = re.compile(r"\|\s*(\d+)\s+\d+\s+\d+\s+(\d+)\s*\|\s*\d+MiB\s*/\s*(\d+)MiB")
_COMPUTE_CAP = re.compile(r"\d+\.\d+")
_NO_DEVICES = "no devices were found"
_QUOTE_LIMIT = 72
_MIB = 1024 * 1024
_HEADER_GRACE_S = 1.0  # how long the table may lag behind the query that already answered

# Which nvidia-smi field each NvidiaFacts / NvidiaGpu field comes from.
SOURCES = {
    "driver_version": "nvidia-smi --query-gpu=driver_version",
    "cuda_driver_version": "nvidia-smi (table header 'CUDA Version', 'CUDA UMD Version' from driver 610)",
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
    "gpus.default_power_limit_watts": "nvidia-smi --query-gpu=power.default_limit (W)",
    "gpus.pcie_link_gen_current": "nvidia-smi --query-gpu=pcie.link.gen.current",
    "gpus.pcie_link_gen_max": "nvidia-smi --query-gpu=pcie.link.gen.max",
    "gpus.pcie_link_width_current": "nvidia-smi --query-gpu=pcie.link.width.current",
    "gpus.pcie_link_width_max": "nvidia-smi --query-gpu=pcie.link.width.max",
    "gpus.clock_event_reasons": "nvidia-smi --query-gpu=clocks_event_reasons.active (nvml.h bit names)",
    "gpus.mig_instances": "nvidia-smi -L (its MIG device lines); memory from the table's MIG devices box",
}

# The query field each source names -> its key in SOURCES.
_SOURCE_KEYS = {match.group(1): key for key, match in
                ((key, re.match(r"nvidia-smi --query-gpu=([\w.]+)", text)) for key, text in SOURCES.items()) if match}


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
    sources = dict(SOURCES)
    try:
        table = _start(executable, started)
        listing = _start(executable, started, "-L")
        columns = {field: field for field in QUERY_FIELDS}  # field -> the spelling asked
        while True:
            query = _start(executable, started, *query_args(list(columns.values())))
            answer = processes.finish(query, deadline, _QUERY_OUTPUT_LIMIT)
            if answer.returncode is None:
                raise NvidiaSmiTimeout(f"nvidia-smi did not answer within the {timeout_s:g} s deadline; killed")
            field = _refused(answer, columns)
            if field is None:
                break
            asked, other = columns.pop(field), OTHER_SPELLING.get(field)
            if other and other != asked:
                columns[field] = other
                sources[_SOURCE_KEYS[field]] = f"nvidia-smi --query-gpu={other} (this nvidia-smi refuses {asked})"
            else:
                sources[_SOURCE_KEYS[field]] = f"unknown: this nvidia-smi refuses the field {asked}"
        # The table and the list only add to the CSV: wait for them a little, never past the deadline.
        grace = min(deadline, time.monotonic() + _HEADER_GRACE_S)
        header = processes.finish(table, grace, _TABLE_OUTPUT_LIMIT)
        listed = processes.finish(listing, grace, _LIST_OUTPUT_LIMIT)
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
    gpus = parse_query_output(out, limit=MAX_GPUS, fields=tuple(columns))
    # The header comes first, so a table cut short at its limit still has it.
    table_out = header.stdout.decode(errors="replace") if header.returncode == 0 or header.overflowed else ""
    migs = parse_mig_list(listed.stdout.decode(errors="replace")) if listed.returncode == 0 else None
    memory = parse_mig_memory(table_out)
    for index, instances in (migs or {}).items():
        for instance in instances:
            instance["memory_total_bytes"] = memory.get((index, instance["index"]))
    for gpu in gpus:
        gpu["mig_instances"] = _mig_instances_of(gpu, migs)
    if migs is None:
        sources["gpus.mig_instances"] = "unknown: nvidia-smi -L did not answer"
    return {
        "source": "nvidia-smi",
        "driver_version": next((gpu["driver_version"] for gpu in gpus if gpu["driver_version"]), None),
        "cuda_driver_version": parse_cuda_version(table_out),
        "nvml_version": None,
        "gpus": [{key: value for key, value in gpu.items() if key != "driver_version"} for gpu in gpus],
        "gpus_left_out": count_rows(out) - len(gpus),
        "sources": sources,
    }


def query_args(fields: list[str]) -> tuple[str, str]:
    return f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"


def _refused(answer: processes.Finished, columns: dict[str, str]) -> Optional[str]:
    """The field a failed query names as "not a valid field to query", when it is one of ours
    that can be left out or spelled anew; else None (the answer stands, as data or as failure)."""
    if answer.returncode == 0:
        return None
    match = _REFUSED_FIELD.search(answer.stdout.decode(errors="replace") + answer.stderr.decode(errors="replace"))
    asked = match.group(1) if match else None
    return next((field for field, spelling in columns.items() if spelling == asked and field not in _REQUIRED), None)


def _mig_instances_of(gpu: dict[str, Any], migs: Optional[dict[int, list[dict[str, Any]]]]) -> Optional[list]:
    if migs is not None:
        return migs.get(gpu["index"], [])
    # Without the list, only a GPU known not to be in MIG mode is known to have no instances.
    return None if gpu["mig_mode_current"] else []


def parse_query_output(text: str, limit: Optional[int] = None,
                       fields: tuple[str, ...] = QUERY_FIELDS) -> list[dict[str, Any]]:
    """Parse ``--query-gpu=<fields> --format=csv,noheader,nounits`` output.

    Each GPU dict carries the NvidiaGpu keys plus ``driver_version``; a field not among
    ``fields`` (this driver refused it) reads as None. A value in brackets
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
        values = [value.strip() for value in line.split(",")]
        if len(values) != len(fields):
            raise _unparsable(line, f"{len(values)} fields, expected {len(fields)}")
        raw = dict(zip(fields, values))
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
            "default_power_limit_watts": value.number("power.default_limit"),
            "process_count": None,
            "pcie_link_gen_current": value.integer("pcie.link.gen.current"),
            "pcie_link_gen_max": value.integer("pcie.link.gen.max"),
            "pcie_link_width_current": value.integer("pcie.link.width.current"),
            "pcie_link_width_max": value.integer("pcie.link.width.max"),
            "clock_event_reasons": clock_events.reason_names(value.mask("clocks_event_reasons.active")),
            "errors": errors,
        })
    return gpus


def parse_mig_list(text: str) -> dict[int, list[dict[str, Any]]]:
    """``nvidia-smi -L``: each GPU index -> its MIG devices (index, UUID, profile), in order."""
    migs: dict[int, list[dict[str, Any]]] = {}
    gpu = None
    for line in text.splitlines():
        listed, mig = _LIST_GPU.match(line), _LIST_MIG.match(line)
        if listed:
            gpu = int(listed.group(1))
            migs.setdefault(gpu, [])
        elif mig and gpu is not None:
            profile, index, uuid = mig.groups()
            migs[gpu].append({"index": int(index), "uuid": uuid, "memory_total_bytes": None, "profile": profile})
    return migs


def parse_mig_memory(table: str) -> dict[tuple[int, int], int]:
    """The table's MIG devices box: (GPU index, MIG device index) -> the device's memory in bytes."""
    rows = (_TABLE_MIG.match(line) for line in table.splitlines())
    return {(int(gpu), int(device)): int(total) * _MIB for gpu, device, total in (row.groups() for row in rows if row)}


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
        value = self.raw.get(name)
        if value is None or value.lower() in _NOT_AVAILABLE:
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

    def mask(self, name: str) -> Optional[int]:
        value = self.text(name)
        if value is None:
            return None
        try:
            return int(value, 16)
        except ValueError:
            raise _unparsable(self.line, f"{name} {value!r} is not a hexadecimal mask") from None

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
