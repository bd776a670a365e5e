"""`auditor audit --format nfd`: every feature file rendered here (the simulated machines' audits
replayed through the CLI, the real-world corpus, one real audit of this machine) is checked line
by line against Node Feature Discovery's rules, implemented below apart from the renderer; its
labels against the facts they come from; and the file is written as nfd-worker needs it, a dot
file renamed into place."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from auditor.errors import OutputError
from auditor.facts import ComputeProof, FrameworkBuild, FrameworkDevice, ProbeRun
from auditor.output import open_output
from auditor.pipeline import build_report
from auditor.render.nfd import NfdRenderer, label_text
from auditor.snapshot_file import load_snapshot
from conftest import run_auditor

CASES = sorted((Path(__file__).resolve().parent / "realworld" / "cases").glob("*.json"))
NAMESPACE = "ml-auditor.io"

# --- NFD's rules -----------------------------------------------------------------------------
# k8s.io/apimachinery IsQualifiedName and IsValidLabelValue, NFD's denied namespaces
# (pkg/apis/nfd/validate/validate.go), its directives and size limit (source/local/local.go).

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")
QUALIFIED = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
DIRECTIVES = ("expiry-time", "no-feature", "no-label")
ALLOWED_KUBERNETES = ("feature.node.kubernetes.io", "profile.node.kubernetes.io")


def key_problems(key: str) -> list[str]:
    prefix, slash, name = key.rpartition("/")
    if not slash:
        return [f"{key!r}: no namespace (NFD would prefix it, deprecated)"]
    problems = []
    if "/" in prefix or not prefix or len(prefix) > 253 or not DNS_SUBDOMAIN.fullmatch(prefix):
        problems.append(f"{key!r}: the prefix is not a DNS subdomain")
    if not name or len(name) > 63 or not QUALIFIED.fullmatch(name):
        problems.append(f"{key!r}: the name is not a qualified name")
    kubernetes = prefix == "kubernetes.io" or prefix.endswith(".kubernetes.io")
    if kubernetes and not any(prefix == ns or prefix.endswith("." + ns) for ns in ALLOWED_KUBERNETES):
        problems.append(f"{key!r}: a denied namespace")
    return problems


def value_problems(value: str) -> list[str]:
    if len(value) > 63 or (value and not QUALIFIED.fullmatch(value)):
        return [f"{value!r}: not a label value"]
    return []


def nfd_problems(text: str) -> list[str]:
    """Everything in a feature file that NFD would skip, drop or complain of."""
    problems = [f"{len(text.encode())} bytes, over NFD's 65536"] if len(text.encode()) > 65536 else []
    seen = set()
    for line in (raw.strip() for raw in text.split("\n")):
        if line.startswith("# +"):
            directive, _, value = line[3:].partition("=")
            if directive not in DIRECTIVES:
                problems.append(f"{line!r}: an unknown directive")
            elif directive == "expiry-time" and not RFC3339.fullmatch(value.strip()):
                problems.append(f"{line!r}: not an RFC 3339 time")
        elif line and not line.startswith("#"):
            key, _, value = line.partition("=")
            problems += key_problems(key) + value_problems(value)
            if key in seen:
                problems.append(f"{key!r}: given twice")
            seen.add(key)
    return problems


@pytest.mark.parametrize("text, valid", [
    ("ml-auditor.io/torch.version=2.8.0-cu128", True),
    ("ml-auditor.io/goal.ci-cpu", True),  # the value defaults to "true"
    ("feature.node.kubernetes.io/x=1", True),
    ("sub.feature.node.kubernetes.io/x=1", True),
    ("ml-auditor.io/x=", True),
    ("# a comment, # +not a directive at this place", True),
    ("# +expiry-time=2026-12-02T21:46:41Z", True),
    ("kubernetes.io/x=1", False),
    ("node.kubernetes.io/x=1", False),
    ("ml-auditor.io/torch.version=2.8.0+cu128", False),
    ("ml-auditor.io/gpu.product=NVIDIA A100", False),
    ("ml-auditor.io/" + "n" * 64, False),
    ("ml-auditor.io/x=" + "v" * 64, False),
    ("ml-auditor.io/x.=1", False),
    ("ML-Auditor.io/x=1", False),
    ("x=1", False),
    ("ml-auditor.io/x=-1", False),
    ("# +expiry=2026-12-02T21:46:41Z", False),
    ("# +expiry-time=tomorrow", False),
    ("ml-auditor.io/x=1\nml-auditor.io/x=2", False),
])
def test_the_rules_here_reject_what_nfd_rejects(text, valid):
    assert (nfd_problems(text + "\n") == []) == valid


def labels_of(text: str) -> dict[str, str]:
    """A valid feature file of ours: its labels, by name without the namespace."""
    assert nfd_problems(text) == [], text
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert all(line.startswith(f"{NAMESPACE}/") for line in lines), text
    assert [line for line in text.splitlines() if line.startswith("# +")] == [text.splitlines()[2]], \
        "one expiry directive, before every label"
    return dict(line.removeprefix(f"{NAMESPACE}/").split("=", 1) for line in lines)


# --- cleaning values ------------------------------------------------------------------------


@pytest.mark.parametrize("raw, cleaned", [
    ("2.8.0+cu128", "2.8.0-cu128"),
    ("NVIDIA GeForce RTX 4090", "NVIDIA-GeForce-RTX-4090"),
    ("(Intel) Xeon_", "Intel--Xeon"),
    ("+++", ""),
    ("a" * 62 + "+b", "a" * 62),  # trimmed to 63, then its end made alphanumeric
    ("Ünïcode GPU", "n-code-GPU"),
])
def test_values_are_cleaned_as_gpu_feature_discovery_cleans_them(raw, cleaned):
    assert label_text(raw) == cleaned


def test_whatever_goes_in_comes_out_a_label_value_or_nothing():
    alphabet = "aZ09-_.+ /:=#()\t\u00e9\u4e2d"
    rng = random.Random(1)
    for _ in range(2000):
        cleaned = label_text("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80))))
        assert value_problems(cleaned) == []


# --- the simulated machines -----------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated(simulated_audits) -> dict[str, tuple[dict[str, str], dict, str]]:
    """Each simulated machine: its NFD labels (its saved snapshot replayed with --format nfd),
    its audit's JSON report, and the feature file itself."""
    def replay(audited):
        result = run_auditor("audit", "--snapshot", str(audited.snapshot), "--format", "nfd", env=audited.env)
        assert result.returncode == audited.result.returncode and result.stderr == "", result.stderr
        return labels_of(result.stdout), json.loads(audited.result.stdout), result.stdout

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(simulated_audits, pool.map(replay, simulated_audits.values())))


def assert_labels_follow_the_report(labels: dict[str, str], report: dict) -> None:
    assert labels["readiness"] == report["readiness"]["status"]
    goals = report["recommendation"]["goals"]
    assert {name.removeprefix("goal."): value for name, value in labels.items()
            if name.startswith("goal.") and name.count(".") == 1} == {g["goal"]: g["status"] for g in goals}
    # "ready for GOAL with FRAMEWORK": exactly the ready goals, with the framework each picks.
    assert {name for name in labels if name.startswith("goal.") and name.count(".") == 2} == \
        {f"goal.{g['goal']}.{g['framework']}" for g in goals if g["status"] == "ready"}
    for framework in report["readiness"]["frameworks"]:
        name = framework["framework"]
        assert labels[f"{name}.readiness"] == framework["status"]
        assert labels[f"{name}.version"] == framework["version"].replace("+", "-")
        kinds = {d["kind"] for d in framework["devices"] if d["status"] == "ready"}
        assert {label.split(".")[2] for label in labels if label.startswith(f"{name}.proven.")} == kinds
    assert labels["auditor.version"] == report["auditor_version"]
    assert labels["schema.version"] == report["schema_version"]
    assert labels["audit.mode"] == report["mode"]


def test_every_simulated_machine_gets_valid_labels_that_follow_its_report(simulated):
    for name, (labels, report, _) in simulated.items():
        assert_labels_follow_the_report(labels, report)


def test_labels_expire_a_day_after_the_audit(simulated):
    _, report, text = simulated["h100-node"]
    header = text.splitlines()[:3]
    assert header[1] == f"# Audited at {report['generated_at']} by auditor {report['auditor_version']} (full audit)."
    expires = datetime.fromisoformat(header[2].removeprefix("# +expiry-time="))
    assert expires - datetime.fromisoformat(report["generated_at"]) == timedelta(hours=24)


def test_an_h100_node_is_labelled_with_its_driver_and_gpus(simulated):
    labels, report, _ = simulated["h100-node"]
    assert {name: value for name, value in labels.items() if name.startswith("nvidia.")} == {
        "nvidia.driver": "550.90.07", "nvidia.driver.major": "550", "nvidia.driver.cuda": "12.4",
        "nvidia.gpu.count": "8", "nvidia.gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.gpu.compute": "9.0",
        "nvidia.gpu.memory": "81920"}
    # This machine's CPU-only torch cannot use the simulated GPUs: no GPU proven, not ready to train on them.
    assert labels["torch.build"] == "cpu" and "torch.proven.cuda" not in labels
    assert labels["goal.gpu-training"] == "not-ready" and "goal.gpu-training.torch" not in labels
    torch = next(fw for fw in report["readiness"]["frameworks"] if fw["framework"] == "torch")
    assert labels["torch.version"] == torch["version"].replace("+", "-")


def test_a_cpu_only_laptop_says_which_goals_it_is_ready_for(simulated):
    labels, _, _ = simulated["laptop-no-gpu"]
    assert labels["goal.ci-cpu"] == "ready" and labels["goal.ci-cpu.torch"] == "true"
    assert labels["goal.gpu-training"] == "not-ready"
    assert labels["torch.proven.cpu"] == labels["torch.proven.cpu.float32"] == "true"
    assert not [name for name in labels if name.startswith(("nvidia.", "amd.", "tpu."))]


def test_a_gpu_that_a_driver_only_partly_describes_keeps_what_it_does_say(simulated):
    labels, _, _ = simulated["nvml-errors"]  # GPU 1 answers no query: its name is unknown, not different
    assert labels["nvidia.gpu.count"] == "2" and labels["nvidia.gpu.product"] == "NVIDIA-A100-SXM4-80GB"
    assert simulated["container-without-gpu-access"][0]["nvidia.driver"] == "550.54.15"  # the kernel module's


def test_amd_and_tpu_nodes_are_labelled_with_their_accelerators(simulated):
    amd = simulated["mi300x-node"][0]
    assert {name: value for name, value in amd.items() if name.startswith("amd.")} == {
        "amd.gpu.count": "8", "amd.gpu.product": "AMD-Instinct-MI300X", "amd.gpu.gfx": "gfx942",
        "amd.rocm": "6.3.1-48", "amd.driver": "6.10.5"}
    tpu = simulated["tpu-v5e-vm"][0]
    assert (tpu["tpu.type"], tpu["tpu.chips"]) == ("v5litepod-4", "4")


def test_a_node_whose_gpu_is_proven_is_ready_for_gpu_training_with_torch(simulated_audits):
    """The H100 node's snapshot as a CUDA build of torch, alone, would have left it: the CPU and
    GPU 0 proven in float32 and bfloat16, float16 wrong. Only torch, and only these proofs: what
    the real frameworks prove on a loaded machine varies from run to run."""
    snapshot = load_snapshot(simulated_audits["h100-node"].snapshot)
    devices = [FrameworkDevice("cpu", "cpu"),
               FrameworkDevice("cuda:0", "cuda", "NVIDIA H100 80GB HBM3", 80 * 1024**3, "9.0")]
    proofs = [ComputeProof(device.id, workload, dtype, dtype != "float16", 1e-3, 5e-2, 0.01, workload=workload)
              for device in devices for workload in ("matmul", "conv2d", "train-step")
              for dtype in ("float32", "bfloat16", "float16")]
    snapshot.frameworks = {"torch": dataclasses.replace(
        snapshot.frameworks["torch"], version="2.8.0+cu128", probe=ProbeRun("torch", "ok"),
        build=FrameworkBuild(variant="cuda", cuda_version="12.8"), devices=devices, proofs=proofs)}
    report = build_report(snapshot)
    labels = labels_of(NfdRenderer().render(report))
    goal = next(goal for goal in report.recommendation.goals if goal.goal == "gpu-training")
    assert (goal.status, goal.framework) == ("ready", "torch")
    assert labels["goal.gpu-training"] == "ready" and labels["goal.gpu-training.torch"] == "true"
    assert labels["torch.proven.cuda"] == labels["torch.proven.cuda.bfloat16"] == "true"
    assert "torch.proven.cuda.float16" not in labels  # a dtype is proven only where every proof of it matched
    assert (labels["torch.version"], labels["torch.build"]) == ("2.8.0-cu128", "cuda-12.8")


# --- the real-world corpus and this machine -------------------------------------------------


def test_every_real_world_case_renders_a_valid_feature_file():
    """Replayed in process, as `auditor audit --snapshot CASE --format nfd` replays it."""
    for case in CASES:
        report = build_report(load_snapshot(case))
        labels = labels_of(NfdRenderer().render(report))
        torch = report.snapshot.frameworks.get("torch")
        if torch and (torch.version or torch.distribution_version):
            assert labels["torch.version"] == label_text(torch.version or torch.distribution_version), case.name
        nvidia = report.snapshot.accelerators.nvidia
        if nvidia and nvidia.driver_version:
            assert labels["nvidia.driver"] == nvidia.driver_version, case.name


def test_a_real_audit_leaves_only_its_feature_file_in_features_d(tmp_path):
    features = tmp_path / "features.d"
    features.mkdir()
    snapshot = tmp_path / "snapshot.json"
    result = run_auditor("audit", "--format", "nfd", "-o", str(features / "ml-auditor"),
                         "--save-snapshot", str(snapshot))
    assert result.returncode in (0, 1) and result.stdout == "", result.stderr
    assert os.listdir(features) == ["ml-auditor"]
    labels = labels_of((features / "ml-auditor").read_text())
    facts = load_snapshot(snapshot)
    for name, framework in facts.frameworks.items():
        assert labels[f"{name}.version"] == label_text(framework.version or framework.distribution_version)
        if framework.probe.status == "ok":
            assert labels[f"{name}.proven.cpu"] == "true"  # every framework computes on the CPU here


def test_the_feature_file_is_written_as_a_dot_file_and_renamed(tmp_path, monkeypatch):
    """nfd-worker reads every file but dot files, whenever the directory changes: what it could see
    before the rename is only the dot file."""
    seen = []
    rename = os.replace

    def watched(source, target):
        seen.append((sorted(os.listdir(tmp_path)), Path(source).read_text()))
        rename(source, target)

    monkeypatch.setattr(os, "replace", watched)
    open_output(tmp_path / "ml-auditor").write("ml-auditor.io/readiness=ready\n")
    [(names, written)] = seen
    assert len(names) == 1 and re.fullmatch(r"\.ml-auditor\.\w+\.tmp", names[0]), names
    assert written == "ml-auditor.io/readiness=ready\n"
    assert os.listdir(tmp_path) == ["ml-auditor"]


def test_a_missing_features_d_is_one_line_and_exit_2(tmp_path):
    target = tmp_path / "features.d" / "ml-auditor"  # NFD is not installed on this node
    result = run_auditor("audit", "--snapshot", str(CASES[0]), "--format", "nfd", "-o", str(target))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "cannot write the report" in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_file_nfd_would_ignore_is_refused_not_written():
    report = build_report(load_snapshot(CASES[0]))
    goal = report.recommendation.goals[0]
    report.recommendation.goals = [dataclasses.replace(goal, goal=f"goal-{i}") for i in range(2000)]
    with pytest.raises(OutputError, match="NFD ignores one over 65,536"):
        NfdRenderer().render(report)


def test_an_audit_time_that_is_not_rfc_3339_sets_no_expiry_and_adds_no_line():
    report = build_report(load_snapshot(CASES[0]))
    report.snapshot.generated_at = "yesterday\n# +no-label\nevil.example/x=1"
    text = NfdRenderer().render(report)
    assert nfd_problems(text) == [] and not [line for line in text.splitlines() if line.startswith("# +")]
    assert not [line for line in text.splitlines() if not line.startswith(("#", f"{NAMESPACE}/"))]
