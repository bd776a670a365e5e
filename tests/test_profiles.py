"""Profiles: the built-in ones, the published schema, `extends`, and every malformed file as
one line and exit 2. Nothing here probes the machine: profiles are read, merged and shown."""

from __future__ import annotations

import datetime
import json
import re
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest

from auditor.checks.base import Finding
from auditor.errors import InputError
from auditor.decisions.goals import check_results
from auditor.profiles.loader import builtin_profiles, load_profile, read_document
from auditor.profiles.needs import export_paths, needs_deep_proofs
from auditor.profiles.schema import published_schema, render_schema
from conftest import run_auditor

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
BUILTINS = ["apple-silicon", "ci-cpu", "gpu-training", "inference-serving", "mobile-export", "research", "tpu"]
HEADER = 'schema = "auditor-profile-v1"\ndescription = "a test profile"\n'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def one_line_error(result) -> str:
    """Exit 2, nothing on stdout, exactly one 'auditor: error:' line: the message after the prefix."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("auditor: error: "), result.stderr
    return lines[0].removeprefix("auditor: error: ")


# --- the built-in profiles -----------------------------------------------------------


def test_the_built_in_profiles_are_the_files_in_the_top_level_profiles_folder():
    assert list(builtin_profiles()) == BUILTINS
    assert sorted(path.stem for path in (ROOT / "profiles").glob("*.toml")) == BUILTINS
    for name, location in builtin_profiles().items():
        assert location.read_text() == (ROOT / "profiles" / f"{name}.toml").read_text()


@pytest.mark.parametrize("name", BUILTINS)
def test_every_built_in_profile_loads_and_says_what_it_is_for(name):
    profile = load_profile(name, Path.cwd())
    assert profile.name == name
    assert profile.document.description and "\n" not in profile.document.description
    assert profile.document.frameworks, "every built-in profile names the frameworks it accepts"


def test_profiles_lists_each_built_in_with_its_description():
    result = run_auditor("profiles")
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == BUILTINS
    for line, name in zip(lines, BUILTINS):
        assert line == f"{name:<18} {load_profile(name, Path.cwd()).document.description}"


def test_profiles_show_prints_the_file(tmp_path):
    shown = run_auditor("profiles", "show", "gpu-training")
    assert shown.returncode == 0
    assert shown.stdout == (ROOT / "profiles" / "gpu-training.toml").read_text()
    custom = write(tmp_path / "mine.toml", HEADER + 'extends = ["ci-cpu"]\n')
    assert run_auditor("profiles", "show", str(custom)).stdout == custom.read_text()


def test_gpu_training_builds_on_research():
    research, training = load_profile("research", Path.cwd()).document, load_profile("gpu-training", Path.cwd()).document
    assert training.python == research.python and training.frameworks == research.frameworks
    assert [entry.requirement_id() for entry in training.compute] == [
        "any.best.float32", "any.gpu.float32.train-step", "any.gpu.bfloat16-or-float16.train-step"]
    assert training.machine.min_memory_gib == 32  # its own [machine] wins key by key


def test_the_probes_a_profile_needs():
    profiles = [load_profile(name, Path.cwd()) for name in BUILTINS]
    assert export_paths(profiles) == {"tf-serving", "onnx", "tflite", "tflite-int8", "executorch"}
    assert not needs_deep_proofs(profiles)  # eager proofs meet every built-in requirement


@pytest.mark.parametrize("compute, deep", [
    ('device = "cpu"\ncompiler = "torch.compile"', True),  # torch.compile proves a train step under --deep only
    ('device = "cpu"\ncompiler = "xla"\nworkload = "train-step"', True),
    ('device = "cpu"\ncompiler = "xla"', False),  # XLA's matmul and conv2d run in every full audit
    ('device = "cpu"\nworkload = "train-step"', False),  # the eager train step is proven without --deep
])
def test_deep_proofs_run_only_when_nothing_else_can_meet_a_requirement(tmp_path, compute, deep):
    path = write(tmp_path / "p.toml", HEADER + "[[compute]]\n" + compute + "\n")
    assert needs_deep_proofs([load_profile(str(path), tmp_path)]) is deep


def test_pyproject_lists_every_package_so_the_wheel_ships_them_and_the_profiles():
    """The packages are listed, not found (find cannot map profiles/ to auditor.builtin_profiles):
    a new folder under auditor/ must be added to [tool.setuptools] packages."""
    configured = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {"auditor." + ".".join(path.relative_to(ROOT / "auditor").parts)
               for path in (ROOT / "auditor").rglob("*") if path.is_dir() and path.name != "__pycache__"}
    assert sorted(configured["packages"]) == sorted({"auditor", "auditor.builtin_profiles", *folders})
    assert configured["package-dir"] == {"auditor.builtin_profiles": "profiles"}
    assert configured["package-data"]["auditor.builtin_profiles"] == ["*.toml"]


# --- the published schema ------------------------------------------------------------


def test_published_profile_schema_is_current():
    assert published_schema() == render_schema(), \
        "regenerate: python -m auditor.profiles.schema > auditor/schemas/profile-v1.json"


def _as_json(path: Path) -> dict:
    """A TOML file as the JSON an editor validates (dates become strings)."""
    return json.loads(json.dumps(tomllib.loads(path.read_text()), default=str))


@pytest.mark.parametrize("name", BUILTINS)
def test_built_in_profiles_validate_against_the_published_schema(name):
    schema = json.loads(published_schema())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(_as_json(ROOT / "profiles" / f"{name}.toml"), schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("text", [
    HEADER + 'colour = "red"\n',
    HEADER + '[machine]\nmin-shm-gib = "1g"\n',
    HEADER + '[[compute]]\ndevice = "gpu"\ndtype = "float64"\n',
    HEADER + '[[exports]]\nany-of = []\n',
    'schema = "auditor-profile-v1"\n',
], ids=["unknown-key", "wrong-type", "unknown-dtype", "no-alternative", "no-description"])
def test_the_schema_rejects_what_the_loader_rejects(tmp_path, text):
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_as_json(path), json.loads(published_schema()), cls=jsonschema.Draft202012Validator)
    with pytest.raises(InputError):
        load_profile(str(path), tmp_path)


# --- extends -------------------------------------------------------------------------


def test_extends_merges_tables_key_by_key_and_replaces_entries_by_id(tmp_path):
    write(tmp_path / "base" / "team.toml", HEADER + """
        [machine]
        min-memory-gib = 16
        min-shm-gib = 2

        [[frameworks]]
        any-of = ["torch>=2.3"]

        [[compute]]
        id = "training"
        device = "gpu"
        workload = "train-step"

        [checks]
        ignore = ["TPU"]
        severity = { MEM002 = "error", FW = "warning" }
        """)
    child = write(tmp_path / "child.toml", HEADER + """
        extends = ["base/team.toml", "ci-cpu"]

        [machine]
        min-memory-gib = 64

        [[compute]]
        id = "training"
        device = "cuda"
        dtype = "bfloat16"

        [checks]
        ignore = ["ENV002", "GPU"]
        severity = { MEM002 = "off" }
        """)
    document = load_profile(str(child), Path("/")).document
    assert document.description == "a test profile"
    # [machine]: the child's key, then the later parent's (ci-cpu), then the first parent's
    assert (document.machine.min_memory_gib, document.machine.min_shm_gib, document.machine.min_usable_cpus) == (64, 2, 2)
    # entries keep their order; the child's "training" replaces the parent's in place
    assert [entry.requirement_id() for entry in document.compute] == ["training", "any.cpu.float32"]
    assert document.compute[0].device == ("cuda",) and document.compute[0].workload is None
    assert [entry.requirement_id() for entry in document.frameworks] == ["torch", "torch-or-tensorflow-or-jax"]
    # ignores add up, each once, in the order first given
    assert document.checks.ignore == ("TPU", "GPU", "ARC", "DRV", "ROC", "FW006", "FW007", "FW011", "PLT001",
                                      "PLT002", "PLT003", "ENV002")
    assert document.checks.severity == {"MEM002": "off", "FW": "warning"}


def test_a_profile_overrides_check_severity_by_the_longest_prefix_and_waives_until_its_date(tmp_path):
    path = write(tmp_path / "p.toml", HEADER + """
        [checks]
        ignore = ["GPU"]
        severity = { MEM = "error", MEM001 = "info", AUD = "off" }

        [[waivers]]
        code = "MEM002"
        reason = "our CI containers run with a small /dev/shm, INFRA-42"
        expires = 2099-12-31
        """)
    findings = [Finding("MEM001", "memory-limit-below-host", "warning", "limit", ["cgroup 8 GiB"]),
                Finding("MEM002", "small-dev-shm", "warning", "small shm", ["/dev/shm 64 MiB"], "`docker run --shm-size=1g`"),
                Finding("CPU002", "cpu-quota-below-visible", "warning", "quota", [])]
    from auditor.checks.selection import Selection
    results = {r.id: r for r in check_results(load_profile(str(path), tmp_path).document, findings, Selection())}
    assert not any(key.startswith(("check.GPU", "check.AUD")) for key in results)  # ignored, off
    assert results["check.MEM001"].status == "pass"  # info: reported, not counted
    assert results["check.CPU002"].status == "warn"  # the check's own severity
    waived = results["check.MEM002"]  # raised to error by MEM, then waived
    assert (waived.status, waived.waiver.expires) == ("warn", "2099-12-31")
    assert waived.fix == "`docker run --shm-size=1g`" and waived.evidence == ["/dev/shm 64 MiB"]
    assert results["check.FW004"].status == "pass" and results["check.FW004"].evidence == []


def test_a_waiver_holds_through_its_last_day(tmp_path):
    path = write(tmp_path / "p.toml", HEADER + '[[waivers]]\ncode = "MEM002"\nreason = "r"\nexpires = 2030-06-30\n')
    assert load_profile(str(path), tmp_path, today=datetime.date(2030, 6, 30)).document.waivers
    with pytest.raises(InputError, match="expired on 2030-06-30"):
        load_profile(str(path), tmp_path, today=datetime.date(2030, 7, 1))


# --- malformed profiles: one line, exit 2 --------------------------------------------

MALFORMED = [
    ("bad-toml", HEADER + '[python\nrequires = ">=3.10"\n',
     "{file}: invalid TOML: Expected ']' at the end of a table declaration (at line 3, column 8)"),
    ("not-utf8", None, "{file}: invalid TOML: not UTF-8 text"),
    ("unknown-key", HEADER + 'colour = "red"\n',
     "{file}: colour: unknown key; expected one of schema, description, name, extends, python, machine, "
     "accelerator, frameworks, compute, exports, checks, waivers"),
    ("unknown-nested-key", HEADER + "[accelerator]\nmin-counts = 2\n",
     "{file}: accelerator.min-counts: unknown key; expected one of kind, min-count, min-memory-gib, "
     "min-compute-capability, min-driver, severity, capacity-severity (did you mean min-count?)"),
    ("wrong-type", HEADER + '[machine]\nmin-shm-gib = "1g"\n',
     '{file}: machine.min-shm-gib: expected a number, got a string: "1g"'),
    ("wrong-type-array", HEADER + '[[frameworks]]\nany-of = "torch"\n',
     '{file}: frameworks[0].any-of: expected an array of items each a PEP 508 requirement such as "torch>=2.3", '
     'got a string: "torch"'),
    ("out-of-range", HEADER + "[accelerator]\nmin-count = 0\n",
     "{file}: accelerator.min-count: expected an integer of at least 1, got 0"),
    ("unknown-value", HEADER + '[[compute]]\ndevice = "cuda"\ndtype = "float64"\n',
     '{file}: compute[0].dtype: expected one of "float32", "bfloat16", "float16", got "float64"'),
    ("bad-specifier", HEADER + '[python]\nrequires = ">=3.10,<<3.14"\n',
     '{file}: python.requires: expected a PEP 440 version specifier set such as ">=3.10,<3.14", '
     "got \">=3.10,<<3.14\" (Invalid specifier: '<<3.14')"),
    ("bad-requirement", HEADER + '[[frameworks]]\nany-of = ["torch>=2.3", "tensorflow>>2"]\n',
     '{file}: frameworks[0].any-of[1]: expected a PEP 508 requirement such as "torch>=2.3", got "tensorflow>>2" '
     "(Expected semicolon (after name with no version specifier) or end)"),
    ("untracked-distribution", HEADER + '[[frameworks]]\nany-of = ["flash-attn>=2"]\n',
     '{file}: frameworks[0].any-of[0]: expected a distribution the auditor records (torch, tensorflow, jax, '
     'onnxruntime, executorch, numpy, ...: see auditor/probes/packages.py), got "flash-attn>=2"'),
    ("unknown-code", HEADER + '[checks.severity]\nGPU04 = "error"\n',
     '{file}: checks.severity.GPU04: expected a check code or code prefix such as "GPU004" or "GPU", got "GPU04" '
     "(did you mean GPU004?)"),
    ("unknown-code-ignored", HEADER + '[checks]\nignore = ["XYZ"]\n',
     '{file}: checks.ignore[0]: expected a check code or code prefix such as "GPU004" or "GPU", got "XYZ" '
     "(`auditor checks` lists them)"),
    ("unknown-waiver-code", HEADER + '[[waivers]]\ncode = "MEM"\nreason = "r"\nexpires = 2099-01-31\n',
     '{file}: waivers[0].code: expected a check code such as "MEM002", got "MEM" (did you mean MEM002?)'),
    ("expired-waiver", HEADER + '[[waivers]]\ncode = "MEM002"\nreason = "small shm, INFRA-1"\nexpires = 2020-01-31\n',
     "{file}: waivers[0].expires: expected a date not yet past, but the waiver for MEM002 expired on 2020-01-31; "
     "renew it or fix the finding"),
    ("waiver-date-time", HEADER + '[[waivers]]\ncode = "MEM002"\nreason = "r"\nexpires = 2099-01-01T00:00:00\n',
     '{file}: waivers[0].expires: expected a date such as 2027-06-30, got a date-time: "2099-01-01 00:00:00"'),
    ("wrong-schema", 'schema = "auditor-profile-v2"\ndescription = "x"\n',
     '{file}: schema: expected one of "auditor-profile-v1", got "auditor-profile-v2"'),
    ("missing-key", 'schema = "auditor-profile-v1"\n', "{file}: description: expected one line of text, but the key is missing"),
    ("duplicate-id", HEADER + '[[compute]]\ndevice = "cpu"\n[[compute]]\ndevice = "cpu"\n',
     "{file}: compute[1]: expected an entry of its own, but compute[0] has the same id 'any.cpu.float32'; "
     "set id to tell them apart"),
    ("unknown-extends", HEADER + 'extends = ["gpu-trainin"]\n',
     "{file}: extends[0]: expected a built-in profile (apple-silicon, ci-cpu, gpu-training, inference-serving, "
     "mobile-export, research, tpu) or a path to a .toml file, got 'gpu-trainin'; did you mean gpu-training?"),
    ("missing-extends-file", HEADER + 'extends = ["team/base.toml"]\n',
     "{file}: extends[0]: expected a profile file, but {dir}/team/base.toml does not exist or is not a file"),
    ("extends-cycle", HEADER + 'extends = ["other.toml"]\n',
     "{dir}/other.toml: extends[0]: expected a profile that does not extend this one, got a cycle: "
     "{file} -> {dir}/other.toml -> {file}"),
]


@pytest.mark.parametrize("name, text, message", MALFORMED, ids=[case[0] for case in MALFORMED])
def test_a_malformed_profile_is_one_line_naming_the_file_the_key_and_what_was_expected(tmp_path, name, text, message):
    path = tmp_path / "profile.toml"
    if text is None:
        path.write_bytes(HEADER.encode() + b'name = "caf\xe9"\n')
    else:
        path.write_text(text)
    write(tmp_path / "other.toml", HEADER + 'extends = ["profile.toml"]\n')
    # refused before anything is probed
    assert one_line_error(run_auditor("check", "--profile", str(path))) == message.format(file=path, dir=tmp_path)


def test_profiles_show_refuses_a_malformed_profile_the_same_way(tmp_path):
    path = write(tmp_path / "p.toml", HEADER + 'colour = "red"\n')
    assert one_line_error(run_auditor("profiles", "show", str(path))).startswith(f"{path}: colour: unknown key; ")


def test_an_unknown_profile_name_or_missing_file_on_the_command_line(tmp_path):
    assert one_line_error(run_auditor("check", "--profile", "gpu_training")) == (
        "--profile: expected a built-in profile (apple-silicon, ci-cpu, gpu-training, inference-serving, "
        "mobile-export, research, tpu) or a path to a .toml file, got 'gpu_training'; did you mean gpu-training?")
    missing = tmp_path / "nope.toml"
    assert one_line_error(run_auditor("profiles", "show", str(missing))) == (
        f"profiles show: expected a profile file, but {missing} does not exist or is not a file")


def test_reading_a_profile_never_runs_it(tmp_path):
    """A marker is data that packaging evaluates, never Python; a string is never executed."""
    canary = tmp_path / "ran"
    path = write(tmp_path / "p.toml", HEADER + f"""
        [[frameworks]]
        any-of = ["torch>=2.3; python_version > '3' and __import__('os').system('touch {canary}')"]
        """)
    message = one_line_error(run_auditor("profiles", "show", str(path)))
    assert re.match(rf"{re.escape(str(path))}: frameworks\[0\]\.any-of\[0\]: expected a PEP 508 requirement", message)
    assert not canary.exists()
    document = read_document(ROOT / "profiles" / "research.toml", datetime.date.today())
    assert document.extends == ()
