"""How long a fleet audit takes, against audits run side by side in the same run.

    python benchmarks/fleet.py [--runs 3] [--nodes 3] [--json FILE]

Needs Ray (the [ray] extra). On one machine, a ray.cluster_utils.Cluster of --nodes nodes. Measures
(medians over --runs, interleaved so that drift hits all alike):
  one        auditor audit --format json, alone
  parallel   --nodes such audits started at once as plain processes: what "one audit per node in
             parallel" costs on this machine, whose cores the nodes share
  fleet      auditor fleet --ray ADDRESS --format json over the cluster: target <= 1.2 x parallel
  merge      auditor fleet merge over the --nodes snapshots the fleet saved
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYTHON = sys.executable
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _wall(commands: list[list[str]]) -> float:
    """Seconds until every command, all started at once, has ended; each must exit 0 or 1."""
    started = time.perf_counter()
    processes = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
                 for command in commands]
    for process, command in zip(processes, commands):
        _, err = process.communicate()
        if process.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(command)} failed ({process.returncode}): {err.decode()[-500:]}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(args.nodes - 1):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    audit = [PYTHON, "-m", "auditor", "audit", "--format", "json"]
    times: dict[str, list[float]] = {"one": [], "parallel": [], "fleet": [], "merge": []}
    try:
        with tempfile.TemporaryDirectory(prefix="auditor-fleet-bench-") as directory:
            snapshots = Path(directory)
            fleet = [PYTHON, "-m", "auditor", "fleet", "--ray", cluster.address, "--format", "json",
                     "--save-snapshots", str(snapshots)]
            _wall([fleet])  # warm: Ray starts its workers and runtime environment once
            for _ in range(args.runs):
                times["one"].append(_wall([audit]))
                times["parallel"].append(_wall([audit] * args.nodes))
                times["fleet"].append(_wall([fleet]))
                times["merge"].append(_wall([[PYTHON, "-m", "auditor", "fleet", "merge", str(snapshots),
                                              "--format", "json"]]))
    finally:
        cluster.shutdown()
    medians = {name: round(statistics.median(values), 3) for name, values in times.items()}
    figures = {"runs": args.runs, "nodes": args.nodes, "median_seconds": medians,
               "fleet_over_parallel": round(medians["fleet"] / medians["parallel"], 3),
               "fleet_over_one": round(medians["fleet"] / medians["one"], 3)}
    met = figures["fleet_over_parallel"] <= 1.2
    for name, value in medians.items():
        print(f"{name:<9} {value:>8.3f} s")
    print(f"fleet / parallel: {figures['fleet_over_parallel']:.2f}x   fleet / one: {figures['fleet_over_one']:.2f}x")
    print(f"[{'met' if met else 'MISSED'}] fleet of {args.nodes} nodes <= 1.2 x {args.nodes} audits in parallel")
    if args.json:
        Path(args.json).write_text(json.dumps({**figures, "target_met": met}, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
