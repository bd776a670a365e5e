"""Speed and memory of the auditor, against baselines measured in the same run.

    python benchmarks/bench.py [--runs 5] [--deep-runs 3] [--json FILE]

Measures (medians over --runs, the commands interleaved so drift hits all alike):
  baseline   python -c "import tensorflow"       the floor of any full audit
  full       auditor audit --format json          target: <= 1.3 x baseline
  tool       the same audit from the auditor installed as a tool (its own venv, as pipx makes
             one), auditing this environment with --python      target: <= 1.1 x full
  quick      auditor audit --quick --format json  target: <= 0.5 s
  peer       python -m torch.utils.collect_env    the closest peer tool, for comparison
  probes     time of each probe, from the full audit's own report
  proofs     per framework, the probe's time minus its import: what the compute proofs cost
and the main process's peak RSS during a full audit (target: <= 100 MB), read from
getrusage(RUSAGE_SELF) at exit, which excludes the framework children.

Then, over --deep-runs (no target: --deep is the slow mode by design):
  deep       auditor audit --deep --format json
  each export probe's time and each export path's own time, and what --deep adds to each
  framework probe (torch.compile, the XLA train step).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYTHON = sys.executable
# Run the CLI in-process under a wrapper that reports the main process's own peak RSS: VmHWM,
# since Linux carries ru_maxrss across execve and would report the spawning process's peak.
PEAK_RSS_WRAPPER = (
    "import atexit, sys\n"
    "def peak(): return next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:'))\n"
    "atexit.register(lambda: print(f'PEAK_RSS_KB={peak()}', file=sys.stderr))\n"
    "from auditor.cli import main\n"
    "main(['audit', '--format', 'json'])\n"
)
COMMANDS = {
    "baseline": [PYTHON, "-c", "import tensorflow"],
    "full": [PYTHON, "-m", "auditor", "audit", "--format", "json"],
    "quick": [PYTHON, "-m", "auditor", "audit", "--quick", "--format", "json"],
    "peer": [PYTHON, "-m", "torch.utils.collect_env"],
}


def timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env={"TF_CPP_MIN_LOG_LEVEL": "3", **os.environ})
    return time.perf_counter() - started, result


def install_tool(directory: str) -> list[str]:
    """The auditor installed as pipx installs it: a venv of its own, the project built from this
    source tree (a copy, so that the build leaves nothing here); the command that audits this
    environment from there."""
    source = Path(directory) / "source"
    shutil.copytree(Path(__file__).resolve().parents[1], source,
                    ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", "build"))
    venv = Path(directory) / "tool"
    subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(source)], check=True)
    return [str(venv / "bin" / "auditor"), "audit", "--python", PYTHON, "--format", "json"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--deep-runs", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="auditor-bench-") as directory:
        return measure(args, {**COMMANDS, "tool": install_tool(directory)})


def measure(args: argparse.Namespace, commands: dict[str, list[str]]) -> int:
    for command in commands.values():  # warm the page cache once
        timed(command)
    times: dict[str, list[float]] = {name: [] for name in commands}
    peaks, probe_times, proof_costs = [], {}, {}
    for _ in range(args.runs):
        for name, command in commands.items():
            seconds, result = timed(command)
            if result.returncode not in (0, 1):
                print(f"{name} failed ({result.returncode}): {result.stderr[-500:]}", file=sys.stderr)
                return 2
            times[name].append(seconds)
            if name == "full":
                report = json.loads(result.stdout)
                _collect_probe_times(report, probe_times)
                for framework, facts in report["frameworks"].items():
                    proof_costs.setdefault(framework, []).append(facts["probe"]["duration_s"] - facts["import_seconds"])
        _, result = timed([PYTHON, "-c", PEAK_RSS_WRAPPER])
        peaks.append(int(result.stderr.rsplit("PEAK_RSS_KB=", 1)[1].split()[0]) / 1024)

    medians = {name: statistics.median(values) for name, values in times.items()}
    figures = {
        "runs": args.runs,
        "median_seconds": {name: round(value, 3) for name, value in medians.items()},
        "full_over_baseline": round(medians["full"] / medians["baseline"], 3),
        "tool_over_full": round(medians["tool"] / medians["full"], 3),
        "peer_over_baseline": round(medians["peer"] / medians["baseline"], 3),
        "main_process_peak_rss_mb": round(statistics.median(peaks), 1),
        "probe_median_seconds": _medians(probe_times),
        "proof_median_seconds": _medians(proof_costs),
        **_deep(args.deep_runs, probe_times),
    }
    targets = {
        "full <= 1.3 x import tensorflow": figures["full_over_baseline"] <= 1.3,
        "tool --python <= 1.1 x full in the venv": figures["tool_over_full"] <= 1.1,
        "quick <= 0.5 s": medians["quick"] <= 0.5,
        "main process peak <= 100 MB": figures["main_process_peak_rss_mb"] <= 100,
    }
    print(f"{'command':<10} {'median s':>9}   (runs: {args.runs})")
    for name, value in medians.items():
        print(f"{name:<10} {value:>9.3f}")
    print(f"full / baseline: {figures['full_over_baseline']:.2f}x   peer / baseline: {figures['peer_over_baseline']:.2f}x"
          f"   tool / full: {figures['tool_over_full']:.2f}x")
    print(f"main process peak RSS: {figures['main_process_peak_rss_mb']:.1f} MB")
    print("probe medians: " + ", ".join(f"{n} {s:.3f}s" for n, s in figures["probe_median_seconds"].items()))
    print("proof cost (probe - import): " + ", ".join(f"{n} {s:.3f}s" for n, s in figures["proof_median_seconds"].items()))
    if args.deep_runs:
        print(f"deep audit: {figures['deep_median_seconds']:.1f} s median of {args.deep_runs}")
        print("deep probe medians: " + ", ".join(f"{n} {s:.2f}s" for n, s in figures["deep_probe_median_seconds"].items()))
        print("export path medians: " + ", ".join(f"{n} {s:.2f}s" for n, s in figures["export_path_median_seconds"].items()))
    for target, met in targets.items():
        print(f"[{'met' if met else 'MISSED'}] {target}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({**figures, "targets": targets}, out, indent=2)
    return 0 if all(targets.values()) else 1


def _collect_probe_times(report: dict, into: dict[str, list[float]]) -> None:
    for run in report["probes"]:
        into.setdefault(run["name"], []).append(run["duration_s"])


def _medians(samples: dict[str, list[float]]) -> dict[str, float]:
    return {name: round(statistics.median(values), 4) for name, values in samples.items()}


def _deep(runs: int, full_probe_times: dict[str, list[float]]) -> dict:
    """The deep audit: its wall time, every probe's time, and each export path's own time."""
    if not runs:
        return {}
    walls, probe_times, path_times = [], {}, {}
    for _ in range(runs):
        seconds, result = timed([PYTHON, "-m", "auditor", "audit", "--deep", "--format", "json"])
        if result.returncode not in (0, 1):
            raise SystemExit(f"deep audit failed ({result.returncode}): {result.stderr[-500:]}")
        walls.append(seconds)
        report = json.loads(result.stdout)
        _collect_probe_times(report, probe_times)
        for name, path in report["exports"].items():
            if path["seconds"] is not None:
                path_times.setdefault(name, []).append(path["seconds"])
    deep_medians = _medians(probe_times)
    return {
        "deep_median_seconds": round(statistics.median(walls), 2),
        "deep_probe_median_seconds": deep_medians,
        "export_path_median_seconds": _medians(path_times),
        "deep_adds_to_framework_probe_seconds": {
            name: round(deep_medians[name] - statistics.median(full_probe_times[name]), 3)
            for name in ("torch", "tensorflow", "jax") if name in deep_medians and name in full_probe_times},
    }


if __name__ == "__main__":
    sys.exit(main())
