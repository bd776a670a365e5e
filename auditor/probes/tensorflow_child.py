"""TensorFlow probe. Runs only inside a child process (see probes/child.py).

TensorFlow quietly runs on the CPU when it cannot load CUDA (tensorflow#38990), so the
device a result really came from is read off the result tensor, not assumed.
"""

from __future__ import annotations

import os

from auditor.probes.base import DEEP, LOOK_FOR_TPU
from auditor.probes.child_entry import describe_exception
from auditor.probes.loaded_libraries import library_version, loaded_libraries
from auditor.probes.proof import TRAIN_ORDER, Timings, import_then_probe, prove_device, skipped

_DEVICE_KINDS = {"CPU": "cpu", "GPU": "gpu", "TPU": "tpu"}


def collect() -> dict:
    return import_then_probe(_probe, "tensorflow")


def _probe(timings: Timings, tf) -> dict:
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
    proofs = []
    for device in devices:
        proofs += prove_device(device["id"], device["kind"], TensorFlowKernels(tf, device["id"]), _dtypes(device),
                               timings)
        if device["kind"] != "tpu":  # on a TPU every tf.function is XLA already
            proofs += _xla_proofs(tf, device, timings)
    libraries = loaded_libraries()
    variant = "cuda" if info.get("is_cuda_build") else "rocm" if info.get("is_rocm_build") else "cpu"
    return {
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
            "proofs": "matmul, conv2d and a train step on each device (mixed precision for bfloat16/float16), "
                      "eager and XLA (jit_compile=True), vs float64 references computed in pure Python",
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


def _dtypes(device: dict) -> tuple[str, ...]:
    """float32 everywhere, plus the mixed-precision dtypes of the device: bfloat16 on CPUs
    (oneDNN) and TPUs, float16 on GPUs, bfloat16 on GPUs from compute capability 8.0."""
    if device["kind"] in ("cpu", "tpu"):
        return ("float32", "bfloat16")
    major = int((device.get("compute_capability") or "0.0").split(".")[0])
    return ("float32", "float16", "bfloat16") if major >= 8 else ("float32", "float16")


def _xla_proofs(tf, device: dict, timings: Timings) -> list[dict]:
    """XLA (jit_compile=True) compiles each workload; it fails loudly when XLA cannot run.
    The matmul and convolution compile in a fraction of a second and always run; the train
    step's gradient graph takes longer to compile and runs under --deep."""
    kernels = TensorFlowKernels(tf, device["id"], jit_compile=True)
    proofs = prove_device(device["id"], device["kind"], kernels, ("float32",), timings, compiler="xla",
                          workloads=("matmul", "conv2d"))
    if os.environ.get(DEEP):
        return proofs + prove_device(device["id"], device["kind"], kernels, ("float32",), timings, compiler="xla",
                                     workloads=("train-step",))
    return proofs + [skipped(device["id"], "train-step", "float32", "xla",
                             "needs --deep (compiling the gradient graph with XLA takes longer)")]


class TensorFlowKernels:
    """The proof workloads on one TensorFlow device, eagerly or compiled by XLA.

    Mixed precision the way Keras does it: variables stay float32 and are cast to the
    compute dtype in the forward pass; gradients flow back through the casts as float32.
    """

    def __init__(self, tf, device: str, jit_compile: bool = False):
        self.tf, self.device = tf, device
        compile_ = (lambda f: tf.function(f, jit_compile=True)) if jit_compile else (lambda f: f)
        self._matmul = compile_(lambda a, b, dtype: tf.cast(tf.linalg.matmul(tf.cast(a, dtype), tf.cast(b, dtype)),
                                                            tf.float32))
        self._conv2d = compile_(lambda x, k, dtype: tf.cast(tf.nn.conv2d(tf.cast(x, dtype), tf.cast(k, dtype), 1,
                                                                         "SAME"), tf.float32))
        self._train_step = compile_(self._step)
        self._product = compile_(lambda x, y: tf.linalg.matmul(x, y))  # the timed one: eager, or XLA's

    def matmul(self, a, b, dtype):
        with self.tf.device(self.device):
            return self._result(self._matmul(self._constant(a), self._constant(b), self._dtype(dtype)))

    def conv2d(self, x, kernel, dtype):
        with self.tf.device(self.device):
            return self._result(self._conv2d(self._constant(x), self._constant(kernel), self._dtype(dtype)))

    def train_step(self, params, x, target, learning_rate, dtype):
        tf = self.tf
        with tf.device(self.device):
            variables = [tf.Variable(self._constant(params[name])) for name in TRAIN_ORDER]
            deltas = self._train_step(variables, self._constant(x), self._constant(target),
                                      tf.constant(learning_rate, tf.float32), self._dtype(dtype))
            return self._result(deltas)

    def matmul_on_device(self, size, dtype):
        import numpy as np

        tf = self.tf
        rng = np.random.default_rng(3)
        with tf.device(self.device):
            x, y = (tf.cast(tf.constant(rng.standard_normal((size, size), dtype=np.float32)), self._dtype(dtype))
                    for _ in range(2))

        def multiply():
            with tf.device(self.device):
                self._product(x, y).numpy()  # .numpy() waits for the kernel

        return multiply

    def threads(self):
        if not self.device.startswith("/device:CPU:"):
            return None
        return self.tf.config.threading.get_intra_op_parallelism_threads() or _default_intra_op_threads()

    def _step(self, variables, x, target, learning_rate, dtype):
        tf = self.tf
        before = [tf.identity(v) for v in variables]
        with tf.GradientTape() as tape:
            w1, b1, w2, b2 = (tf.cast(v, dtype) for v in variables)
            output = tf.linalg.matmul(tf.tanh(tf.linalg.matmul(tf.cast(x, dtype), w1) + b1), w2) + b2
            loss = tf.reduce_mean(tf.square(tf.cast(output, tf.float32) - target))
        for variable, gradient in zip(variables, tape.gradient(loss, variables)):
            # The kernel every TensorFlow SGD optimizer ends in, without importing Keras.
            tf.raw_ops.ResourceApplyGradientDescent(var=variable.handle, alpha=learning_rate, delta=gradient)
        return tf.concat([tf.reshape(v - old, [-1]) for v, old in zip(variables, before)], 0)

    def _dtype(self, name: str):
        return getattr(self.tf, name)

    def _constant(self, operand):
        # TensorFlow cannot be imported without NumPy, so NumPy is there to read the operand.
        import numpy as np

        return self.tf.constant(np.frombuffer(operand.values, dtype=np.float32).reshape(operand.shape))

    def _result(self, tensor):
        return tensor.numpy().reshape(-1), "/device:" + tensor.device.split("device:", 1)[-1]


def _default_intra_op_threads() -> int:
    """What TensorFlow means by 0 intra-op threads (DefaultNumIntraOpThreads in its
    process_util.cc): TF_NUM_INTRAOP_THREADS when set, else one thread per CPU this process may
    run on. TensorFlow reports neither through its Python API."""
    configured = os.environ.get("TF_NUM_INTRAOP_THREADS", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
