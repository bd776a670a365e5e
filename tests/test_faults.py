"""Faults from outside, through the real command line: bad input, odd output targets, hostile
framework installs, broken machines, signals, secrets.

Every case runs `python -m auditor` in a sandbox of its own (a private HOME, TMPDIR and working
directory, an environment tagged with the case's id, canary secrets in it) and is held to the
README's promises whatever it does:
- its documented exit code, and no traceback;
- an error is one `auditor: error:` line;
- nothing left in HOME, TMPDIR or the working directory but the files it was asked to write;
- no process left that carries the case's tag (the audit's children inherit the environment,
  even those that called setsid);
- a bounded wall time;
- strict JSON wherever it wrote JSON (no NaN, no Infinity);
- no canary secret in anything it printed or wrote, in any format;
- the device nodes and FIFOs the case made are still what they were.

Device nodes are made with mknod in the case's own directory; the real /dev is only read
(/dev/null, /dev/full as stdout are opened, never replaced).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import pytest

HERE = Path(__file__).parent
SEAM = HERE / "fakes" / "sitecustomize"
FAKE_SMI = HERE / "fakes" / "nvidia-smi"
CPU_ONLY = HERE / "snapshots" / "v1.0-cpu-only-linux.json"
CANARIES = {
    "HF_TOKEN": "hf_CanaryFaultSuiteToken0123456789abcd",
    "WANDB_API_KEY": "canary-wandb-6f1e2d3c4b5a69788796a5b4",
    "TORCH_HOME_URL": "https://trainer:canary-pass-7Q9@example.invalid/models",
    "MY_NOTES": "ghp_CanaryFaultSuiteGithubToken012345678",
}
CANARY_TEXTS = ("CanaryFaultSuite", "canary-wandb-6f1e", "canary-pass-7Q9")
# Only child-process frameworks that import in a second: the cases that need a framework probe
# use a fake torch and hide TensorFlow and JAX (the test seam), so each runs in about a second.
HIDE_SLOW = "tensorflow,jax,jaxlib"


def _no_constants(name: str):
    raise AssertionError(f"{name} in JSON output")


@dataclass
class Sandbox:
    top: Path
    tag: str
    env: dict[str, str]
    nodes: dict[Path, tuple[int, int]] = field(default_factory=dict)  # path -> (file type, rdev)
    expected_files: set[Path] = field(default_factory=set)

    @property
    def home(self) -> Path:
        return self.top / "home"

    @property
    def tmp(self) -> Path:
        return self.top / "tmp"

    @property
    def cwd(self) -> Path:
        return self.top / "cwd"

    @property
    def work(self) -> Path:
        """Where a case keeps its inputs: outside HOME, TMPDIR and the working directory."""
        return self.top / "work"

    def mknod(self, name: str, kind: int, major: int = 0, minor: int = 0) -> Path:
        path = self.work / name
        if kind == stat.S_IFIFO:
            os.mkfifo(path)
        else:
            os.mknod(path, 0o666 | kind, os.makedev(major, minor))
        self.nodes[path] = (stat.S_IFMT(os.lstat(path).st_mode), os.lstat(path).st_rdev)
        return path

    def write(self, name: str, text: str | bytes) -> Path:
        path = self.work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return path

    def output(self, name: str) -> Path:
        """A file the case asks the auditor to write, in the working directory."""
        path = self.cwd / name
        self.expected_files.add(path)
        return path

    def python_path(self, *directories: Path) -> None:
        self.env["PYTHONPATH"] = os.pathsep.join(str(d) for d in (*directories, SEAM))


@dataclass
class Case:
    id: str
    args: list[str]
    rc: int | set[int]
    setup: Optional[Callable[[Sandbox], Optional[list[str]]]] = None  # may return more args
    error: Optional[str] = None  # text the one error line must contain; None: no error line expected
    stdout: str = "pipe"  # pipe, closed, full, devnull, head (a reader that leaves after one line)
    max_seconds: float = 20
    check: Optional[Callable[[Sandbox, subprocess.CompletedProcess], None]] = None
    signal_after: Optional[tuple[int, float]] = None  # (signal, seconds after start)


# --- fakes the cases build --------------------------------------------------------------------


def fake_torch(sandbox: Sandbox, body: str) -> Path:
    """A `torch` distribution (metadata and package) whose import runs ``body``: what a broken
    or hostile install looks like to the probe. It shadows the real torch on PYTHONPATH."""
    site = sandbox.work / "site"
    (site / "torch").mkdir(parents=True)
    (site / "torch" / "__init__.py").write_text(textwrap.dedent(body))
    info = site / "torch-2.13.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.13.0\n")
    (info / "top_level.txt").write_text("torch\n")
    sandbox.python_path(site)
    sandbox.env["AUDITOR_TEST_HIDE"] = HIDE_SLOW
    return site


def answer_for_the_probe(payload: bytes) -> str:
    """A fake torch body that finds the result channel the probe keeps (a pipe other than
    fds 0-2), writes ``payload`` there as if it were the probe, and exits."""
    return f"""
        import os
        for fd in map(int, os.listdir('/proc/self/fd')):
            if fd > 2 and os.readlink(f'/proc/self/fd/{{fd}}').startswith('pipe:'):
                os.write(fd, {payload!r})
        os._exit(0)
    """


# A framework whose import hangs after starting a helper in a session of its own.
HANGS_WITH_A_SETSID_HELPER = """
    import subprocess, time
    subprocess.Popen(['sleep', '300'], start_new_session=True)
    time.sleep(300)
"""


def fake_root(sandbox: Sandbox, cpuinfo: Optional[Callable[[Path], None]] = None,
              os_release: str = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n') -> Path:
    root = sandbox.work / "root"
    for relative, text in {"proc/meminfo": "MemTotal: 16384000 kB\nMemAvailable: 8192000 kB\n",
                           "etc/os-release": os_release, "proc/sys/kernel/osrelease": "6.1.0\n"}.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    if cpuinfo:
        cpuinfo(root / "proc" / "cpuinfo")
    else:
        (root / "proc" / "cpuinfo").write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Fake CPU\n"
                                               "flags\t\t: fpu sse sse2 avx avx2\n\n")
    return root


def fake_nvidia_smi(sandbox: Sandbox, script: str) -> None:
    bin_dir = sandbox.work / "bin"
    bin_dir.mkdir(exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\n" + script)
    smi.chmod(0o755)
    sandbox.env["PATH"] = f"{bin_dir}{os.pathsep}{sandbox.env['PATH']}"


def saved_snapshot(sandbox: Sandbox, edit: Callable[[dict], None], name: str = "snapshot.json") -> Path:
    data = json.loads(CPU_ONLY.read_text())
    edit(data)
    return sandbox.write(name, json.dumps(data))


def profile(sandbox: Sandbox, name: str, body: str) -> Path:
    return sandbox.write(name, 'schema = "auditor-profile-v1"\ndescription = "a test profile"\n' + body)


# --- the cases --------------------------------------------------------------------------------


def _snapshot_args(sandbox: Sandbox, edit: Callable[[dict], None]) -> list[str]:
    return ["--snapshot", str(saved_snapshot(sandbox, edit))]


def _set(path: str, value):
    def edit(data: dict) -> None:
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value
    return edit


def _delete(path: str):
    def edit(data: dict) -> None:
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[key]
        del node[last]
    return edit


def _is_node(name: str, kind: int):
    def check(sandbox: Sandbox, result) -> None:
        assert stat.S_IFMT(os.lstat(sandbox.work / name).st_mode) == kind
    return check


def _report_in_stdout(sandbox: Sandbox, result) -> None:
    assert "auditor check" in result.stdout or "profile(s) ready" in result.stdout, result.stdout[-500:]


def _fifo_reader(sandbox: Sandbox) -> list[str]:
    fifo = sandbox.mknod("report.fifo", stat.S_IFIFO)
    received = sandbox.work / "received.json"
    # A reader that comes after the audit started, as `auditor audit -o fifo & cat fifo` does.
    subprocess.Popen(f"sleep 0.3; cat {fifo} > {received}", shell=True, env=sandbox.env)
    return ["-o", str(fifo)]


def _fifo_received_the_report(sandbox: Sandbox, result) -> None:
    deadline = time.monotonic() + 5
    received = sandbox.work / "received.json"
    while time.monotonic() < deadline and not (received.exists() and received.stat().st_size):
        time.sleep(0.05)
    json.loads(received.read_text(), parse_constant=_no_constants)


def _atomic_replace(sandbox: Sandbox) -> list[str]:
    target = sandbox.output("report.json")
    target.write_text("old report\n")
    sandbox.env["FAULTS_OLD_INODE"] = str(target.stat().st_ino)
    return ["-o", str(target)]


def _replaced(sandbox: Sandbox, result) -> None:
    target = sandbox.cwd / "report.json"
    assert target.stat().st_ino != int(sandbox.env["FAULTS_OLD_INODE"])
    json.loads(target.read_text(), parse_constant=_no_constants)


def _crashed_torch(sandbox: Sandbox, result) -> None:
    report = json.loads(result.stdout, parse_constant=_no_constants)
    run = next(r for r in report["probes"] if r["name"] == "torch")
    assert run["status"] == "crashed", run
    assert str(signal.SIGRTMIN + 3) in run["reason"] or "SIGRTMIN" in run["reason"], run


def _probe_status(name: str, status: str, *mentions: str):
    def check(sandbox: Sandbox, result) -> None:
        report = json.loads(result.stdout, parse_constant=_no_constants)
        run = next(r for r in report["probes"] if r["name"] == name)
        assert run["status"] == status, run
        for text in mentions:
            assert text in (run["reason"] or ""), run
        if name == "torch":
            assert report["readiness"]["status"] != "ready" or all(
                f["framework"] != "torch" or f["status"] != "ready" for f in report["readiness"]["frameworks"])
    return check


def _no_raw_escape(sandbox: Sandbox, result) -> None:
    assert "\x1b]" not in result.stdout and "\x07" not in result.stdout
    assert "Evil" in result.stdout  # the text is shown, escaped


def _no_home(sandbox: Sandbox) -> None:
    fake_torch(sandbox, "__version__ = '2.13.0'\n")
    del sandbox.env["HOME"]


def _sparse_gibibyte(path: Path) -> None:
    with open(path, "wb") as file:
        file.truncate(1 << 30)


def _deep_json(sandbox: Sandbox) -> list[str]:
    return ["--snapshot", str(sandbox.write("deep.json", "[" * 200_000 + "]" * 200_000))]


def _extends_chain(sandbox: Sandbox) -> list[str]:
    for index in range(2000):
        profile(sandbox, f"p{index}.toml", f'extends = ["p{index + 1}.toml"]\n' if index < 1999 else "")
    return ["--profile", str(sandbox.work / "p0.toml"), "--snapshot", str(CPU_ONLY)]


def _cycle(sandbox: Sandbox) -> list[str]:
    profile(sandbox, "a.toml", 'extends = ["b.toml"]\n')
    profile(sandbox, "b.toml", 'extends = ["a.toml"]\n')
    return ["--profile", str(sandbox.work / "a.toml"), "--snapshot", str(CPU_ONLY)]


CASES = [
    # usage
    Case("unknown-flag", ["audit", "--frobnicate"], 2, error="--frobnicate"),
    Case("unknown-command", ["audti"], 2, error="audti"),
    Case("bare", [], 2, error="no command given"),
    Case("unknown-profile", ["check", "--profile", "gpu-trainin"], 2, error="did you mean gpu-training"),
    Case("unknown-code", ["audit", "--quick", "--select", "GPU04"], 2, error="did you mean GPU004"),
    Case("select-empty", ["audit", "--quick", "--select", ""], 2, error="names no check code"),
    Case("select-commas", ["audit", "--quick", "--select", ",,,"], 2, error="names no check code"),
    Case("ignore-empty", ["audit", "--quick", "--ignore", ","], 2, error="names no check code"),
    Case("timeout-nan", ["audit", "--timeout", "nan"], 2, error="--timeout"),
    Case("timeout-inf", ["audit", "--timeout", "inf"], 2, error="--timeout"),
    Case("timeout-zero", ["audit", "--timeout", "0"], 2, error="--timeout"),
    Case("quick-and-deep", ["audit", "--quick", "--deep"], 2, error="choose one"),
    Case("snapshot-with-root", ["audit", "--root", "/", "--snapshot", str(CPU_ONLY)], 2, error="--root"),
    Case("explain-unknown", ["explain", "XYZ999"], 2, error="unknown check code"),
    # malformed input files
    Case("snapshot-not-json", ["audit"], 2, error="is not JSON",
         setup=lambda s: ["--snapshot", str(s.write("bad.json", "{not json"))]),
    Case("snapshot-nan", ["audit"], 2, error="NaN",
         setup=lambda s: ["--snapshot", str(s.write("nan.json", CPU_ONLY.read_text().replace(
             '"duration_s": 0.0', '"duration_s": NaN', 1)))]),
    Case("snapshot-infinity", ["audit"], 2, error="Infinity",
         setup=lambda s: ["--snapshot", str(s.write("inf.json", CPU_ONLY.read_text().replace(
             '"duration_s": 0.0', '"duration_s": -Infinity', 1)))]),
    Case("snapshot-deeply-nested", ["audit"], 2, error="nested too deeply", setup=_deep_json),
    Case("snapshot-python-three", ["audit"], 2, error="machine.python.version",
         setup=lambda s: _snapshot_args(s, _set("machine.python.version", "three"))),
    Case("snapshot-missing-key", ["audit"], 2, error="auditor_version",
         setup=lambda s: _snapshot_args(s, _delete("auditor_version"))),
    Case("snapshot-list-for-object", ["audit", "--format", "markdown"], 2, error="machine",
         setup=lambda s: _snapshot_args(s, _set("machine", []))),
    Case("snapshot-unknown-status", ["audit"], 2, error="probes",
         setup=lambda s: _snapshot_args(s, lambda d: d["probes"][0].update(status="READY"))),
    Case("snapshot-not-utf8", ["audit"], 2, error="not UTF-8",
         setup=lambda s: ["--snapshot", str(s.write("latin1.json", b'{"schema_version": "1.2", "x": "\xe9"}'))]),
    Case("snapshot-endless-device", ["audit"], 2, error="larger than", max_seconds=20,
         setup=lambda s: ["--snapshot", str(s.mknod("zero", stat.S_IFCHR, 1, 5))]),
    Case("profile-deep-toml", ["check", "--snapshot", str(CPU_ONLY)], 2, error="nested too deeply",
         setup=lambda s: ["--profile", str(profile(s, "deep.toml", "x = " + "[" * 5000 + "]" * 5000 + "\n"))]),
    Case("profile-extends-chain", ["check"], 2, error="levels of extends", setup=_extends_chain),
    Case("profile-extends-cycle", ["check"], 2, error="cycle", setup=_cycle),
    Case("profile-not-utf8", ["check", "--snapshot", str(CPU_ONLY)], 2, error="not UTF-8",
         setup=lambda s: ["--profile", str(s.write("latin1.toml", b'description = "caf\xe9"\n'))]),
    Case("config-deep-toml", ["audit", "--quick"], 2, error="nested too deeply",
         setup=lambda s: ["--config", str(s.write("pyproject.toml", "[tool.auditor]\nx = " + "[" * 5000 + "]" * 5000))]),
    # output targets
    Case("output-char-device", ["audit", "--snapshot", str(CPU_ONLY), "--format", "json"], 0,
         setup=lambda s: ["-o", str(s.mknod("null", stat.S_IFCHR, 1, 3))], check=_is_node("null", stat.S_IFCHR)),
    Case("output-symlink-to-device", ["audit", "--snapshot", str(CPU_ONLY)], 0,
         setup=lambda s: (s.mknod("null", stat.S_IFCHR, 1, 3), os.symlink(s.work / "null", s.work / "link"),
                          ["-o", str(s.work / "link")])[-1],
         check=_is_node("null", stat.S_IFCHR)),
    Case("save-snapshot-char-device", ["audit", "--snapshot", str(CPU_ONLY)], 0,
         setup=lambda s: ["--save-snapshot", str(s.mknod("null", stat.S_IFCHR, 1, 3))],
         check=_is_node("null", stat.S_IFCHR)),
    Case("output-fifo", ["audit", "--snapshot", str(CPU_ONLY), "--format", "json"], 0, setup=_fifo_reader,
         check=lambda s, r: (_is_node("report.fifo", stat.S_IFIFO)(s, r), _fifo_received_the_report(s, r))),
    Case("output-full-device", ["audit", "--snapshot", str(CPU_ONLY)], 4, error="No space left on device",
         setup=lambda s: ["-o", str(s.mknod("full", stat.S_IFCHR, 1, 7))], check=_is_node("full", stat.S_IFCHR)),
    Case("output-dev-stdout-pipe", ["audit", "--snapshot", str(CPU_ONLY), "--format", "json", "-o", "/dev/stdout"], 0,
         check=lambda s, r: json.loads(r.stdout, parse_constant=_no_constants)),
    Case("output-regular-replaced-atomically", ["audit", "--snapshot", str(CPU_ONLY), "--format", "json"], 0,
         setup=_atomic_replace, check=_replaced),
    Case("output-is-directory", ["audit", "--quick"], 2, error="is a directory",
         setup=lambda s: ["-o", str(s.work)]),
    Case("output-missing-directory", ["audit", "--quick"], 2, error="does not exist",
         setup=lambda s: ["-o", str(s.work / "no" / "such" / "report.txt")]),
    Case("output-under-proc", ["audit", "--quick", "-o", "/proc/version"], 2, error="/proc", max_seconds=5),
    Case("output-under-a-file", ["audit", "--quick"], 2, error="cannot write the report",
         setup=lambda s: ["-o", str(s.write("file.txt", "x") / "report.txt")]),
    Case("stdout-closed", ["audit", "--quick"], 4, error="standard output is closed", stdout="closed", max_seconds=5),
    Case("stdout-full", ["audit", "--snapshot", str(CPU_ONLY)], 4, error="No space left on device", stdout="full"),
    Case("stdout-full-checks", ["checks"], 4, error="No space left on device", stdout="full"),
    Case("stdout-reader-left", ["audit", "--snapshot", str(CPU_ONLY), "--format", "json"], 141, stdout="head"),
    Case("step-summary-is-directory", ["check", "--profile", "ci-cpu", "--snapshot", str(CPU_ONLY), "--format", "github"],
         4, error="GITHUB_STEP_SUMMARY",
         setup=lambda s: s.env.update(GITHUB_STEP_SUMMARY=str(s.work)), check=_report_in_stdout),
    Case("step-summary-missing-directory", ["check", "--profile", "ci-cpu", "--snapshot", str(CPU_ONLY),
                                            "--format", "github"], 4, error="GITHUB_STEP_SUMMARY",
         setup=lambda s: s.env.update(GITHUB_STEP_SUMMARY=str(s.work / "gone" / "summary.md")), check=_report_in_stdout),
    # the environment
    Case("no-home", ["audit", "--format", "markdown", "--fail-on", "never"], 0, setup=_no_home),
    Case("home-missing", ["audit", "--quick"], 0, setup=lambda s: s.env.update(HOME=str(s.work / "nowhere"))),
    # hostile or broken framework installs
    Case("child-killed-by-realtime-signal", ["audit", "--format", "json", "--fail-on", "never"], 0,
         setup=lambda s: fake_torch(s, f"import os\nos.kill(os.getpid(), {int(signal.SIGRTMIN) + 3})\n") and None,
         check=_crashed_torch),
    Case("child-exits-at-import", ["audit", "--format", "json", "--fail-on", "never"], 0,
         setup=lambda s: fake_torch(s, "import os\nos._exit(0)\n") and None,
         check=_probe_status("torch", "crashed", "no result")),
    Case("child-writes-a-list", ["audit", "--format", "json", "--fail-on", "never"], 0,
         setup=lambda s: fake_torch(s, answer_for_the_probe(b"[1, 2, 3]")) and None,
         check=_probe_status("torch", "error")),
    Case("child-claims-unknown-status", ["audit", "--format", "json", "--fail-on", "never"], 0,
         setup=lambda s: fake_torch(s, answer_for_the_probe(b'{"status": "READY", "facts": {}}')) and None,
         check=_probe_status("torch", "error")),
    Case("child-leaves-a-setsid-grandchild", ["audit", "--format", "json", "--fail-on", "never", "--timeout", "2"], 0,
         setup=lambda s: fake_torch(s, HANGS_WITH_A_SETSID_HELPER) and None, check=_probe_status("torch", "timeout")),
    Case("child-floods-stderr", ["audit", "--format", "json", "--fail-on", "never"], 0,
         setup=lambda s: fake_torch(s, """
             import os, sys
             chunk = b'x' * (1 << 20)
             for _ in range(100):
                 os.write(2, chunk)
             raise ImportError('libtorch_cuda.so: cannot open shared object file')
         """) and None, check=_probe_status("torch", "error", "libtorch_cuda.so")),
    Case("child-error-quotes-a-secret", ["check", "--profile", "research", "--format", "junit", "--fail-on", "never"], 0,
         setup=lambda s: fake_torch(s, """
             import os
             raise ImportError('could not log in with HF_TOKEN=' + os.environ['HF_TOKEN'])
         """) and None),
    # a broken machine under --root
    Case("cpuinfo-is-a-fifo", ["audit", "--quick", "--format", "json", "--fail-on", "never"], 0, max_seconds=5,
         setup=lambda s: ["--root", str(fake_root(s, cpuinfo=lambda p: os.mkfifo(p)))]),
    Case("cpuinfo-is-a-device", ["audit", "--quick", "--format", "json", "--fail-on", "never"], 0, max_seconds=5,
         setup=lambda s: ["--root", str(fake_root(s, cpuinfo=lambda p: os.mknod(p, 0o666 | stat.S_IFCHR,
                                                                                os.makedev(1, 5))))]),
    Case("cpuinfo-is-1-gib", ["audit", "--quick", "--format", "json", "--fail-on", "never"], 0, max_seconds=5,
         setup=lambda s: ["--root", str(fake_root(s, cpuinfo=_sparse_gibibyte))]),
    Case("os-release-with-escapes", ["audit", "--quick", "--fail-on", "never"], 0, check=_no_raw_escape,
         setup=lambda s: ["--root", str(fake_root(s, os_release='PRETTY_NAME="Evil\x1b]0;owned\x07 OS\x00"\n'))]),
    Case("nvidia-smi-hangs", ["audit", "--quick", "--format", "json", "--fail-on", "never"], 0, max_seconds=25,
         setup=lambda s: fake_nvidia_smi(s, "exec sleep 300\n")),
    Case("nvidia-smi-leaves-a-background-job", ["audit", "--quick", "--format", "json", "--fail-on", "never"], 0,
         max_seconds=8, setup=lambda s: fake_nvidia_smi(s, "sleep 300 &\necho 'NVIDIA-SMI has failed'\nexit 9\n")),
    Case("nvidia-smi-garbage", ["audit", "--quick", "--format", "json", "--fail-on", "never"], 0,
         setup=lambda s: fake_nvidia_smi(s, "head -c 100000 /dev/urandom\n")),
    # signals: the audit is stopped while a probe child (and its setsid helper) is running
    *(Case(f"signal-{signal.Signals(signum).name}", ["audit", "--timeout", "60"], 128 + signum,
           error=f"interrupted by {signal.Signals(signum).name}", signal_after=(signum, 1.5),
           setup=lambda s: fake_torch(s, HANGS_WITH_A_SETSID_HELPER) and None)
      for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)),
    Case("signal-SIGKILL", ["audit", "--timeout", "60"], -signal.SIGKILL, signal_after=(signal.SIGKILL, 1.5),
         setup=lambda s: fake_torch(s, HANGS_WITH_A_SETSID_HELPER) and None),
    Case("signal-SIGKILL-inline-phase", ["audit", "--quick"], -signal.SIGKILL, signal_after=(signal.SIGKILL, 1.0),
         setup=lambda s: fake_nvidia_smi(s, "sleep 300 & exec sleep 300\n")),
]


# --- the harness ------------------------------------------------------------------------------


def _sandbox(tmp_path: Path, case_id: str) -> Sandbox:
    tag = f"faults-{case_id}-{uuid.uuid4().hex[:8]}"
    top = tmp_path / "sandbox"
    for name in ("home", "tmp", "cwd", "work"):
        (top / name).mkdir(parents=True)
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
           "HOME": str(top / "home"), "TMPDIR": str(top / "tmp"), "LANG": "C.UTF-8",
           "AUDITOR_FAULT_TAG": tag, **CANARIES}
    # OpenBLAS needs these on some CPUs of this workplace to compute right; keep what is set.
    env.update({k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")})
    return Sandbox(top, tag, env)


def _tagged_processes(needle_text: str) -> list[str]:
    """'PID: command line' of each process whose environment holds ``needle_text``."""
    found = []
    needle = needle_text.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                if needle in environ.read():
                    with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                        words = cmdline.read().split(b"\0")
                    found.append(f"{entry}: {b' '.join(words).decode(errors='replace')}")
        except OSError:
            continue  # gone, or a kernel thread
    return found


def _listing(sandbox: Sandbox) -> set[Path]:
    return {path for directory in (sandbox.home, sandbox.tmp, sandbox.cwd) for path in directory.rglob("*")}


def _run(sandbox: Sandbox, case: Case, args: list[str]) -> tuple[subprocess.CompletedProcess, float]:
    command = [sys.executable, "-m", "auditor", *args]
    stdout_target = {"pipe": subprocess.PIPE, "devnull": subprocess.DEVNULL}
    started = time.monotonic()
    if case.stdout == "head":
        # `true` leaves before the report is written, as `| head -1` does before a long one ends.
        shell = f"{' '.join(map(_quote, command))} | true; exit ${{PIPESTATUS[0]}}"
        process = subprocess.Popen(["bash", "-c", shell], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, env=sandbox.env, cwd=sandbox.cwd)
    elif case.stdout in ("closed", "full"):
        redirect = ">&-" if case.stdout == "closed" else "> /dev/full"
        shell = f"exec {' '.join(map(_quote, command))} {redirect}"
        process = subprocess.Popen(["bash", "-c", shell], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, env=sandbox.env, cwd=sandbox.cwd)
    else:
        process = subprocess.Popen(command, stdout=stdout_target[case.stdout], stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, env=sandbox.env, cwd=sandbox.cwd)
    if case.signal_after:
        signum, after = case.signal_after
        time.sleep(after)
        process.send_signal(signum)
    try:
        out, err = process.communicate(timeout=case.max_seconds + 10)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"{case.id}: no exit within {case.max_seconds + 10} s; stderr: {err[-2000:]!r}")
    elapsed = time.monotonic() - started
    return subprocess.CompletedProcess(command, process.returncode, (out or b"").decode(errors="replace"),
                                       err.decode(errors="replace")), elapsed


def _quote(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_fault(case: Case, tmp_path: Path):
    sandbox = _sandbox(tmp_path, case.id)
    extra = case.setup(sandbox) if case.setup else None
    args = [*case.args, *(extra or [])]
    before = _listing(sandbox)
    result, elapsed = _run(sandbox, case, args)

    expected_rc = case.rc if isinstance(case.rc, set) else {case.rc}
    assert result.returncode in expected_rc, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("auditor: error:")]
    if case.error is not None:
        assert len(error_lines) == 1 and len(result.stderr.splitlines()) == 1, result.stderr[-3000:]
        assert case.error in error_lines[0], error_lines[0]
    else:
        assert not error_lines, result.stderr[-3000:]
    assert elapsed < case.max_seconds, f"{case.id} took {elapsed:.1f} s"

    deadline = time.monotonic() + 5  # the guardian of a SIGKILLed audit needs a moment
    while (left := _tagged_processes(f"AUDITOR_FAULT_TAG={sandbox.tag}\0")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes outlived the audit: {left}"

    created = _listing(sandbox) - before - sandbox.expected_files
    assert not created, f"left behind: {sorted(map(str, created))}"
    for path, (kind, rdev) in sandbox.nodes.items():
        assert (stat.S_IFMT(os.lstat(path).st_mode), os.lstat(path).st_rdev) == (kind, rdev), path

    written = [result.stdout, result.stderr, *(p.read_text(errors="replace") for p in sandbox.expected_files
                                               if p.is_file())]
    for text in written:
        for canary in CANARY_TEXTS:
            assert canary not in text, f"canary {canary} reached the output"
    if "--format" in args and args[args.index("--format") + 1] == "json" and result.stdout.strip().startswith("{"):
        json.loads(result.stdout, parse_constant=_no_constants)
    if case.check:
        case.check(sandbox, result)


def test_the_suite_covers_forty_cases_of_every_class():
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.fixture(autouse=True)
def _no_stray_processes_between_cases():
    yield
    # A failed case must not leave its sleepers to the next one.
    for line in _tagged_processes("AUDITOR_FAULT_TAG=faults-"):
        try:
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
        except ProcessLookupError:
            pass
