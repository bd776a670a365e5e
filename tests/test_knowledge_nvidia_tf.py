"""Spot checks of the NVIDIA (CUDA 9/10 drivers, first CUDA per compute capability), TensorFlow 1.13-2.11 and
Jetson knowledge, against the values in their sources (CUDA release notes Table 3, the PTX ISA release history,
TensorFlow's tested build configurations and PyPI wheels, NVIDIA's JetPack archive)."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from packaging.version import Version

import auditor.knowledge as knowledge


def _data(name: str) -> dict:
    return json.loads(resources.files("auditor.knowledge").joinpath(f"{name}.json").read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------------- CUDA 9.x / 10.x drivers


@pytest.mark.parametrize("cuda, linux, windows", [
    ("10.2", "440.33", "441.22"),
    ("10.2.89", "440.33", "441.22"),
    ("10.1", "418.39", "418.96"),
    ("10.1.243", "418.39", "418.96"),  # one row for 10.1 GA and its updates
    ("10.0", "410.48", "411.31"),
    ("9.2", "396.26", "397.44"),  # the GA row, not 9.2.148 Update 1 (396.37)
    ("9.1", "390.46", "391.29"),
    ("9.0", "384.81", "385.54"),
])
def test_pre_11_toolkit_drivers(cuda, linux, windows):
    assert knowledge.toolkit_driver(cuda, "linux").driver == linux
    assert knowledge.toolkit_driver(cuda, "windows").driver == windows


def test_pre_11_toolkits_have_no_family_floor_and_map_to_their_branch():
    for major in (9, 10):
        assert knowledge.family_floor(major, "linux") is None
        assert knowledge.family_floor(major, "windows") is None
    branches = {row["branch"]: row["newest_cuda"] for row in _data("cuda-drivers")["branches"]}
    assert {b: branches[b] for b in (384, 390, 396, 410, 418, 440)} == {
        384: "9.0", 390: "9.1", 396: "9.2", 410: "10.0", 418: "10.1", 440: "10.2"}
    pre11 = [row for row in _data("cuda-drivers")["toolkits"] if Version(row["version"]).major < 11]
    assert {row["version"] for row in pre11 if row["kind"] == "ga"} == {
        "9.0.76", "9.1.85", "9.2.88", "10.0.130", "10.1.105", "10.2.89"}
    for row in pre11:
        assert row["windows"], row["version"]
        assert branches[Version(row["linux"]).release[0]] == row["version"].rsplit(".", 1)[0] or row["kind"] != "ga"


def test_driver_floor_for():
    # CUDA 10.x and older: no minor-version compatibility, the toolkit's own driver
    assert knowledge.driver_floor_for("10.2", "linux") == knowledge.toolkit_driver("10.2", "linux")
    assert knowledge.driver_floor_for("10.2", "linux").driver == "440.33"
    assert knowledge.driver_floor_for("10.2", "windows").driver == "441.22"
    assert knowledge.driver_floor_for("9.0", "linux").driver == "384.81"
    # CUDA 11+: the family floor
    assert knowledge.driver_floor_for("12.4", "linux") == knowledge.family_floor(12, "linux")
    assert knowledge.driver_floor_for("12.4.1", "linux").driver == "525.60.13"
    assert knowledge.driver_floor_for("12.8", "windows").driver == "528.33"
    assert knowledge.driver_floor_for("11.8", "linux").driver == "450.80.02"
    assert knowledge.driver_floor_for("13.0", "windows").driver == "580"
    assert knowledge.driver_floor_for("13.2", "linux").driver == "580"
    # 11.0 GA shipped with a driver older than the 11.x compatibility floor: that older driver runs it
    assert knowledge.driver_floor_for("11.0", "linux").driver == "450.51.05"
    # unknown
    assert knowledge.driver_floor_for("8.0", "linux") is None
    assert knowledge.driver_floor_for("14.0", "linux") is None
    assert knowledge.driver_floor_for("not a version", "linux") is None
    with pytest.raises(ValueError):
        knowledge.driver_floor_for("10.2", "macos")


# ----------------------------------------------------------------------------------- first CUDA per CC


@pytest.mark.parametrize("cc, first", [
    ("3.5", "5.0"), ("3.7", "6.5"), ("5.0", "6.0"), ("5.2", "6.5"), ("5.3", "7.0"), ("6.0", "8.0"), ("6.1", "8.0"),
    ("6.2", "8.0"), ("7.0", "9.0"), ("7.2", "9.1"), ("7.5", "10.0"), ("8.0", "11.0"), ("8.6", "11.1"), ("8.7", "11.4"),
    ("8.9", "11.8"), ("9.0", "11.8"), ("10.0", "12.8"), ("10.3", "12.9"), ("11.0", "13.0"), ("12.0", "12.8"),
    ("12.1", "12.9"),
])
def test_first_cuda_for(cc, first):
    assert knowledge.first_cuda_for(cc) == first
    assert knowledge.first_cuda_for("sm_" + cc.replace(".", "")) == first
    assert knowledge.first_cuda_for("compute_" + cc.replace(".", "")) == first
    assert knowledge.compute_capability(cc).first_cuda == first


def test_first_cuda_for_arch_and_family_specific_targets():
    assert knowledge.first_cuda_for("sm_90a") == "12.0"
    assert knowledge.first_cuda_for("sm_100a") == "12.8"
    assert knowledge.first_cuda_for("sm_100f") == "12.9"
    assert knowledge.first_cuda_for("sm_120f") == "12.9"
    assert knowledge.first_cuda_for("compute_121a") == "12.9"
    assert knowledge.first_cuda_for("sm_110f") == "13.0"
    assert knowledge.first_cuda_for("sm_86a") is None  # no such target
    assert knowledge.first_cuda_for((8, 6)) == "11.1"


def test_first_cuda_decides_old_builds_on_new_gpus():
    # a100-torch181-cu102: a CUDA 10.2 build has no sm_80 code even if it carries compute_37 PTX
    assert Version(knowledge.first_cuda_for("8.0")) > Version("10.2")
    # RTX 50xx (12.0) needs a CUDA 12.8+ build; H100 needs 11.8+
    assert Version(knowledge.first_cuda_for("12.0")) > Version("12.6")
    assert Version(knowledge.first_cuda_for("9.0")) > Version("11.7")


def test_first_cuda_rows_are_consistent():
    for row in _data("compute-capabilities")["rows"]:
        for first in [row["first_cuda"], *row.get("first_cuda_variants", {}).values()]:
            assert Version(first) >= Version(row["first_cuda"]), row["cc"]
            if Version(first).major >= 9:  # a release the driver table knows
                assert knowledge.toolkit_driver(first, "linux") is not None, (row["cc"], first)
    assert knowledge.compute_capability("3.7").architecture == "Kepler"
    assert "Tesla K80" in knowledge.compute_capability("sm_37").examples


def test_unknown_compute_capabilities_give_none():
    assert knowledge.first_cuda_for("4.0") is None
    assert knowledge.first_cuda_for("sm_x") is None
    assert knowledge.first_cuda_for("") is None
    assert knowledge.first_cuda_for("3.0") is None  # not in the table


# ----------------------------------------------------------------------------------- TensorFlow 1.13 - 2.11


def test_tensorflow_table_has_every_minor_from_1_13():
    versions = [row["version"] for row in _data("tensorflow-releases")["releases"]]
    assert versions == ["1.13", "1.14", "1.15"] + [f"2.{m}" for m in range(22)]


@pytest.mark.parametrize("version, python, cuda, cudnn", [
    ("1.13.1", ("3.3", "3.7"), "10.0", "7.4"),
    ("1.14.0", ("3.3", "3.7"), "10.0", "7.4"),
    ("1.15.5", ("3.5", "3.7"), "10.0", "7.4"),
    ("2.0.0", ("3.5", "3.7"), "10.0", "7.4"),
    ("2.1.0", ("3.5", "3.7"), "10.1", "7.6"),
    ("2.3.0", ("3.5", "3.8"), "10.1", "7.6"),
    ("2.4.0", ("3.6", "3.8"), "11.0", "8.0"),
    ("2.5.0", ("3.6", "3.9"), "11.2", "8.1"),
    ("2.7.0", ("3.7", "3.9"), "11.2", "8.1"),
    ("2.8.0", ("3.7", "3.10"), "11.2", "8.1"),
    ("2.11.0", ("3.7", "3.10"), "11.2", "8.1"),
])
def test_old_tensorflow_releases(version, python, cuda, cudnn):
    release = knowledge.tensorflow_release(version)
    assert (release.python_min, release.python_max) == python
    assert (release.cuda, release.cudnn) == (cuda, cudnn)


def test_tensorflow_1_15_and_windows_python_ranges():
    release = knowledge.tensorflow_release("1.15.2")
    assert (release.python_min, release.python_max) == ("3.5", "3.7")
    assert (release.windows_python_min, release.windows_python_max) == ("3.5", "3.7")
    assert release.gpu_distribution == "tensorflow-gpu"
    assert knowledge.tensorflow_release("1.13.1").windows_python_min == "3.5"  # Linux wheels go down to cp33
    assert knowledge.tensorflow_release("2.1.0").gpu_distribution == "tensorflow"
    assert knowledge.tensorflow_release("2.20.0").gpu_distribution == "tensorflow"


def test_old_tensorflow_compute_capabilities():
    old = ("sm_35", "sm_37", "sm_52", "sm_60", "sm_61", "sm_70",
           "compute_35", "compute_37", "compute_52", "compute_60", "compute_61", "compute_70")
    for version in ("1.13.1", "1.14.0", "1.15.0", "2.0.0", "2.1.0", "2.2.0"):
        assert knowledge.tensorflow_release(version).compute_capabilities == old, version
    assert knowledge.tensorflow_release("2.3.0").compute_capabilities == (
        "sm_35", "sm_37", "sm_52", "sm_60", "sm_61", "compute_70")
    for version in ("2.4.0", "2.8.0", "2.11.0", "2.12.0"):
        assert knowledge.tensorflow_release(version).compute_capabilities == (
            "sm_35", "sm_50", "sm_60", "sm_70", "sm_75", "compute_80"), version


def test_tensorflow_gpu_package_rules():
    assert knowledge.tensorflow_rule("pip-tensorflow-includes-gpu-from") == "2.1"
    assert knowledge.tensorflow_rule("pip-tensorflow-cpu-only-last") == "2.0"
    assert knowledge.tensorflow_rule("pip-tensorflow-includes-gpu-exceptions") == "1.15.0"
    assert knowledge.tensorflow_rule("tensorflow-gpu-last-wheel") == "2.11"
    assert knowledge.tensorflow_rule("tensorflow-gpu-stub-from") == "2.12"


@pytest.mark.parametrize("version, linux, windows", [
    ("1.13.1", False, False),
    ("1.14.0", False, False),
    ("1.15.0", True, True),  # the one 1.x release whose `tensorflow` wheel is the GPU build
    ("1.15.2", False, False),  # tf1152-cpu-package-gtx1080ti
    ("1.15.5", False, False),
    ("2.0.0", False, False),
    ("2.0.4", False, False),
    ("2.1.0", True, True),
    ("2.10.1", True, True),
    ("2.11.0", True, False),  # no native-Windows GPU after 2.10
    ("2.20.0", True, False),
])
def test_tensorflow_pip_includes_gpu(version, linux, windows):
    assert knowledge.tensorflow_pip_includes_gpu(version, "linux") is linux
    assert knowledge.tensorflow_pip_includes_gpu(version, "windows") is windows


def test_tensorflow_unknown_versions_give_none():
    assert knowledge.tensorflow_release("1.12.0") is None
    assert knowledge.tensorflow_release("2.22.0") is None
    assert knowledge.tensorflow_pip_includes_gpu("1.12.0", "linux") is None
    assert knowledge.tensorflow_pip_includes_gpu("not a version", "linux") is None
    with pytest.raises(ValueError):
        knowledge.tensorflow_pip_includes_gpu("2.1.0", "macos")


# ----------------------------------------------------------------------------------- Jetson


def test_jetson_release_mapping():
    release = knowledge.jetson_release("35.4.1")
    assert (release.jetpack, release.cuda, release.ubuntu, release.python) == ("5.1.2", "11.4", "20.04", "3.8")
    assert release.socs == ("tegra194", "tegra234")
    assert release.torch_index == "https://developer.download.nvidia.com/compute/redist/jp/v512/pytorch/"
    assert "2.1.0a0+41361538.nv23.06" in release.torch_versions
    assert release.pip.startswith("python3 -m pip install --no-cache " + release.torch_index)
    assert knowledge.jetson_release("R35.4.1") == release
    assert knowledge.jetson_release("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref") == release
    assert knowledge.jetson_release_for_jetpack("5.1.2") == release
    assert knowledge.jetson_release_for_jetpack("5.1.2-b104") == release  # as `apt show nvidia-jetpack` reports it


def test_jetson_release_lines():
    assert knowledge.jetson_release("32.7.1").jetpack == "4.6.1"
    assert knowledge.jetson_release("32.7.1").cuda == "10.2"
    assert knowledge.jetson_release("32.7.1").torch_index is None
    jp61 = knowledge.jetson_release("R36.4")  # jetson-orin-nx-jp61-nv-wheel
    assert (jp61.l4t, jp61.jetpack, jp61.cuda, jp61.socs) == ("36.4.0", "6.1", "12.6", ("tegra234",))
    assert jp61.torch_index == "https://pypi.jetson-ai-lab.io/jp6/cu126"
    assert "2.5.0" in jp61.torch_versions
    assert knowledge.jetson_release("36.3.0").cuda == "12.2"
    assert knowledge.jetson_release("36.2.0").preview
    assert knowledge.jetson_release_for_jetpack("6.0").l4t == "36.3.0"  # GA wins over the developer preview
    assert knowledge.jetson_release_for_jetpack("6.2").l4t == "36.4.3"
    assert knowledge.jetson_release("38.2.0").cuda == "13.0"
    assert knowledge.jetson_release("38.2.0").socs == ("tegra264",)


def test_jetson_patch_fallback_and_unknown():
    assert knowledge.jetson_release("35.6.2").l4t == "35.6.1"  # newest row of 35.6 not newer than it
    assert knowledge.jetson_release("36.4.7").jetpack == "6.2.1"
    assert knowledge.jetson_release("35.4") is None  # 35.4.0 is older than every 35.4 row
    assert knowledge.jetson_release("36.9.0") is None
    assert knowledge.jetson_release("31.1.0") is None
    assert knowledge.jetson_release("nonsense") is None
    assert knowledge.jetson_release("") is None
    assert knowledge.jetson_release_for_jetpack("9.9") is None
    assert knowledge.jetson_release_for_jetpack("") is None


def test_jetson_rows_are_consistent():
    data = _data("jetson")
    socs = {row["soc"]: row["cc"] for row in data["socs"]}
    jetpack_major = {32: 4, 34: 5, 35: 5, 36: 6, 38: 7}
    cuda_major = {32: 10, 34: 11, 35: 11, 36: 12, 38: 13}
    l4ts = [row["l4t"] for row in data["releases"]]
    assert len(l4ts) == len(set(l4ts))
    for row in data["releases"]:
        major = Version(row["l4t"]).major
        assert Version(row["jetpack"]).major == jetpack_major[major], row["l4t"]
        assert Version(row["cuda"]).major == cuda_major[major], row["l4t"]
        assert set(row["socs"]) <= set(socs), row["l4t"]
        if row["torch_versions"]:
            assert row["torch_index"].startswith("https://"), row["l4t"]
    for cc in socs.values():
        assert knowledge.compute_capability(cc) is not None
    assert socs["tegra234"] == "8.7" and socs["tegra194"] == "7.2" and socs["tegra264"] == "11.0"
