"""What the export-path children share: the tiny model, the stage recorder, telling a missing
package from a broken one, and the versions of the tools used on the way.

Runs only inside a child process, under the audited interpreter (Python 3.7 on, standard
library only: see child_entry.py). Frameworks are imported inside a path's "import" stage,
never at module level, so that an import failure becomes that path's status.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import email.parser
import functools
import importlib
import logging
import os
import pathlib
import re
import sys
import time
import warnings
from types import ModuleType
from typing import Iterator, Optional

from auditor.probes.base import EXPORT_PATHS
from auditor.probes.child_entry import describe_exception
from auditor.probes.proof import relative_error

# float32 paths: round-off through this model is around 1e-7 of the output's scale, and
# converters reorder and fuse operations (XNNPACK, onnxruntime's fused convolution), which
# moves it to ~1e-6. A wrong weight layout, a dropped bias or a wrong padding is off by
# order 1, so 1e-4 separates the two with room to spare.
FLOAT_TOLERANCE = 1e-4

# The distribution to install (PyPI spelling) for each top-level module a path imports or
# that one of them imports in turn; an unlisted module is named as Python spells it.
DISTRIBUTIONS = {
    "ai_edge_litert": "ai-edge-litert",
    "coremltools": "coremltools",
    "executorch": "executorch",
    "flatbuffers": "flatbuffers",
    "numpy": "numpy",
    "onnx": "onnx",
    "onnx_ir": "onnx-ir",
    "onnxruntime": "onnxruntime",
    "onnxscript": "onnxscript",
    "tensorflow": "tensorflow",
    "torch": "torch",
}

# The tiny model every path converts: a 3x3 convolution ('same' padding), ReLU, global
# average pooling and a dense layer. Small enough to convert in seconds, and it exercises
# a convolution, which is where layout mistakes (NCHW vs NHWC) show.
BATCH, HEIGHT, WIDTH, CHANNELS, FILTERS, OUTPUTS = 2, 8, 8, 3, 4, 5
INPUT_NHWC = (BATCH, HEIGHT, WIDTH, CHANNELS)  # TensorFlow's layout; torch's is NCHW


def requested(own: tuple[str, ...]) -> list[str]:
    """This child's paths that the runner asked for (all of them when it named none)."""
    asked = os.environ.get(EXPORT_PATHS)
    if asked is None:
        return list(own)
    names = {name.strip() for name in asked.split(",")}
    return [path for path in own if path in names]


def tiny_weights(seed: int = 5) -> dict:
    """Seeded weights, TensorFlow layout: conv kernel HWIO, dense kernel (in, out)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return {
        "conv_kernel": rng.standard_normal((3, 3, CHANNELS, FILTERS), dtype=np.float32) * 0.5,
        "conv_bias": rng.standard_normal(FILTERS, dtype=np.float32) * 0.1,
        "dense_kernel": rng.standard_normal((FILTERS, OUTPUTS), dtype=np.float32),
        "dense_bias": rng.standard_normal(OUTPUTS, dtype=np.float32) * 0.1,
    }


def tiny_input_nhwc(seed: int = 6):
    import numpy as np

    return np.random.default_rng(seed).standard_normal(INPUT_NHWC, dtype=np.float32)


def tiny_input_nchw(seed: int = 6):
    """The same input as tiny_input_nhwc, in torch's layout."""
    import numpy as np

    return np.ascontiguousarray(tiny_input_nhwc(seed).transpose(0, 3, 1, 2))


def torch_tiny_model(torch):
    """The tiny model as a torch module in eval mode, with the shared weights."""
    weights = tiny_weights()
    conv = torch.nn.Conv2d(CHANNELS, FILTERS, kernel_size=3, padding=1)
    dense = torch.nn.Linear(FILTERS, OUTPUTS)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(weights["conv_kernel"].transpose(3, 2, 0, 1).copy()))  # HWIO -> OIHW
        conv.bias.copy_(torch.from_numpy(weights["conv_bias"]))
        dense.weight.copy_(torch.from_numpy(weights["dense_kernel"].T.copy()))  # Linear stores (out, in)
        dense.bias.copy_(torch.from_numpy(weights["dense_bias"]))
    return torch.nn.Sequential(conv, torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), dense).eval()


# --- installed distributions: importlib.metadata from 3.10; before, sys.path read the same way ---


class _NotInstalledFallback(ModuleNotFoundError):
    """No such distribution on sys.path (what importlib.metadata.PackageNotFoundError says)."""


@functools.lru_cache(maxsize=None)
def _scanned_distributions() -> tuple:
    """(Name, Version, top-level modules) of every distribution on sys.path, found and read as
    importlib.metadata (3.10) does: each *.dist-info and *.egg-info in the sys.path directories,
    in sys.path order (by name within one); its METADATA or PKG-INFO; its top_level.txt, else the .py files its RECORD or
    SOURCES.txt lists. For the Pythons whose importlib.metadata lacks packages_distributions
    (3.8, 3.9) or that have none (3.7); distributions inside zip files are not read."""
    found = []
    for entry in sys.path:
        directory = entry or "."
        try:
            names = sorted(os.listdir(directory))
        except OSError:  # a zip file, or a directory that is not there
            continue
        for name in names:
            if name.lower().endswith((".dist-info", ".egg-info")):
                found.extend(_read_distribution(os.path.join(directory, name)))
    return tuple(found)


def _read_distribution(path: str) -> list:
    """[(Name, Version, modules)] of one metadata directory (or an egg-info file); [] when unreadable."""
    headers = email.parser.HeaderParser().parsestr(
        _metadata_text(path, "METADATA") or _metadata_text(path, "PKG-INFO") or _metadata_text(path))
    if not headers["Name"]:
        return []
    modules = _metadata_text(path, "top_level.txt").split()
    if not modules:
        listed = [row[0] for row in csv.reader(_metadata_text(path, "RECORD").splitlines()) if row]
        listed = listed or _metadata_text(path, "SOURCES.txt").splitlines()
        files = [pathlib.PurePosixPath(line) for line in listed]
        modules = sorted({f.parts[0] if len(f.parts) > 1 else f.stem for f in files if f.suffix == ".py"})
    return [(headers["Name"], headers["Version"], modules)]


def _metadata_text(path: str, *name: str) -> str:
    try:
        with open(os.path.join(path, *name), encoding="utf-8") as file:
            return file.read()
    except (OSError, UnicodeDecodeError):  # absent, a directory, or not text
        return ""


def _packages_distributions_fallback() -> dict:
    """importlib.metadata.packages_distributions() from the scan: top-level module -> the Names
    of the distributions that provide it."""
    by_module: dict = {}
    for name, _, modules in _scanned_distributions():
        for module in modules:
            by_module.setdefault(module, []).append(name)
    return by_module


def _version_fallback(distribution: str) -> str:
    """importlib.metadata.version() from the scan: the first distribution on sys.path of that
    name, compared as PEP 503 normalizes names (tensorflow_cpu is tensorflow-cpu)."""
    wanted = _normalized(distribution)
    for name, version, _ in _scanned_distributions():
        if _normalized(name) == wanted:
            return version
    raise _NotInstalledFallback(distribution)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


if sys.version_info >= (3, 10):  # novermin: importlib.metadata.packages_distributions is new in 3.10
    from importlib import metadata

    _packages_distributions = metadata.packages_distributions
    distribution_version = metadata.version  # the version of an installed distribution
    NotInstalled = metadata.PackageNotFoundError  # what distribution_version raises for one that is not
else:
    _packages_distributions = _packages_distributions_fallback
    distribution_version = _version_fallback
    NotInstalled = _NotInstalledFallback


@functools.lru_cache(maxsize=None)
def _distributions_by_module() -> dict:
    return _packages_distributions()


def distribution_of(module: str) -> Optional[str]:
    """The installed distribution that provides a top-level module (tensorflow -> tensorflow_cpu)."""
    found = _distributions_by_module().get(module.partition(".")[0])
    return found[0] if found else None


def version_of(module: str) -> Optional[str]:
    distribution = distribution_of(module)
    return distribution_version(distribution) if distribution else None


def import_or_missing(module: str) -> tuple[Optional[ModuleType], Optional[str]]:
    """(the module, None), or (None, the distribution to install) when a whole top-level
    module it needs is absent: the module itself or a dependency.

    Any other import failure propagates, including a missing submodule of a package that is
    there: that is a broken install, not a missing one.
    """
    try:
        return importlib.import_module(module), None
    except ModuleNotFoundError as exc:
        if not exc.name or "." in exc.name:
            raise
        return None, DISTRIBUTIONS.get(exc.name, exc.name)


@contextlib.contextmanager
def noticed_warnings() -> Iterator[list]:
    """Collect, one line each, what libraries warn about while the block runs, through
    `warnings` (torch, TensorFlow) or `logging` (coremltools). The list fills on exit."""
    noticed: list = []
    handler = _Collector(noticed)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield noticed
    finally:
        root.removeHandler(handler)
        noticed.extend(one_line(str(warning.message)) for warning in caught)


class _Collector(logging.Handler):
    def __init__(self, lines: list):
        super().__init__(logging.WARNING)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(one_line(record.getMessage()))


def one_line(text: str) -> str:
    return " ".join(text.split())


# --- the result: auditor.facts.ExportStage and ExportPath, field for field -----------------
#
# facts.py is the parent's (Python 3.10 on: typing.Literal, X | Y), so a child builds its result
# from these twins, whose JSON is the same: the parent reads it back with from_dict(ExportPath),
# which checks every value. tests/test_child_pythons.py keeps the fields, their order and their
# defaults the same as facts.py's.


@dataclasses.dataclass
class ExportStage:
    name: str
    ok: bool
    seconds: Optional[float] = None
    detail: Optional[str] = None


@dataclasses.dataclass
class ExportPath:
    name: str
    status: str  # ready, not-installed, broken, not-applicable (facts.ExportStatus)
    source: Optional[str] = None
    runtime: Optional[str] = None
    tools: dict[str, str] = dataclasses.field(default_factory=dict)
    missing: list[str] = dataclasses.field(default_factory=list)
    seconds: Optional[float] = None
    max_relative_error: Optional[float] = None
    tolerance: Optional[float] = None
    error: Optional[str] = None
    stages: list[ExportStage] = dataclasses.field(default_factory=list)
    deprecated: Optional[str] = None
    details: dict[str, str] = dataclasses.field(default_factory=dict)
    non_finite: bool = False


class _Stopped(Exception):
    """The path's outcome is known (not installed, a stage failed): skip the rest of it."""


class _Missing(Exception):
    def __init__(self, distributions: list):
        super().__init__(f"not installed: {', '.join(distributions)}")
        self.distributions = distributions


@dataclasses.dataclass
class Imported:
    """What importing a path's modules gave, as an "import" stage. Made once and recorded
    by every path that needs it (TensorFlow's three paths share one import)."""

    modules: list
    stage: ExportStage
    tools: dict
    missing: list


def import_modules(*modules: str) -> Imported:
    """Import in order, naming every missing distribution at once (one install command fixes
    them all). Any other failure stops there; when something is missing too, the missing
    distribution is the news, since later imports often fail because of it (executorch
    without torch)."""
    loaded, missing, tools, failure = [], [], {}, None
    started = time.perf_counter()
    try:
        for module in modules:
            found, absent = import_or_missing(module)
            if found is None:
                missing.append(absent)
                continue
            loaded.append(found)
            distribution = distribution_of(module)
            if distribution:
                tools[distribution] = distribution_version(distribution)
    except Exception as exc:  # a broken install: the import raised something other than "not found"
        failure = describe_exception(exc)
    missing = list(dict.fromkeys(missing))
    stage = ExportStage(name="import", ok=not missing and failure is None,
                        seconds=round(time.perf_counter() - started, 3),
                        detail=f"not installed: {', '.join(missing)}" if missing else failure)
    return Imported(loaded, stage, tools, missing)


class PathCheck:
    """One export path as it runs: its stages, timed, and the status they add up to.

    Use ``with check.running():`` around the whole path and ``with check.stage(name):``
    around each step; a step that raises ends the path as broken, naming the step, and
    nothing escapes ``running``.
    """

    def __init__(self, name: str, source: str, tolerance: Optional[float] = FLOAT_TOLERANCE):
        self.path = ExportPath(name=name, status="ready", source=source, tolerance=tolerance)
        self._shared_seconds = 0.0  # spent before this path started, on work it shares

    @contextlib.contextmanager
    def running(self) -> Iterator[PathCheck]:
        started = time.perf_counter()
        try:
            yield self
        except _Stopped:
            pass
        except _Missing as missing:
            self.path.status, self.path.missing = "not-installed", missing.distributions
        except Exception as exc:  # outside any stage; still a status, never an escape
            self.path.status, self.path.error = "broken", describe_exception(exc)
        finally:
            self.path.seconds = round(time.perf_counter() - started + self._shared_seconds, 3)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[ExportStage]:
        """Time one step; the caller may set ``detail`` on the stage it gets."""
        stage = ExportStage(name=name, ok=False)
        self.path.stages.append(stage)
        started = time.perf_counter()
        try:
            yield stage
            stage.ok = True
        except _Missing as missing:
            stage.detail = str(missing)
            self.path.status, self.path.missing = "not-installed", missing.distributions
            raise _Stopped from None
        except _Stopped:
            raise
        except Exception as exc:
            stage.detail = describe_exception(exc)
            self.fail(f"{name} failed: {stage.detail}")
        finally:
            stage.seconds = round(time.perf_counter() - started, 3)

    def importing(self, *modules: str) -> list:
        """The "import" stage: the modules, or the end of the path (not-installed, broken)."""
        return self._record(import_modules(*modules))

    def shared_import(self, imported: Imported) -> list:
        """Record an import made once for several paths before this one started. Its time
        counts in this path's seconds, as it would if the path ran alone."""
        self._shared_seconds += imported.stage.seconds or 0.0
        return self._record(imported)

    def _record(self, imported: Imported) -> list:
        self.path.stages.append(dataclasses.replace(imported.stage))
        self.path.tools.update(imported.tools)
        if imported.missing:
            raise _Missing(imported.missing)
        if not imported.stage.ok:
            self.fail(f"import failed: {imported.stage.detail}")
        return imported.modules

    def use_tool(self, module: str) -> None:
        """Record the version of a tool the path picked up on the way (a runtime it chose)."""
        distribution = distribution_of(module)
        if distribution:
            self.path.tools[distribution] = distribution_version(distribution)

    def compare(self, result, reference) -> None:
        """The "compare" stage: the target runtime's output against the source model's."""
        import numpy as np

        with self.stage("compare") as stage:
            reference = np.asarray(reference, dtype=np.float64)
            error = relative_error(np.asarray(result, dtype=np.float64).reshape(reference.shape).ravel().tolist(),
                                   reference.ravel().tolist())
            if error is None:  # recorded as a flag: JSON has no NaN or infinity
                self.path.non_finite = True
                stage.detail = "the output holds NaN or infinity"
                self.fail("compare failed: the target runtime's output holds NaN or infinity")
            self.path.max_relative_error = error
            stage.detail = f"max relative error {error:.3g}, tolerance {self.path.tolerance:g}"
            if error > self.path.tolerance:
                self.fail(f"compare failed: output differs from the source model by {error:.3g} "
                          f"(tolerance {self.path.tolerance:g})")

    def not_installed(self, distributions: list) -> None:
        """End the path as not-installed; inside a stage, that stage says what is missing."""
        raise _Missing(distributions)

    def not_applicable(self) -> None:
        """End the path: its target runtime cannot run on this platform."""
        self.path.status = "not-applicable"
        raise _Stopped

    def fail(self, error: str) -> None:
        self.path.status, self.path.error = "broken", error
        raise _Stopped

    def result(self) -> dict:
        return dataclasses.asdict(self.path)
