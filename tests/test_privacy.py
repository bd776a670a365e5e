"""What a report may contain, end to end through the real CLI: no secret, whatever holds it;
no raw control character from the machine; only ML tools' environment variables; and, with
--redact-paths, neither the user's name nor the host's, in every format.

Audits here are --quick (package metadata only); the CI formats replay a saved snapshot that
the test edits, as a snapshot from an older auditor or another machine could be.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from auditor.probes.base import ProbeContext
from auditor.probes.host import collect_host
from auditor.redact import HOST_TOKEN, REDACTED, USER_TOKEN
from machines import linux_machine, x86_cpuinfo

GHP = "ghp_" + "Zq8RtY2uWx" * 3 + "Vb4Nm6"
HF = "hf_" + "PlMoKnIjUh" * 3 + "YgTf"
CONTROLS = ("\x1b", "\x07", "\x00", "\x9b", "\x7f")


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditor", *args], capture_output=True, text=True,
                          env=env or base_env(), stdin=subprocess.DEVNULL, timeout=120)


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AUDITOR_DEBUG", "GITHUB_STEP_SUMMARY")}
    env.update(extra)
    return env


def assert_no_raw_controls(text: str) -> None:
    for char in CONTROLS:
        assert char not in text, repr(char)
        assert f"\\u{ord(char):04x}" not in text  # nor JSON's spelling of the raw character


# --- a live audit: environment and machine files --------------------------------------------


@pytest.fixture(scope="module")
def planted_audit(tmp_path_factory) -> dict[str, str]:
    """One quick audit per human and machine format, of a fake root whose os-release and CPU
    model carry terminal escapes and a token, with secrets in the environment."""
    root = tmp_path_factory.mktemp("root")
    files = linux_machine()
    files["/etc/os-release"] = f'PRETTY_NAME="\x1b]0;OSCCANARY\x07Evil Linux {HF} \x9b31m\x00 1"\n'
    files["/proc/cpuinfo"] = x86_cpuinfo(2, model="Evil\x1b[2J\x7f CPU")
    for absolute, text in files.items():
        path = root / absolute.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    env = base_env(
        TORCH_SOMETHING=GHP,  # an innocuous ML name holding a token
        WANDB_DSN="https://abcdef0123456789@o1.ingest.sentry.io/42",
        XLA_FLAGS="--xla_dump_to=/tmp/xla HF_TOKEN=hfcanary123",  # a secret-named pair inside a value
        TORCH_HOME="https://user:pa55 word@host/x",  # a password with a space
        TF_VAR_db_password="tfcanary1", TF_CLI_ARGS="-var=x=tfcanary2",  # Terraform's, not TensorFlow's
        TF_CPP_MIN_LOG_LEVEL="2", TF_FORCE_GPU_ALLOW_GROWTH="true",
    )
    outputs = {}
    for output_format in ("json", "markdown", "text"):
        result = run("audit", "--quick", "--root", str(root), "--format", output_format, env=env)
        assert result.returncode in (0, 1), result.stderr
        outputs[output_format] = result.stdout
    return outputs


@pytest.mark.parametrize("output_format", ["json", "markdown", "text"])
def test_planted_secrets_and_escapes_reach_no_report(planted_audit, output_format):
    out = planted_audit[output_format]
    for secret in (GHP, HF, "abcdef0123456789", "hfcanary123", "pa55", "tfcanary1", "tfcanary2"):
        assert secret not in out
    assert_no_raw_controls(out)


def test_the_json_report_shows_what_was_redacted_and_escaped(planted_audit):
    host = json.loads(planted_audit["json"])["machine"]
    assert host["host"]["os_release"] == f"\\x1b]0;OSCCANARY\\x07Evil Linux hf_{REDACTED} \\x9b31m\\x00 1"
    assert host["cpu"]["model"] == "Evil\\x1b[2J\\x7f CPU"
    recorded = host["host"]["environment_variables"]
    assert recorded["TORCH_SOMETHING"] == f"ghp_{REDACTED}"
    assert recorded["WANDB_DSN"] == REDACTED
    assert recorded["XLA_FLAGS"] == f"--xla_dump_to=/tmp/xla HF_TOKEN={REDACTED}"
    assert recorded["TORCH_HOME"] == f"https://user:{REDACTED}@host/x"
    assert recorded["TF_CPP_MIN_LOG_LEVEL"] == "2" and recorded["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert not [name for name in recorded if name.startswith(("TF_VAR_", "TF_CLI_"))]


@pytest.mark.parametrize("output_format", ["markdown", "text"])
def test_people_see_the_escapes_spelled_out(planted_audit, output_format):
    out = planted_audit[output_format]
    assert "\\x1b]0;OSCCANARY\\x07Evil" in out  # the os-release line reached the report, escaped
    assert "Evil\\x1b[2J\\x7f CPU" in out


def test_only_ml_tools_variables_are_collected(fake_root):
    environ = {"TF_VAR_region": "eu", "TF_CLI_ARGS_plan": "-x", "TF_LOG": "DEBUG", "TF_TOKEN_app_terraform_io": "t",
               "TF_BUILD": "True", "TF_WORKSPACE": "prod", "HOME": "/home/x", "AWS_PROFILE": "p",
               "TF_CPP_MIN_LOG_LEVEL": "2", "TF_FORCE_GPU_ALLOW_GROWTH": "true", "TF_ENABLE_ONEDNN_OPTS": "0",
               "TF_XLA_FLAGS": "--tf_xla_auto_jit=2", "TF_GPU_ALLOCATOR": "cuda_malloc_async", "TF_CONFIG": "{}",
               "TF_NUM_INTEROP_THREADS": "4", "TF_USE_LEGACY_KERAS": "1", "CUDA_VISIBLE_DEVICES": "0",
               "HF_TOKEN": "hf_x", "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    host = collect_host(ProbeContext(fake_root(linux_machine()), environ))
    assert host.environment_variables == {
        "CUDA_VISIBLE_DEVICES": "0", "HF_TOKEN": REDACTED, "TF_CONFIG": "{}", "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_ENABLE_ONEDNN_OPTS": "0", "TF_FORCE_GPU_ALLOW_GROWTH": "true", "TF_GPU_ALLOCATOR": "cuda_malloc_async",
        "TF_NUM_INTEROP_THREADS": "4", "TF_USE_LEGACY_KERAS": "1", "TF_XLA_FLAGS": "--tf_xla_auto_jit=2",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}


# --- a replayed snapshot, through the CI formats --------------------------------------------


@pytest.fixture(scope="module")
def saved_snapshot(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("saved") / "snapshot.json"
    result = run("audit", "--quick", "--format", "json", "--save-snapshot", str(path))
    assert result.returncode in (0, 1), result.stderr
    return json.loads(path.read_text())


def with_torch_failing(snapshot: dict, reason: str, path: Path) -> Path:
    """The snapshot as if `import torch` had failed with this message."""
    edited = json.loads(json.dumps(snapshot))
    for run_record in [*edited["probes"], edited["frameworks"]["torch"]["probe"]]:
        if run_record["name"] == "torch":
            run_record.update(status="error", reason=reason)
    path.write_text(json.dumps(edited))
    return path


LEAKY_REASON = (f"ImportError: libfoo.so: HF_TOKEN=hfsecret42 was rejected for {GHP} "
                "\x1b]0;pwned\x07 via https://bob:s3cr3t@proxy.internal/x")
SHOWN_REASON = (f"ImportError: libfoo.so: HF_TOKEN={REDACTED} was rejected for ghp_{REDACTED} "
                f"\\x1b]0;pwned\\x07 via https://bob:{REDACTED}@proxy.internal/x")


def test_a_replayed_snapshot_leaks_nothing_into_junit(saved_snapshot, tmp_path):
    snapshot = with_torch_failing(saved_snapshot, LEAKY_REASON, tmp_path / "edited.json")
    result = run("check", "--profile", "ci-cpu", "--snapshot", str(snapshot), "--format", "junit")
    assert result.returncode == 1, result.stderr  # torch's import failed: FW001
    for secret in ("hfsecret42", GHP, "s3cr3t"):
        assert secret not in result.stdout
    assert_no_raw_controls(result.stdout)
    failures = [failure.text for failure in ElementTree.fromstring(result.stdout).iter("failure")]
    assert any(f"probe torch: {SHOWN_REASON}" in text for text in failures), failures


def test_a_replayed_snapshot_leaks_nothing_into_github_annotations_or_the_summary(saved_snapshot, tmp_path):
    snapshot = with_torch_failing(saved_snapshot, LEAKY_REASON, tmp_path / "edited.json")
    summary, saved = tmp_path / "summary.md", tmp_path / "resaved.json"
    result = run("check", "--profile", "ci-cpu", "--snapshot", str(snapshot), "--format", "github",
                 "--save-snapshot", str(saved), env=base_env(GITHUB_STEP_SUMMARY=str(summary)))
    assert result.returncode == 1, result.stderr
    for text in (result.stdout, summary.read_text(), saved.read_text()):
        for secret in ("hfsecret42", GHP, "s3cr3t"):
            assert secret not in text
        assert_no_raw_controls(text)
    assert f"probe torch: {SHOWN_REASON}" in result.stdout
    assert f"probe torch: {SHOWN_REASON}" in summary.read_text()


# --- --redact-paths -------------------------------------------------------------------------

USER = "quinnprivacy"  # getpass.getuser() reads LOGNAME first, so the test can choose it


@pytest.fixture(scope="module")
def identity_outputs(saved_snapshot, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Every format of one replayed snapshot, under --redact-paths, whose torch error names the
    home directory, another user's, the user and this host."""
    work = tmp_path_factory.mktemp("identity")
    home = work / "home" / USER
    host = socket.gethostname()
    reason = (f"ImportError: {home}/.cache/libx.so; /home/otherperson7/lib; /Users/otherperson8/lib; "
              f"by={USER} on={host} short={host.split('.')[0]}")
    snapshot = with_torch_failing(saved_snapshot, reason, work / "edited.json")
    env = base_env(HOME=str(home), LOGNAME=USER, USER=USER, GITHUB_STEP_SUMMARY=str(work / "summary.md"))
    outputs = {}
    for command, output_format in (("audit", "text"), ("audit", "json"), ("audit", "markdown"),
                                   ("check", "junit"), ("check", "github")):
        profile = ("--profile", "ci-cpu") if command == "check" else ()
        result = run(command, *profile, "--snapshot", str(snapshot), "--format", output_format, "--redact-paths",
                     "--save-snapshot", str(work / f"{output_format}.json"), env=env)
        assert result.returncode in (0, 1), result.stderr
        outputs[f"{command} {output_format}"] = result.stdout
        outputs[f"saved by {output_format}"] = (work / f"{output_format}.json").read_text()
    outputs["step summary"] = (work / "summary.md").read_text()
    return home, outputs


@pytest.mark.parametrize("output", ["audit text", "audit json", "audit markdown", "check junit", "check github",
                                    "step summary", "saved by json", "saved by junit"])
def test_redact_paths_removes_user_and_host_names_from_every_format(identity_outputs, output):
    home, outputs = identity_outputs
    out = outputs[output]
    host = socket.gethostname()
    for name in (USER, "otherperson7", "otherperson8", str(home)):
        assert name not in out
    assert not re.search(rf"(on|short)={re.escape(host.split('.')[0])}", out, re.IGNORECASE)
    for shown in ("~/.cache/libx.so", f"/home/{USER_TOKEN}/lib", f"/Users/{USER_TOKEN}/lib", f"by={USER_TOKEN}",
                  f"on={HOST_TOKEN}", f"short={HOST_TOKEN}"):
        assert shown in out


def test_without_redact_paths_the_names_stay(saved_snapshot, tmp_path):
    """The replacements above are --redact-paths' doing: by default a JSON report keeps paths."""
    reason = f"ImportError: /home/otherperson7/lib by={USER}"
    snapshot = with_torch_failing(saved_snapshot, reason, tmp_path / "edited.json")
    result = run("audit", "--snapshot", str(snapshot), "--format", "json", env=base_env(LOGNAME=USER, USER=USER))
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert report["frameworks"]["torch"]["probe"]["reason"] == reason


# --- home paths in Markdown -----------------------------------------------------------------


def test_markdown_writes_home_paths_with_a_tilde(saved_snapshot, tmp_path):
    home = Path(sys.executable).parent.parent  # the venv: the interpreter is then ~/bin/python
    env = base_env(HOME=str(home))
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(saved_snapshot))
    markdown = run("audit", "--quick", "--format", "markdown", env=env)
    check_markdown = run("check", "--profile", "ci-cpu", "--snapshot", str(snapshot), "--format", "markdown", env=env)
    as_json = run("audit", "--quick", "--format", "json", env=env)
    for result in (markdown, check_markdown):
        assert result.returncode in (0, 1), result.stderr
        assert f" ~/bin/{Path(sys.executable).name} |" in result.stdout  # the Python row
        assert f"{home}/" not in result.stdout
    # JSON is for programs: it keeps the path as it is.
    assert json.loads(as_json.stdout)["machine"]["python"]["executable"] == sys.executable


# --- the one-line error -----------------------------------------------------------------------


def test_an_error_line_is_redacted_and_escaped(tmp_path):
    missing = tmp_path / GHP / "\x1b[31mgone.json"
    result = run("audit", "--snapshot", str(missing))
    assert result.returncode == 2
    assert result.stdout == "" and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("auditor: error: cannot read snapshot ")
    assert GHP not in line and "\x1b" not in line
    assert f"/ghp_{REDACTED}/\\x1b[31mgone.json" in line
