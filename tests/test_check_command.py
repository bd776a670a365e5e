"""`auditor check`: every built-in profile on every simulated machine, on a replayed Apple silicon
snapshot and on this real machine, with the verdict of each requirement written out below;
then exit codes, --exit-zero, --fail-on and the defaults from [tool.auditor].

Each simulated machine is audited once (real torch, TensorFlow and JAX meeting the simulated
hardware) and its snapshot replayed with `auditor check --snapshot`. Those snapshots were
saved without export paths, so export requirements read "not checked" there; the real
machine is checked live, export paths included.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from auditor.decisions.recommendation import RESEARCH_CASE

ROOT = Path(__file__).resolve().parents[1]
APPLE = ROOT / "tests" / "snapshots" / "apple-m2-pro-macos14.json"
PROFILES = ["research", "gpu-training", "inference-serving", "mobile-export", "tpu", "apple-silicon", "ci-cpu"]
GIB = 1024**3

# The requirements of each built-in profile, in the order they are reported (checks follow them).
REQUIREMENTS = {
    "research": ["machine.memory", "framework.torch-or-tensorflow-or-jax", "compute.any.best.float32"],
    "gpu-training": ["machine.cpus", "machine.memory", "machine.shm", "accelerator",
                     "framework.torch-or-tensorflow-or-jax", "compute.any.best.float32",
                     "compute.any.gpu.float32.train-step", "compute.any.gpu.bfloat16-or-float16.train-step"],
    "inference-serving": ["machine.memory", "framework.torch-or-tensorflow", "compute.any.any.float32",
                          "export.tf-serving-or-onnx"],
    "mobile-export": ["framework.torch-or-tensorflow", "export.tflite+tflite-int8-or-executorch"],
    "tpu": ["accelerator", "framework.jax-or-tensorflow", "compute.jax-or-tensorflow.tpu.float32",
            "compute.jax-or-tensorflow.tpu.bfloat16"],
    "apple-silicon": ["machine.memory", "accelerator", "framework.torch-or-tensorflow",
                      "compute.torch-or-tensorflow.mps.float32"],
    "ci-cpu": ["machine.cpus", "machine.memory", "framework.torch-or-tensorflow-or-jax",
               "compute.any.cpu.float32"],
}

# machine -> profile -> (the status of each requirement above, the checks that did not pass).
# The simulated machines run CPU-only torch 2.13, tensorflow-cpu 2.21 and CPU JAX, so no
# accelerator is ever proven on them; the export paths were not checked in their snapshots (not
# checked: neither a pass nor a failure).
# The same on each NVIDIA machine whose CPU-only builds sit next to a visible GPU.
NVIDIA_WITH_CPU_BUILDS = {
    "research": ("pass pass fail", {"FW006": "warn"}),
    #                cpus mem  shm  acc  fw   best gpu32 gpu16
    "gpu-training": ("pass pass pass pass pass fail fail fail", {"FW006": "fail"}),  # raised to error
    "inference-serving": ("pass pass pass not-checked", {"FW006": "warn"}),
    "mobile-export": ("pass not-checked", {}),  # GPU checks do not count for it
    "tpu": ("fail pass fail fail", {"FW006": "warn"}),
    "apple-silicon": ("pass fail pass fail", {"FW006": "warn"}),
    "ci-cpu": ("pass pass pass pass", {}),
}
VERDICTS = {
    "h100-node": NVIDIA_WITH_CPU_BUILDS,
    "rtx4090-workstation": NVIDIA_WITH_CPU_BUILDS,
    "rtx5090-workstation": NVIDIA_WITH_CPU_BUILDS,
    "laptop-no-gpu": {  # 8 CPUs, 16 GiB, an Intel iGPU: the CPU is the best device, with a warning
        "research": ("pass pass warn", {}),
        "gpu-training": ("pass warn pass fail pass warn fail fail", {}),  # 16 of 32 GiB: a warning
        "inference-serving": ("pass pass pass not-checked", {}),
        "mobile-export": ("pass not-checked", {}),
        "tpu": ("fail pass fail fail", {}),
        "apple-silicon": ("pass fail pass fail", {}),
        "ci-cpu": ("pass pass pass pass", {}),
    },
    "container-without-gpu-access": {  # the host's A100 is on the bus, but not in the container
        "research": ("pass pass warn", {"GPU002": "fail", "GPU003": "warn"}),
                "gpu-training": ("pass pass pass fail pass warn fail fail", {"GPU002": "fail", "GPU003": "warn"}),
        "inference-serving": ("pass pass pass not-checked", {"GPU002": "fail", "GPU003": "warn"}),
        "mobile-export": ("pass not-checked", {}),
        "tpu": ("fail pass fail fail", {"GPU002": "fail", "GPU003": "warn"}),
        "apple-silicon": ("pass fail pass fail", {"GPU002": "fail", "GPU003": "warn"}),
        "ci-cpu": ("pass pass pass pass", {}),
    },
    "mi300x-node": {
        "research": ("pass pass fail", {}),
        "gpu-training": ("pass pass pass pass pass fail fail fail", {}),
        "inference-serving": ("pass pass pass not-checked", {}),
        "mobile-export": ("pass not-checked", {}),
        "tpu": ("fail pass fail fail", {}),
        "apple-silicon": ("pass fail pass fail", {}),
        "ci-cpu": ("pass pass pass pass", {}),
    },
    "tpu-v5e-vm": {
        "research": ("pass pass fail", {"TPU001": "warn"}),
        "gpu-training": ("pass pass pass fail pass fail fail fail", {"TPU001": "warn"}),
        "inference-serving": ("pass pass pass not-checked", {}),  # torch serves it: TPU001 is not its concern
        "mobile-export": ("pass not-checked", {}),
        "tpu": ("pass pass fail fail", {"TPU001": "fail"}),  # raised to error by the profile
        "apple-silicon": ("pass fail pass fail", {}),  # torch is its pick: TPU001 is not its concern
        "ci-cpu": ("pass pass pass pass", {}),
    },
    "nvml-errors": {  # GPU 1 is lost; GPU 0 alone meets gpu-training's one-GPU minimum
        "research": ("pass pass fail", {"FW006": "warn", "GPU004": "fail"}),
        "gpu-training": ("pass pass pass pass pass fail fail fail", {"FW006": "fail", "GPU004": "fail"}),
        "inference-serving": ("pass pass pass not-checked", {"FW006": "warn", "GPU004": "fail"}),
        "mobile-export": ("pass not-checked", {}),
        "tpu": ("fail pass fail fail", {"FW006": "warn", "GPU004": "fail"}),
        "apple-silicon": ("pass fail pass fail", {"FW006": "warn", "GPU004": "fail"}),
        "ci-cpu": ("pass pass pass pass", {}),
    },
    "gpu-claimed-by-nouveau": {  # no NVIDIA driver, so no GPU to count
        "research": ("pass pass warn", {"GPU001": "fail"}),
        "gpu-training": ("pass pass pass fail pass warn fail fail", {"GPU001": "fail"}),
        "inference-serving": ("pass pass pass not-checked", {"GPU001": "fail"}),
        "mobile-export": ("pass not-checked", {}),
        "tpu": ("fail pass fail fail", {"GPU001": "fail"}),
        "apple-silicon": ("pass fail pass fail", {"GPU001": "fail"}),
        "ci-cpu": ("pass pass pass pass", {}),
    },
    "apple-m2-pro-macos14": {  # replayed: PyTorch proven on MPS, TensorFlow through tensorflow-metal
        "research": ("pass pass pass", {}),
        # no /dev/shm on macOS (not measured), and MPS is not a cuda or rocm GPU
        "gpu-training": ("pass pass not-checked fail pass pass fail fail", {}),
        "inference-serving": ("pass pass pass not-checked", {}),
        "mobile-export": ("pass not-checked", {}),
        "tpu": ("fail pass fail fail", {}),
        "apple-silicon": ("pass pass pass pass", {}),
        "ci-cpu": ("pass pass pass pass", {}),
    },
}


@pytest.fixture(scope="module")
def snapshots(simulated_audits) -> dict[str, Path]:
    """A snapshot per simulated machine, from its one full audit (conftest), plus the Apple silicon one."""
    for name, audited in simulated_audits.items():
        assert audited.result.returncode in (0, 1), (name, audited.result.stderr)
    return {**{name: audited.snapshot for name, audited in simulated_audits.items()}, APPLE.stem: APPLE}


def run(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditor", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def check_json(*args: str, cwd: Path | None = None) -> tuple[int, dict]:
    result = run("check", "--format", "json", *args, cwd=cwd)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def statuses(profile: dict) -> tuple[str, dict[str, str]]:
    """(the requirement statuses in order, the checks that did not pass) of one profile's result."""
    requirements = [r for r in profile["requirements"] if not r["id"].startswith("check.")]
    assert [r["id"] for r in requirements] == REQUIREMENTS[profile["profile"]]
    checks = {r["id"].removeprefix("check."): r["status"] for r in profile["requirements"]
              if r["id"].startswith("check.") and r["status"] != "pass"}
    return " ".join(r["status"] for r in requirements), checks


def by_name(report: dict) -> dict[str, dict]:
    return {profile["profile"]: profile for profile in report["profiles"]}


@pytest.mark.parametrize("machine", list(VERDICTS))
def test_every_profile_on_every_simulated_machine(snapshots, machine):
    profiles = [arg for name in PROFILES for arg in ("--profile", name)]
    code, report = check_json("--snapshot", str(snapshots[machine]), *profiles)
    assert [p["profile"] for p in report["profiles"]] == PROFILES
    for name, profile in by_name(report).items():
        assert statuses(profile) == VERDICTS[machine][name], name
        expected = json.dumps(VERDICTS[machine][name])
        assert profile["status"] == ("not-ready" if "fail" in expected else "not-checked" if "not-checked" in expected
                                     else "ready"), name
    assert code == (1 if any(p["status"] == "not-ready" for p in report["profiles"]) else 0)


# --- evidence and fixes, on the simulated machines -----------------------------------


def _result(report: dict, profile: str, key: str) -> dict:
    return next(r for r in by_name(report)[profile]["requirements"] if r["id"] == key)


def test_a_cpu_build_next_to_gpus_gets_the_gpu_build_fitted_to_the_driver(snapshots):
    _, report = check_json("--snapshot", str(snapshots["h100-node"]), "--profile", "research")
    best = _result(report, "research", "compute.any.best.float32")
    assert best["evidence"][0] == "best accelerator here: 8 NVIDIA GPU(s) (cuda)"
    assert "PyTorch 2.13.0+cpu (cpu build): no matching proof; it sees cpu (cpu)" in best["evidence"]
    assert best["fix"].startswith("`pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126`")


def test_an_amd_node_gets_the_rocm_build_and_a_tpu_vm_the_tpu_build(snapshots):
    _, amd = check_json("--snapshot", str(snapshots["mi300x-node"]), "--profile", "gpu-training")
    assert _result(amd, "gpu-training", "compute.any.gpu.float32.train-step")["fix"] == (
        # torch 2.12 and 2.13's ROCm target lists are not recorded: the newest build known to list gfx942 is named
        "`pip install torch==2.11.* --index-url https://download.pytorch.org/whl/rocm7.2` (the ROCm 7.2 build of torch "
        "2.11 lists gfx942; no ROCm build of torch 2.13 or newer is recorded with it)")
    accelerator = _result(amd, "gpu-training", "accelerator")
    assert accelerator["evidence"][0] == "AMD GPU 1 AMD Instinct MI300X (gfx942): meets the minimums"
    _, tpu = check_json("--snapshot", str(snapshots["tpu-v5e-vm"]), "--profile", "tpu")
    assert _result(tpu, "tpu", "accelerator")["evidence"][0] == "TPU chip 0 (v5litepod-4): meets the minimums"
    assert _result(tpu, "tpu", "compute.jax-or-tensorflow.tpu.float32")["fix"] == '`pip install -U "jax[tpu]"` (JAX\'s TPU build)'


def test_a_gpu_the_container_cannot_reach_points_to_the_finding_that_explains_it(snapshots):
    _, report = check_json("--snapshot", str(snapshots["container-without-gpu-access"]), "--profile", "gpu-training")
    accelerator = _result(report, "gpu-training", "accelerator")
    assert accelerator["evidence"][:2] == ["0 of the required 1 GPU (NVIDIA or AMD) found",
                                           "PCI 0000:3b:00.0: NVIDIA gpu 0x20b5, driver nvidia"]
    assert accelerator["fix"].startswith("GPU002: ") and "--gpus all" in accelerator["fix"]
    _, laptop = check_json("--snapshot", str(snapshots["laptop-no-gpu"]), "--profile", "gpu-training")
    assert _result(laptop, "gpu-training", "compute.any.gpu.float32.train-step")["fix"] == (
        "Move this work to a machine with an NVIDIA or AMD GPU (a cloud VM with an L4, A10G, A100, H100 or MI300X: "
        "AWS g6/g5/p5, Google Cloud g2/a3, Azure NC/ND).")
    assert _result(laptop, "gpu-training", "machine.memory")["evidence"] == [
        "16.0 GiB usable (16.0 GiB total, cgroup limit none)"]


def test_an_export_path_missing_from_a_replayed_snapshot_is_not_checked(snapshots):
    _, report = check_json("--snapshot", str(snapshots["laptop-no-gpu"]), "--profile", "mobile-export")
    export = _result(report, "mobile-export", "export.tflite+tflite-int8-or-executorch")
    assert export["status"] == "not-checked"  # unknown is never a failure, nor a pass
    assert export["evidence"] == ["tflite: not checked in this audit", "tflite-int8: not checked in this audit",
                                  "executorch: not checked in this audit"]
    assert export["fix"].startswith("Convert it for real: `auditor audit --deep` on the machine itself")
    verdict = next(p for p in report["profiles"] if p["profile"] == "mobile-export")
    assert verdict["status"] == "not-checked"


def test_a_compiled_proof_left_for_deep_is_not_proven(snapshots, tmp_path):
    profile = tmp_path / "compiled.toml"
    profile.write_text('schema = "auditor-profile-v1"\ndescription = "compiled training"\n'
                       '[[compute]]\nframework = "torch"\ndevice = "cpu"\ncompiler = "torch.compile"\n')
    _, report = check_json("--snapshot", str(snapshots["laptop-no-gpu"]), "--profile", str(profile))
    result = _result(report, "compiled", "compute.torch.cpu.float32.torch.compile")
    assert result["status"] == "fail"
    assert result["evidence"] == ["PyTorch 2.13.0+cpu on cpu: train-step float32 torch.compile not run: needs --deep "
                                  "(torch.compile generates and compiles code: seconds even for a tiny model)"]
    assert result["fix"].startswith("Run `auditor check` on the machine itself")


# --- this real machine -----------------------------------------------------------------


@pytest.fixture(scope="module")
def real_check(tmp_path_factory) -> tuple[int, dict, dict]:
    """Every built-in profile checked live here: the probes run, export paths included."""
    snapshot = tmp_path_factory.mktemp("real") / "snapshot.json"
    result = run("check", "--format", "json", "--save-snapshot", str(snapshot),
                            *[arg for name in PROFILES for arg in ("--profile", name)])
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout), json.loads(snapshot.read_text())


def test_check_probes_the_export_paths_its_profiles_name_and_no_more(real_check):
    _, _, snapshot = real_check
    assert sorted(snapshot["exports"]) == ["executorch", "onnx", "tf-serving", "tflite", "tflite-int8"]
    assert snapshot["mode"] == "full"  # no built-in profile needs the --deep proofs


def test_every_profile_on_this_machine(real_check):
    code, report, snapshot = real_check
    machine, accelerators = snapshot["machine"], snapshot["accelerators"]
    if (accelerators["nvidia"] or accelerators["amd"] or accelerators["tpu"]
            or (accelerators["apple"] and accelerators["apple"]["mps_eligible"])):
        pytest.skip("the real-machine verdicts are written for a machine without accelerators, like CI")
    # The machine's size decides these rows: CI has 2 CPUs and about 23.5 GiB.
    cpus, memory = machine["cpu"]["usable_cpus"], machine["memory"]["usable_bytes"] / GIB
    shm = machine["memory"]["shm_bytes"] / GIB

    def at_least(have: float, wanted: float) -> str:  # the built-in machine minimums are capacity: they warn
        return "pass" if have >= wanted else "warn"

    model_server = {} if shutil.which("tensorflow_model_server") else {"EXP007": "warn"}
    expected = {
        "research": (f"{at_least(memory, 8)} pass warn", {}),
        "gpu-training": (f"{at_least(cpus, 4)} {at_least(memory, 32)} {at_least(shm, 1)} fail pass warn "
                         "fail fail", {}),
        "inference-serving": (f"{at_least(memory, 4)} pass pass pass", model_server),
        "mobile-export": ("pass pass", {}),
        "tpu": ("fail pass fail fail", {}),
        "apple-silicon": (f"{at_least(memory, 16)} fail pass fail", {}),
        "ci-cpu": (f"{at_least(cpus, 2)} {at_least(memory, 4)} pass pass", {}),
    }
    for name, profile in by_name(report).items():
        assert statuses(profile) == expected[name], name
    assert code == 1  # tpu and apple-silicon can never be ready here
    exports = _result(report, "mobile-export", "export.tflite+tflite-int8-or-executorch")["evidence"]
    assert [line.split(":")[0] + ": " + line.split(": ")[1].split(" ")[0] for line in exports] == [
        "tflite: ready", "tflite-int8: ready", "executorch: ready"]


# --- exit codes ------------------------------------------------------------------------


@pytest.mark.parametrize("args, code", [
    (["--profile", "ci-cpu"], 0),  # ready
    (["--profile", "research"], 0),  # ready with a warning
    (["--profile", "research", "--fail-on", "warning"], 1),
    (["--profile", "gpu-training"], 1),  # not ready
    (["--profile", "ci-cpu", "--profile", "gpu-training"], 1),  # one profile not ready is enough
    (["--profile", "gpu-training", "--exit-zero"], 0),
    (["--profile", "gpu-training", "--fail-on", "never"], 0),
], ids=["ready", "warning", "fail-on-warning", "not-ready", "one-of-two", "exit-zero", "fail-on-never"])
def test_exit_codes(snapshots, args, code):
    result = run("check", "--snapshot", str(snapshots["laptop-no-gpu"]), *args)
    assert result.returncode == code, result.stderr
    assert result.stderr == ""


def _one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1, result.stderr
    return result.stderr.removeprefix("auditor: error: ").rstrip("\n")


def test_input_errors_exit_2_even_with_exit_zero(tmp_path):
    assert _one_line_error(run("check", "--exit-zero", cwd=tmp_path)) == (
        "no profile to check: pass --profile NAME (`auditor profiles` lists them) or set profiles in [tool.auditor]")
    assert _one_line_error(run("check", "--profile", "ci-cpu", "--snapshot", str(APPLE), "--root",
                                          str(tmp_path))) == (
        "--snapshot replays saved facts and cannot be combined with --root")


BREAK_EVALUATE = textwrap.dedent(f"""
    import auditor.cli, auditor.decisions.goals

    def evaluate(profile, report, selection=None, framework=None):
        raise RuntimeError("boom from the test seam")

    auditor.decisions.goals.evaluate = evaluate
    auditor.cli.main(["check", "--profile", "ci-cpu", "--snapshot", {str(APPLE)!r}, "--exit-zero"])
""")


def test_an_internal_error_is_one_line_and_exit_3():
    result = subprocess.run([sys.executable, "-c", BREAK_EVALUATE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 3
    assert result.stderr == ("auditor: error: internal error: RuntimeError: boom from the test seam "
                             "(set AUDITOR_DEBUG=1 for the traceback)\n")


# --- [tool.auditor] ----------------------------------------------------------------------


def _project(tmp_path: Path, table: str) -> Path:
    (tmp_path / "team").mkdir(parents=True, exist_ok=True)
    (tmp_path / "team" / "ours.toml").write_text('schema = "auditor-profile-v1"\ndescription = "ours"\n'
                                                 'extends = ["ci-cpu"]\n[machine]\nmin-usable-cpus = 64\n'
                                                 'severity = "error"\n')  # the team's minimum fails; ci-cpu's warns
    (tmp_path / "pyproject.toml").write_text("[tool.auditor]\n" + textwrap.dedent(table))
    nested = tmp_path / "src" / "pkg"
    nested.mkdir(parents=True, exist_ok=True)
    return nested


def test_the_config_names_the_default_profiles_relative_to_itself(snapshots, tmp_path):
    cwd = _project(tmp_path, 'profiles = ["ci-cpu", "team/ours.toml"]\n')
    code, report = check_json("--snapshot", str(snapshots["laptop-no-gpu"]), cwd=cwd)
    assert [p["profile"] for p in report["profiles"]] == ["ci-cpu", "ours"]
    assert report["profiles"][1]["source"] == str(tmp_path / "team" / "ours.toml")
    assert _result(report, "ours", "machine.cpus")["status"] == "fail"  # 8 usable, 64 wanted
    assert code == 1
    # --profile replaces the file's profiles
    code, report = check_json("--snapshot", str(snapshots["laptop-no-gpu"]), "--profile", "ci-cpu", cwd=cwd)
    assert ([p["profile"] for p in report["profiles"]], code) == (["ci-cpu"], 0)


def test_the_config_sets_fail_on_and_the_checks_a_profile_counts(snapshots, tmp_path):
    cwd = _project(tmp_path, 'profiles = ["research"]\nfail-on = "warning"\nselect = ["MEM", "GPU"]\n')
    result = run("check", "--snapshot", str(snapshots["laptop-no-gpu"]), "--format", "json", cwd=cwd)
    assert result.returncode == 1  # research warns on a machine without an accelerator
    checks = [r["id"] for r in json.loads(result.stdout)["profiles"][0]["requirements"] if r["id"].startswith("check.")]
    assert checks and all(key.startswith(("check.MEM", "check.GPU")) for key in checks)
    assert run("check", "--snapshot", str(snapshots["laptop-no-gpu"]), "--fail-on", "error",
                          cwd=cwd).returncode == 0


@pytest.mark.parametrize("table, message", [
    ('profiles = "ci-cpu"\n', '[tool.auditor] profiles must be a list of profile names or paths such as '
                              '["gpu-training"], not a string: "ci-cpu"'),
    ('profiles = ["ci-cpu", 3]\n', "[tool.auditor] profiles must be a list of profile names or paths, but it holds "
                                   "an integer: 3"),
])
def test_a_malformed_profiles_key_is_one_line(tmp_path, table, message):
    cwd = _project(tmp_path, table)
    assert _one_line_error(run("check", "--snapshot", str(APPLE), cwd=cwd)) == (
        f"{tmp_path / 'pyproject.toml'}: {message}")


def test_an_unknown_profile_in_the_config_names_the_config(tmp_path):
    cwd = _project(tmp_path, 'profiles = ["gpu-trainig"]\n')
    assert _one_line_error(run("check", "--snapshot", str(APPLE), cwd=cwd)).startswith(
        f"{tmp_path / 'pyproject.toml'}: [tool.auditor] profiles: expected a built-in profile (")


# --- the recommendation, fitted to each goal -----------------------------------------------

CU126 = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"
ROCM = "pip install torch==2.11.* --index-url https://download.pytorch.org/whl/rocm7.2"

# machine -> goal -> (the framework recommended, commands that must be among its next steps,
# commands that must not). Ties between equally proven frameworks are settled by import time,
# which varies from run to run, so only goals the machine's facts decide are listed.
GOAL_EXPECTATIONS = {
    "h100-node": {"research": ("torch", [CU126], ["tensorflow"]),
                  "gpu-training": ("torch", [CU126], ['pip install "tensorflow[and-cuda]==2.21.0"'])},
    "rtx4090-workstation": {"research": ("torch", [CU126], [])},
    "mi300x-node": {"research": ("torch", [ROCM], []), "gpu-training": ("torch", [ROCM], [])},
    "tpu-v5e-vm": {"research": ({"jax", "tensorflow"}, [], []), "tpu": ({"jax", "tensorflow"}, [], [])},
    "laptop-no-gpu": {"research": ("torch", [], []),
                      # Its snapshot converted nothing: checking the goal on the machine does.
                      "mobile-export": ({"torch", "tensorflow"}, ["auditor check --profile mobile-export"], [])},
    "container-without-gpu-access": {"research": ("torch", ["docker run --gpus all ..."], [])},
    "gpu-claimed-by-nouveau": {"gpu-training": ("torch", ["sudo ubuntu-drivers install"], [])},
    "apple-m2-pro-macos14": {"apple-silicon": ({"torch", "tensorflow"}, [], []), "tpu": ("tensorflow", [], [])},
}


@pytest.mark.parametrize("machine", list(GOAL_EXPECTATIONS))
def test_the_recommendation_names_the_framework_and_commands_each_goal_needs_here(snapshots, machine):
    profiles = [arg for name in PROFILES for arg in ("--profile", name)]
    _, report = check_json("--snapshot", str(snapshots[machine]), *profiles)
    goals = {goal["goal"]: goal for goal in report["recommendation"]["goals"]}
    assert list(goals) == PROFILES
    for name, (framework, commands, absent) in GOAL_EXPECTATIONS[machine].items():
        goal = goals[name]
        assert goal["framework"] in (framework if isinstance(framework, set) else {framework}), (name, goal)
        named = [step["command"] for step in goal["next_steps"] if step["command"]]
        assert all(command in named for command in commands), (name, named)
        assert not [c for c in named for unwanted in absent if unwanted in c], (name, named)
        assert goal["status"] == by_name(report)[name]["status"]


def test_the_recommendation_gives_reasons_drawn_from_this_machine(snapshots):
    _, h100 = check_json("--snapshot", str(snapshots["h100-node"]), "--profile", "research")
    (research,) = h100["recommendation"]["goals"]
    assert research["reasons"] == [f"on 8 NVIDIA GPU(s): {RESEARCH_CASE}"]
    _, tpu = check_json("--snapshot", str(snapshots["tpu-v5e-vm"]), "--profile", "tpu")
    (goal,) = tpu["recommendation"]["goals"]
    assert goal["reasons"][0].startswith("this is a TPU host (a v5litepod-4 TPU): TPUs run XLA programs")
    tpu_install = {"jax": 'pip install -U "jax[tpu]"', "tensorflow": "pip install tensorflow-tpu"}[goal["framework"]]
    assert any(step["command"] and step["command"].startswith(tpu_install) for step in goal["next_steps"])
    _, tpu_research = check_json("--snapshot", str(snapshots["tpu-v5e-vm"]), "--profile", "research")
    (research,) = tpu_research["recommendation"]["goals"]
    assert research["framework"] in ("jax", "tensorflow")
    assert "PyTorch: 0 of 1 compute requirement(s) proven; PyTorch reaches TPUs only through the separate torch-xla " \
           "package, which is not installed" in research["alternatives"]
    _, laptop = check_json("--snapshot", str(snapshots["laptop-no-gpu"]), "--profile", "research")
    (research,) = laptop["recommendation"]["goals"]
    assert research["framework"] == "torch" and research["device"] == "cpu" and research["status"] == "ready"
    assert research["reasons"][-1] == f"no accelerator here, so the goal decides: {RESEARCH_CASE}"


def test_a_user_profile_is_named_by_its_file_in_the_commands(snapshots, tmp_path):
    team = tmp_path / "team.toml"
    team.write_text('schema = "auditor-profile-v1"\ndescription = "Our phones"\n[[exports]]\nany-of = ["executorch"]\n')
    _, report = check_json("--snapshot", str(snapshots["laptop-no-gpu"]), "--profile", str(team))
    (goal,) = report["recommendation"]["goals"]
    assert (goal["goal"], goal["framework"]) == ("team", "torch")  # only torch reaches ExecuTorch
    assert goal["next_steps"] == [{"reason": "executorch not converted in this audit",
                                   "action": f"Convert executorch for real and run the result: `auditor check --profile "
                                             f"{team}`",
                                   "command": f"auditor check --profile {team}", "goals": ["team"]}]


def test_the_recommendation_for_mobile_names_the_path_proven_here(real_check):
    _, report, _ = real_check
    mobile = {goal["goal"]: goal for goal in report["recommendation"]["goals"]}["mobile-export"]
    assert mobile["status"] == "ready"
    assert (mobile["framework"], mobile["path"]) in {("torch", "executorch"), ("tensorflow", "tflite + tflite-int8")}
    assert all(reason.split(" ")[0] in ("executorch", "tflite", "tflite-int8") for reason in mobile["reasons"]
               if "proven here" in reason)


def test_a_tensorflow_goal_is_never_told_to_install_torch(tmp_path):
    """A goal that names TensorFlow only: the fix of its GPU requirement is TensorFlow's CUDA build,
    and torch's CPU build next to the GPU (FW006) is not its concern."""
    case = json.loads((ROOT / "tests" / "realworld" / "cases" / "tf2161-plain-pip-no-cuda-libs.json").read_text())
    case["frameworks"]["torch"] = {"name": "torch", "probe": {"name": "torch", "status": "ok"}, "distribution": "torch",
                                   "distribution_version": "2.9.1", "version": "2.9.1+cpu", "build": {"variant": "cpu"},
                                   "devices": [{"id": "cpu", "kind": "cpu"}], "proofs": None}
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(case))
    profile = tmp_path / "tf.toml"
    profile.write_text('schema = "auditor-profile-v1"\ndescription = "TensorFlow training"\n[[frameworks]]\n'
                       'any-of = ["tensorflow"]\n[[compute]]\ndevice = "gpu"\n')
    code, report = check_json("--snapshot", str(snapshot), "--profile", str(profile))
    assert code == 1
    verdict = report["profiles"][0]
    failed = {r["id"]: r["fix"] for r in verdict["requirements"] if r["status"] != "pass"}
    assert failed == {"compute.any.gpu.float32": '`pip install "tensorflow[and-cuda]==2.16.1"` (TensorFlow\'s Linux '
                                                 'wheels bring their CUDA libraries with the and-cuda extra)',
                      "check.FW011": '`pip install "tensorflow[and-cuda]==2.16.1"`: TensorFlow\'s Linux wheels bring '
                                     'their CUDA libraries with the and-cuda extra.'}
    goal = report["recommendation"]["goals"][0]
    assert goal["framework"] == "tensorflow"
    assert not [step for step in goal["next_steps"] if "torch" in (step["command"] or "")]
    # The audit itself still says torch is a CPU build next to a GPU: it concerns torch's users.
    assert {(f["code"], f["framework"]) for f in report["findings"]} == {("FW011", "tensorflow"), ("FW006", "torch")}


# --- auditor audit --goal ------------------------------------------------------------------------


def audit_goals(*args: str) -> tuple[list[str], dict[str, str]]:
    """The goals an audit answered, and those it left out with why."""
    result = run("audit", "--format", "json", *args)
    assert result.returncode in (0, 1), result.stderr
    recommendation = json.loads(result.stdout)["recommendation"]
    return [goal["goal"] for goal in recommendation["goals"]], recommendation["goals_left_out"]


def test_an_audit_answers_the_goals_this_machine_can_have(snapshots):
    linux, left_out = audit_goals("--snapshot", str(snapshots["laptop-no-gpu"]))
    assert linux == ["ci-cpu", "gpu-training", "inference-serving", "mobile-export", "research"]
    assert left_out == {"apple-silicon": "not Apple silicon", "tpu": "no TPU signal here"}
    text = run("audit", "--snapshot", str(snapshots["laptop-no-gpu"]), "--format", "markdown").stdout
    assert ("Not asked here: apple-silicon (not Apple silicon), tpu (no TPU signal here); `auditor audit --goal all` "
            "asks every goal, `--goal NAME` one.") in text
    tpu_vm, left_out = audit_goals("--snapshot", str(snapshots["tpu-v5e-vm"]))
    assert "tpu" in tpu_vm and left_out == {"apple-silicon": "not Apple silicon"}
    mac, left_out = audit_goals("--snapshot", str(snapshots["apple-m2-pro-macos14"]))
    assert "apple-silicon" in mac and left_out == {"tpu": "no TPU signal here"}


def test_goal_names_the_goals_to_answer(snapshots, tmp_path):
    laptop = str(snapshots["laptop-no-gpu"])
    assert audit_goals("--snapshot", laptop, "--goal", "all") == (
        ["apple-silicon", "ci-cpu", "gpu-training", "inference-serving", "mobile-export", "research", "tpu"], {})
    assert audit_goals("--snapshot", laptop, "--goal", "tpu", "--goal", "research", "--goal", "tpu") == (
        ["tpu", "research"], {})
    team = tmp_path / "team.toml"
    team.write_text('schema = "auditor-profile-v1"\ndescription = "Our phones"\n[[exports]]\nany-of = ["executorch"]\n')
    assert audit_goals("--snapshot", laptop, "--goal", str(team))[0] == ["team"]


def test_a_quick_audit_answers_the_goal_it_is_given():
    goals, _ = audit_goals("--quick", "--goal", "research")
    assert goals == ["research"]
    assert audit_goals("--quick")[0] == []  # a quick audit proves nothing to fit the built-in goals to


def test_an_unknown_goal_is_an_input_error_before_anything_is_probed():
    result = run("audit", "--goal", "reserach")
    assert result.returncode == 2 and result.stdout == ""
    assert _one_line_error(result).startswith("--goal: expected a built-in profile (apple-silicon, ")
    assert "got 'reserach'" in result.stderr
