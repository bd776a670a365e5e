"""NVIDIA Jetson (Tegra SoC) modules: the L4T release, the board's device tree, JetPack.

A Jetson's GPU is part of the SoC: it is not on PCI and NVML does not describe it (JetPack 5
and older ship no nvidia-smi or NVML at all), so the PCI and NVML probes see nothing there.
What says "Jetson" is on disk: L4T writes /etc/nv_tegra_release, the kernel exposes the
device tree's model and compatible strings under /proc/device-tree, and the nvidia-jetpack
metapackage, when installed (rarely in a container), names the JetPack release in dpkg's
status file. This probe reports what they say; judging it (a generic wheel on a Jetson, say)
is a check's job.

Parse rules, each tolerant of a missing or unreadable file (that fact stays None):
- nv_tegra_release: the first line shaped "# R<major> (release), REVISION: <minor>.<patch>",
  case and spacing as they come, '#' optional: "# R35 (release), REVISION: 4.1" -> "35.4.1".
  Without a REVISION the major alone is kept ("35"): still enough to tell JetPack 5 from 6.
- device tree: string properties are NUL-terminated; model is the text before the first NUL,
  compatible the NUL-separated list. Text that is not printable is unknown, and compatible
  entries that are not DT compatible strings are dropped. soc is the first "nvidia,tegraNNN"
  entry ("nvidia,tegra23x", a family alias, is not a SoC). /sys/firmware/devicetree/base,
  which /proc/device-tree links to, is read for a property /proc does not show.
- JetPack: the installed nvidia-jetpack stanza's Version up to its build suffix:
  "5.1.2-b104" -> "5.1.2", "6.2+b77" -> "6.2". A stanza whose Status is not "installed" (a
  package removed with its configuration kept) does not count.

Absent when there is neither an nv_tegra_release file nor an "nvidia,tegra*" compatible
string. Sources: L4T's own file on a Jetson, the kernel's device tree, dpkg's status file.
"""

from __future__ import annotations

import re
from typing import Optional

from auditor.facts import JetsonFacts
from auditor.probes.base import ProbeAbsent, ProbeContext
from auditor.probes.fsroot import FsRoot

RELEASE_FILE = "/etc/nv_tegra_release"
DEVICE_TREES = ("/proc/device-tree", "/sys/firmware/devicetree/base")
DPKG_STATUS = "/var/lib/dpkg/status"
JETPACK_PACKAGE = "nvidia-jetpack"

_RELEASE = re.compile(r"#?\s*R(\d+)\b[^,\n]*(?:,\s*REVISION\s*:\s*(\d+(?:\.\d+)*))?", re.IGNORECASE)
_COMPATIBLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9,._+\-]*")  # the characters the DT spec allows
_SOC = re.compile(r"nvidia,(tegra\d+(?:b\d+)?)")
_UPSTREAM_VERSION = re.compile(r"(?:\d+:)?(\d+(?:\.\d+)*)")  # an epoch, then the numbered part


def collect_jetson(ctx: ProbeContext) -> JetsonFacts:
    root = ctx.root
    release_text = root.read_text(RELEASE_FILE)
    compatible_path, compatible_text = _device_tree(root, "compatible")
    compatible = parse_compatible(compatible_text)
    if release_text is None and not any(entry.startswith("nvidia,tegra") for entry in compatible):
        raise ProbeAbsent(f"not a Jetson: no {RELEASE_FILE} and no nvidia,tegra* in {compatible_path}")
    model_path, model_text = _device_tree(root, "model")
    return JetsonFacts(
        model=parse_model(model_text),
        compatible=compatible,
        soc=soc_of(compatible),
        l4t_release=parse_l4t_release(release_text),
        jetpack=parse_jetpack(root.read_text(DPKG_STATUS)),
        sources={"model": model_path, "compatible": compatible_path, "soc": f"{compatible_path} (nvidia,tegraNNN)",
                 "l4t_release": RELEASE_FILE, "jetpack": f"{DPKG_STATUS} ({JETPACK_PACKAGE})"},
    )


def parse_l4t_release(text: Optional[str]) -> Optional[str]:
    """'# R36 (release), REVISION: 4.3, GCID: ...' -> '36.4.3'; '# R35 (release)' -> '35'."""
    for line in (text or "").splitlines():
        match = _RELEASE.match(line.strip())
        if match:
            return ".".join(filter(None, match.groups()))
    return None


def parse_model(text: Optional[str]) -> Optional[str]:
    model = (text or "").split("\0", 1)[0].strip()
    return model if model and _is_text(model) else None


def parse_compatible(text: Optional[str]) -> list[str]:
    entries = (entry.strip() for entry in (text or "").split("\0"))
    return [entry for entry in entries if _COMPATIBLE.fullmatch(entry)]


def soc_of(compatible: list[str]) -> Optional[str]:
    return next((match.group(1) for entry in compatible if (match := _SOC.fullmatch(entry))), None)


def parse_jetpack(status: Optional[str]) -> Optional[str]:
    """The installed nvidia-jetpack version from dpkg's status file, without its build suffix."""
    for stanza in re.split(r"\r?\n[ \t\r]*\n", status or ""):
        fields = _fields(stanza)
        if fields.get("package") != JETPACK_PACKAGE:
            continue
        if "status" in fields and fields["status"].split()[-1:] != ["installed"]:
            continue
        match = _UPSTREAM_VERSION.match(fields.get("version", ""))
        return match.group(1) if match else None
    return None


def _device_tree(root: FsRoot, name: str) -> tuple[str, Optional[str]]:
    """The first device-tree copy that holds the property: its path and text (/proc's path if none)."""
    for base in DEVICE_TREES:
        text = root.read_text(f"{base}/{name}")
        if text is not None:
            return f"{base}/{name}", text
    return f"{DEVICE_TREES[0]}/{name}", None


def _fields(stanza: str) -> dict[str, str]:
    """A deb822 stanza's top-level fields, names lowercased; continuation lines are skipped."""
    fields = {}
    for line in stanza.splitlines():
        name, colon, value = line.partition(":")
        if colon and name and not name[0].isspace():
            fields[name.strip().lower()] = value.strip()
    return fields


def _is_text(value: str) -> bool:
    return value.isprintable() and "\ufffd" not in value
