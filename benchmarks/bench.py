"""Speed and memory of the auditor, against baselines measured in the same run.

    python benchmarks/bench.py [--runs 5] [--json FILE]

Measures (medians over --runs, the commands interleaved so drift hits all alike):
  baseline   python -c "import tensorflow"       the floor of any full audit
  full       auditor audit --format json          target: <= 1.3 x baseline
  quick      auditor audit --quick --format json  target: <= 0.5 s
  peer       python -m torch.utils.collect_env    the closest peer tool, for comparison
  probes     time of each probe, from the full audit's own report
and the main process's peak RSS during a full audit (target: <= 100 MB), read from
getrusage(RUSAGE_SELF) at exit, which excludes the framework children.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

PYTHON = sys.executable
# Run the CLI in-process under a wrapper that reports the main process's own peak RSS.
PEAK_RSS_WRAPPER = (
    "import atexit, resource, sys\n"
    "atexit.register(lambda: print(f'PEAK_RSS_KB={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}', file=sys.stderr))\n"
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    for command in COMMANDS.values():  # warm the page cache once
        timed(command)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    peaks, probe_times = [], {}
    for _ in range(args.runs):
        for name, command in COMMANDS.items():
            seconds, result = timed(command)
            if result.returncode not in (0, 1):
                print(f"{name} failed ({result.returncode}): {result.stderr[-500:]}", file=sys.stderr)
                return 2
            times[name].append(seconds)
            if name == "full":
                for run in json.loads(result.stdout)["probes"]:
                    probe_times.setdefault(run["name"], []).append(run["duration_s"])
        _, result = timed([PYTHON, "-c", PEAK_RSS_WRAPPER])
        peaks.append(int(result.stderr.rsplit("PEAK_RSS_KB=", 1)[1].split()[0]) / 1024)

    medians = {name: statistics.median(values) for name, values in times.items()}
    figures = {
        "runs": args.runs,
        "median_seconds": {name: round(value, 3) for name, value in medians.items()},
        "full_over_baseline": round(medians["full"] / medians["baseline"], 3),
        "peer_over_baseline": round(medians["peer"] / medians["baseline"], 3),
        "main_process_peak_rss_mb": round(statistics.median(peaks), 1),
        "probe_median_seconds": {name: round(statistics.median(v), 4) for name, v in probe_times.items()},
    }
    targets = {
        "full <= 1.3 x import tensorflow": figures["full_over_baseline"] <= 1.3,
        "quick <= 0.5 s": medians["quick"] <= 0.5,
        "main process peak <= 100 MB": figures["main_process_peak_rss_mb"] <= 100,
    }
    print(f"{'command':<10} {'median s':>9}   (runs: {args.runs})")
    for name, value in medians.items():
        print(f"{name:<10} {value:>9.3f}")
    print(f"full / baseline: {figures['full_over_baseline']:.2f}x   peer / baseline: {figures['peer_over_baseline']:.2f}x")
    print(f"main process peak RSS: {figures['main_process_peak_rss_mb']:.1f} MB")
    print("probe medians: " + ", ".join(f"{n} {s:.3f}s" for n, s in figures["probe_median_seconds"].items()))
    for target, met in targets.items():
        print(f"[{'met' if met else 'MISSED'}] {target}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({**figures, "targets": targets}, out, indent=2)
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
