"""`auditor audit --python PATH`: installed once as a tool, the auditor audits any environment.

As a user meets it: the README's first command installs the auditor with pipx, from a copy of
this repository, into a home of its own; that tool then audits environments made here from this
machine's interpreters: one with torch 2.13.0 (CPU) only, one with tensorflow-cpu only, empty
ones on Python 3.7, 3.8 and 3.9 (pyenv's), and broken ones. Each audit must find exactly what
that environment holds, prove its framework in that environment's interpreter, judge that
interpreter, and give commands that act on it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from test_terminal import assert_clean, run_in_terminal, terminal_env

ROOT = Path(__file__).resolve().parents[1]
PYENV = Path.home() / ".pyenv" / "versions"
BASE_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
# pip outside a pipx home: quiet, and never asking the network about itself.
PIP = ("-m", "pip", "install", "--quiet", "--disable-pip-version-check")
TORCH, TENSORFLOW = "torch==2.13.0", "tensorflow-cpu==2.21.0"  # tests/requirements.txt's pins


def pyenv_python(version: str) -> Path:
    found = sorted(PYENV.glob(f"{version}.*/bin/python{version}"))
    if not found:
        pytest.skip(f"no Python {version} under {PYENV}")
    return found[-1]


def readme_install_command() -> str:
    """The README's first shell command: the one that installs the auditor and runs an audit."""
    return re.search(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text(), re.DOTALL).group(1).strip()


def make_venv(path: Path, python: Path | str, *requirements: str) -> Path:
    subprocess.run([str(python), "-m", "venv", str(path)], check=True, timeout=300)
    if requirements:
        subprocess.run([str(path / "bin" / "python"), *PIP, *requirements], check=True, timeout=900)
    return path


class Home:
    """A user's home: the auditor installed there by the README's command, a project's venv at ~/proj/.venv."""

    def __init__(self, path: Path):
        self.path = path
        # A user's shell: no active environment, and Python writing bytecode as it does by default.
        self.env = {**{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "AUDITOR_PYTHON",
                                                                         "PYTHONPATH", "PYTHONDONTWRITEBYTECODE")},
                    "HOME": str(path), "PATH": f"{path / '.local' / 'bin'}{os.pathsep}{os.environ['PATH']}",
                    "COLUMNS": "100"}
        self.auditor = path / ".local" / "bin" / "auditor"

    def run(self, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.auditor), *args], capture_output=True, text=True, env={**self.env, **(env or {})},
                              timeout=timeout, cwd=self.path)

    def audit_json(self, *args: str, env: dict | None = None) -> dict:
        result = self.run("audit", "--format", "json", *args, env=env)
        assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Home:
    """The README's install, run as written in a clean copy of the repository (building in place would
    leave build/ behind), while the torch and TensorFlow projects' venvs are made beside it."""
    home = Home(tmp_path_factory.mktemp("home"))
    source = home.path / "auditor-src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info",
                                                                "build", ".pytest_cache"))
    command = readme_install_command()
    install, _, audit = command.partition(" && ")
    assert install == "pipx install ." and audit.startswith("auditor audit --python ~/"), command
    pipx = shutil.which("pipx", path=str(Path(sys.executable).parent))
    assert pipx, "pipx is a test requirement (tests/requirements.txt)"
    with ThreadPoolExecutor(max_workers=3) as pool:
        installed = pool.submit(subprocess.run, [pipx, "install", "."], cwd=source, env=home.env,
                                capture_output=True, text=True, timeout=900)
        project = pool.submit(make_venv, home.path / "proj" / ".venv", BASE_PYTHON, TORCH)
        tensorflow = pool.submit(make_venv, home.path / "tf-project" / ".venv", BASE_PYTHON, TENSORFLOW)
        result = installed.result()
        assert result.returncode == 0, result.stderr
        project.result(), tensorflow.result()
    home.readme_audit = audit
    return home


def venv_python(venv: Path) -> str:
    return str(venv / "bin" / "python")


def version_in(python: str, distribution: str) -> str:
    return subprocess.run([python, "-c", f"import importlib.metadata as m; print(m.version({distribution!r}))"],
                          capture_output=True, text=True, check=True).stdout.strip()


def tool_python(home: Home) -> str:
    """The interpreter pipx installed the auditor into: its script's shebang."""
    return home.auditor.read_text().split("\n", 1)[0].removeprefix("#!").split()[0]


def strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


# --- the README's command, as written --------------------------------------------------------------


def test_the_readme_command_audits_the_project_from_the_installed_tool(home):
    result = subprocess.run(["bash", "-c", home.readme_audit + " --format json"], capture_output=True, text=True,
                            env=home.env, cwd=home.path, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    project = home.path / "proj" / ".venv"
    python = report["machine"]["python"]
    assert (python["executable"], python["prefix"], python["environment"]) == (venv_python(project), str(project), "venv")
    assert report["auditor_python"]["executable"] == tool_python(home) != python["executable"]


# --- each environment, exactly what it holds ------------------------------------------------------


@pytest.mark.parametrize("project, framework, distribution", [("proj", "torch", "torch"),
                                                              ("tf-project", "tensorflow", "tensorflow-cpu")])
def test_the_tool_finds_exactly_each_environments_framework_and_proves_it_there(home, project, framework,
                                                                                distribution):
    venv = home.path / project / ".venv"
    report = home.audit_json("--python", str(venv))
    assert set(report["frameworks"]) == {framework}
    facts = report["frameworks"][framework]
    assert facts["probe"]["status"] == "ok"
    assert facts["distribution_version"] == version_in(venv_python(venv), distribution)
    # Imported by the environment's own interpreter, from its own site-packages.
    assert facts["module_path"].startswith(str(venv / "lib")), facts["module_path"]
    proven = {(p["operation"].split()[0], p["dtype"]) for p in facts["proofs"] if p["ok"]}
    assert {("matmul", "float32"), ("conv2d", "float32"), ("train", "float32")} <= proven
    assert all(p["ok"] for p in facts["proofs"] if p["dtype"] == "float32" and not p.get("skipped")
               and p.get("compiler") is None), facts["proofs"]
    # Its distributions, not the tool's: nvidia-ml-py is the auditor's own dependency.
    assert distribution in report["packages"] and "nvidia-ml-py" not in report["packages"]
    assert not {"torch", "tensorflow-cpu"} - {distribution} & set(report["packages"])
    # The NVML probe still ran, from the auditor's own environment, which has the bindings.
    nvml = next(p for p in report["probes"] if p["name"] == "nvidia")
    assert "is installed" not in (nvml["reason"] or ""), nvml
    python = report["machine"]["python"]
    assert python["executable"] == venv_python(venv) and python["environment_path"] == str(venv)
    assert python["version"] == subprocess.run([venv_python(venv), "-c", "import platform; print(platform.python_version())"],
                                               capture_output=True, text=True).stdout.strip()
    # A CPU-only machine with one framework proven: nothing to report, whatever the load.
    assert {f["code"] for f in report["findings"]} - {"PRF001"} == set()
    assert report["readiness"]["status"] == "ready"
    assert report["recommendation"]["areas"][0]["name"] == "Python"


def test_an_audit_from_the_tool_equals_the_audit_inside_the_environment(home, real_report):
    """This repository's own venv (torch, TensorFlow, JAX and the export tools), audited from inside
    (conftest's real audit) and from the tool: the same facts, findings and answer."""
    inside = real_report
    outside = home.audit_json("--python", sys.executable)
    assert outside["packages"] == inside["packages"]
    assert outside["machine"]["python"]["version"] == inside["machine"]["python"]["version"]
    assert set(outside["frameworks"]) == set(inside["frameworks"]) == {"torch", "tensorflow", "jax"}
    for name, facts in inside["frameworks"].items():
        assert outside["frameworks"][name]["version"] == facts["version"]
        assert outside["frameworks"][name]["module_path"] == facts["module_path"]
        assert ({(p["operation"], p["device"], p["dtype"], p["ok"]) for p in outside["frameworks"][name]["proofs"]}
                == {(p["operation"], p["device"], p["dtype"], p["ok"]) for p in facts["proofs"]})
    # Speed is measured, and other work can move it; ENV007 depends on the shell the tests run in
    # (an activated venv); every other finding must agree.
    varying = {"PRF001", "ENV007"}
    assert {f["code"] for f in outside["findings"]} - varying == {f["code"] for f in inside["findings"]} - varying
    assert [c["framework"] for c in outside["recommendation"]["choices"]] == \
        [c["framework"] for c in inside["recommendation"]["choices"]]


# --- older interpreters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version, torch_release", [("3.7", "1.13"), ("3.8", "2.4"), ("3.9", "2.8")])
def test_an_older_python_is_audited_and_told_what_installs_there(home, tmp_path, version, torch_release):
    venv = make_venv(tmp_path / f"py{version}", pyenv_python(version))
    report = home.audit_json("--python", str(venv))
    python = report["machine"]["python"]
    assert python["version"].startswith(f"{version}.") and python["executable"] == venv_python(venv)
    codes = {f["code"] for f in report["findings"]}
    assert {"FW012", "ENV006"} <= codes
    nothing = next(f for f in report["findings"] if f["code"] == "FW012")
    quoted = shlex.quote(venv_python(venv))
    # The newest torch with wheels for that Python, from the CPU index (no NVIDIA GPU here), by its pip.
    assert (f'`{quoted} -m pip install "torch=={torch_release}.*" --index-url https://download.pytorch.org/whl/cpu`'
            in nothing["fix"]), nothing["fix"]
    assert f"`auditor audit --python {quoted}`" in nothing["fix"]
    # No command in the report would act on another environment.
    texts = strings({k: report[k] for k in ("findings", "readiness", "recommendation")})
    assert not [t for t in texts if re.search(r"(?<![\w./-])(?<!-m )pip (install|uninstall)", t)]
    assert not [t for t in texts if re.search(r"auditor (audit|check)\b(?! --python)", t)]


# --- which environment, said everywhere ------------------------------------------------------------------------


def test_the_active_environment_is_named_and_its_command_audits_it(home):
    project = home.path / "proj" / ".venv"
    report = home.audit_json(env={"VIRTUAL_ENV": str(project)})
    assert set(report["frameworks"]) == set()  # the tool's own environment holds no framework
    finding = next(f for f in report["findings"] if f["code"] == "ENV007")
    assert finding["title"] == (f"VIRTUAL_ENV names {project}, but the audit inspected "
                                f"{report['machine']['python']['prefix']} (the auditor's own environment)")
    command = re.search(r"`(auditor audit --python [^`]+)`", finding["fix"]).group(1)
    followed = home.run(*shlex.split(command)[1:], "--format", "json", env={"VIRTUAL_ENV": str(project)})
    assert followed.returncode == 0, followed.stderr
    assert set(json.loads(followed.stdout)["frameworks"]) == {"torch"}
    assert "ENV007" not in {f["code"] for f in json.loads(followed.stdout)["findings"]}


def test_auditor_python_in_the_environment_chooses_the_target_and_a_replay_ignores_it(home, tmp_path):
    project = home.path / "proj" / ".venv"
    saved = tmp_path / "snapshot.json"
    report = home.audit_json("--save-snapshot", str(saved), env={"AUDITOR_PYTHON": str(project)})
    assert report["machine"]["python"]["environment_path"] == str(project)
    replayed = home.audit_json("--snapshot", str(saved), env={"AUDITOR_PYTHON": "/nowhere/python"})
    assert replayed["machine"]["python"] == report["machine"]["python"]
    assert replayed["auditor_python"] == report["auditor_python"]
    refused = home.run("audit", "--snapshot", str(saved), "--python", str(project))
    assert refused.returncode == 2 and refused.stderr.strip() == (
        "auditor: error: --snapshot replays saved facts and cannot be combined with --python")


def test_a_bare_name_is_the_interpreter_a_shell_would_run(home, tmp_path):
    commands = tmp_path / "bin"
    commands.mkdir()
    (commands / "python3-project").symlink_to(BASE_PYTHON)
    report = home.audit_json("--quick", "--python", "python3-project",
                             env={"PATH": f"{commands}{os.pathsep}{home.env['PATH']}"})
    python = report["machine"]["python"]
    assert python["executable"] == str(commands / "python3-project")
    assert python["version"] == ".".join(map(str, sys.version_info[:3])) and python["environment"] == "system"


def test_every_format_names_the_audited_interpreter(home, tmp_path):
    project = home.path / "proj" / ".venv"
    saved = tmp_path / "snapshot.json"
    assert home.run("audit", "--python", str(project), "--save-snapshot", str(saved), "--format", "json").returncode == 0
    version = json.loads(saved.read_text())["machine"]["python"]["version"]
    named = f"CPython {version} at {venv_python(project)}"
    for command, fmt in [("audit", "markdown"), ("audit", "html"), ("check", "text"), ("check", "markdown"),
                         ("check", "junit"), ("check", "github"), ("check", "html")]:
        profile = ("--profile", "ci-cpu") if command == "check" else ()
        result = home.run(command, "--snapshot", str(saved), *profile, "--format", fmt,
                          env={"GITHUB_STEP_SUMMARY": ""})
        assert result.returncode == 0, (fmt, result.stderr)
        # Markdown, meant to be shared, writes the home directory as ~.
        shown = " ".join(result.stdout.split())
        assert named in shown or named.replace(str(home.path), "~") in shown, (command, fmt)
    # The text report on a real terminal, 80 columns: the first screen names the environment.
    screen = run_in_terminal("audit", "--snapshot", str(saved), columns=80, env=terminal_env(colour=False),
                             program=(str(home.auditor),))
    assert_clean(screen, 80)
    first_screen = " ".join(screen.text.split("╭─", 1)[0].split())
    assert f"[✓] Python {version} (venv {project})" in first_screen, screen.lines[:4]
    assert venv_python(project) in " ".join(screen.text.split())


def test_nothing_is_written_into_the_tool_or_the_target(home):
    """The children of another interpreter write no bytecode into the auditor's package, and the audit
    writes nothing into the audited environment."""
    project = home.path / "proj" / ".venv"

    own_tag = subprocess.run([tool_python(home), "-c", "import sys; print(sys.implementation.cache_tag)"],
                             capture_output=True, text=True, check=True).stdout.strip()

    def files(root: Path, ignore_own_bytecode: bool = False) -> dict[str, float]:
        # The tool's own interpreter may compile the tool's modules, as Python does for any program.
        return {str(p): p.stat().st_mtime for p in root.rglob("*") if p.is_file()
                and not (ignore_own_bytecode and p.suffix == ".pyc" and own_tag in p.name)}

    tool_root = Path(tool_python(home)).parent.parent
    package = Path(subprocess.run([tool_python(home), "-I", "-c", "import auditor; print(auditor.__file__)"],
                                  capture_output=True, text=True, check=True).stdout.strip()).parent
    assert package.is_relative_to(tool_root), package
    # Only a child imports torch_child: bytecode of it could come from the child alone.
    child_bytecode = "probes/__pycache__/torch_child.*.pyc"
    for stale in package.glob(child_bytecode):
        stale.unlink()
    before_tool, before_project = files(tool_root, True), files(project)
    assert home.run("audit", "--python", str(project)).returncode == 0
    assert files(tool_root, True) == before_tool
    assert list(package.glob(child_bytecode)) == []
    assert files(project) == before_project


# --- what cannot be audited: one line, exit 2 -----------------------------------------------------------------


def broken_environments(tmp_path: Path) -> list[tuple[str, str]]:
    """(the --python value, the error line expected) for each way a PATH can fail to be an interpreter."""
    cases = []
    text = tmp_path / "notes.txt"
    text.write_text("not a program\n")
    text.chmod(0o755)
    cases.append((str(text), "is not a Python interpreter (it cannot be run: Exec format error)"))
    cases.append((shutil.which("ls"), "is not a Python interpreter (it exited with status 2)"))
    chatty = tmp_path / "python"
    chatty.write_text("#!/bin/sh\necho 'Python 3.12.1'\n")
    chatty.chmod(0o755)
    cases.append((str(chatty), "is not a Python interpreter (it did not answer as one)"))
    unreadable = tmp_path / "python3"
    unreadable.write_text("#!/bin/sh\n")
    unreadable.chmod(0o644)
    cases.append((str(unreadable), "is not executable"))
    empty = tmp_path / "empty"
    empty.mkdir()
    cases.append((str(empty), "no bin/python in it; not a virtual environment or conda environment"))
    cases.append((str(tmp_path / "missing"), "no such file or directory"))
    # A venv whose base interpreter was removed, as when pyenv uninstalls a version: made from a base
    # reached through a directory that is then deleted. Linked (the default) and copied.
    for kind in ("--symlinks", "--copies"):
        base = tmp_path / f"base{kind}" / "bin"
        base.mkdir(parents=True)
        (base / "python3").symlink_to(BASE_PYTHON)
        venv = tmp_path / f"venv{kind}"
        subprocess.run([str(base / "python3"), "-m", "venv", "--without-pip", kind, str(venv)], check=True)
        shutil.rmtree(base.parent)
        cases.append((str(venv), "a broken "))
    python2 = PYENV / "2.7.18" / "bin" / "python2.7"
    if python2.exists():
        cases.append((str(python2), "Python 2.7.18 cannot be audited; the auditor's probes run on Python 3.7 or later"))
    for python36 in sorted(PYENV.glob("3.6.*/bin/python3.6"))[-1:]:
        cases.append((str(python36), "cannot be audited; the auditor's probes run on Python 3.7 or later"))
    return cases


def test_a_path_that_is_no_interpreter_is_one_line_and_exit_2(home, tmp_path):
    cases = broken_environments(tmp_path)
    assert len(cases) >= 10
    for reference, expected in cases:
        for args, env in ((("--python", reference), None), ((), {"AUDITOR_PYTHON": reference})):
            result = home.run("audit", *args, env=env)
            assert result.returncode == 2, (reference, result.stderr)
            assert result.stdout == "" and "Traceback" not in result.stderr
            line, = result.stderr.splitlines()
            assert line.startswith(f"auditor: error: --python {reference}: ") and expected in line, line
    # The same rule for `auditor check`.
    result = home.run("check", "--profile", "ci-cpu", "--python", cases[0][0])
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("marker, expected", [("conda-meta", "conda"), (None, "system")])
def test_a_conda_prefix_is_named_as_one(tmp_path, marker, expected):
    """A conda environment is a prefix of its own (sys.prefix == sys.base_prefix) with conda-meta/ in
    it; this machine has no conda, so the interpreter's answer is given as conda's would be."""
    from auditor.probes.host import python_facts
    from auditor.probes.interpreter import Interpreter

    prefix = tmp_path / "miniforge3" / "envs" / "ml"
    prefix.mkdir(parents=True)
    if marker:
        (prefix / marker).mkdir()
    facts = python_facts(Interpreter(str(prefix / "bin" / "python"), "3.10.14", "CPython", str(prefix), str(prefix),
                                     (str(prefix / "lib" / "python3.10" / "site-packages"),), False), {})
    assert (facts.environment, facts.environment_path) == (expected, str(prefix) if marker else None)
    assert facts.sources["version"] == "platform.python_version() (asked of that interpreter)"
