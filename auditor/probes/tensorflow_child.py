"""TensorFlow probe. Runs only inside a child process (see probes/child.py).

TensorFlow quietly runs on the CPU when it cannot load CUDA (tensorflow#38990), so the
device a result really came from is read off the result tensor, not assumed.
"""

from __future__ import annotations

import os
import time

from auditor.probes.base import LOOK_FOR_TPU
from auditor.probes.child import describe_exception
from auditor.probes.loaded_libraries import library_version, loaded_libraries
from auditor.probes.proof import prove_matmul

_DEVICE_KINDS = {"CPU": "cpu", "GPU": "gpu", "TPU": "tpu"}


def collect() -> dict:
    started = time.perf_counter()
    import tensorflow as tf

    import_seconds = round(time.perf_counter() - started, 3)
    info = dict(tf.sysconfig.get_build_info())
    backend_errors = {}
    if os.environ.get(LOOK_FOR_TPU):
        # TPUs appear only after the TPU system is initialised; a failure here is the fact
        # that TensorFlow cannot use the TPU this machine shows.
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="local")
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except Exception as exc:
            backend_errors["tpu"] = describe_exception(exc)
    physical = [d for d in tf.config.list_physical_devices() if d.device_type in _DEVICE_KINDS]
    devices = [_device(tf, d) for d in physical]
    if os.environ.get(LOOK_FOR_TPU) and "tpu" not in backend_errors:
        # After initialize_tpu_system, TPU cores are logical devices of the TPU worker
        # (source: tensorflow.org/guide/tpu; reference notes §3.6).
        known = {d["id"] for d in devices}
        devices += [{"id": f"/device:TPU:{d.name.rsplit(':', 1)[-1]}", "kind": "tpu"}
                    for d in tf.config.list_logical_devices("TPU")
                    if f"/device:TPU:{d.name.rsplit(':', 1)[-1]}" not in known]
    proofs = [prove_matmul(d["id"], "float32", _matmul_on(tf, d["id"])) for d in devices]
    # XLA compiles the same product; jit_compile=True fails loudly when XLA cannot run.
    proofs += [prove_matmul(d["id"], "float32", _matmul_on(tf, d["id"], jit_compile=True), "matmul (XLA jit_compile)")
               for d in devices if d["kind"] != "tpu"]
    libraries = loaded_libraries()
    variant = "cuda" if info.get("is_cuda_build") else "rocm" if info.get("is_rocm_build") else "cpu"
    return {
        "version": tf.__version__,
        "module_path": tf.__file__,
        "import_seconds": import_seconds,
        "build": {
            "variant": variant,
            "cuda_version": info.get("cuda_version"),
            "cudnn_version": info.get("cudnn_version"),
            "rocm_version": info.get("rocm_version"),
            "compiled_architectures": list(info.get("cuda_compute_capabilities") or info.get("rocm_amdgpu_targets") or []),
            "backends_built": {"cuda": bool(info.get("is_cuda_build")), "rocm": bool(info.get("is_rocm_build"))},
            "details": {key: str(value) for key, value in info.items()
                        if key not in ("cuda_version", "cudnn_version", "cuda_compute_capabilities")},
        },
        "runtime": {
            "cuda_version": library_version(libraries, "libcudart"),
            "cudnn_version": library_version(libraries, "libcudnn"),
            "loaded_libraries": libraries,
            "backends": {kind: any(d["kind"] == kind for d in devices) for kind in ("gpu", "tpu")},
            "backend_errors": backend_errors,
            "threads": tf.config.threading.get_intra_op_parallelism_threads() or None,
        },
        "devices": devices,
        "proofs": proofs,
        "sources": {
            "version": "tf.__version__",
            "build": "tf.sysconfig.get_build_info()",
            "runtime.loaded_libraries": "/proc/self/maps",
            "devices": "tf.config.list_physical_devices() + get_device_details()",
            "proofs": "matmul (eager and XLA) on each device vs a NumPy float64 reference",
        },
    }


def _device(tf, physical) -> dict:
    kind = _DEVICE_KINDS[physical.device_type]
    index = physical.name.rsplit(":", 1)[-1]
    device = {"id": f"/device:{physical.device_type}:{index}", "kind": kind}
    if kind == "gpu":
        details = tf.config.experimental.get_device_details(physical)
        device["name"] = details.get("device_name")
        capability = details.get("compute_capability")
        if capability:
            device["compute_capability"] = f"{capability[0]}.{capability[1]}"
    return device


def _matmul_on(tf, device: str, jit_compile: bool = False):
    multiply = tf.function(tf.linalg.matmul, jit_compile=True) if jit_compile else tf.linalg.matmul

    def run(a, b):
        with tf.device(device):
            product = multiply(tf.constant(a), tf.constant(b))
        ran_on = product.device.split("device:", 1)[-1]
        return product.numpy(), f"/device:{ran_on}"

    return run
