"""The Jetson probe against fake machine trees built from recorded files, and on this machine.

Every Jetson file below is quoted as published, each with its source: a recording from a
device where one was found, else (the Xavier NX's and the Nano's device tree) what the board's
device-tree source in Linux declares. Where one board's files come from different machines of
the same kind (the AGX Orin's release file and its device tree, say), each part says where it
was recorded. /proc/device-tree/* hold the device tree's string properties as the kernel
stores them: each string NUL-terminated, so the compatible list is NUL-separated ("cat" shows
them run together, as in the issues quoted). The nvidia-jetpack stanzas are `apt-cache show`
recordings in the shape dpkg's status file keeps them: the repository-only fields (Filename,
Size, checksums) dropped, the Status line dpkg adds for an installed package added.
OTHER_STANZAS and the unit tests' neighbour stanzas are illustrative, not recordings.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from auditor.facts import JetsonFacts, from_dict, to_dict
from auditor.probes.base import ProbeAbsent, ProbeContext
from auditor.probes.fsroot import FsRoot, UnreadableFile
from auditor.probes.jetson import collect_jetson, parse_jetpack, parse_l4t_release
from auditor.probes.registry import INLINE_PROBES
from conftest import quick_snapshot
from machines import linux_machine

NUL = "\0"

# --- AGX Orin Developer Kit, JetPack 6.2 (L4T R36.4.3) ----------------------------------
# /etc/nv_tegra_release and `apt-cache show nvidia-jetpack`, recorded on an AGX Orin devkit:
# https://github.com/boxcutter/kvm/blob/2280df89059babab25badc64777b1e568f0c56c5/docs/NVIDIA_JETPACK_6_JETSON_DEVELOPER_KIT_SETUP.md
ORIN_RELEASE = (
    "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025\n"
    "# KERNEL_VARIANT: oot\n"
    "TARGET_USERSPACE_LIB_DIR=nvidia\n"
    "TARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia\n"
)
ORIN_JETPACK_STANZA = (
    "Package: nvidia-jetpack\n"
    "Status: install ok installed\n"
    "Source: nvidia-jetpack (6.2)\n"
    "Version: 6.2+b77\n"
    "Architecture: arm64\n"
    "Maintainer: NVIDIA Corporation\n"
    "Installed-Size: 194\n"
    "Depends: nvidia-jetpack-runtime (= 6.2+b77), nvidia-jetpack-dev (= 6.2+b77)\n"
    "Homepage: http://developer.nvidia.com/jetson\n"
    "Priority: standard\n"
    "Section: metapackages\n"
    "Description: NVIDIA Jetpack Meta Package\n"
)
# /proc/device-tree/model on L4T R36.4.3 ("Hardware Model" in hostnamectl, which reads it):
# https://github.com/OE4T/meta-tegra/pull/1822
ORIN_MODEL = "NVIDIA Jetson AGX Orin Developer Kit" + NUL
# /proc/device-tree/compatible of an AGX Orin 64GB devkit (`cat` ran the strings together):
# https://github.com/NVIDIA/jetson-gpio/issues/125
ORIN_COMPATIBLE = NUL.join((
    "nvidia,p3737-0000+p3701-0005", "nvidia,p3701-0005", "nvidia,tegra234", "nvidia,tegra23x")) + NUL

# --- Orin NX 16GB, JetPack 6.2 (L4T R36.4.3), in a container -----------------------------
# The release file as recorded on this board (Host: "NVIDIA Jetson Orin NX Engineering
# Reference Developer Kit Super", p3767-0000):
# https://github.com/silenzio777/silenzio_robot_library/blob/ea582980d96272b7a3c9d98e78e5e989f3dd9504/README.md
# In a container the NVIDIA runtime mounts /etc/nv_tegra_release in, while Docker masks
# /sys/firmware (where /proc/device-tree points) and the image has no nvidia-jetpack.
ORIN_NX_RELEASE = ORIN_RELEASE

# --- Xavier NX Developer Kit (eMMC), JetPack 5.1.2 (L4T R35.4.1) ------------------------
# The L4T R35.4.1 release line, as recorded in tier4/ota-client's Jetson tests:
# https://github.com/tier4/ota-client/blob/ea83171b24a4741c4cc5aae73b507c334395d5eb/tests/test_otaclient/test_boot_control/test_jetson_common.py
XAVIER_RELEASE = "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023\n"
# model and compatible as this board's device tree declares them:
# https://github.com/torvalds/linux/blob/ebd072ea164a9c5a0d6cf9d73f3091868ff62b7d/arch/arm64/boot/dts/nvidia/tegra194-p3509-0000+p3668-0001.dts
XAVIER_MODEL = "NVIDIA Jetson Xavier NX Developer Kit (eMMC)" + NUL
XAVIER_COMPATIBLE = "nvidia,p3509-0000+p3668-0001" + NUL + "nvidia,tegra194" + NUL
# `apt-cache show nvidia-jetpack` on JetPack 5.1.2:
# https://github.com/Xiushishen/Greenworks-RLM4/blob/c362ce5a7f13dd88484241bfa1ffbdaa0c51ca69/README.md
XAVIER_JETPACK_STANZA = (
    "Package: nvidia-jetpack\n"
    "Status: install ok installed\n"
    "Version: 5.1.2-b104\n"
    "Architecture: arm64\n"
    "Maintainer: NVIDIA Corporation\n"
    "Installed-Size: 194\n"
    "Depends: nvidia-jetpack-runtime (= 5.1.2-b104), nvidia-jetpack-dev (= 5.1.2-b104)\n"
    "Homepage: http://developer.nvidia.com/jetson\n"
    "Priority: standard\n"
    "Section: metapackages\n"
    "Description: NVIDIA Jetpack Meta Package\n"
)

# --- Jetson Nano Developer Kit, JetPack 4.6 (L4T R32.6.1), no nvidia-jetpack -------------
# The release line recorded on this board (Host: "NVIDIA Jetson Nano Developer Kit"):
# https://github.com/silenzio777/silenzio_robot_library/blob/ea582980d96272b7a3c9d98e78e5e989f3dd9504/README.md
NANO_RELEASE = "# R32 (release), REVISION: 6.1, GCID: 27863751, BOARD: t210ref, EABI: aarch64, DATE: Mon Jul 26 19:20:30 UTC 2021\n"
# model and compatible as the board's device tree declares them:
# https://github.com/torvalds/linux/blob/029467886185e99175a91d571dc2b1aa85b3b517/arch/arm64/boot/dts/nvidia/tegra210-p3450-0000.dts
NANO_MODEL = "NVIDIA Jetson Nano Developer Kit" + NUL
NANO_COMPATIBLE = "nvidia,p3450-0000" + NUL + "nvidia,tegra210" + NUL

# --- Orin Nano Developer Kit, JetPack 5.1.1 (L4T R35.3.1): all three from one machine -----
# `jtop --error-log` raw output: /etc/nv_tegra_release, /sys/firmware/devicetree/base/model,
# /proc/device-tree/compatible (printed with the NULs dropped):
# https://github.com/rbonghi/jetson_stats/issues/400
ORIN_NANO_RELEASE = "# R35 (release), REVISION: 3.1, GCID: 32827747, BOARD: t186ref, EABI: aarch64, DATE: Sun Mar 19 15:19:21 UTC 2023\n"
ORIN_NANO_MODEL = "NVIDIA Orin Nano Developer Kit" + NUL
ORIN_NANO_COMPATIBLE = NUL.join((
    "nvidia,p3768-0000+p3767-0003", "nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0003", "nvidia,p3767-0005",
    "nvidia,tegra234", "nvidia,tegra23x")) + NUL

# --- not a Jetson: a Raspberry Pi 4, an arm64 board with a device tree --------------------
# https://github.com/torvalds/linux/blob/0eaed89c18aeedf0898baf2dbf5ff027c6795152/arch/arm/boot/dts/broadcom/bcm2711-rpi-4-b.dts
RPI_MODEL = "Raspberry Pi 4 Model B" + NUL
RPI_COMPATIBLE = "raspberrypi,4-model-b" + NUL + "brcm,bcm2711" + NUL

# Ordinary stanzas around the Jetson ones, so that the parser must pick its package out.
OTHER_STANZAS = (
    "Package: libc6\nStatus: install ok installed\nPriority: optional\nSection: libs\n"
    "Architecture: arm64\nVersion: 2.35-0ubuntu3.8\nDescription: GNU C Library: Shared libraries\n"
    " Contains the standard libraries that are used by nearly all programs on\n the system.\n"
)


def dpkg_status(*stanzas: str) -> str:
    return "\n".join(stanzas)


def build(tmp_path: Path, files: dict[str, str | bytes]) -> FsRoot:
    """A fake machine tree; bytes are written as they are, text as UTF-8."""
    for absolute, content in files.items():
        path = tmp_path / absolute.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return FsRoot(tmp_path)


def collect(root: FsRoot) -> JetsonFacts:
    return collect_jetson(ProbeContext(root, {}))


def test_agx_orin_on_jetpack_6(tmp_path):
    root = build(tmp_path, {
        **linux_machine(),
        "/etc/nv_tegra_release": ORIN_RELEASE,
        "/proc/device-tree/model": ORIN_MODEL,
        "/proc/device-tree/compatible": ORIN_COMPATIBLE,
        "/var/lib/dpkg/status": dpkg_status(OTHER_STANZAS, ORIN_JETPACK_STANZA),
    })
    facts = collect(root)
    assert facts == JetsonFacts(
        model="NVIDIA Jetson AGX Orin Developer Kit",
        compatible=["nvidia,p3737-0000+p3701-0005", "nvidia,p3701-0005", "nvidia,tegra234", "nvidia,tegra23x"],
        soc="tegra234",  # not the family alias tegra23x
        l4t_release="36.4.3",
        jetpack="6.2",
        sources={"model": "/proc/device-tree/model", "compatible": "/proc/device-tree/compatible",
                 "soc": "/proc/device-tree/compatible (nvidia,tegraNNN)", "l4t_release": "/etc/nv_tegra_release",
                 "jetpack": "/var/lib/dpkg/status (nvidia-jetpack)"},
    )


def test_orin_nx_in_a_container_has_only_the_release_file(tmp_path):
    facts = collect(build(tmp_path, {**linux_machine(), "/etc/nv_tegra_release": ORIN_NX_RELEASE,
                                     "/var/lib/dpkg/status": OTHER_STANZAS}))
    assert (facts.model, facts.compatible, facts.soc) == (None, [], None)
    assert (facts.l4t_release, facts.jetpack) == ("36.4.3", None)


def test_xavier_nx_on_jetpack_5_with_nvidia_jetpack_installed(tmp_path):
    root = build(tmp_path, {
        "/etc/nv_tegra_release": XAVIER_RELEASE,
        "/proc/device-tree/model": XAVIER_MODEL,
        "/proc/device-tree/compatible": XAVIER_COMPATIBLE,
        "/var/lib/dpkg/status": dpkg_status(OTHER_STANZAS, XAVIER_JETPACK_STANZA),
    })
    facts = collect(root)
    assert facts.model == "NVIDIA Jetson Xavier NX Developer Kit (eMMC)"
    assert facts.compatible == ["nvidia,p3509-0000+p3668-0001", "nvidia,tegra194"]
    assert (facts.soc, facts.l4t_release, facts.jetpack) == ("tegra194", "35.4.1", "5.1.2")


def test_nano_on_r32_without_nvidia_jetpack(tmp_path):
    root = build(tmp_path, {
        "/etc/nv_tegra_release": NANO_RELEASE,
        "/proc/device-tree/model": NANO_MODEL,
        "/proc/device-tree/compatible": NANO_COMPATIBLE,
        "/var/lib/dpkg/status": OTHER_STANZAS,
    })
    facts = collect(root)
    assert (facts.model, facts.compatible, facts.soc, facts.l4t_release, facts.jetpack) == (
        "NVIDIA Jetson Nano Developer Kit", ["nvidia,p3450-0000", "nvidia,tegra210"], "tegra210", "32.6.1", None)


def test_orin_nano_on_jetpack_5_as_one_machine_recorded_it(tmp_path):
    root = build(tmp_path, {"/etc/nv_tegra_release": ORIN_NANO_RELEASE,
                            "/sys/firmware/devicetree/base/model": ORIN_NANO_MODEL,
                            "/proc/device-tree/compatible": ORIN_NANO_COMPATIBLE})
    facts = collect(root)
    assert facts.model == "NVIDIA Orin Nano Developer Kit"
    assert facts.compatible == ["nvidia,p3768-0000+p3767-0003", "nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0003",
                                "nvidia,p3767-0005", "nvidia,tegra234", "nvidia,tegra23x"]
    assert (facts.soc, facts.l4t_release, facts.jetpack) == ("tegra234", "35.3.1", None)
    assert facts.sources["model"] == "/sys/firmware/devicetree/base/model"
    assert facts.sources["compatible"] == "/proc/device-tree/compatible"


def test_device_tree_is_read_from_sys_firmware_when_proc_has_none(tmp_path):
    facts = collect(build(tmp_path, {"/sys/firmware/devicetree/base/model": NANO_MODEL,
                                     "/sys/firmware/devicetree/base/compatible": NANO_COMPATIBLE}))
    assert (facts.model, facts.soc, facts.l4t_release) == ("NVIDIA Jetson Nano Developer Kit", "tegra210", None)
    assert facts.sources["model"] == "/sys/firmware/devicetree/base/model"


def test_a_tegra_device_tree_alone_is_a_jetson(tmp_path):
    """No release file (a non-L4T OS, or a container that does not mount it): the SoC says so."""
    facts = collect(build(tmp_path, {"/proc/device-tree/model": ORIN_MODEL,
                                     "/proc/device-tree/compatible": ORIN_COMPATIBLE}))
    assert (facts.soc, facts.l4t_release, facts.jetpack) == ("tegra234", None, None)


@pytest.mark.parametrize("files", [
    pytest.param(linux_machine(), id="x86 host"),
    pytest.param({**linux_machine(), "/proc/device-tree/model": RPI_MODEL,
                  "/proc/device-tree/compatible": RPI_COMPATIBLE,
                  "/var/lib/dpkg/status": OTHER_STANZAS}, id="raspberry pi"),
    pytest.param({}, id="empty root"),
])
def test_not_a_jetson_is_absent(tmp_path, files):
    with pytest.raises(ProbeAbsent, match="not a Jetson"):
        collect(build(tmp_path, files))


def test_garbage_files_leave_the_facts_unknown(tmp_path):
    root = build(tmp_path, {
        "/etc/nv_tegra_release": b"\x00\xff\xfe\x89PNG\r\n\x1a\n\xc3\x28 not a release\n",
        "/proc/device-tree/model": b"\xff\xfe\xfd\x00",
        "/proc/device-tree/compatible": b"\xde\xad\xbe\xef\x00\x01\x02\x00",
        "/var/lib/dpkg/status": b"\x80\x81 Package: nvidia-jetpack\n\xff",
    })
    facts = collect(root)  # the release file is there: L4T's mark, whatever it says
    assert (facts.model, facts.compatible, facts.soc, facts.l4t_release, facts.jetpack) == (None, [], None, None, None)


def test_garbage_device_tree_without_a_release_file_is_absent(tmp_path):
    with pytest.raises(ProbeAbsent):
        collect(build(tmp_path, {"/proc/device-tree/compatible": b"\xde\xad\x00nvidia tegra\x00"}))


def test_directories_instead_of_files(tmp_path):
    for directory in ("etc/nv_tegra_release", "proc/device-tree/model", "var/lib/dpkg/status"):
        (tmp_path / directory).mkdir(parents=True)
    (tmp_path / "proc/device-tree/compatible").write_text(XAVIER_COMPATIBLE)
    facts = collect(FsRoot(tmp_path))
    assert (facts.model, facts.soc, facts.l4t_release, facts.jetpack) == (None, "tegra194", None, None)
    (tmp_path / "proc/device-tree/compatible").unlink()
    (tmp_path / "proc/device-tree/compatible").mkdir()
    with pytest.raises(ProbeAbsent):  # a directory where the release file belongs is no release file
        collect(FsRoot(tmp_path))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_for_the_release_file_fails_the_probe_instead_of_hanging(tmp_path):
    (tmp_path / "etc").mkdir()
    os.mkfifo(tmp_path / "etc/nv_tegra_release")
    with pytest.raises(UnreadableFile, match="FIFO"):
        collect(FsRoot(tmp_path))


@pytest.mark.parametrize("text, expected", [
    (ORIN_RELEASE, "36.4.3"),
    (XAVIER_RELEASE, "35.4.1"),
    (NANO_RELEASE, "32.6.1"),
    # Jetson Xavier NX on L4T R32.5.1: https://github.com/ArduCAM/MIPI_Camera/issues/108
    ("# R32 (release), REVISION: 5.1, GCID: 26202423, BOARD: t186ref, EABI: aarch64, DATE: Fri Feb 19 16:50:29 UTC 2021\n", "32.5.1"),
    (ORIN_NANO_RELEASE, "35.3.1"),
    # AGX Thor on L4T R38.2.0: https://github.com/rbonghi/jetson_stats/issues/772
    ("# R38 (release), REVISION: 2.0, GCID: 41844464, BOARD: generic, EABI: aarch64, DATE: Fri Aug 22 00:55:42 UTC 2025\n", "38.2.0"),
    ("#  r36 (Release) ,  revision :  4.3 , GCID: 1\n", "36.4.3"),  # case and spacing as they come
    ("R36 (release), REVISION: 4.3, GCID: 38968081\n", "36.4.3"),  # '#' dropped, as some pastes quote it
    ("# R35 (release)\n", "35"),  # no REVISION: the major alone
    ("\n\n# R32 (release), REVISION: 7.1\n", "32.7.1"),  # the first release line, wherever it is
    ("# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n", None),
    ("# Release 36\n", None),
    ("R2D2, REVISION: 1.0\n", None),
    ("", None),
    (None, None),
])
def test_release_line_parsing(text, expected):
    assert parse_l4t_release(text) == expected


def test_jetpack_parsing():
    # L4T's own packages sit next to the metapackage, some named like it; only nvidia-jetpack
    # itself counts. (Illustrative stanzas, not recordings: their names and shapes are what matter.)
    core = "Package: nvidia-l4t-core\nStatus: install ok installed\nVersion: 35.3.1-20230319081403\n"
    dev = "Package: nvidia-jetpack-dev\nStatus: install ok installed\nVersion: 9.9-b1\n"
    assert parse_jetpack(dpkg_status(core, dev, XAVIER_JETPACK_STANZA)) == "5.1.2"
    assert parse_jetpack(dpkg_status(core, dev)) is None
    # A metapackage removed with its configuration kept is not installed.
    removed = XAVIER_JETPACK_STANZA.replace("install ok installed", "deinstall ok config-files")
    assert parse_jetpack(dpkg_status(OTHER_STANZAS, removed)) is None
    # `apt show` on JetPack 4.5.1 (a Nano): https://github.com/jetsonhacks/jetsonUtilities/issues/11
    apt_show = ("Package: nvidia-jetpack\nVersion: 4.5.1-b17\nPriority: standard\nSection: metapackages\n"
                "Maintainer: NVIDIA Corporation\nInstalled-Size: 199 kB\n")
    assert parse_jetpack(apt_show) == "4.5.1"  # no Status line: taken as it stands
    # JetPack 6.2.1's version as apt-cache lists it beside an R36.4.4 release file (the document ORIN_* quote).
    installed = "Package: nvidia-jetpack\nStatus: install ok installed\n"
    assert parse_jetpack(installed + "Version: 6.2.1+b38\n") == "6.2.1"
    assert parse_jetpack(installed + "Version: 1:7.0+b1\n") == "7.0"  # an epoch
    assert parse_jetpack(installed + "Version: unknown\n") is None
    crlf = dpkg_status(OTHER_STANZAS, installed + "Version: 5.1.2-b104\n", core).replace("\n", "\r\n")
    assert parse_jetpack(crlf) == "5.1.2"  # stanzas still apart
    assert parse_jetpack(None) is None


def test_facts_survive_the_snapshot_and_the_runner(tmp_path):
    root = build(tmp_path, {**linux_machine(), "/etc/nv_tegra_release": XAVIER_RELEASE,
                            "/proc/device-tree/model": XAVIER_MODEL, "/proc/device-tree/compatible": XAVIER_COMPATIBLE,
                            "/var/lib/dpkg/status": dpkg_status(OTHER_STANZAS, XAVIER_JETPACK_STANZA)})
    snapshot = quick_snapshot(root)
    assert snapshot.probe("jetson").status == "ok", snapshot.probe("jetson")
    jetson = snapshot.accelerators.jetson
    assert (jetson.soc, jetson.l4t_release, jetson.jetpack) == ("tegra194", "35.4.1", "5.1.2")
    assert from_dict(JetsonFacts, to_dict(jetson)) == jetson


def test_runner_records_absence_on_a_plain_host(tmp_path):
    snapshot = quick_snapshot(build(tmp_path, linux_machine()))
    assert snapshot.accelerators.jetson is None
    run = snapshot.probe("jetson")
    assert run.status == "absent" and "not a Jetson" in run.reason


def test_the_probe_is_registered():
    assert [p.provides for p in INLINE_PROBES if p.name == "jetson"] == ["accelerators.jetson"]


def test_this_machine_is_not_a_jetson():
    """The real root: this x86_64 machine has no L4T and no Tegra device tree."""
    if Path("/etc/nv_tegra_release").exists() or "tegra" in (FsRoot().read_text("/proc/device-tree/compatible") or ""):
        pytest.skip("running on a Jetson")
    with pytest.raises(ProbeAbsent):
        collect_jetson(ProbeContext(FsRoot(), dict(os.environ)))
    snapshot = quick_snapshot(FsRoot())
    assert snapshot.accelerators.jetson is None
    assert snapshot.probe("jetson").status == "absent"
    assert snapshot.probe("cpu").status == "ok"  # the rest of the registry still runs
