"""The compatibility knowledge files: schema-valid, every row sourced and dated, and the loader's answers."""

from __future__ import annotations

import copy
import datetime
import importlib.metadata
import json
import re
import subprocess
import sys
from importlib import resources

import jsonschema
import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

import auditor.knowledge as knowledge

SOURCE = re.compile(r"^(https://\S+|[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+:\S+)$")


def _text(name: str) -> str:
    return resources.files("auditor.knowledge").joinpath(name).read_text(encoding="utf-8")


def _data(name: str) -> dict:
    return json.loads(_text(f"{name}.json"))


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(_text(f"schemas/{name}.schema.json"))
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def _row_problems(row: dict) -> list[str]:
    """What is wrong with one row's provenance (empty when it has a real source and a valid date)."""
    problems = []
    source = row.get("source")
    if not isinstance(source, str) or not source.strip():
        problems.append("no source")
    elif not SOURCE.match(source):
        problems.append(f"source is neither a URL nor owner/repo:path: {source!r}")
    checked = row.get("checked")
    try:
        day = datetime.date.fromisoformat(checked) if isinstance(checked, str) else None
    except ValueError:
        day = None
    if day is None or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", checked):
        problems.append(f"checked is not a YYYY-MM-DD date: {checked!r}")
    elif day > datetime.date.today():
        problems.append(f"checked is in the future: {checked}")
    return problems


def _row_lists(data: dict) -> dict[str, list[dict]]:
    """The row lists of one file: its top-level lists (and single row objects) plus nested torch variants."""
    out = {}
    for key, value in data.items():
        if key == "description":
            continue
        out[key] = value if isinstance(value, list) else [value]
    if "releases" in data and data["releases"] and "variants" in data["releases"][0]:
        out["releases[].variants"] = [v for release in data["releases"] for v in release["variants"]]
    return out


# ----------------------------------------------------------------------------------- files and schemas


def test_every_knowledge_file_has_a_schema_and_every_schema_a_file():
    root = resources.files("auditor.knowledge")
    files = sorted(p.name[: -len(".json")] for p in root.iterdir() if p.name.endswith(".json"))
    schemas = sorted(p.name[: -len(".schema.json")] for p in root.joinpath("schemas").iterdir()
                     if p.name.endswith(".schema.json"))
    assert files == schemas == sorted(knowledge.FILES)


@pytest.mark.parametrize("name", knowledge.FILES)
def test_file_validates_against_its_schema(name):
    schema = json.loads(_text(f"schemas/{name}.schema.json"))
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _validator(name).iter_errors(_data(name))]
    assert errors == []


@pytest.mark.parametrize("name", knowledge.FILES)
def test_every_schema_row_requires_source_and_checked(name):
    schema = json.loads(_text(f"schemas/{name}.schema.json"))
    row_defs = {key: d for key, d in schema["$defs"].items() if d.get("type") == "object"}
    assert row_defs
    for key, definition in row_defs.items():
        assert {"source", "checked"} <= set(definition["required"]), key
        assert definition["additionalProperties"] is False, key


@pytest.mark.parametrize("name", knowledge.FILES)
def test_every_row_has_a_source_and_a_checked_date(name):
    for list_name, rows in _row_lists(_data(name)).items():
        assert rows, list_name
        for index, row in enumerate(rows):
            assert _row_problems(row) == [], f"{name}:{list_name}[{index}]"


def test_tables_returns_every_row_with_provenance():
    tables = knowledge.tables()
    assert set(tables) >= {"cuda-drivers/toolkits", "cuda-drivers/family_floors", "cuda-drivers/branches",
                           "driver-branches/branches", "driver-branches/last_branch_for_architecture",
                           "compute-capabilities/rows", "pytorch-releases/releases", "pytorch-releases/variants",
                           "tensorflow-releases/releases", "tensorflow-releases/platform_rules",
                           "export-pins/executorch", "export-pins/coremltools", "export-pins/onnx"}
    for key, rows in tables.items():
        assert rows, key
        for row in rows:
            assert _row_problems(row) == [], (key, row)


@pytest.mark.parametrize("name", knowledge.FILES)
def test_a_row_stripped_of_its_source_is_rejected(name):
    data = _data(name)
    validator = _validator(name)
    for list_name, rows in _row_lists(data).items():
        stripped = copy.deepcopy(rows[0])
        del stripped["source"]
        assert _row_problems(stripped) == ["no source"]
        broken = _with_row(data, list_name, stripped)
        assert not validator.is_valid(broken), f"{name}:{list_name} accepted a row without a source"
        with pytest.raises(jsonschema.ValidationError, match="'source' is a required property"):
            jsonschema.validate(broken, validator.schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("name", knowledge.FILES)
@pytest.mark.parametrize("field, value", [
    ("source", ""), ("source", "[S1]"), ("checked", "2026-02-30"), ("checked", "24.11.2026"), ("checked", ""),
])
def test_a_row_with_an_empty_source_or_a_bad_date_is_rejected(name, field, value):
    data = _data(name)
    validator = _validator(name)
    for list_name, rows in _row_lists(data).items():
        bad = copy.deepcopy(rows[0])
        bad[field] = value
        assert _row_problems(bad), (list_name, field, value)
        assert not validator.is_valid(_with_row(data, list_name, bad)), (name, list_name, field, value)


def test_a_row_without_checked_is_rejected():
    data = _data("cuda-drivers")
    row = copy.deepcopy(data["toolkits"][0])
    del row["checked"]
    assert _row_problems(row)
    assert not _validator("cuda-drivers").is_valid(_with_row(data, "toolkits", row))


def _with_row(data: dict, list_name: str, row: dict) -> dict:
    """A copy of a file with one more row appended to the named list."""
    broken = copy.deepcopy(data)
    if list_name == "releases[].variants":
        broken["releases"][0]["variants"].append(row)
    elif isinstance(broken[list_name], list):
        broken[list_name].append(row)
    else:
        broken[list_name] = row
    return broken


# ----------------------------------------------------------------------------------- consistency


def test_toolkit_rows_are_consistent():
    rows = _data("cuda-drivers")["toolkits"]
    versions = [row["version"] for row in rows]
    assert len(versions) == len(set(versions))
    minors = {tuple(Version(v).release[:2]) for v in versions}
    assert {(9, 0), (9, 1), (9, 2), (10, 0), (10, 1), (10, 2)} | {(11, m) for m in range(9)} | {(12, m) for m in (0, 1, 2, 3, 4, 5, 6, 8, 9)} | {(13, 0), (13, 1), (13, 2)} == minors
    for minor in minors:
        group = [row for row in rows if tuple(Version(row["version"]).release[:2]) == minor]
        ga = [row for row in group if row["kind"] == "ga"]
        assert len(ga) == 1, minor
        for row in group:
            if row["kind"] == "update":
                assert Version(row["linux"]) >= Version(ga[0]["linux"]), row["version"]
        if minor[0] >= 13:
            assert all(row["windows"] is None for row in group)
        else:
            assert all(row["windows"] for row in group)


def test_branch_table_matches_the_ga_rows_and_family_floors_sit_below_them():
    data = _data("cuda-drivers")
    branches = {row["branch"]: row["newest_cuda"] for row in data["branches"]}
    for row in data["toolkits"]:
        if row["kind"] == "ga":
            assert branches[Version(row["linux"]).release[0]] == row["version"].rsplit(".", 1)[0]
            major, minor = Version(row["version"]).release[:2]
            floor = knowledge.family_floor(major, "linux")
            # 11.0 GA shipped before the 11.x compatibility floor existed; CUDA 9 and 10 have none.
            if major >= 11 and (minor > 0 or major != 11):
                assert Version(floor.driver) <= Version(row["linux"]), row["version"]
    max_branch = {row["cuda_major"]: row["max_driver_branch"] for row in data["family_floors"]}
    for major in (11, 12):
        assert max_branch[major] > Version(knowledge.family_floor(major, "linux").driver).release[0]
    assert max_branch[13] is None


def test_torch_rows_are_consistent():
    for row in _data("pytorch-releases")["releases"]:
        assert Version(row["python_min"]) <= Version(row["python_max"]), row["version"]
        names = [v["variant"] for v in row["variants"]]
        assert len(names) == len(set(names))
        for variant in row["variants"]:
            assert variant["variant"] == "cu" + variant["cuda"].replace(".", "")
            assert bool(variant["architectures"]) == variant["architectures_verified"], (row["version"], variant["variant"])
        if row["pypi_default_variant"]:
            assert row["pypi_default_variant"] in names, row["version"]


def test_architecture_retirement_rows_match_the_compute_capability_table():
    for row in _data("driver-branches")["last_branch_for_architecture"]:
        for cc in row["compute_capabilities"]:
            assert knowledge.compute_capability(cc).architecture == row["architecture"]
    for row in _data("compute-capabilities")["rows"]:
        assert row["sm"] == "sm_" + row["cc"].replace(".", "")


# ----------------------------------------------------------------------------------- spot checks


def test_nvidia_spot_checks():
    assert knowledge.toolkit_driver("12.8", "linux").driver == "570.26"
    assert knowledge.toolkit_driver("12.8.1", "linux").driver == "570.26"  # the GA floor of 12.8
    assert knowledge.toolkit_driver("12.8", "windows").driver == "570.65"
    assert knowledge.toolkit_driver("13.0", "linux").driver == "580.65.06"
    assert knowledge.toolkit_driver("13.0", "windows") is None  # NVIDIA gives no Windows number for 13.x
    assert knowledge.toolkit_driver("11.0", "linux").driver == "450.51.05"  # GA, not the RC row
    assert knowledge.family_floor(12, "windows").driver == "528.33"
    assert knowledge.family_floor(12, "linux").driver == "525.60.13"
    assert knowledge.family_floor(11, "linux").driver == "450.80.02"
    assert knowledge.family_floor(13, "windows").driver == "580"
    assert knowledge.compute_capability("12.0").architecture.startswith("Blackwell")
    assert "GeForce RTX 5090" in knowledge.compute_capability("12.0").examples
    assert knowledge.compute_capability("sm_86").cc == "8.6"
    assert knowledge.compute_capability("sm_120").cc == "12.0"
    assert knowledge.compute_capability("9.0").architecture == "Hopper"
    assert knowledge.last_branch_for("Volta") == 580
    assert knowledge.last_branch_for("pascal") == 580


def test_torch_spot_checks():
    release = knowledge.torch_release("2.9.1+cu128")
    assert release.version == "2.9"
    cu128 = next(v for v in release.variants if v.cuda == "12.8")
    assert "sm_120" in cu128.architectures and "sm_70" in cu128.architectures
    assert cu128.index_url == "https://download.pytorch.org/whl/cu128"
    assert (release.python_min, release.python_max) == ("3.10", "3.14")
    assert release.pypi_default_variant == "cu128"
    assert knowledge.torch_release("2.7.1").pypi_default_variant == "cu126"
    assert "sm_120" not in next(v for v in knowledge.torch_release("2.7.1").variants if v.cuda == "12.6").architectures
    assert knowledge.torch_release("2.11.0").pypi_default_variant == "cu130"
    cu128_211 = next(v for v in knowledge.torch_release("2.11.0").variants if v.cuda == "12.8")
    assert "sm_70" not in cu128_211.architectures
    assert knowledge.torch_release("2.13.0+cpu").python_max == "3.15"
    assert knowledge.torch_release("2.12.0").rocm == "7.2"
    assert knowledge.newest_torch_release().version == "2.13"


def test_torch_python_min_matches_the_installed_wheel():
    try:
        dist = importlib.metadata.distribution("torch")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("torch is not installed")
    release = knowledge.torch_release(dist.version)
    if release is None:
        pytest.skip(f"installed torch {dist.version} is not in the table")
    lower = [s.version for s in SpecifierSet(dist.metadata["Requires-Python"]) if s.operator in (">=", ">")]
    assert lower, dist.metadata["Requires-Python"]
    assert Version(release.python_min) == Version(lower[0])
    if Version(dist.version).release[:2] == (2, 13):
        assert Version(knowledge.torch_release("2.13.0+cpu").python_min) == Version(lower[0])


def test_tensorflow_spot_checks():
    release = knowledge.tensorflow_release("2.20.0")
    assert release.python_max == "3.13"
    assert (release.cuda, release.cudnn) == ("12.5", "9.3")
    assert release.compute_capabilities == ("sm_60", "sm_70", "sm_80", "sm_89", "compute_90")
    assert knowledge.tensorflow_release("2.21.0").python_min == "3.10"
    assert knowledge.tensorflow_release("2.16.1").version == "2.16"
    assert knowledge.tensorflow_rule("windows-native-gpu-last") == "2.10"
    assert knowledge.tensorflow_rule("macos-x86-last") == "2.16"
    assert knowledge.tensorflow_rule("wheels-need-avx") == "true"
    assert knowledge.tensorflow_rule("apple-gpu-needs-tensorflow-metal") == "tensorflow-metal"
    assert knowledge.tensorflow_rule("and-cuda-extra") == "2.14"


def test_export_spot_checks():
    assert knowledge.export_pin("executorch", "1.0.1") == "torch>=2.9,<2.10"
    assert knowledge.export_pin("executorch", "1.0.2") == "torch>=2.9,<2.10"  # newest known 1.0.x row
    assert Version("2.9.1") in SpecifierSet(knowledge.export_pin("executorch", "1.0.1").removeprefix("torch"))
    assert knowledge.export_pin("ExecuTorch", "0.6.0") == "torch==2.7.0"
    assert knowledge.export_pin("coremltools", "9.0") == "torch<=2.7.0"
    assert knowledge.export_rule("onnx-dynamo-default-from") == "2.9"
    assert knowledge.export_rule("onnx-dynamo-needs") == "onnxscript"


def test_unknown_inputs_give_none_or_key_error():
    assert knowledge.torch_release("1.7.1") is None
    assert knowledge.torch_release("9.0.0") is None
    assert knowledge.torch_release("not a version") is None
    assert knowledge.tensorflow_release("1.12.0") is None
    assert knowledge.tensorflow_release("") is None
    assert knowledge.toolkit_driver("8.0", "linux") is None
    assert knowledge.toolkit_driver("12.7", "linux") is None
    assert knowledge.family_floor(10, "linux") is None
    assert knowledge.compute_capability("4.0") is None
    assert knowledge.compute_capability("sm_x") is None
    assert knowledge.last_branch_for("Turing") is None
    assert knowledge.export_pin("executorch", "0.1.0") is None
    assert knowledge.export_pin("executorch", "1.5.0") is None  # declares no torch requirement
    assert knowledge.export_pin("tflite", "1.0") is None
    with pytest.raises(KeyError):
        knowledge.tensorflow_rule("no-such-rule")
    with pytest.raises(KeyError):
        knowledge.export_rule("no-such-rule")
    with pytest.raises(ValueError):
        knowledge.toolkit_driver("12.8", "macos")


def test_arm_core_names_need_both_codes():
    rows = _data("arm-cores")
    pairs = [(row["implementer"], row["part"]) for row in rows["cores"]]
    assert len(pairs) == len(set(pairs))
    assert {implementer for implementer, _ in pairs} <= {row["implementer"] for row in rows["implementers"]}
    assert knowledge.arm_core("0x41", "0xd0c") == "Neoverse-N1"
    assert knowledge.arm_core("0x41", "0xd40") == "Neoverse-V1"
    assert knowledge.arm_core("0x48", "0xd40") == "Cortex-A76"  # HiSilicon's licensed core, the same part code
    assert knowledge.arm_core(0xC0, 0xAC3) == "Ampere-1"
    assert knowledge.arm_implementer("0x46") == "FUJITSU"
    assert knowledge.arm_core("0x41", "0xfff") is None
    assert knowledge.arm_core("0x41", "0xc07 & 0xc0f") is None  # an old kernel's two parts on one line
    assert knowledge.arm_implementer("0x99") is None


def test_peak_flops_rows_are_consistent():
    data = _data("peak-flops")
    patterns = [(re.compile(pattern, re.IGNORECASE), row["model"]) for row in data["nvidia_gpus"] for pattern in row["nvml_names"]]
    for row in data["nvidia_gpus"]:
        # Tensor cores are never slower than the CUDA cores; TF32 runs at half the 16-bit rate (datasheets round).
        assert all(row[key] >= row["float32"] for key in ("tf32", "bfloat16", "float16") if key in row), row["model"]
        assert "tf32" not in row or row["tf32"] <= row["bfloat16"] / 2 * 1.01, row["model"]
    names = ["H100 80GB HBM3", "H200", "H200 NVL", "L40S", "L40", "L4", "A10", "A30", "Tesla T4", "Tesla V100-SXM2-16GB",
             "GeForce RTX 4090", "GeForce RTX 2080 SUPER", "A100-SXM4-80GB", "A100-PCIE-40GB", "GH200 144G HBM3e", "B200"]
    for name in names:
        assert len([model for pattern, model in patterns if pattern.fullmatch(name)]) == 1, name
    arm = {row["name"] for row in _data("arm-cores")["cores"]}
    assert {row["core"] for row in data["cpu_rates"] if "core" in row} <= arm
    assert len({row["framework"] for row in data["float32_matmul"]}) == len(data["float32_matmul"])
    for row in data["amd_gpus"]:
        assert row["compute_units"] % row["dies"] == 0 and row["float32_matrix"] >= row["float32_vector"], row["model"]


def test_peak_flops_spot_checks():
    h100 = knowledge.nvidia_gpu_peak("NVIDIA H100 80GB HBM3")
    assert (h100.model, h100.tflops) == ("H100 SXM", {"float32": 66.9, "tf32": 494.7, "bfloat16": 989.4, "float16": 989.4})
    assert knowledge.nvidia_gpu_peak("Tesla T4").tflops == {"float32": 8.1, "float16": 65.0}  # no TF32, no bfloat16
    assert knowledge.nvidia_gpu_peak("A100-SXM4-40GB").model == "A100 SXM"  # an old driver leaves out "NVIDIA "
    for near_miss in ("NVIDIA A10G", "NVIDIA GeForce RTX 3090 Ti", "Tesla V100S-PCIE-32GB", "NVIDIA H100 80GB HBM3 MIG 1g.10gb",
                      "NVIDIA RTX 6000 Ada Generation", "", None):
        assert knowledge.nvidia_gpu_peak(near_miss) is None, near_miss
    assert [peak.model for peak in knowledge.amd_gpu_peaks("gfx942", 304)] == ["Instinct MI300X", "Instinct MI325X"]
    assert [peak.model for peak in knowledge.amd_gpu_peaks("gfx90a", 110)] == ["Instinct MI250X"]  # one of its two dies
    assert knowledge.amd_gpu_peaks("gfx942", 80) == () and knowledge.amd_gpu_peaks(None, None) == ()
    assert knowledge.amd_gpu_peaks("gfx908", 120)[0].tflops == {"float32": 46.1, "bfloat16": 92.3, "float16": 184.6}
    xeon = {"avx512f": True, "avx2": True, "fma": True, "avx": True, "amx_bf16": True, "amx_tile": True, "avx512_bf16": True}
    assert knowledge.cpu_rate("float32", "x86_64", xeon).flops_per_cycle == 64
    assert knowledge.cpu_rate("bfloat16", "x86_64", xeon).flops_per_cycle == 1024
    assert knowledge.cpu_rate("bfloat16", "x86_64", {**xeon, "amx_tile": False}).flops_per_cycle == 128
    assert knowledge.cpu_rate("float32", "x86_64", {"avx": True, "avx2": True, "fma": False}).unit == "avx"
    assert knowledge.cpu_rate("float32", "x86_64", {"sse4.2": False}).unit == "sse"
    assert knowledge.cpu_rate("bfloat16", "x86_64", {"avx2": True, "fma": True}) is None
    assert knowledge.cpu_rate("float32", "aarch64", {"neon": True}, "Neoverse-V1").flops_per_cycle == 32
    assert knowledge.cpu_rate("float32", "aarch64", {"neon": True}, "Cortex-A72") is None
    assert knowledge.cpu_rate("float32", "x86_64", {}) is None
    assert knowledge.cpu_rate("float32", "x86_64", {}, torch_cpu_capability="AVX2").unit == "avx2"
    assert [knowledge.float32_matmul_on_nvidia(name) for name in ("torch", "tensorflow", "jax", "mxnet")] == [
        "float32", "tf32", "tf32", None]


def test_module_stays_import_light():
    code = ("import sys, auditor.knowledge as k; k.tables(); k.torch_release('2.9'); "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    assert not loaded & {"torch", "tensorflow", "jsonschema", "rich", "click", "psutil", "pynvml", "cpuinfo"}
