"""The text output on a real terminal: every command that prints, in a pseudo-terminal sized
80, 120 and 200 columns (TIOCSWINSZ), with colour and with NO_COLOR.

stdin and stdout are one pty, stderr another of the same size, as a person's terminal would
have them (both are terminals, so the progress display runs too); keeping them apart lets the
tests read the report without the progress display's cursor movements. The reports come from
one live audit in a terminal and from replays of two snapshots: that live one, and one built
below from the committed CPU snapshot with GFLOP/s figures, a failed proof, every export
status and long evidence, so the widest cells are rendered even where no framework is
installed (the lowest-versions CI run).
"""

from __future__ import annotations

import copy
import fcntl
import functools
import json
import os
import re
import selectors
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.cells import cell_len

from auditor.checks import REGISTRY
from auditor.names import DISPLAY_NAMES
from auditor.render.summary import PROOF_COLUMNS
from conftest import QUICK_EXIT

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = (80, 120, 200)
COLOURS = ("colour", "NO_COLOR")
SGR = re.compile(r"\x1b\[[0-9;]*m")
PROFILES = ("--profile", "gpu-training", "--profile", "research", "--profile", "inference-serving")


@dataclass
class Screen:
    returncode: int
    raw: str  # stdout as the terminal received it, colour codes included
    text: str  # the same without colour codes
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")


def terminal_env(colour: bool = True, **extra: str) -> dict[str, str]:
    """The environment of a person's colour terminal: no COLUMNS (a shell does not export it),
    no NO_COLOR unless asked for."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "AUDITOR_DEBUG")}
    env.update(TERM="xterm-256color", TF_CPP_MIN_LOG_LEVEL="3", **extra)
    if not colour:
        env["NO_COLOR"] = "1"
    return env


def _pty(columns: int | None) -> tuple[int, int]:
    controller, terminal = os.openpty()
    if columns is not None:  # left alone, a new pty reports 0 rows and 0 columns
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    return controller, terminal


def run_in_terminal(*args: str, columns: int | None, env: dict[str, str], timeout: float = 300,
                    program: tuple[str, ...] = (sys.executable, "-m", "auditor")) -> Screen:
    """``program``: the auditor to run (an installed tool's script); by default this test environment's."""
    (out, out_terminal), (err, err_terminal) = _pty(columns), _pty(columns)
    process = subprocess.Popen([*program, *args], stdin=out_terminal, stdout=out_terminal,
                               stderr=err_terminal, env=env, cwd=ROOT)
    os.close(out_terminal)
    os.close(err_terminal)
    received = {out: b"", err: b""}
    selector = selectors.DefaultSelector()
    for fd in received:
        selector.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while selector.get_map():
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"auditor {' '.join(args)} did not finish in {timeout} s")
            for key, _ in selector.select(timeout=1):
                try:
                    chunk = os.read(key.fd, 65536)
                except OSError:  # EIO: every process holding the terminal has closed it
                    chunk = b""
                if chunk:
                    received[key.fd] += chunk
                else:
                    selector.unregister(key.fd)
        returncode = process.wait(timeout=60)
    finally:
        selector.close()
        os.close(out)
        os.close(err)
    stdout = received[out].decode("utf-8").replace("\r\n", "\n")  # the terminal turns \n into \r\n
    return Screen(returncode, stdout, SGR.sub("", stdout), received[err].decode("utf-8", "replace"))


def run_piped(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditor", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, stdin=subprocess.DEVNULL, timeout=300)


def assert_clean(screen: Screen, columns: int, codes: tuple[int, ...] = (0,)) -> None:
    """The exit code, no traceback or internal error anywhere, and every line within the terminal."""
    assert screen.returncode in codes, (screen.returncode, screen.stderr[-2000:], screen.text[-2000:])
    for stream in (screen.text, screen.stderr):
        assert "Traceback" not in stream and "error: internal error" not in stream, stream[-2000:]
    too_wide = [line for line in screen.lines if cell_len(line) > columns]
    assert not too_wide, f"{len(too_wide)} lines wider than {columns} columns, first: {too_wide[0]!r}"


def panel(screen: Screen, title: str) -> list[str]:
    """The inside of the report's panel whose title starts with `title`, frame and padding cut away."""
    lines = screen.lines
    start = next(i for i, line in enumerate(lines) if line.startswith(f"╭─ {title}"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("╰"))
    return [line[2:-2] for line in lines[start + 1:end]]


def words(text: str) -> list[str]:
    return text.split()


# --- the reports' inputs ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def live(tmp_path_factory) -> dict:
    """`auditor audit` as a person runs it: a terminal 80 columns wide, colour on, progress shown.
    Before the fix this exited 3: `internal error: AttributeError: get_terminal_size`."""
    snapshot = tmp_path_factory.mktemp("live") / "snapshot.json"
    screen = run_in_terminal("audit", "--save-snapshot", str(snapshot), columns=80, env=terminal_env())
    return {"screen": screen, "snapshot": snapshot}


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("synthetic") / "snapshot.json"
    path.write_text(json.dumps(widened_snapshot()))
    return path


def widened_snapshot() -> dict:
    """The committed CPU snapshot, widened: GFLOP/s on the matmuls (one of five digits, so with
    a thousands separator), more dtypes and modes, a failed proof with a long error, a framework
    whose import fails with a long reason, and one export path in each status."""
    data = json.loads((ROOT / "tests" / "snapshots" / "v1.0-cpu-only-linux.json").read_text())
    tensorflow, torch = data["frameworks"]["tensorflow"], data["frameworks"]["torch"]
    tensorflow["proofs"][0].update(workload="matmul", gflops=12345.6)
    tensorflow["proofs"].append({**copy.deepcopy(tensorflow["proofs"][0]), "dtype": "bfloat16", "gflops": 2048.4,
                                 "max_relative_error": 0.0071})
    tensorflow["proofs"].append({**copy.deepcopy(tensorflow["proofs"][0]), "workload": "conv2d", "gflops": None})
    torch["proofs"][0].update(workload="matmul", gflops=987.4)
    torch["proofs"].append({"device": "cpu", "operation": "train-step", "workload": "train-step", "dtype": "float32",
                            "ok": False, "compiler": "torch.compile",
                            "skipped": "needs --deep (torch.compile takes tens of seconds on a CPU)"})
    torch["proofs"].append({"device": "cpu", "operation": "conv2d", "workload": "conv2d", "dtype": "float16",
                            "ok": False, "max_relative_error": 0.25, "tolerance": 0.01,
                            "error": "wrong numbers: max relative error 2.5e-01 exceeds the float16 tolerance 1.0e-02 "
                                     "on /opt/conda/envs/training-with-a-long-name/lib/python3.11/site-packages"})
    data["frameworks"]["jax"] = {
        "name": "jax", "distribution": "jax", "distribution_version": "0.4.30",
        "probe": {"name": "jax", "status": "error", "duration_s": 0.8,
                  "reason": "ImportError: /opt/conda/envs/training-with-a-long-name/lib/python3.11/site-packages/"
                            "jaxlib/xla_extension.so: undefined symbol: _ZN3xla14PjRtClient7CompileERKNS_13XlaComputation "
                            "(pip install jax[cuda12])"}}
    data["exports"] = {
        "onnx": {"name": "onnx", "status": "ready", "source": "torch", "runtime": "onnxruntime 1.32.0",
                 "seconds": 3.1, "max_relative_error": 2.4e-07, "tolerance": 1e-04},
        "tflite": {"name": "tflite", "status": "broken", "source": "tensorflow",
                   "error": "convert failed: ConverterError: <unknown>:0: error: loc(\"model/dense/MatMul\"): "
                            "'tfl.fully_connected' op requires the number of input dimensions to be 2 or more"},
        "executorch": {"name": "executorch", "status": "not-installed", "source": "torch",
                       "missing": ["executorch"]},
        "coreml": {"name": "coreml", "status": "not-applicable", "source": "torch"},
    }
    return data


_SCREENS: dict[tuple, Screen] = {}


def screen_of(*args: str, columns: int, colour: bool) -> Screen:
    """One run per command, width and colour, shared by the tests that read it."""
    key = (args, columns, colour)
    if key not in _SCREENS:
        _SCREENS[key] = run_in_terminal(*args, columns=columns, env=terminal_env(colour))
    return _SCREENS[key]


@functools.lru_cache(maxsize=None)
def report(snapshot: Path) -> dict:
    """The JSON report of a snapshot: the values the text must show."""
    result = run_piped("audit", "--snapshot", str(snapshot), "--format", "json", "--fail-on", "never",
                       env=terminal_env())
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def snapshots(live: dict, synthetic: Path) -> dict[str, Path]:
    return {"live": live["snapshot"], "synthetic": synthetic}


# --- every command fits the terminal ---------------------------------------------------------


def test_a_live_audit_in_a_terminal_renders_the_report(live):
    screen = live["screen"]
    assert_clean(screen, 80, codes=(0, 1))
    assert "Probing" in screen.stderr  # the progress display ran on the terminal's stderr
    assert screen.lines[0].startswith("auditor ") and "Readiness: " in screen.text
    assert max(cell_len(line) for line in screen.lines) == 80  # the panels take the terminal's width
    assert SGR.search(screen.raw)


@pytest.mark.parametrize("colour", COLOURS)
@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("command", ["audit --quick", "audit live", "audit synthetic", "check live",
                                     "check synthetic"])
def test_reports_fit_the_terminal_in_colour_or_not(live, synthetic, command, columns, colour):
    name, source = command.split()
    if source == "--quick":
        args: tuple[str, ...] = ("audit", "--quick")
    else:
        args = (name, "--snapshot", str(snapshots(live, synthetic)[source]), *(PROFILES if name == "check" else ()))
    screen = screen_of(*args, columns=columns, colour=colour == "colour")
    assert_clean(screen, columns, codes=(0, 1))
    if name == "audit":
        assert max(cell_len(line) for line in screen.lines) == columns
    if colour == "colour":
        assert SGR.search(screen.raw), "a colour terminal gets colour"
    else:
        assert "\x1b[" not in screen.raw, "NO_COLOR: not one escape sequence"


OTHER_COMMANDS = {
    "checks": ("checks",),
    "explain": ("explain", "FW008"),
    "profiles": ("profiles",),
    "profiles-show": ("profiles", "show", "inference-serving"),
    "help": ("--help",),  # click's own layout, which follows the terminal too
}


@pytest.mark.parametrize("colour", COLOURS)
@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("command", OTHER_COMMANDS)
def test_every_other_command_fits_the_terminal(command, columns, colour):
    screen = screen_of(*OTHER_COMMANDS[command], columns=columns, colour=colour == "colour")
    assert_clean(screen, columns)
    if colour == "NO_COLOR":
        assert "\x1b[" not in screen.raw


@pytest.mark.parametrize("columns", WIDTHS)
def test_wrapped_lists_keep_every_word_and_their_indent(columns):
    checks = screen_of("checks", columns=columns, colour=True).lines
    starts = [i for i, line in enumerate(checks) if line[:1].strip()]
    assert [checks[i].split()[0] for i in starts] == sorted(c.code for c in REGISTRY)
    by_code = {c.code: c for c in REGISTRY}
    for first, end in zip(starts, [*starts[1:], len(checks) - 1]):
        check = by_code[checks[first].split()[0]]
        assert checks[first].split()[1:3] == [check.severity, check.name]  # the name is never broken
        assert all(line.startswith(" " * 17) for line in checks[first + 1:end])  # the summary wraps under the name
        assert words(" ".join(checks[first:end])) == [check.code, check.severity, check.name, *words(check.summary)]

    listed = screen_of("profiles", columns=columns, colour=True).lines
    assert words(" ".join(listed)) == words(run_piped("profiles", env=terminal_env()).stdout)
    assert all(line.startswith(" " * 19) for line in listed if line[:1] == " ")  # under the description

    profile = (ROOT / "profiles" / "inference-serving.toml").read_text()
    shown = screen_of(*OTHER_COMMANDS["profiles-show"], columns=columns, colour=True).text
    assert words(shown) == words(profile)
    if columns == 80:  # its description line is 138 characters: it wraps, so the file is not shown as it is
        assert shown != profile
    check = next(c for c in REGISTRY if c.code == "FW008")
    explained = screen_of("explain", "FW008", columns=columns, colour=True).lines
    assert explained[0] == f"FW008 ({check.name}), default severity {check.severity}"
    title, evidence = check.example.split("\n")
    assert words(" ".join(explained)) == words(f"{explained[0]} {check.summary} {check.explanation} "
                                               f"Fix: {check.fix} Example: {title} evidence: {evidence}")


# --- nothing that carries a number or names a column is cut ----------------------------------


# 100: the width of a report piped or written to a file, where the last two columns went missing.
@pytest.mark.parametrize("columns", (*WIDTHS, 100))
@pytest.mark.parametrize("source", ["live", "synthetic"])
def test_every_proof_row_keeps_its_numbers_whole_at_every_width(live, synthetic, source, columns):
    path = snapshots(live, synthetic)[source]
    facts = report(path)
    screen = screen_of("audit", "--snapshot", str(path), columns=columns, colour=True)
    proofs = panel(screen, "Compute proofs") if any(fw["proofs"] for fw in facts["frameworks"].values()) else []
    expected = []  # (device, dtype, mode, error, GFLOP/s) of each passed group, as the JSON report has them
    tolerances = []
    groups: dict[tuple, list] = {}
    for name, fw in facts["frameworks"].items():
        for proof in fw["proofs"]:
            if proof["ok"]:
                mode = proof["compiler"] or ("jit" if name == "jax" else "eager")
                groups.setdefault((name, proof["device"], proof["dtype"], mode), []).append(proof)
    for (_, device, dtype, mode), group in groups.items():
        gflops = next((f"{p['gflops']:,.0f}" for p in group if p["gflops"]), "-")
        worst = max(group, key=lambda p: p["max_relative_error"] or 0.0)
        # The error beside its tolerance: "6.0e-07 of 2e-03" (at 80 columns "of 2e-03" may go below).
        expected.append([device, dtype, mode, f"{worst['max_relative_error'] or 0.0:.1e}", gflops])
        tolerances.append(f"{worst['tolerance']:.0e}")
    gflops_in_json = [p["gflops"] for fw in facts["frameworks"].values() for p in fw["proofs"] if p["gflops"]]
    if source == "synthetic":
        assert len(gflops_in_json) == 3 and len(expected) == 4
    for row in expected:
        # A row's first line holds its device, dtype, mode, result and GFLOP/s, each whole.
        assert any(_in_order(row, words(line)) for line in proofs), (row, proofs)
    for value in gflops_in_json:
        assert f"{value:,.0f}" in words(" ".join(proofs))
    for tolerance in tolerances:
        assert tolerance in words(" ".join(proofs))
    if proofs:  # the header is what comes before the first framework's name, each column's words whole
        header = " ".join(proofs[:next(i for i, line in enumerate(proofs) if line.split()[0] in DISPLAY_NAMES.values())])
        for column in PROOF_COLUMNS:
            assert _in_order(words(column), words(header)), (column, header)
    if source == "synthetic":  # the failure's message wraps inside its column, every word kept
        failed = " ".join(proofs)
        for word in ("FAILED:", "wrong", "2.5e-01", "1.0e-02"):
            assert word in words(failed)


def _in_order(expected: list[str], tokens: list[str]) -> bool:
    position = 0
    for item in expected:
        try:
            position = tokens.index(item, position) + 1
        except ValueError:
            return False
    return True


@pytest.mark.parametrize("columns", WIDTHS)
def test_frameworks_and_export_tables_keep_versions_statuses_and_numbers(live, synthetic, columns):
    for path in (live["snapshot"], synthetic):
        facts = report(path)
        frameworks = " ".join(panel(screen_of("audit", "--snapshot", str(path), columns=columns, colour=True),
                                    "Frameworks"))
        for fw in facts["frameworks"].values():
            assert (fw["version"] or fw["distribution_version"]) in words(frameworks.replace("│", " "))
            if fw["import_seconds"] is not None:
                assert f"{fw['import_seconds']:.2f}" in words(frameworks.replace("│", " "))
        if path == synthetic:  # brackets in a cell are text, not markup that rich would swallow
            assert "jax[cuda12])" in words(frameworks.replace("│", " "))
    exports = panel(screen_of("audit", "--snapshot", str(synthetic), columns=columns, colour=True), "Export paths")
    cells = words(" ".join(exports).replace("│", " ").replace("┃", " "))
    for header in ("Path", "Status", "Detail"):
        assert header in cells
    for name, status in (("onnx", "ready"), ("tflite", "broken"), ("executorch", "not-installed"),
                         ("coreml", "not-applicable")):
        assert f"{name}:" in cells
        assert status in cells  # the status column never wraps
    assert "'tfl.fully_connected'" in cells or columns == 80  # at 80 a word this long may fold


@pytest.mark.parametrize("columns", WIDTHS)
def test_check_results_keep_their_ids_and_numbers(live, columns):
    verdicts = json.loads(run_piped("check", "--snapshot", str(live["snapshot"]), *PROFILES, "--format", "json",
                                    "--exit-zero", env=terminal_env()).stdout)
    screen = screen_of("check", "--snapshot", str(live["snapshot"]), *PROFILES, columns=columns, colour=True)
    words_of = {"pass": ["PASS"], "fail": ["FAIL"], "warn": ["WARN"], "not-checked": ["NOT", "CHECKED"],
                "not-applicable": ["N/A"]}
    statuses = [line.split()[:3] if line[2:5] == "NOT" else line.split()[:2] for line in screen.lines
                if line[:2] == "  " and (line[2:6] in ("PASS", "FAIL", "WARN") or line[2:5] in ("NOT", "N/A"))]
    expected = [[*words_of[r["status"]], r["id"]] for profile in verdicts["profiles"] for r in profile["requirements"]
                if not (r["id"].startswith("check.") and r["status"] == "pass")]
    # Each requirement's status and whole id on its own line, in order; then "PASS 45 other checks".
    assert [line for line in statuses if line[-1][0].isalpha()] == expected
    for profile in verdicts["profiles"]:
        # Passes count requirements met; a counted check that found nothing is not one.
        met = [r for r in profile["requirements"] if not (r["id"].startswith("check.") and r["status"] == "pass")]
        counts = [sum(r["status"] == status for r in met) for status in ("fail", "warn", "pass")]
        assert f"{counts[0]} failed, {counts[1]} warning(s), {counts[2]} passed" in " ".join(screen.text.split())


# --- a wrapped line keeps its indent ---------------------------------------------------------


def _wrapped(lines: list[str], start: str, text: str) -> list[str]:
    """The lines that show `text`, from the one that begins with `start` on."""
    first = next(i for i, line in enumerate(lines) if line.lstrip().startswith(start))
    shown, end = "", first
    while "".join(shown.split()) != "".join(text.split()):
        assert end < len(lines) and len("".join(shown.split())) < len("".join(text.split())), (text, lines[first:end])
        shown += lines[end]
        end += 1
    return lines[first:end]


def test_wrapped_finding_and_recommendation_lines_keep_their_indent(synthetic):
    facts = report(synthetic)
    findings = panel(screen_of("audit", "--snapshot", str(synthetic), columns=80, colour=True), "Findings")
    wrapped = 0
    for finding in facts["findings"]:
        for evidence in finding["evidence"]:
            lines = _wrapped(findings, f"evidence: {evidence[:20]}", f"evidence: {evidence}")
            assert lines[0].startswith(" " * 9 + "evidence: ")
            assert all(line.startswith(" " * 9) and line[9] != " " for line in lines[1:]), lines
            wrapped += len(lines) > 1
        if finding["fix"]:
            lines = _wrapped(findings, f"fix: {finding['fix'][:20]}", f"fix: {finding['fix']}")
            assert all(line.startswith(" " * 9) and line[9] != " " for line in lines[1:]), lines
            wrapped += len(lines) > 1
    assert wrapped >= 2, "the long evidence must wrap at 80 columns for this test to mean anything"

    recommendation = panel(screen_of("audit", "--snapshot", str(synthetic), columns=80, colour=True),
                           "Recommendation")
    items = [f"- {reason}" for goal in facts["recommendation"]["goals"] for reason in goal["reasons"]]
    wrapped = 0
    for item in items:  # "   - reason": the wrapped lines start under the text
        lines = _wrapped(recommendation, item[:30], item)
        assert lines[0].startswith(f"   {item[:2]}")
        assert all(line.startswith(" " * 5) and line[5] != " " for line in lines[1:]), lines
        wrapped += len(lines) > 1
    steps = facts["recommendation"]["next_steps"]
    for rank, step in enumerate(steps, 1):  # " 1. action (for goals)": wrapped under the action
        text = step["action"] + (f" (for {', '.join(step['goals'])})" if step["goals"] else "")
        lines = _wrapped(recommendation, f"{rank}. {text[:20]}", f"{rank}. {text}")
        assert all(line.startswith(" " * 4) and line[4] != " " for line in lines[1:]), lines
        wrapped += len(lines) > 1
    assert steps and wrapped >= 2


def test_wrapped_check_evidence_keeps_its_indent(live):
    screen = screen_of("check", "--snapshot", str(live["snapshot"]), *PROFILES, columns=80, colour=True)
    lines = screen.lines
    fix_lines = [i for i, line in enumerate(lines) if line.startswith(" " * 7 + "fix: ")]
    assert fix_lines
    wrapped = 0
    for i in fix_lines:
        following = lines[i + 1]
        if (not following.startswith(("  PASS", "  FAIL", "  WARN", "  NOT CHECKED", "  N/A", "  Recommended"))
                and not following[2:3].isdigit() and following.strip()):
            assert following.startswith(" " * 7) and following[7] != " "
            wrapped += 1
    assert wrapped, "some fix must wrap at 80 columns"


# --- where the width comes from --------------------------------------------------------------


@pytest.mark.parametrize("columns_env, expected", [("120", 120), (None, 100), ("wide", 100), ("0", 100)])
def test_without_a_terminal_the_width_is_columns_or_100(columns_env, expected):
    env = terminal_env(**({"COLUMNS": columns_env} if columns_env else {}))
    result = run_piped("audit", "--quick", env=env)
    assert result.returncode == QUICK_EXIT, result.stderr
    lines = result.stdout.splitlines()
    assert max(cell_len(line) for line in lines) == expected
    assert "\x1b[" not in result.stdout  # a pipe gets no colour


def test_the_terminal_wins_over_an_exported_columns():
    screen = run_in_terminal("audit", "--quick", columns=80, env=terminal_env(COLUMNS="200"))
    assert_clean(screen, 80, codes=(QUICK_EXIT,))
    assert max(cell_len(line) for line in screen.lines) == 80


def test_a_terminal_that_does_not_know_its_size_gets_columns_or_100():
    screen = run_in_terminal("audit", "--quick", columns=None, env=terminal_env())
    assert screen.returncode == QUICK_EXIT, screen.stderr
    assert max(cell_len(line) for line in screen.lines) == 100
    screen = run_in_terminal("audit", "--quick", columns=None, env=terminal_env(COLUMNS="90"))
    assert max(cell_len(line) for line in screen.lines) == 90


def test_an_empty_no_color_keeps_the_colour():
    # no-color.org: NO_COLOR counts when it is set and not empty.
    screen = run_in_terminal("audit", "--quick", columns=120, env=terminal_env(NO_COLOR=""))
    assert screen.returncode == QUICK_EXIT and SGR.search(screen.raw)
