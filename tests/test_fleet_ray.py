"""`auditor fleet --ray`: a real Ray cluster of four nodes started on this machine
(ray.cluster_utils.Cluster), each node given other facts through the seams (its own fake root in
AUDITOR_ROOT, its own fake NVML, its own site-packages), audited by the CLI as a user would run it.
One node is killed while its audit runs, and must become a row with its reason.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from conftest import machine_env, run_auditor  # noqa: E402
from simulated_machines import MACHINES  # noqa: E402

BY_NAME = {machine.name: machine for machine in MACHINES}
# The hung node's NVML bindings (the auditor's own dependency, so their probe always runs): they say
# who imports them, then never return; the node's audit is mid-run when the node is killed.
HANGING_PYNVML = """
import os, time
with open(os.environ["FAKE_PYNVML_MARKER"], "w") as marker:
    marker.write(f"{os.getpid()} {os.getppid()}")
time.sleep(600)
"""


# The R570 node's torch.distributed adds 1 to what every all_reduce returns there: its rank of the
# proof across the nodes gives a wrong sum. Loaded at interpreter start from that node's PYTHONPATH.
WRONG_SUM_SITECUSTOMIZE = """
import importlib.abc, importlib.util, sys


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "torch.distributed":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            real = module.all_reduce

            def all_reduce(tensor, *args, **kwargs):
                work = real(tensor, *args, **kwargs)
                tensor.add_(1)
                return work

            module.all_reduce = all_reduce

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Finder())
"""


def _written(marker: Path) -> bool:
    return marker.exists() and bool(marker.read_text().strip())


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _newer_driver(machine):
    """The H100 node with driver 570.133.20, which supports CUDA 12.8, instead of 550.90.07 (12.4)."""
    swap = lambda text: text.replace("550.90.07", "570.133.20").replace("cuda 12040", "cuda 12080")  # noqa: E731
    return dataclasses.replace(machine, name="h100-node-r570", files={path: swap(text) for path, text in machine.files.items()},
                               nvml=swap(machine.nvml))


def _node_env(machine, work: Path) -> dict:
    work.mkdir(parents=True)
    return {**machine_env(machine, work), "AUDITOR_ROOT": str(machine.build(work / "root"))}


@pytest.fixture(scope="module")
def fleet_run(tmp_path_factory, fake_nvml_dir):  # noqa: F811
    work = tmp_path_factory.mktemp("fleet")
    machines = {"r550": BY_NAME["h100-node"], "r570": _newer_driver(BY_NAME["h100-node"]),
                "laptop": BY_NAME["laptop-no-gpu"], "hung": BY_NAME["laptop-no-gpu"]}
    envs = {key: _node_env(machine, work / key) for key, machine in machines.items()}
    hanging = work / "hung" / "hanging-pynvml"
    hanging.mkdir()
    (hanging / "pynvml.py").write_text(HANGING_PYNVML)
    marker = work / "hung" / "pynvml-imported"
    wrong_sum = work / "r570" / "wrong-sum"
    wrong_sum.mkdir()
    (wrong_sum / "sitecustomize.py").write_text(WRONG_SUM_SITECUSTOMIZE)
    envs["r570"]["PYTHONPATH"] = os.pathsep.join(filter(None, [str(wrong_sum), envs["r570"].get("PYTHONPATH")]))
    envs["hung"].update(PYTHONPATH=os.pathsep.join(filter(None, [str(hanging), envs["hung"].get("PYTHONPATH")])),
                        FAKE_PYNVML_MARKER=str(marker))

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                            "env_vars": envs["r550"]})
    nodes = {"r550": cluster.head_node}
    for key in ("r570", "laptop", "hung"):
        nodes[key] = cluster.add_node(num_cpus=1, env_vars=envs[key])
    cluster.wait_for_nodes()
    snapshots = work / "snapshots"
    snapshots.mkdir()
    try:
        started = time.monotonic()
        fleet = subprocess.Popen([sys.executable, "-m", "auditor", "fleet", "--ray", cluster.address, "--format", "json",
                                  "--save-snapshots", str(snapshots), "--collective"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while not _written(marker) and fleet.poll() is None and time.monotonic() - started < 240:
            time.sleep(0.1)
        assert marker.exists(), "the hung node's audit never reached its NVML probe"
        hung_pids = [int(pid) for pid in marker.read_text().split()]
        cluster.remove_node(nodes["hung"])  # mid-run: its NVML probe is asleep
        removed = time.monotonic()
        # Left alone, the node's audit would wait out its NVML probe's 20 s deadline, and run on.
        while any(_alive(pid) for pid in hung_pids) and time.monotonic() - removed < 15:
            time.sleep(0.2)
        survivors = [pid for pid in hung_pids if _alive(pid)]
        out, err = fleet.communicate(timeout=400)
        seconds = time.monotonic() - started
    finally:
        cluster.shutdown()
    ids = {key: node.node_id for key, node in nodes.items()}
    return {"returncode": fleet.returncode, "report": json.loads(out) if out else None, "stderr": err, "ids": ids,
            "survivors": survivors, "snapshots": snapshots, "seconds": seconds}


def _row(run, key):
    return next(row for row in run["report"]["nodes"] if run["ids"][key][:8] in row["where"])


def _findings(run, code):
    return [f for f in run["report"]["findings"] if f["code"] == code]


def test_every_node_is_a_row_and_the_killed_one_says_why(fleet_run):
    import jsonschema

    from auditor.schema import published_schema

    assert fleet_run["returncode"] == 1, fleet_run["stderr"]
    jsonschema.validate(fleet_run["report"], json.loads(published_schema("fleet")), cls=jsonschema.Draft202012Validator)
    rows = fleet_run["report"]["nodes"]
    assert len(rows) == 4
    hung = _row(fleet_run, "hung")
    assert hung["status"] == "not-audited"
    assert hung["reason"].startswith("the node died during its audit"), hung
    assert [f["title"] for f in _findings(fleet_run, "FLT009")] == [f"{hung['name']} was not audited: {hung['reason']}"]
    for key in ("r550", "r570", "laptop"):
        assert _row(fleet_run, key)["status"] == "audited"


def test_each_node_reports_its_own_facts(fleet_run):
    r550, r570, laptop = (_row(fleet_run, key) for key in ("r550", "r570", "laptop"))
    assert (r550["gpus"], r550["driver"]) == ("8 x NVIDIA H100 80GB HBM3", "550.90.07")
    assert (r570["gpus"], r570["driver"]) == ("8 x NVIDIA H100 80GB HBM3", "570.133.20")
    assert (laptop["gpus"], laptop["driver"]) == (None, None)
    # The frameworks are this machine's real ones, on every node (none in CI's lowest-versions venv).
    try:
        import torch
    except ImportError:
        assert not any(fw.startswith("torch ") for fw in laptop["frameworks"])
    else:
        assert f"torch {torch.__version__} (cpu)" in laptop["frameworks"]
    assert len({r550["group"], r570["group"], laptop["group"]}) == 3


def test_the_fleet_names_its_skew(fleet_run):
    r550, r570, laptop = (_row(fleet_run, key)["name"] for key in ("r550", "r570", "laptop"))
    (driver,) = _findings(fleet_run, "FLT001")
    assert driver["title"] == f"NVIDIA driver differs across nodes: 550.90.07 on {r550}; 570.133.20 on {r570}" or \
        driver["title"] == f"NVIDIA driver differs across nodes: 570.133.20 on {r570}; 550.90.07 on {r550}"
    (cuda,) = _findings(fleet_run, "FLT002")
    assert "12.4" in cuda["title"] and "12.8" in cuda["title"]
    (gpus,) = _findings(fleet_run, "FLT006")
    assert gpus["title"] in (f"NVIDIA GPUs differs across nodes: 8 x NVIDIA H100 80GB HBM3 on {first}, {second}; "
                             f"(none) on {laptop}" for first, second in ((r550, r570), (r570, r550)))
    assert not _findings(fleet_run, "FLT005")  # every node runs this machine's torch, TensorFlow and JAX
    assert fleet_run["report"]["summary"].startswith("4 nodes, 1 not audited; 3 configurations;")


def test_the_killed_nodes_audit_left_no_process(fleet_run):
    """Neither the probe child nor its parent in the node's audit outlives the node by 15 s."""
    assert fleet_run["survivors"] == [], "processes of the killed node's audit outlived it"


def test_the_all_reduce_across_the_nodes_names_the_rank_that_summed_wrong(fleet_run):
    proof = fleet_run["report"]["collective"]
    try:
        import torch  # noqa: F401
    except ImportError:  # CI's lowest-versions venv: no node proved torch, so nothing is reduced across them
        assert proof is None and not _findings(fleet_run, "FLT010")
        return
    names = [_row(fleet_run, key)["name"] for key in ("r550", "r570", "laptop")]
    assert (proof["framework"], proof["backend"], proof["scope"], proof["world_size"]) == ("torch", "gloo", "cluster", 3)
    assert sorted(proof["nodes"]) == sorted(names) and proof["devices"] == ["cpu"] * 3
    rank = proof["nodes"].index(_row(fleet_run, "r570")["name"])
    assert (proof["ok"], proof["failed_ranks"]) == (False, [rank])
    assert proof["error"] == f"rank {rank} returned a wrong sum (off by up to 1 from the exact sum)"
    (finding,) = _findings(fleet_run, "FLT010")
    assert finding["title"] == f"torch gloo all_reduce across 3 nodes failed: {proof['error']}"


def test_saved_snapshots_merge_into_the_same_fleet(fleet_run):
    files = sorted(fleet_run["snapshots"].iterdir())
    assert len(files) == 3
    merged = run_auditor("fleet", "merge", str(fleet_run["snapshots"]), "--format", "json")
    assert merged.returncode == 1, merged.stderr
    report = json.loads(merged.stdout)
    by_name = {row["name"]: row for row in report["nodes"]}
    for key in ("r550", "r570", "laptop"):
        row = _row(fleet_run, key)
        assert (by_name[row["name"]]["driver"], by_name[row["name"]]["gpus"]) == (row["driver"], row["gpus"])
    assert sorted(f["code"] for f in report["findings"]) == sorted(
        f["code"] for f in fleet_run["report"]["findings"] if f["code"] not in ("FLT009", "FLT010"))


def test_without_ray_the_flag_is_one_line_naming_the_extra():
    hide_ray = "import sys; sys.modules['ray'] = None; from auditor.cli import main; main(sys.argv[1:])"
    result = subprocess.run([sys.executable, "-c", hide_ray, "fleet", "--ray", "auto"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr == ('auditor: error: --ray needs Ray, which is an optional extra: '
                             'pip install "ml-env-auditor[ray]"\n')
