"""The torch part of the compatibility knowledge: per-platform architecture lists, ROCm builds, the MPS
floor and the aarch64 PyPI variant, with spot checks of values read from the sources the rows name."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from packaging.version import Version

import auditor.knowledge as knowledge


def _raw() -> dict:
    text = resources.files("auditor.knowledge").joinpath("pytorch-releases.json").read_text(encoding="utf-8")
    return json.loads(text)


def _variant(release: str, cuda: str) -> knowledge.TorchVariant:
    row = knowledge.torch_release(release)
    assert row is not None, release
    return next(v for v in row.variants if v.cuda == cuda)


# ----------------------------------------------------------------------------------- API


def test_torch_releases_are_sorted_oldest_to_newest():
    versions = [r.version for r in knowledge.torch_releases()]
    assert versions == sorted(versions, key=Version)
    assert versions[0] == "1.8"
    assert {"1.8", "1.9", "1.10", "1.11", "1.12", "1.13", "2.0", "2.1", "2.2", "2.3"} <= set(versions)
    assert versions.index("1.13") < versions.index("2.0") < versions.index("2.10")  # numeric, not string order
    assert knowledge.torch_releases()[-1] == knowledge.newest_torch_release()
    assert "torch_releases" in knowledge.__all__ and "TorchRocmBuild" in knowledge.__all__


def test_architectures_for_never_borrows_the_linux_list():
    cu128 = _variant("2.9", "12.8")
    assert cu128.architectures_for("linux-x86_64") == cu128.architectures
    assert cu128.architectures_for("windows") == ()  # no verified Windows row for 2.9 cu128: unknown
    assert cu128.architectures_for("linux-aarch64") == ("sm_80", "sm_90", "sm_100", "sm_120")
    cu126 = _variant("2.11", "12.6")
    assert cu126.architectures and cu126.architectures_for("windows") == () and cu126.architectures_for("linux-aarch64") == ()
    assert cu128.architectures_for("macos") == ()
    assert cu128.architectures_for("Windows") == cu128.architectures_for("win32") == ()
    hash(cu128)  # still usable as a dict key / set member


def test_rocm_builds_are_typed_and_sorted():
    release = knowledge.torch_release("2.10.0+rocm7.1")
    assert [b.rocm for b in release.rocm_builds] == ["7.0", "7.1"]
    build = release.rocm_builds[-1]
    assert isinstance(build, knowledge.TorchRocmBuild)
    assert build.index_url == "https://download.pytorch.org/whl/rocm7.1"
    assert release.rocm == build.rocm
    assert [b.rocm for b in knowledge.torch_release("1.8").rocm_builds] == ["3.10", "4.0.1"]  # 3.10 < 4.0.1


# ----------------------------------------------------------------------------------- spot checks: CUDA


def test_old_cuda_10_builds_have_no_ampere():
    cu102 = _variant("1.8", "10.2")
    assert cu102.architectures == ("sm_37", "sm_50", "sm_60", "sm_70")
    assert "sm_80" not in cu102.architectures and "sm_75" not in cu102.architectures
    assert knowledge.torch_release("1.8.1").pypi_default_variant == "cu102"
    for release in ("1.9", "1.10", "1.11", "1.12"):
        assert _variant(release, "10.2").architectures == ("sm_37", "sm_50", "sm_60", "sm_70"), release
        assert knowledge.torch_release(release).pypi_default_variant == "cu102", release


def test_cuda_11_builds_add_ampere_and_11_8_adds_hopper():
    assert {"sm_80", "sm_86"} <= set(_variant("1.8", "11.1").architectures)
    assert "sm_86" in _variant("1.10", "11.1").architectures
    assert "sm_37" in _variant("1.10", "11.1").architectures
    assert "sm_90" not in _variant("2.0", "11.7").architectures  # H100 needs 11.8 (pytorch#110153)
    assert "sm_90" in _variant("2.0", "11.8").architectures
    assert _variant("2.1", "11.8").architectures[0] == "sm_37"
    assert "sm_37" not in _variant("2.2", "12.1").architectures
    assert knowledge.torch_release("1.13.1").pypi_default_variant == "cu117"
    assert knowledge.torch_release("2.0.1").pypi_default_variant == "cu117"
    assert knowledge.torch_release("2.1.2").pypi_default_variant == "cu121"
    assert knowledge.torch_release("2.2.2").pypi_default_variant == "cu121"


def test_python_ranges_of_old_releases():
    assert (knowledge.torch_release("1.8").python_min, knowledge.torch_release("1.8").python_max) == ("3.6", "3.9")
    assert (knowledge.torch_release("1.11").python_min, knowledge.torch_release("1.11").python_max) == ("3.7", "3.10")
    assert (knowledge.torch_release("2.0").python_min, knowledge.torch_release("2.0").python_max) == ("3.8", "3.11")


def test_windows_and_linux_lists_differ():
    cu128 = _variant("2.7", "12.8")
    assert "sm_61" in cu128.architectures_for("windows")
    assert "sm_50" in cu128.architectures_for("windows")
    assert "sm_61" not in cu128.architectures and "sm_70" not in cu128.architectures
    assert cu128.architectures == ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120", "compute_120")
    assert "sm_61" in _variant("2.6", "12.6").architectures_for("windows")
    assert _variant("2.10", "12.8").architectures_for("windows") == _variant("2.10", "12.8").architectures
    assert "sm_61" in _variant("2.10", "12.6").architectures_for("windows")
    old = _variant("1.10", "11.3").architectures_for("windows")
    assert "sm_61" in old and "compute_37" in old  # 3.7+PTX on Windows


def test_aarch64_pypi_variant():
    assert knowledge.torch_release("1.8").aarch64_pypi_variant == "cpu"
    assert knowledge.torch_release("2.10.0").aarch64_pypi_variant == "cpu"
    assert knowledge.torch_release("2.11.0").aarch64_pypi_variant == "cu130"
    sbsa = _variant("2.11", "13.0").architectures_for("linux-aarch64")
    assert sbsa == ("sm_80", "sm_90", "sm_100", "sm_110", "sm_120")
    assert "sm_86" not in sbsa and "sm_75" not in sbsa
    assert _variant("2.7", "12.8").architectures_for("linux-aarch64") == ("sm_90", "sm_100", "sm_120")


# ----------------------------------------------------------------------------------- spot checks: MPS and ROCm


@pytest.mark.parametrize("version, floor", [
    ("1.11.0", None), ("1.12.1", "12.3"), ("2.4.1", "12.3"), ("2.5.1", "13.0"), ("2.8.0", "13.0"),
    ("2.9.1", "14.0"), ("2.13.0", "14.0"),
])
def test_mps_floor(version, floor):
    assert knowledge.torch_release(version).mps_macos_min == floor


def test_gfx_targets_respect_the_rocm_version():
    builds = [(r.version, b) for r in knowledge.torch_releases() for b in r.rocm_builds]
    with_950 = [(v, b.rocm) for v, b in builds if "gfx950" in b.gfx_targets]
    assert with_950 and all(Version(rocm) >= Version("7.0") for _, rocm in with_950)
    assert all(Version(b.rocm) >= Version("7.2") for _, b in builds if "gfx1151" in b.gfx_targets)
    assert any("gfx1151" in b.gfx_targets for _, b in builds)
    assert all(Version(b.rocm) >= Version("6.2.4") for _, b in builds if "gfx1200" in b.gfx_targets)
    assert not any("gfx1032" in b.gfx_targets for _, b in builds)  # RX 6600: no official build, HSA override only
    assert "gfx1100" not in knowledge.torch_release("2.0").rocm_builds[-1].gfx_targets  # pytorch#96964
    assert "gfx1100" in knowledge.torch_release("2.1").rocm_builds[-1].gfx_targets
    rocm62 = knowledge.torch_release("2.5.1").rocm_builds[-1]
    assert rocm62.rocm == "6.2" and "gfx942" in rocm62.gfx_targets and "gfx1101" not in rocm62.gfx_targets


# ----------------------------------------------------------------------------------- table invariants


def test_every_verified_list_is_non_empty_and_platform_rows_are_unique():
    for release in _raw()["releases"]:
        for variant in release["variants"]:
            if variant["architectures_verified"]:
                assert variant["architectures"], (release["version"], variant["variant"])
            platforms = [p["platform"] for p in variant.get("platform_architectures", [])]
            assert len(platforms) == len(set(platforms)), (release["version"], variant["variant"])
            for row in variant.get("platform_architectures", []):
                assert row["architectures"] and row["source"] and row["checked"]
    for release in knowledge.torch_releases():
        for variant in release.variants:
            for platform in ("linux-x86_64", "windows", "linux-aarch64"):
                listed = variant.architectures_for(platform)
                assert all(a.startswith(("sm_", "compute_")) for a in listed)


def test_rocm_rows_are_consistent():
    for release in _raw()["releases"]:
        builds = release["rocm_builds"]
        assert builds, release["version"]
        for build in builds:
            assert build["variant"] == "rocm" + build["rocm"]
            if not build["gfx_targets"]:
                assert "not verified" in build["note"], (release["version"], build["rocm"])
        newest = max(builds, key=lambda b: Version(b["rocm"]))
        assert release["rocm"] == newest["rocm"], release["version"]
        if release["aarch64_pypi_variant"] not in (None, "cpu"):
            assert release["aarch64_pypi_variant"] in [v["variant"] for v in release["variants"]]
        assert (release["mps"] is None) == (Version(release["version"]) < Version("1.12")), release["version"]


def test_tables_still_flatten_every_variant():
    rows = knowledge.tables()["pytorch-releases/variants"]
    assert {row["release"] for row in rows} >= {"1.8", "2.2", "2.13"}
    assert all(row["source"] and row["checked"] for row in rows)
