"""The probe children on every Python they may run under: CPython 3.7 to 3.13.

Under ``auditor audit --python PATH`` the framework and export children run under the audited
interpreter, with the standard library and that environment's own packages only. So the modules
a child imports (found here from the registry, by parsing their sources) must keep to Python
3.7's language and library, which vermin checks, and must import nothing from outside the
standard library but the framework a child probes. What vermin cannot see (a builtin generic
evaluated at run time, a method new in 3.9) only a run shows: every child is run for real under
pyenv's older and newer interpreters, in a bare environment, where each must end in a clean
outcome naming the framework that is missing, and, for 3.7 to 3.9, next to a real framework
installed from PyPI into a virtual environment, where it must prove it.

The environments are built once for the module, in parallel: about a minute, most of it
TensorFlow's install for 3.7, with pip's cache cold.
"""

from __future__ import annotations

import ast
import concurrent.futures
import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import NamedTuple, Optional

import pytest

import auditor
from auditor import facts
from auditor.probes import registry, runner
from auditor.probes.child import ChildOutcome, RunningChild
from auditor.probes.exports import common
from auditor.probes.proof import TOLERANCE

PACKAGE = Path(auditor.__file__).resolve().parent
PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
PROBES = {probe.name: probe for probe in registry.CHILD_PROBES + registry.EXPORT_PROBES}
# The top-level modules a child module may import besides the standard library's and the
# auditor's, each only inside a function: the frameworks and bindings the children probe, and
# NumPy, which TensorFlow, JAX and the export tool chains cannot be imported without. (Most are
# imported by name through importlib, which no import statement shows.)
FRAMEWORK_MODULES = {"jax", "jaxlib", "numpy", "pynvml", "amdsmi", "tensorflow", "torch", "onnx", "onnxruntime",
                     "onnxscript", "executorch", "coremltools", "ai_edge_litert"}
# What each framework child finds missing first in an environment without its framework.
FIRST_IMPORT = {"tensorflow": "tensorflow", "torch": "torch", "jax": "jax", "nvidia": "pynvml", "amd-smi": "amdsmi"}

# The interpreters, by minor version: CI's machines have pyenv's builds of each.
MINORS = ("3.7", "3.8", "3.9", "3.12", "3.13")


class Framework(NamedTuple):
    probe: str  # the ChildProbe that proves it
    distribution: str  # whose version the child must report
    requirements: tuple[str, ...]  # pinned, dependencies too, so that every run installs the same


# A real framework for each old Python, the newest release with CPU wheels for it on PyPI, and
# nvidia-ml-py, so that the NVML child runs for real too. JAX's oldest jaxlib left on PyPI is
# 0.4.13, for 3.8 on: for 3.7 the framework is TensorFlow 2.11, its last release for 3.7.
NVML = "nvidia-ml-py==13.615.71"
FRAMEWORKS = {
    "3.7": Framework("tensorflow", "tensorflow-cpu", (
        "tensorflow-cpu==2.11.0", "absl-py==2.1.0", "astunparse==1.6.3", "cachetools==5.5.2",
        "certifi==2026.10.19.post1", "charset-normalizer==3.5.3", "flatbuffers==25.12.19", "gast==0.4.0",
        "google-auth==2.45.0", "google-auth-oauthlib==0.4.6", "google-pasta==0.2.0", "grpcio==1.62.3",
        "h5py==3.8.0", "idna==3.10", "importlib-metadata==6.7.0", "keras==2.11.0", "libclang==18.1.1",
        "Markdown==3.4.4", "MarkupSafe==2.1.5", "numpy==1.21.6", "oauthlib==3.2.2", "opt-einsum==3.3.0",
        "packaging==24.0", "protobuf==3.19.6", "pyasn1==0.5.1", "pyasn1-modules==0.3.0", "requests==2.31.0",
        "requests-oauthlib==2.0.0", "rsa==4.9.1", "six==1.17.0", "tensorboard==2.11.2",
        "tensorboard-data-server==0.6.1", "tensorboard-plugin-wit==1.8.1", "tensorflow-estimator==2.11.0",
        "tensorflow-io-gcs-filesystem==0.34.0", "termcolor==2.3.0", "typing-extensions==4.7.1", "urllib3==2.0.7",
        "Werkzeug==2.2.3", "wrapt==1.16.0", "zipp==3.15.0", NVML)),
    "3.8": Framework("jax", "jax", (
        "jax==0.4.13", "jaxlib==0.4.13", "ml-dtypes==0.2.0", "numpy==1.24.4", "opt-einsum==3.4.0",
        "scipy==1.10.1", "importlib-metadata==8.5.0", "zipp==3.20.2", NVML)),
    "3.9": Framework("jax", "jax", (
        "jax==0.4.30", "jaxlib==0.4.30", "ml-dtypes==0.5.4", "numpy==2.0.2", "opt-einsum==3.4.0",
        "scipy==1.13.1", "importlib-metadata==8.7.1", "zipp==3.23.1", NVML)),
}
_INSTALL_TIMEOUT_S = 900


# --- the child-side modules, from the sources -------------------------------------------------


def _source(module: str) -> Path:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


class _Imports(ast.NodeVisitor):
    """Every module an import statement names, and whether it runs when the module loads (not
    inside a function); the body of ``if TYPE_CHECKING:`` never runs, and is left out."""

    def __init__(self, module: str):
        self.package = module if _source(module).name == "__init__.py" else module.rpartition(".")[0]
        self.found: list[tuple[str, bool]] = []
        self._depth = 0

    def visit_FunctionDef(self, node) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
                (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):
            for statement in node.orelse:
                self.visit(statement)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found += [(alias.name, self._depth == 0) for alias in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = importlib.util.resolve_name("." * node.level + (node.module or ""), self.package) \
            if node.level else node.module
        # `from auditor.probes import guardian` imports the package and, here, its submodule.
        self.found += [(base, self._depth == 0)] + [(f"{base}.{alias.name}", self._depth == 0) for alias in node.names]


def _imports(module: str) -> list[tuple[str, bool]]:
    visitor = _Imports(module)
    visitor.visit(ast.parse(_source(module).read_text(), str(_source(module))))
    return visitor.found


def child_modules() -> dict[str, list[tuple[str, bool]]]:
    """Every auditor module a probe child may import -> the imports it makes: the registry's child
    modules, child_entry (the bootstrap's), their packages, and all they import, transitively."""
    # The collective child too: it ends "absent" without a plan, so the bare-interpreter runs leave it out.
    pending = [probe.module for probe in (*PROBES.values(), registry.COLLECTIVES)] + ["auditor.probes.child_entry"]
    found: dict[str, list[tuple[str, bool]]] = {}
    while pending:
        module = pending.pop()
        if module in found:
            continue
        found[module] = _imports(module)
        parts = module.split(".")
        pending += [".".join(parts[:end]) for end in range(1, len(parts))]  # importing a.b.c runs a and a.b
        pending += [name for name, _ in found[module] if name.split(".")[0] == "auditor" and _source(name).exists()]
    return found


CHILD_MODULES = child_modules()


def test_the_child_side_modules_import_only_the_standard_library_and_the_probed_frameworks():
    assert {"auditor", "auditor.probes.child_entry", "auditor.probes.torch_child", "auditor.probes.proof",
            "auditor.probes.turns", "auditor.probes.exports.common", "auditor.probes.exports.onnx_child",
            "auditor.probes.nvidia_smi", "auditor.probes.collective_child"} <= CHILD_MODULES.keys()
    assert "auditor.facts" not in CHILD_MODULES  # the parent's: typing.Literal, X | Y
    for module, imports in CHILD_MODULES.items():
        for name, at_load in imports:
            top = name.split(".")[0]
            if top in ("auditor", "__future__") or top in sys.stdlib_module_names:
                continue
            assert top in FRAMEWORK_MODULES, f"{module} imports {name}, which a bare interpreter lacks"
            assert not at_load, f"{module} imports {name} when it loads: a child without {top} could not start"


def test_the_child_side_modules_keep_to_python_3_7():
    files = sorted(str(_source(module)) for module in CHILD_MODULES)
    for path in files:  # vermin takes annotations for text, which they are only under this import
        source = Path(path).read_text()
        annotated = any(isinstance(node, ast.AnnAssign) or (isinstance(node, ast.arg) and node.annotation)
                        or (isinstance(node, ast.FunctionDef) and node.returns) for node in ast.walk(ast.parse(source)))
        assert not annotated or "from __future__ import annotations" in source, path
    result = subprocess.run([sys.executable, "-c", "import sys, vermin; sys.exit(vermin.main())",
                             "--target=3.7-", "--no-tips", "--violations", *files],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_export_result_twins_match_the_facts_field_for_field():
    for twin, original in ((common.ExportStage, facts.ExportStage), (common.ExportPath, facts.ExportPath)):
        assert [(f.name, f.default, f.default_factory) for f in dataclasses.fields(twin)] == \
               [(f.name, f.default, f.default_factory) for f in dataclasses.fields(original)]
    check = common.PathCheck("onnx", source="torch")
    with check.running():
        with check.stage("export") as stage:
            stage.detail = "fine"
        check.fail("run failed: simulated")
    path = facts.from_dict(facts.ExportPath, json.loads(json.dumps(check.result())))
    assert (path.status, path.error, path.stages) == ("broken", "run failed: simulated",
                                                      [facts.ExportStage("export", True, path.stages[0].seconds, "fine")])


def test_the_distribution_scan_for_old_pythons_agrees_with_importlib_metadata():
    """The export children's stand-in for importlib.metadata (before 3.10), on this environment."""
    expected = metadata.packages_distributions()
    scanned = common._packages_distributions_fallback()
    assert {module: sorted(names) for module, names in scanned.items()} == \
           {module: sorted(names) for module, names in expected.items()}
    for names in expected.values():
        for name in names:
            assert common._version_fallback(name) == metadata.version(name)
    assert common._version_fallback("Tensorflow_CPU") == metadata.version("tensorflow-cpu")
    with pytest.raises(ModuleNotFoundError):
        common._version_fallback("tensorflow-serving-api")


# --- real runs under other interpreters -----------------------------------------------------


def _newest(minor: str) -> Optional[Path]:
    """pyenv's newest build of that minor version (3.8.18 over 3.8.9); None where there is none."""
    builds = [path for path in PYENV_VERSIONS.glob(f"{minor}.*/bin/python") if path.parts[-3].count(".") == 2]
    return max(builds, key=lambda path: int(path.parts[-3].rpartition(".")[2]), default=None)


def _interpreter(minor: str) -> Path:
    """pyenv's newest build of that minor version; skips the test where there is none."""
    python = _newest(minor)
    if python is None:
        pytest.skip(f"no Python {minor} in {PYENV_VERSIONS} (CI's machines have pyenv's builds of 3.7 to 3.13)")
    return python


def _run(args: list[str], timeout: float) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if result.returncode:
        raise RuntimeError(f"{' '.join(args[:5])} ... exited with {result.returncode}:\n{result.stderr[-4000:]}")
    return result.stdout


class Environment(NamedTuple):
    python: Path
    root: Path
    versions: dict  # distribution (lower case, dashes) -> version, as pip lists them


def _build(base: Path, directory: Path, requirements: tuple[str, ...]) -> Environment:
    _run([str(base), "-m", "venv", str(directory)], 120)
    python = directory / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-input", *requirements],
         _INSTALL_TIMEOUT_S)
    listed = json.loads(_run([str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"], 120))
    return Environment(python, directory, {item["name"].lower().replace("_", "-"): item["version"] for item in listed})


@pytest.fixture(scope="module")
def framework_environments(tmp_path_factory):
    """minor -> its Environment with a real framework, or why it could not be built; all at once.
    Removed afterwards: they take over a gigabyte, which pytest would keep for three runs."""
    root = tmp_path_factory.mktemp("child-pythons")
    bases = {minor: _newest(minor) for minor in FRAMEWORKS if _newest(minor)}
    with concurrent.futures.ThreadPoolExecutor(len(bases) or 1) as pool:
        futures = {minor: pool.submit(_build, base, root / minor, FRAMEWORKS[minor].requirements)
                   for minor, base in bases.items()}
        built = {}
        for minor, future in futures.items():
            try:
                built[minor] = future.result()
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                built[minor] = f"the Python {minor} environment could not be built: {exc}"
    yield built
    shutil.rmtree(root, ignore_errors=True)


def _environment(framework_environments: dict, minor: str) -> Environment:
    _interpreter(minor)  # skips where there is no such Python
    built = framework_environments[minor]
    if isinstance(built, str):
        pytest.fail(built)
    return built


def _bare(minor: str, directory: Path) -> Path:
    """A virtual environment of that Python with nothing in it: the standard library only."""
    _run([str(_interpreter(minor)), "-m", "venv", "--without-pip", str(directory)], 60)
    return directory / "bin" / "python"


def _foreign_bytecode() -> set[Path]:
    return {path for path in PACKAGE.rglob("*.pyc") if sys.implementation.cache_tag not in path.name}


def _run_children(python: Path, probes: list, env: Optional[dict] = None) -> list[ChildOutcome]:
    """Run the probes' children at once under ``python``, as the runner starts them."""
    before = _foreign_bytecode()
    # Python's default, bytecode written, so that a child writing it where it must not is seen.
    environ = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    children = [RunningChild(probe.module, 120.0, {**probe.env, **environ, **(env or {})}, python=str(python))
                for probe in probes]
    outcomes = [child.wait() for child in children]
    # Under another interpreter the child writes no bytecode into the auditor's package (child.py).
    assert _foreign_bytecode() == before
    return outcomes


@pytest.mark.parametrize("minor", MINORS)
def test_every_child_side_module_loads_and_no_other(minor, tmp_path):
    """Each module, loaded as the child's bootstrap loads the package, under a bare interpreter:
    exactly the modules found from the sources, and never auditor.facts."""
    python = _bare(minor, tmp_path / "bare")
    code = (
        "import importlib, importlib.util, json, sys\n"
        "sys.dont_write_bytecode = True; del sys.path[0]\n"
        f"spec = importlib.util.spec_from_file_location('auditor', {str(PACKAGE / '__init__.py')!r}, "
        f"submodule_search_locations=[{str(PACKAGE)!r}])\n"
        "sys.modules['auditor'] = importlib.util.module_from_spec(spec); spec.loader.exec_module(sys.modules['auditor'])\n"
        f"for name in {sorted(CHILD_MODULES)!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(name for name in sys.modules if name.split('.')[0] == 'auditor')))\n"
    )
    before = _foreign_bytecode()
    loaded = json.loads(_run([str(python), "-c", code], 60))
    assert loaded == sorted(CHILD_MODULES)
    assert _foreign_bytecode() == before


@pytest.mark.parametrize("minor", MINORS)
def test_every_child_ends_cleanly_under_a_bare_interpreter(minor, tmp_path):
    """Without the frameworks, a framework child's error names the framework (not a SyntaxError
    or an ImportError of the auditor's own code), and every export path is not-installed."""
    python = _bare(minor, tmp_path / "bare")
    outcomes = _run_children(python, list(PROBES.values()))
    for probe, outcome in zip(PROBES.values(), outcomes):
        if probe.provides == "exports":
            judged, paths = runner._judge_exports(probe, outcome, frozenset(probe.exports))
            assert (judged.status, judged.reason) == ("ok", None), probe.name
            for name, path in paths.items():
                assert path.status == "not-installed" and path.missing, (probe.name, name, path)
                assert path.stages[0].detail == f"not installed: {', '.join(path.missing)}"
        else:
            missing = FIRST_IMPORT[probe.name]
            assert (outcome.status, outcome.reason) == ("error", f"ModuleNotFoundError: No module named '{missing}'")


@pytest.mark.parametrize("minor", sorted(FRAMEWORKS))
def test_a_framework_child_proves_a_real_framework(minor, framework_environments):
    environment = _environment(framework_environments, minor)
    framework = FRAMEWORKS[minor]
    probe = PROBES[framework.probe]
    (outcome,) = _run_children(environment.python, [probe])
    assert outcome.status == "ok", outcome.reason
    judged, found = runner._judge_payload(probe, outcome)  # as the parent reads it
    assert judged.status == "ok", judged.reason
    assert found.version == environment.versions[framework.distribution]
    assert Path(found.module_path).is_relative_to(environment.root)  # the audited environment's own
    if framework.probe == "jax":
        assert found.build.details["jaxlib"] == environment.versions["jaxlib"]
    cpu = next(device for device in found.devices if device.kind == "cpu")
    proofs = [proof for proof in found.proofs if proof.device == cpu.id and not proof.skipped]
    assert {(proof.workload, proof.dtype) for proof in proofs} >= {(workload, "float32") for workload in
                                                                    ("matmul", "conv2d", "train-step")}
    for proof in proofs:
        assert proof.ok and 0 <= proof.max_relative_error < TOLERANCE[proof.dtype], proof
    matmul = next(proof for proof in proofs if proof.workload == "matmul" and proof.dtype == "float32")
    assert matmul.gflops > 0


def test_the_tensorflow_export_paths_convert_for_real_on_python_3_7(framework_environments):
    """Python 3.7 has no importlib.metadata: the tools' versions come from the export children's
    own reading of the installed distributions, and must be pip's."""
    environment = _environment(framework_environments, "3.7")
    probe = PROBES["export-tensorflow"]
    (outcome,) = _run_children(environment.python, [probe])
    judged, paths = runner._judge_exports(probe, outcome, frozenset(probe.exports))
    assert judged.status == "ok", judged.reason
    tensorflow = environment.versions["tensorflow-cpu"]
    for name, path in paths.items():
        assert path.status == "ready", (name, path)
        assert path.tools == {"tensorflow-cpu": tensorflow}
        assert path.max_relative_error < path.tolerance
    assert paths["tflite"].runtime == f"tf.lite.Interpreter (tensorflow {tensorflow})"
    assert paths["tf-serving"].details["tensorflow-serving-api"] == "not installed"


@pytest.mark.parametrize("minor", sorted(FRAMEWORKS))
def test_the_nvml_child_answers_as_under_the_auditors_own_python(minor, framework_environments):
    """Whatever this machine has (no NVIDIA driver: absent; GPUs: their facts), the NVML child says
    the same under an old Python as under the auditor's."""
    environment = _environment(framework_environments, minor)
    probe = PROBES["nvidia"]
    (old,) = _run_children(environment.python, [probe])
    (own,) = _run_children(Path(sys.executable), [probe])
    assert (old.status, old.reason) == (own.status, own.reason)
    if own.status == "ok":
        assert [(gpu["uuid"], gpu["name"]) for gpu in old.payload["gpus"]] == \
               [(gpu["uuid"], gpu["name"]) for gpu in own.payload["gpus"]]
        assert old.payload["driver_version"] == own.payload["driver_version"]


@pytest.mark.parametrize("minor", sorted(FRAMEWORKS))
def test_the_whole_audit_of_an_old_python_judges_that_python(minor, framework_environments):
    """`auditor audit --python` of each old environment, end to end: its framework proven there,
    its Python judged, and every command in the report run by that environment's interpreter."""
    environment = _environment(framework_environments, minor)
    framework = FRAMEWORKS[minor]
    result = subprocess.run([sys.executable, "-m", "auditor", "audit", "--python", str(environment.root),
                             "--format", "json"], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    python = report["machine"]["python"]
    assert python["version"].startswith(f"{minor}.") and python["environment_path"] == str(environment.root)
    assert report["auditor_python"]["executable"] == sys.executable
    assert set(report["frameworks"]) == {framework.probe}
    facts_ = report["frameworks"][framework.probe]
    assert facts_["probe"]["status"] == "ok" and facts_["distribution_version"] == environment.versions[framework.distribution]
    ready = {fw["framework"]: fw["status"] for fw in report["readiness"]["frameworks"]}
    assert ready == {framework.probe: "ready"}
    assert report["recommendation"]["areas"][0]["name"] == "Python"
    quoted = str(environment.python)
    commands = [step["command"] for step in report["recommendation"]["next_steps"] if step["command"]]
    commands += [f["fix"] for f in report["findings"] if f["fix"] and "pip " in f["fix"]]
    assert commands  # at least the `auditor check` that converts the export paths a goal needs
    for command in commands:
        assert (f"{quoted} -m pip " in command if "pip " in command else f"auditor check --python {quoted} " in command
                or f"auditor audit --python {quoted}" in command), command
