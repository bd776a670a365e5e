"""Host probe: operating system, kernel, libc, container, virtualisation and CI signals."""

from __future__ import annotations

import os
import platform
import re
from typing import Mapping

from auditor.facts import HostFacts, PythonFacts
from auditor.probes.base import ProbeContext
from auditor.probes.cpu import CpuInfo, machine_architecture, parse_cpuinfo
from auditor.probes.interpreter import Interpreter, own_interpreter
from auditor.redact import redact_value

# Environment variables that change how ML frameworks find or use hardware. Recorded
# (redacted) so a report explains behaviour the facts alone cannot; only ML tools' own, since
# a report says nothing about the rest of a user's environment.
RELEVANT_ENV_PREFIXES = (
    "CUDA_", "NVIDIA_", "NCCL_", "CUDNN_", "TORCH_", "PYTORCH_", "XLA_", "JAX_", "PJRT_",
    "HIP_", "ROCM_", "ROCR_", "HSA_", "OMP_", "MKL_", "KMP_", "OPENBLAS_", "TPU_", "ZE_", "ONEAPI_",
    "SYCL_", "HF_", "TRANSFORMERS_", "KERAS_", "WANDB_",
    # TensorFlow's families, not "TF_": Terraform owns TF_VAR_*, TF_CLI_*, TF_LOG, TF_TOKEN_*...
    # and Azure Pipelines sets TF_BUILD.
    "TF_CPP_", "TF_XLA_", "TF_GPU_", "TF_CUDA_", "TF_CUDNN_", "TF_ONEDNN_", "TF_MKL_", "TF_NUM_",
    "TF_FORCE_", "TF_ENABLE_", "TF_DISABLE_", "TF_USE_", "TF_DETERMINISTIC_",
)
RELEVANT_ENV_NAMES = ("LD_LIBRARY_PATH", "LD_PRELOAD", "PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX",
                      "CONDA_DEFAULT_ENV", "container", "TF_CONFIG", "TF2_BEHAVIOR")

# (variable, CI provider); the first present wins, CI alone means an unnamed provider.
CI_VARIABLES = (
    ("GITHUB_ACTIONS", "github-actions"), ("GITLAB_CI", "gitlab-ci"), ("BUILDKITE", "buildkite"),
    ("CIRCLECI", "circleci"), ("JENKINS_URL", "jenkins"), ("TF_BUILD", "azure-pipelines"),
    ("TRAVIS", "travis"), ("TEAMCITY_VERSION", "teamcity"), ("BITBUCKET_BUILD_NUMBER", "bitbucket"),
    ("CODEBUILD_BUILD_ID", "aws-codebuild"), ("CI", "generic"),
)

_CGROUP_CONTAINER_MARKERS = (("kubepods", "kubernetes"), ("docker", "docker"), ("containerd", "containerd"),
                             ("libpod", "podman"), ("lxc", "lxc"))
_DMI_VENDORS = (("QEMU", "qemu"), ("KVM", "kvm"), ("Amazon EC2", "aws"), ("Google", "gce"),
                ("Microsoft Corporation", "hyper-v"), ("VMware", "vmware"), ("innotek", "virtualbox"),
                ("Xen", "xen"))


def collect_host(ctx: ProbeContext) -> HostFacts:
    root, env = ctx.root, ctx.environ
    sources: dict[str, str] = {}
    cpuinfo = parse_cpuinfo(root.read_text("/proc/cpuinfo") or "")
    facts = HostFacts(os=platform.system())
    sources["os"] = "platform module"
    # The CPU probe's own answer: a fake root is a whole other machine, not this one's kernel.
    facts.architecture, sources["architecture"] = machine_architecture(root, cpuinfo)

    if facts.os == "Linux":
        os_release = _parse_os_release(root.read_text("/etc/os-release") or "")
        facts.os_release = os_release.get("PRETTY_NAME") or os_release.get("NAME")
        sources["os_release"] = "/etc/os-release"
        kernel = root.read_text("/proc/sys/kernel/osrelease")
        facts.kernel = kernel.strip() if kernel else platform.release()
        sources["kernel"] = "/proc/sys/kernel/osrelease" if kernel else "platform.release()"
    elif facts.os == "Darwin":
        facts.os_release = f"macOS {platform.mac_ver()[0]}"
        facts.kernel = platform.release()
        sources["os_release"] = "platform.mac_ver()"
        sources["kernel"] = "platform.release()"
    else:
        facts.os_release = f"{facts.os} {platform.version()}"
        facts.kernel = platform.release()
        sources["os_release"] = "platform.version()"
        sources["kernel"] = "platform.release()"

    libc_name, libc_version = platform.libc_ver()
    if libc_name:
        facts.libc = f"{libc_name} {libc_version}"
        sources["libc"] = "platform.libc_ver()"

    facts.container, facts.container_signals = _container(ctx, facts.kernel or "")
    sources["container"] = "/.dockerenv, /run/.containerenv, /proc/1/cgroup, environment"
    facts.virtualization, facts.virtualization_signals = _virtualization(ctx, cpuinfo)
    sources["virtualization"] = "/proc/cpuinfo hypervisor flag, /sys/class/dmi/id/sys_vendor, /sys/hypervisor/type"
    facts.ci, facts.ci_signals = _ci(env)
    sources["ci"] = "environment"
    facts.environment_variables = {
        name: redact_value(name, value) for name, value in sorted(env.items())
        if name.startswith(RELEVANT_ENV_PREFIXES) or name in RELEVANT_ENV_NAMES
    }
    sources["environment_variables"] = "environment (ML tools' variables; secret-looking values redacted)"
    facts.sources = sources
    return facts


def collect_python(ctx: ProbeContext) -> PythonFacts:
    """The audited interpreter's facts (--python, else the auditor's own)."""
    return python_facts(ctx.python or own_interpreter(), ctx.environ)


def python_facts(interpreter: Interpreter, environ: Mapping[str, str]) -> PythonFacts:
    prefix = interpreter.prefix
    environment, environment_path = "system", None
    if prefix != interpreter.base_prefix:
        environment, environment_path = "venv", prefix
        try:
            with open(f"{prefix}/pyvenv.cfg", encoding="utf-8") as cfg:
                if re.search(r"^uv\s*=", cfg.read(), re.MULTILINE):
                    environment = "uv"
        except OSError:
            pass
    elif environ.get("CONDA_PREFIX") == prefix or os.path.isdir(f"{prefix}/conda-meta"):
        environment, environment_path = "conda", prefix
    asked = "" if interpreter.own else " (asked of that interpreter)"
    return PythonFacts(
        version=interpreter.version,
        implementation=interpreter.implementation,
        executable=interpreter.executable,
        prefix=prefix,
        environment=environment,
        environment_path=environment_path,
        sources={"version": f"platform.python_version(){asked}",
                 "implementation": f"platform.python_implementation(){asked}",
                 "executable": f"sys.executable{asked}", "prefix": f"sys.prefix{asked}",
                 "environment": "sys.prefix vs sys.base_prefix, pyvenv.cfg, conda-meta",
                 "environment_path": "sys.prefix"},
    )


def _parse_os_release(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"')
    return values


def _container(ctx: ProbeContext, kernel: str) -> tuple[str | None, list[str]]:
    root, env = ctx.root, ctx.environ
    found: list[tuple[str, str]] = []  # (kind, signal)
    if root.exists("/.dockerenv"):
        found.append(("docker", "/.dockerenv exists"))
    if root.exists("/run/.containerenv"):
        found.append(("podman", "/run/.containerenv exists"))
    if env.get("KUBERNETES_SERVICE_HOST"):
        found.append(("kubernetes", "KUBERNETES_SERVICE_HOST is set"))
    if env.get("container"):
        found.append((env["container"], f"container={env['container']}"))
    cgroup = root.read_text("/proc/1/cgroup") or ""
    for marker, kind in _CGROUP_CONTAINER_MARKERS:
        if marker in cgroup:
            found.append((kind, f"/proc/1/cgroup mentions {marker}"))
            break
    if "microsoft" in kernel.lower():
        found.append(("wsl", f"kernel {kernel} is a WSL kernel"))
    # Kubernetes runs docker/containerd underneath; name the orchestrator when both show.
    kinds = [kind for kind, _ in found]
    kind = "kubernetes" if "kubernetes" in kinds else (kinds[0] if kinds else None)
    return kind, [signal for _, signal in found]


def _virtualization(ctx: ProbeContext, cpuinfo: CpuInfo) -> tuple[str | None, list[str]]:
    root = ctx.root
    signals, kind = [], None
    if "hypervisor" in (cpuinfo.flags or ()):
        signals.append("/proc/cpuinfo has the hypervisor flag")
        kind = "vm"
    vendor = (root.read_text("/sys/class/dmi/id/sys_vendor") or "").strip()
    for marker, name in _DMI_VENDORS:
        if marker.lower() in vendor.lower():
            signals.append(f"/sys/class/dmi/id/sys_vendor is {vendor}")
            kind = name
            break
    hypervisor = (root.read_text("/sys/hypervisor/type") or "").strip()
    if hypervisor:
        signals.append(f"/sys/hypervisor/type is {hypervisor}")
        kind = kind if kind not in (None, "vm") else hypervisor
    return kind, signals


def _ci(env) -> tuple[str | None, list[str]]:
    signals = [name for name, _ in CI_VARIABLES if env.get(name) not in (None, "", "false", "0")]
    provider = next((p for name, p in CI_VARIABLES if name in signals), None)
    return provider, signals
