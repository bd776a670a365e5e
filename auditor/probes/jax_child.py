"""JAX probe. Runs only inside a child process (see probes/child.py).

JAX picks its backend at the first device query and silently falls back to the CPU when a
plugin (CUDA, TPU) fails to initialise (jax#20722), so the devices come from jax.devices()
and each proof's result reports the device it really ran on.
"""

from __future__ import annotations

import os

from auditor.probes.base import LOOK_FOR_TPU
from auditor.probes.child_entry import describe_exception
from auditor.probes.loaded_libraries import loaded_libraries
from auditor.probes.proof import TRAIN_ORDER, Timings, import_then_probe, prove_device

_KINDS = {"cpu": "cpu", "gpu": "cuda", "cuda": "cuda", "rocm": "rocm", "tpu": "tpu", "METAL": "mps"}


def collect() -> dict:
    return import_then_probe(_probe, "jax", "jaxlib")


def _probe(timings: Timings, jax, jaxlib) -> dict:
    backend_errors = {}
    if os.environ.get(LOOK_FOR_TPU):
        try:
            jax.devices("tpu")
        except RuntimeError as exc:  # libtpu missing, or the TPU runtime failed to start
            backend_errors["tpu"] = describe_exception(exc)
    devices = [{"id": _device_id(d), "kind": _KINDS.get(d.platform, d.platform), "name": d.device_kind}
               for d in jax.devices() + ([] if jax.default_backend() == "cpu" else jax.devices("cpu"))]
    proofs = []
    for device in devices:
        # XLA compiles everything JAX runs: that is its ordinary path, so compiler stays None.
        proofs += prove_device(device["id"], device["kind"], JaxKernels(jax, device["id"]), _dtypes(device), timings)
    return {
        "build": {"variant": jax.default_backend(), "details": {"jaxlib": jaxlib.__version__}},
        "runtime": {
            "loaded_libraries": loaded_libraries(),
            "backends": {kind: any(d["kind"] == kind for d in devices) for kind in ("tpu", "cuda", "rocm")},
            "backend_errors": backend_errors,
        },
        "devices": devices,
        "proofs": proofs,
        "sources": {"version": "jax.__version__", "build.details.jaxlib": "jaxlib.__version__",
                    "devices": "jax.devices()", "runtime.backend_errors": "jax.devices(platform)",
                    "proofs": "jitted matmul, conv2d and a jax.grad SGD step on each device "
                              "vs float64 references computed in pure Python"},
    }


def _device_id(device) -> str:
    return f"{device.platform}:{device.id}"


def _dtypes(device: dict) -> tuple[str, ...]:
    # XLA offers bfloat16 on every backend (natively on TPUs and recent CPUs and GPUs);
    # float16 is a GPU dtype.
    if device["kind"] in ("cpu", "tpu"):
        return ("float32", "bfloat16")
    return ("float32", "float16", "bfloat16")


class JaxKernels:
    """The proof workloads on one JAX device; everything JAX runs is compiled by XLA."""

    def __init__(self, jax, device_id: str):
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        self.device = next(d for d in jax.devices(device_id.split(":")[0]) if _device_id(d) == device_id)
        f32 = jnp.float32
        self._matmul = jax.jit(lambda a, b, dtype: jnp.matmul(a.astype(dtype), b.astype(dtype)).astype(f32),
                               static_argnums=2)
        self._conv2d = jax.jit(lambda x, k, dtype: jax.lax.conv_general_dilated(
            x.astype(dtype), k.astype(dtype), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")).astype(f32),
            static_argnums=2)

        def loss(params, x, target, dtype):
            w1, b1, w2, b2 = (p.astype(dtype) for p in params)
            output = jnp.tanh(x.astype(dtype) @ w1 + b1) @ w2 + b2
            return jnp.mean((output.astype(f32) - target) ** 2)

        def step(params, x, target, learning_rate, dtype):
            # SGD by hand: JAX has no optimizer of its own (optax is a separate package).
            grads = jax.grad(loss)(params, x, target, dtype)
            updated = [p - learning_rate * g for p, g in zip(params, grads)]
            return jnp.concatenate([(new - old).ravel() for new, old in zip(updated, params)])

        self._train_step = jax.jit(step, static_argnums=4)

    def matmul(self, a, b, dtype):
        return self._result(self._matmul(self._put(a), self._put(b), self._dtype(dtype)))

    def conv2d(self, x, kernel, dtype):
        return self._result(self._conv2d(self._put(x), self._put(kernel), self._dtype(dtype)))

    def train_step(self, params, x, target, learning_rate, dtype):
        leaves = [self._put(params[name]) for name in TRAIN_ORDER]
        return self._result(self._train_step(leaves, self._put(x), self._put(target), learning_rate,
                                             self._dtype(dtype)))

    def matmul_on_device(self, size, dtype):
        import numpy as np

        # NumPy, not jax.random, whose first call compiles its generator: 0.7 s on a CPU.
        rng = np.random.default_rng(3)
        x, y = (self.jax.device_put(rng.standard_normal((size, size), dtype=np.float32), self.device)
                .astype(self._dtype(dtype)) for _ in range(2))
        multiply = self.jax.jit(self.jnp.matmul)
        return lambda: multiply(x, y).block_until_ready()

    def threads(self):
        return None  # XLA sizes its CPU thread pool itself and reports it nowhere JAX exposes

    def _put(self, operand):
        # JAX cannot be imported without NumPy, so NumPy is there to read the operand.
        import numpy as np

        return self.jax.device_put(np.frombuffer(operand.values, dtype=np.float32).reshape(operand.shape), self.device)

    def _dtype(self, name: str):
        return getattr(self.jnp, name)

    def _result(self, array):
        array.block_until_ready()
        (ran_on,) = array.devices()
        return self.jax.device_get(array).reshape(-1), _device_id(ran_on)
