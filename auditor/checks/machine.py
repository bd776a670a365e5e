"""CPU and MEM: the machine's CPU and memory, as the frameworks will meet them."""

from __future__ import annotations

from auditor.checks.base import Hit, check
from auditor.facts import Snapshot

GIB = 1024**3
MIB = 1024**2
# DeepSpeed's ds_report warns below 512 MB (deepspeed/env_report.py); Docker's default is 64 MB.
SMALL_SHM_BYTES = 512 * MIB


def _gib(value: int) -> str:
    return f"{value / GIB:.1f} GiB"


@check("CPU001", "tensorflow-needs-avx", "error",
       "TensorFlow is installed but this CPU has no AVX.",
       "Official TensorFlow x86 wheels are compiled for AVX (since TF 1.6). On a CPU without it, "
       "`import tensorflow` dies with 'Illegal instruction' (exit 132) on Linux or 'DLL load "
       "failed' on Windows. Source: tensorflow.org/install/pip, TensorFlow .bazelrc avx_linux.",
       fix="Use a machine whose CPU has AVX, or build TensorFlow from source without AVX (`bazel build "
           "--copt=-mno-avx ...`); PyTorch's wheels do run on this CPU.",
       example="tensorflow 2.18.0 needs AVX, which this Intel(R) Celeron(R) N5105 @ 2.00GHz lacks\n"
               "cpu features: avx absent (/proc/cpuinfo flags)")
def tensorflow_needs_avx(snapshot: Snapshot):
    cpu = snapshot.machine.cpu
    tf = snapshot.frameworks.get("tensorflow")
    if tf and cpu and cpu.architecture in ("x86_64", "AMD64", "i686") and cpu.features.get("avx") is False:
        yield Hit(f"{tf.distribution} {tf.distribution_version} needs AVX, which this {cpu.model or 'CPU'} lacks",
                  [f"cpu features: avx absent ({cpu.sources.get('features')})",
                   f"{tf.distribution} {tf.distribution_version} installed (package metadata)"],
                  "Use a machine with an AVX CPU, or build TensorFlow from source without AVX "
                  "(bazel build --copt=-mno-avx); PyTorch wheels do run here.")


@check("CPU002", "cpu-quota-below-visible", "warning",
       "Fewer CPUs are usable than the machine shows.",
       "A cgroup CPU quota or a CPU affinity mask lets this process use fewer CPUs than "
       "os.cpu_count() reports. Frameworks and DataLoaders that size thread pools from the visible "
       "count oversubscribe the real share and slow down.",
       fix="Size thread pools to the usable share (`export OMP_NUM_THREADS=<usable CPUs>`, "
           "DataLoader(num_workers<=<usable CPUs>)), or raise the container's CPU limit (`docker run --cpus <n>`, "
           "Kubernetes resources.limits.cpu).",
       example="Only 4 of 64 visible CPUs are usable\n"
               "cgroup quota 4 CPUs (/sys/fs/cgroup/cpu.max)")
def cpu_quota_below_visible(snapshot: Snapshot):
    cpu = snapshot.machine.cpu
    if cpu and cpu.usable_cpus and cpu.logical_cpus and cpu.usable_cpus < cpu.logical_cpus:
        limits = []
        if cpu.cgroup_cpu_quota is not None:
            limits.append(f"cgroup quota {cpu.cgroup_cpu_quota:g} CPUs ({cpu.sources.get('cgroup_cpu_quota')})")
        if cpu.affinity_cpus is not None and cpu.affinity_cpus < cpu.logical_cpus:
            limits.append(f"affinity {cpu.affinity_cpus} CPUs ({cpu.sources.get('affinity_cpus')})")
        yield Hit(f"Only {cpu.usable_cpus} of {cpu.logical_cpus} visible CPUs are usable",
                  [f"visible CPUs: {cpu.logical_cpus} ({cpu.sources.get('logical_cpus')})", *limits],
                  f"Size thread pools to the real share: `export OMP_NUM_THREADS={cpu.usable_cpus}` and "
                  f"DataLoader(num_workers<={cpu.usable_cpus}); or raise the container's --cpus.")


@check("MEM001", "memory-limit-below-host", "warning",
       "A cgroup memory limit is smaller than the machine's RAM.",
       "Inside a container, psutil and /proc/meminfo report the host's RAM, but the kernel kills "
       "the process (OOM) at the cgroup limit. Batch sizes and dataset caching chosen from the "
       "visible RAM will be killed without a Python error.",
       fix="Size batches and caches to the cgroup limit, not the host's RAM, or raise the container's memory "
           "limit (`docker run --memory <size>`, Kubernetes resources.limits.memory).",
       example="The memory limit is 16.0 GiB, though the machine shows 251.6 GiB\n"
               "cgroup limit 17179869184 bytes (/sys/fs/cgroup/memory.max)")
def memory_limit_below_host(snapshot: Snapshot):
    memory = snapshot.machine.memory
    if memory and memory.cgroup_limit_bytes and memory.total_bytes and memory.cgroup_limit_bytes < memory.total_bytes:
        yield Hit(f"The memory limit is {_gib(memory.cgroup_limit_bytes)}, though the machine shows {_gib(memory.total_bytes)}",
                  [f"cgroup limit {memory.cgroup_limit_bytes} bytes ({memory.sources.get('cgroup_limit_bytes')})",
                   f"MemTotal {memory.total_bytes} bytes ({memory.sources.get('total_bytes')})"],
                  "Plan for the limit, not the host: size batches and caches to it, or raise the container's "
                  "memory limit (docker run --memory, Kubernetes resources.limits.memory).")


@check("MEM002", "small-dev-shm", "warning",
       "/dev/shm is small.",
       "PyTorch DataLoader workers pass batches through shared memory in /dev/shm. Docker gives "
       "containers 64 MiB by default, and workers then die with 'Bus error' or 'unable to "
       "allocate shared memory'. DeepSpeed's ds_report warns below 512 MB for the same reason.",
       fix="Start the container with a larger shared memory: `docker run --shm-size=8g ...` (Kubernetes: mount an "
           "emptyDir with medium: Memory at /dev/shm).",
       example="/dev/shm is only 64 MiB\n"
               "/dev/shm size 67108864 bytes (/proc/self/mounts size= option)")
def small_shm(snapshot: Snapshot):
    memory = snapshot.machine.memory
    if memory and memory.shm_bytes is not None and memory.shm_bytes < SMALL_SHM_BYTES:
        yield Hit(f"/dev/shm is only {memory.shm_bytes // MIB} MiB",
                  [f"/dev/shm size {memory.shm_bytes} bytes ({memory.sources.get('shm_bytes')})"],
                  "Start the container with a larger shared memory: `docker run --shm-size=8g ...` "
                  "(Kubernetes: mount an emptyDir with medium: Memory at /dev/shm).")
