"""Builders for fake machine trees (the /proc, /sys, /dev seam) used across tests."""

from __future__ import annotations

X86_FLAGS_WITH_AVX = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma f16c"
X86_FLAGS_NO_AVX = "fpu sse sse2 ssse3 sse4_1 sse4_2"


def x86_cpuinfo(processors: int, flags: str = X86_FLAGS_WITH_AVX, model: str = "Test CPU @ 2.0GHz",
                cores_per_package: int | None = None) -> str:
    cores_per_package = cores_per_package or processors
    blocks = []
    for n in range(processors):
        blocks.append(
            f"processor\t: {n}\nvendor_id\t: GenuineIntel\nmodel name\t: {model}\n"
            f"physical id\t: {n // cores_per_package}\ncore id\t\t: {n % cores_per_package}\nflags\t\t: {flags}\n"
        )
    return "\n".join(blocks) + "\n"


def meminfo(total_kib: int, available_kib: int | None = None, swap_kib: int = 0) -> str:
    return (f"MemTotal:       {total_kib} kB\nMemFree:        {total_kib // 2} kB\n"
            f"MemAvailable:   {available_kib or total_kib // 2} kB\nSwapTotal:      {swap_kib} kB\nSwapFree:       {swap_kib} kB\n")


def status(cpus_allowed: str) -> str:
    return f"Name:\tpython\nCpus_allowed_list:\t{cpus_allowed}\n"


def linux_machine(processors: int = 8, total_kib: int = 64 * 1024 * 1024, flags: str = X86_FLAGS_WITH_AVX,
                  shm: str = "size=32g", allowed: str | None = None) -> dict[str, str]:
    """A plain, unlimited Linux host: no cgroup limits, everything readable."""
    return {
        "/proc/cpuinfo": x86_cpuinfo(processors, flags),
        "/proc/meminfo": meminfo(total_kib),
        "/proc/self/status": status(allowed or f"0-{processors - 1}"),
        "/proc/self/cgroup": "0::/\n",
        "/proc/self/mounts": f"tmpfs /dev/shm tmpfs rw,nosuid,nodev,{shm} 0 0\n",
        "/sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory pids\n",
        "/sys/fs/cgroup/cpu.max": "max 100000\n",
        "/sys/fs/cgroup/memory.max": "max\n",
        "/etc/os-release": 'PRETTY_NAME="Test Linux 1"\n',
        "/proc/sys/kernel/osrelease": "6.1.0-test\n",
    }
