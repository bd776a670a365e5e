"""Rule selection (--select/--ignore, ruff-style) and [tool.auditor] configuration.

Unit tests of the selection logic and the config loader, then the command line: audits
replay a snapshot taken once from a fake machine whose /dev/shm is 64 MiB (MEM002), so each
run is a fraction of a second. Every subprocess runs in a fresh directory under tmp_path,
so which pyproject.toml it finds is up to the test.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.checks import REGISTRY, run_checks
from auditor.checks.selection import Selection, parse_codes, unknown_code_message
from auditor.config import Config, find_config, load_config
from auditor.errors import InputError
from conftest import quick_snapshot
from machines import linux_machine

REPO = Path(__file__).resolve().parents[1]
ALL_CODES = sorted(check.code for check in REGISTRY)
GPU_CODES = [code for code in ALL_CODES if code.startswith("GPU")]
MEM_CODES = [code for code in ALL_CODES if code.startswith("MEM")]


def selected(select: list[str] | None = None, ignore: list[str] = ()) -> list[str]:
    selection = Selection(None if select is None else parse_codes(select, "--select"), parse_codes(ignore, "--ignore"))
    return [code for code in ALL_CODES if selection.includes(code)]


# --- the selection logic ----------------------------------------------------------------------

def test_the_registry_has_the_codes_these_tests_use():
    assert {"GPU001", "GPU004", "FW001", "FW004", "MEM001", "MEM002", "AUD001"} <= set(ALL_CODES)
    assert len(GPU_CODES) >= 6


def test_default_selects_every_check():
    assert selected() == ALL_CODES
    assert Selection().is_everything and not Selection(ignore=("MEM",)).is_everything


def test_select_by_prefix_and_by_full_code():
    assert selected(["GPU"]) == GPU_CODES
    assert selected(["GPU00"]) == [code for code in GPU_CODES if code.startswith("GPU00")]
    assert selected(["GPU004"]) == ["GPU004"]
    assert selected(["GPU004", "FW"]) == sorted(["GPU004", *[c for c in ALL_CODES if c.startswith("FW")]])


def test_ignore_removes_from_the_selection():
    assert selected(ignore=["GPU"]) == [code for code in ALL_CODES if not code.startswith("GPU")]
    assert selected(ignore=["MEM002"]) == [code for code in ALL_CODES if code != "MEM002"]


def test_the_more_specific_entry_wins_either_way():
    assert selected(["GPU004"], ignore=["GPU"]) == ["GPU004"]
    assert selected(["GPU"], ignore=["GPU004"]) == [code for code in GPU_CODES if code != "GPU004"]
    assert selected(["GPU00"], ignore=["GPU"]) == [code for code in GPU_CODES if code.startswith("GPU00")]
    # without --select, every check is selected at the lowest specificity: any ignore beats it
    assert "GPU004" not in selected(ignore=["G"])


def test_ignore_wins_a_tie():
    assert selected(["GPU"], ignore=["GPU"]) == []
    assert selected(["MEM002"], ignore=["MEM002"]) == []


def test_an_empty_select_selects_nothing():
    assert selected([]) == []  # `select = []` in a config: deliberately nothing


@pytest.mark.parametrize("values", [[""], [",,,"], [" , "]])
def test_a_select_that_names_no_code_is_an_input_error(values):
    # `--select "$UNSET"` would otherwise run no check and pass whatever the machine.
    with pytest.raises(InputError, match="names no check code"):
        parse_codes(values, "--select")


def test_entries_are_split_trimmed_upper_cased_and_deduplicated():
    assert parse_codes(["gpu,Fw004", " mem ,", "GPU"], "--select") == ("GPU", "FW004", "MEM")
    assert selected(["gpu004"]) == ["GPU004"]
    assert Selection(select=("GPU004",)).includes("gpu004")


@pytest.mark.parametrize("entry, where, message", [
    ("GPU04", "--select", "unknown check code 'GPU04' in --select; did you mean GPU004?"),
    ("gpu04", "--ignore", "unknown check code 'gpu04' in --ignore; did you mean GPU004?"),
    ("GUP", "--select", "unknown check code 'GUP' in --select; did you mean GPU?"),
    ("ZZZ", "--select", "unknown check code 'ZZZ' in --select; `auditor checks` lists them"),
])
def test_an_entry_that_matches_no_check_is_an_input_error(entry, where, message):
    with pytest.raises(InputError) as raised:
        parse_codes(["GPU", entry], where)
    assert str(raised.value) == message


def test_explain_and_selection_share_the_suggestion():
    assert unknown_code_message("FW0001") == "unknown check code 'FW0001'; did you mean FW001?"
    assert unknown_code_message("FW0001", "--select") == ("unknown check code 'FW0001' in --select; "
                                                           "did you mean FW001?")


def test_unselected_checks_do_not_run(fake_root):
    """run_checks filters the checks it runs, not the findings afterwards."""
    snapshot = quick_snapshot(fake_root(linux_machine(shm="size=65536k")))
    ran: list[str] = []

    def spy(check):
        def evaluate(snap):
            ran.append(check.code)
            return check.evaluate(snap)
        return dataclasses.replace(check, evaluate=evaluate)

    original = list(REGISTRY)
    REGISTRY[:] = [spy(check) for check in original]
    try:
        findings = run_checks(snapshot, Selection(select=("MEM", "CPU"), ignore=("MEM001",)))
    finally:
        REGISTRY[:] = original
    assert sorted(ran) == sorted(c for c in ALL_CODES if c.startswith(("MEM", "CPU")) and c != "MEM001")
    assert [(f.code, f.title) for f in findings] == [("MEM002", "/dev/shm is only 64 MiB")]
    assert "MEM002" not in [f.code for f in run_checks(snapshot, Selection(ignore=("MEM",)))]
    assert "MEM002" in [f.code for f in run_checks(snapshot)]


# --- the config file --------------------------------------------------------------------------

def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def nothing_above(tmp_path):
    """The tests assume no pyproject.toml with [tool.auditor] above tmp_path."""
    assert find_config(tmp_path) is None
    return tmp_path


def test_no_config_anywhere_gives_the_defaults(nothing_above):
    assert load_config(start=nothing_above) == Config()


def test_discovery_walks_up_and_skips_pyprojects_without_the_table(nothing_above):
    project = write(nothing_above / "proj" / "pyproject.toml",
                    '[project]\nname = "x"\n\n[tool.auditor]\nselect = ["gpu", "MEM"]\nignore = ["GPU004"]\n'
                    'fail-on = "warning"\n')
    write(nothing_above / "proj" / "sub" / "pyproject.toml",
          '[project]\nname = "inner"\n[tool.ruff]\nline-length = 1\n')
    deeper = nothing_above / "proj" / "sub" / "a" / "b"
    deeper.mkdir(parents=True)
    config = load_config(start=deeper)
    assert config == Config(project, ("GPU", "MEM"), ("GPU004",), "warning")


def test_the_nearest_table_wins(nothing_above):
    write(nothing_above / "pyproject.toml", '[tool.auditor]\nfail-on = "never"\n')
    inner = write(nothing_above / "in" / "pyproject.toml", '[tool.auditor]\nignore = ["MEM"]\n')
    assert load_config(start=inner.parent) == Config(inner, None, ("MEM",), None)
    assert load_config(start=nothing_above) == Config(nothing_above / "pyproject.toml", None, None, "never")


def test_explicit_config_is_read_whatever_its_name(nothing_above):
    path = write(nothing_above / "ci" / "audit.toml", '[tool.auditor]\nselect = []\n')
    assert load_config(path) == Config(path, (), None, None)


# --- through the command line -----------------------------------------------------------------

def audit(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in (env or os.environ).items() if k != "AUDITOR_DEBUG"}
    return subprocess.run([sys.executable, "-m", "auditor", "audit", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, stdin=subprocess.DEVNULL, timeout=120)


def findings(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode in (0, 1), result.stderr
    return [f["code"] for f in json.loads(result.stdout)["findings"]]


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("auditor: error: ")
    return lines[0].removeprefix("auditor: error: ")


@pytest.fixture(scope="module")
def small_shm(tmp_path_factory) -> Path:
    """A snapshot of a fake Linux host with a 64 MiB /dev/shm, taken once through the CLI."""
    base = tmp_path_factory.mktemp("small-shm")
    root = base / "root"
    for name, text in linux_machine(shm="size=65536k").items():
        write(root / name.lstrip("/"), text)
    snapshot = base / "snapshot.json"
    result = audit("--quick", "--root", str(root), "--format", "json", "--save-snapshot", str(snapshot), cwd=base)
    report = json.loads(result.stdout)
    mem002 = next(f for f in report["findings"] if f["code"] == "MEM002")
    assert (mem002["severity"], mem002["title"]) == ("warning", "/dev/shm is only 64 MiB")
    assert report["machine"]["memory"]["shm_bytes"] == 64 * 1024 * 1024
    return snapshot


@pytest.fixture(scope="module")
def baseline(small_shm) -> list[str]:
    """What the snapshot reports with every check selected, in an empty directory."""
    return findings(audit("--snapshot", str(small_shm), "--format", "json", cwd=small_shm.parent))


@pytest.fixture
def work(nothing_above) -> Path:
    path = nothing_above / "work"
    path.mkdir()
    return path


def replay(snapshot: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return audit("--snapshot", str(snapshot), "--format", "json", *args, cwd=cwd)


def test_a_live_audit_of_the_fake_machine_honours_ignore(small_shm, work):
    root = small_shm.parent / "root"
    assert "MEM002" in findings(audit("--quick", "--root", str(root), "--format", "json", cwd=work))
    ignored = audit("--quick", "--root", str(root), "--format", "json", "--ignore", "MEM", "--fail-on", "warning",
                    cwd=work)
    assert "MEM002" not in findings(ignored)
    assert ignored.returncode == (1 if _warnings_or_worse(ignored) else 0)


def _warnings_or_worse(result) -> bool:
    return any(f["severity"] in ("warning", "error") for f in json.loads(result.stdout)["findings"])


def test_the_finding_is_reported_by_default_and_fails_on_warning(small_shm, baseline, work):
    assert "MEM002" in baseline
    assert replay(small_shm, cwd=work).returncode == 0  # a warning, below the default --fail-on error
    assert replay(small_shm, "--fail-on", "warning", cwd=work).returncode == 1


def test_ignore_by_prefix_removes_it_from_findings_and_the_exit_code(small_shm, baseline, work):
    result = replay(small_shm, "--ignore", "mem", cwd=work)
    assert findings(result) == [code for code in baseline if not code.startswith("MEM")]
    only_mem = replay(small_shm, "--select", "MEM", "--fail-on", "warning", cwd=work)
    assert (findings(only_mem), only_mem.returncode) == (["MEM002"], 1)
    none_left = replay(small_shm, "--select", "MEM", "--ignore", "MEM002", "--fail-on", "warning", cwd=work)
    assert (findings(none_left), none_left.returncode) == ([], 0)


def test_repeated_and_comma_separated_options_and_specificity(small_shm, baseline, work):
    ignored = replay(small_shm, "--ignore", "MEM,AUD", "--ignore", "CPU", cwd=work)
    assert findings(ignored) == [code for code in baseline if not code.startswith(("MEM", "AUD", "CPU"))]
    # the full code is more specific than the family prefix it is ignored by
    kept = replay(small_shm, "--ignore", "MEM,AUD", "--ignore", "CPU", "--select", "mem002", cwd=work)
    assert findings(kept) == ["MEM002"]
    unioned = replay(small_shm, "--select", "CPU", "--select", "AUD,mem", cwd=work)
    assert findings(unioned) == [code for code in baseline if code.startswith(("CPU", "AUD", "MEM"))]
    assert "MEM002" in findings(unioned)


def test_the_text_report_follows_the_selection(small_shm, work):
    shown = audit("--snapshot", str(small_shm), "--select", "MEM", cwd=work)
    hidden = audit("--snapshot", str(small_shm), "--select", "MEM", "--ignore", "MEM002", cwd=work)
    assert "/dev/shm is only 64 MiB" in shown.stdout
    assert "/dev/shm is only 64 MiB" not in hidden.stdout and "No findings." in hidden.stdout


def test_selection_changes_readiness(work):
    """A full snapshot that is ready, given a CPU without AVX: CPU001 (error) makes it
    not ready and exits 1, unless CPU001 is ignored."""
    report = json.loads((REPO / "tests" / "snapshots" / "v1.0-cpu-only-linux.json").read_text())
    report["machine"]["cpu"]["features"]["avx"] = False
    snapshot = write(work / "no-avx.json", json.dumps(report))
    failing = replay(snapshot, cwd=work)
    assert "CPU001" in findings(failing)
    assert (failing.returncode, json.loads(failing.stdout)["readiness"]["status"]) == (1, "not-ready")
    passing = replay(snapshot, "--ignore", "CPU001", cwd=work)
    assert "CPU001" not in findings(passing)
    assert (passing.returncode, json.loads(passing.stdout)["readiness"]["status"]) == (0, "ready")


@pytest.mark.parametrize("args, message", [
    (["--select", "GPU04"], "unknown check code 'GPU04' in --select; did you mean GPU004?"),
    (["--ignore", "MEM,mem02"], "unknown check code 'mem02' in --ignore; did you mean MEM002?"),
    (["--select", "QQQ"], "unknown check code 'QQQ' in --select; `auditor checks` lists them"),
])
def test_unknown_codes_on_the_command_line_exit_2(small_shm, work, args, message):
    assert one_line_error(replay(small_shm, *args, cwd=work)) == message


def test_unknown_codes_fail_before_probing(work):
    assert one_line_error(audit("--quick", "--select", "GPU04", cwd=work)) == (
        "unknown check code 'GPU04' in --select; did you mean GPU004?")


def test_config_is_found_from_a_nested_directory(small_shm, baseline, work):
    write(work / "pyproject.toml", '[tool.auditor]\nignore = ["MEM002"]\nfail-on = "warning"\n')
    nested = work / "src" / "pkg"
    nested.mkdir(parents=True)
    result = replay(small_shm, cwd=nested)
    assert findings(result) == [code for code in baseline if code != "MEM002"]
    assert result.returncode == (1 if _warnings_or_worse(result) else 0)
    # the file's fail-on applies: with MEM002 selected again from the command line, it fails
    back = replay(small_shm, "--ignore", "AUD", cwd=nested)
    assert "MEM002" in findings(back) and back.returncode == 1


def test_config_fail_on_without_ignore_fails_on_the_warning(small_shm, work):
    write(work / "pyproject.toml", '[tool.auditor]\nselect = ["MEM"]\nfail-on = "warning"\n')
    result = replay(small_shm, cwd=work)
    assert (findings(result), result.returncode) == (["MEM002"], 1)


def test_explicit_config_file(small_shm, work):
    config = write(work / "elsewhere" / "auditor.toml", '[tool.auditor]\nselect = ["mem"]\nfail-on = "warning"\n')
    write(work / "pyproject.toml", '[tool.auditor]\nfail-on = "never"\n')  # not used: --config names the file
    result = replay(small_shm, "--config", str(config), cwd=work)
    assert (findings(result), result.returncode) == (["MEM002"], 1)


def test_the_command_line_replaces_the_files_values(small_shm, baseline, work):
    write(work / "pyproject.toml", '[tool.auditor]\nselect = ["MEM"]\nignore = ["MEM002"]\nfail-on = "warning"\n')
    from_file = replay(small_shm, cwd=work)
    assert (findings(from_file), from_file.returncode) == ([], 0)
    # --ignore replaces the file's ignore (it does not add to it): MEM002 is back
    cli_ignore = replay(small_shm, "--ignore", "MEM001", cwd=work)
    assert (findings(cli_ignore), cli_ignore.returncode) == (["MEM002"], 1)
    # --fail-on replaces the file's fail-on
    cli_fail_on = replay(small_shm, "--ignore", "MEM001", "--fail-on", "never", cwd=work)
    assert (findings(cli_fail_on), cli_fail_on.returncode) == (["MEM002"], 0)
    # --select replaces the file's select; the file's ignore still applies
    cli_select = replay(small_shm, "--select", "AUD,MEM", cwd=work)
    assert findings(cli_select) == [code for code in baseline if code.startswith("AUD")]


BAD_CONFIGS = [
    ('[tool.auditor]\nfail-on = warning\n', "invalid TOML: Invalid value (at line 2, column 11)"),
    ('[tool.auditor]\nselct = ["GPU"]\n', "unknown key 'selct' in [tool.auditor]; known keys: select, ignore, fail-on, profiles"),
    ('[tool.auditor]\nfail_on = "never"\n',
     "unknown key 'fail_on' in [tool.auditor]; known keys: select, ignore, fail-on, profiles"),
    ('[tool.auditor]\nselect = "GPU"\n',
     '[tool.auditor] select must be a list of strings such as ["GPU", "FW004"], not a string: "GPU"'),
    ('[tool.auditor]\nignore = ["MEM", 2]\n',
     "[tool.auditor] ignore must be a list of strings, but it holds an integer: 2"),
    ('[tool.auditor]\nselect = ["GPU04"]\n',
     "unknown check code 'GPU04' in [tool.auditor] select; did you mean GPU004?"),
    ('[tool.auditor]\nignore = ["mem", "XYZ9"]\n',
     "unknown check code 'XYZ9' in [tool.auditor] ignore; `auditor checks` lists them"),
    ('[tool.auditor]\nfail-on = "warn"\n',
     '[tool.auditor] fail-on must be one of "error", "warning", "never", not "warn"'),
    ('[tool.auditor]\nfail-on = 1\n', '[tool.auditor] fail-on must be one of "error", "warning", "never", not 1'),
    ('[tool]\nauditor = "on"\n', "tool.auditor must be a table ([tool.auditor]), not a string"),
]


@pytest.mark.parametrize("text, problem", BAD_CONFIGS, ids=[problem.split(":")[0][:40] for _, problem in BAD_CONFIGS])
def test_a_malformed_discovered_config_is_one_line_exit_2(small_shm, work, text, problem):
    pyproject = write(work / "pyproject.toml", text)
    nested = work / "deep"
    nested.mkdir()
    assert one_line_error(replay(small_shm, cwd=nested)) == f"{pyproject.resolve()}: {problem}"


@pytest.mark.parametrize("text, problem", BAD_CONFIGS[:4] + BAD_CONFIGS[5:6],
                         ids=["toml", "key", "key2", "type", "code"])
def test_a_malformed_explicit_config_is_one_line_exit_2(small_shm, work, text, problem):
    config = write(work / "cfg" / "auditor.toml", text)
    assert one_line_error(replay(small_shm, "--config", str(config), cwd=work)) == f"{config}: {problem}"


def test_an_explicit_config_without_the_table_is_an_error(small_shm, work):
    config = write(work / "pyproject.toml", '[project]\nname = "x"\n')
    assert one_line_error(replay(small_shm, "--config", str(config), cwd=work)) == f"{config}: no [tool.auditor] table"


def test_a_missing_explicit_config_is_a_usage_error(small_shm, work):
    message = one_line_error(replay(small_shm, "--config", str(work / "nope.toml"), cwd=work))
    assert "--config" in message and "nope.toml" in message and "does not exist" in message


def test_help_documents_the_options(work):
    result = subprocess.run([sys.executable, "-m", "auditor", "audit", "--help"], capture_output=True, text=True,
                            cwd=work, timeout=60)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for expected in ("--select CODES", "--ignore CODES", "--config FILE", "[tool.auditor]", "the longer entry wins",
                     "fail-on, else error"):
        assert expected in text, expected
