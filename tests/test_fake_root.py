"""Linux probes against fake machine trees: cgroups v1 and v2, /dev/shm, CPUs, failures."""

from __future__ import annotations

import json

from auditor.checks import run_checks
from auditor.probes.base import ProbeContext
from auditor.probes.cpu import collect_cpu, parse_cpu_list
from auditor.probes.host import collect_host
from auditor.probes.memory import collect_memory
from machines import X86_FLAGS_NO_AVX, linux_machine, x86_cpuinfo
from conftest import quick_snapshot, run_auditor

GIB = 1024**3


def ctx(root, environ=None):
    return ProbeContext(root, environ or {})


def codes(snapshot) -> list[str]:
    return [f.code for f in run_checks(snapshot)]


def test_cpu_list_parsing():
    assert parse_cpu_list("0-3,8,10-11\n") == 7
    assert parse_cpu_list("5") == 1


def test_unlimited_host_has_no_container_findings(fake_root):
    root = fake_root(linux_machine())
    cpu = collect_cpu(ctx(root))
    assert (cpu.logical_cpus, cpu.physical_cores, cpu.affinity_cpus, cpu.cgroup_cpu_quota, cpu.usable_cpus) == (8, 8, 8, None, 8)
    memory = collect_memory(ctx(root))
    assert memory.total_bytes == 64 * GIB
    assert memory.cgroup_limit_bytes is None
    assert memory.shm_bytes == 32 * GIB
    assert not {"CPU002", "MEM001", "MEM002"} & set(codes(quick_snapshot(root)))


def test_cgroup_v2_quota_and_memory_limit_are_what_is_usable(fake_root):
    files = linux_machine(processors=16)
    files.update({"/proc/self/cgroup": "0::/kubepods/pod1/ctr\n",
                  "/sys/fs/cgroup/kubepods/cpu.max": "400000 100000\n",
                  "/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "150000 100000\n",
                  "/sys/fs/cgroup/kubepods/pod1/memory.max": str(8 * GIB) + "\n",
                  "/sys/fs/cgroup/kubepods/pod1/ctr/memory.max": "max\n"})
    root = fake_root(files)
    cpu = collect_cpu(ctx(root))
    assert cpu.cgroup_cpu_quota == 1.5  # the smallest limit on the path wins
    assert cpu.usable_cpus == 2  # ceil(1.5)
    assert cpu.sources["cgroup_cpu_quota"] == "/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max"
    memory = collect_memory(ctx(root))
    assert memory.cgroup_limit_bytes == 8 * GIB  # set on the parent, enforced on the child
    assert memory.usable_bytes == 8 * GIB
    findings = {f.code: f for f in run_checks(quick_snapshot(root))}
    assert findings["CPU002"].title == "Only 2 of 16 visible CPUs are usable"
    assert "OMP_NUM_THREADS=2" in findings["CPU002"].fix
    assert findings["MEM001"].title == "The memory limit is 8.0 GiB, though the machine shows 64.0 GiB"


def test_cgroup_v1_quota_limit_and_unlimited_sentinel(fake_root):
    files = linux_machine(processors=4)
    del files["/sys/fs/cgroup/cgroup.controllers"]
    files.update({"/proc/self/cgroup": "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n",
                  "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "200000\n",
                  "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
                  "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "9223372036854771712\n"})
    root = fake_root(files)
    assert collect_cpu(ctx(root)).cgroup_cpu_quota == 2.0
    assert collect_memory(ctx(root)).cgroup_limit_bytes is None  # v1's "unlimited"
    (root.root / "sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes").write_text(str(2 * GIB))
    assert collect_memory(ctx(root)).cgroup_limit_bytes == 2 * GIB


def test_affinity_mask_limits_usable_cpus(fake_root):
    root = fake_root(linux_machine(processors=8, allowed="0-1,4"))
    cpu = collect_cpu(ctx(root))
    assert (cpu.affinity_cpus, cpu.usable_cpus) == (3, 3)
    assert "affinity 3 CPUs" in " ".join(next(f for f in run_checks(quick_snapshot(root)) if f.code == "CPU002").evidence)


def test_docker_default_dev_shm_is_flagged(fake_root):
    root = fake_root(linux_machine(shm="size=65536k"))
    assert collect_memory(ctx(root)).shm_bytes == 64 * 1024**2
    finding = next(f for f in run_checks(quick_snapshot(root)) if f.code == "MEM002")
    assert finding.title == "/dev/shm is only 64 MiB"
    assert "--shm-size" in finding.fix


def test_dev_shm_near_miss_at_the_threshold_is_not_flagged(fake_root):
    assert "MEM002" not in codes(quick_snapshot(fake_root(linux_machine(shm="size=512m"))))


def test_cpu_without_avx_and_tensorflow_installed_is_an_error(fake_root):
    snapshot = quick_snapshot(fake_root(linux_machine(flags=X86_FLAGS_NO_AVX)))
    assert snapshot.machine.cpu.features["avx"] is False
    finding = next(f for f in run_checks(snapshot) if f.code == "CPU001")
    assert finding.severity == "error"
    assert "needs AVX" in finding.title


def test_arm_cpu_features_are_read_from_features_line(fake_root):
    cpuinfo = "".join(f"processor\t: {n}\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd asimddp sve i8mm bf16\n"
                      f"CPU implementer\t: 0x41\nCPU part\t: 0xd40\n\n" for n in range(4))
    files = linux_machine()
    files["/proc/cpuinfo"] = cpuinfo
    cpu = collect_cpu(ctx(fake_root(files)))
    assert cpu.vendor == "ARM"
    assert cpu.features == {"neon": True, "fp16": False, "dotprod": True, "sve": True, "sve2": False,
                            "bf16": True, "i8mm": True, "sme": False}
    assert cpu.logical_cpus == 4


def test_container_and_ci_signals(fake_root):
    files = linux_machine()
    files["/.dockerenv"] = ""
    files["/proc/1/cgroup"] = "0::/kubepods/besteffort/pod1\n"
    host = collect_host(ctx(fake_root(files), {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "GITHUB_ACTIONS": "true", "CI": "true"}))
    assert host.container == "kubernetes"
    assert "/.dockerenv exists" in host.container_signals
    assert (host.ci, host.ci_signals) == ("github-actions", ["GITHUB_ACTIONS", "CI"])
    assert host.os_release == "Test Linux 1"
    assert host.kernel == "6.1.0-test"


def test_missing_proc_files_become_probe_statuses_and_a_finding(tmp_path):
    """An empty fake root: the audit completes, the probes say why, AUD001 reports it."""
    result = run_auditor("audit", "--quick", "--format", "json", "--root", str(tmp_path))
    assert result.returncode == 0, result.stderr  # AUD001 is a warning, below the default --fail-on
    report = json.loads(result.stdout)
    runs = {run["name"]: run for run in report["probes"]}
    assert runs["cpu"]["status"] == "error" and "proc/cpuinfo" in runs["cpu"]["reason"]
    assert runs["memory"]["status"] == "error" and "proc/meminfo" in runs["memory"]["reason"]
    assert report["machine"]["cpu"] is None
    aud = [f for f in report["findings"] if f["code"] == "AUD001"]
    assert sorted(f["title"].split()[1] for f in aud) == ["cpu", "memory"]
    assert "Traceback" not in result.stderr


def test_garbage_in_a_cgroup_file_is_a_probe_error_not_a_crash(fake_root):
    files = linux_machine()
    files["/sys/fs/cgroup/cpu.max"] = "lots 100000\n"
    snapshot = quick_snapshot(fake_root(files))
    assert snapshot.probe("cpu").status == "error"
    assert "lots" in snapshot.probe("cpu").reason
    assert "AUD001" in codes(snapshot)


def test_physical_cores_count_distinct_core_ids(fake_root):
    files = linux_machine()
    # one package, 4 cores, 2 hyper-threads each: processors n and n+4 share core n
    files["/proc/cpuinfo"] = x86_cpuinfo(8, cores_per_package=4).replace("physical id\t: 1", "physical id\t: 0")
    cpu = collect_cpu(ctx(fake_root(files)))
    assert (cpu.logical_cpus, cpu.physical_cores) == (8, 4)
