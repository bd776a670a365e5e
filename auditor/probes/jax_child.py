"""JAX probe. Runs only inside a child process (see probes/child.py).

JAX picks its backend at the first device query and silently falls back to the CPU when a
plugin (CUDA, TPU) fails to initialise (jax#20722), so the devices come from jax.devices()
and each proof's result reports the device it really ran on.
"""

from __future__ import annotations

import os
import time

from auditor.probes.base import LOOK_FOR_TPU
from auditor.probes.child import describe_exception
from auditor.probes.loaded_libraries import loaded_libraries
from auditor.probes.proof import prove_matmul

_KINDS = {"cpu": "cpu", "gpu": "cuda", "cuda": "cuda", "rocm": "rocm", "tpu": "tpu", "METAL": "mps"}


def collect() -> dict:
    started = time.perf_counter()
    import jax
    import jaxlib

    import_seconds = round(time.perf_counter() - started, 3)
    backend_errors = {}
    if os.environ.get(LOOK_FOR_TPU):
        try:
            jax.devices("tpu")
        except RuntimeError as exc:  # libtpu missing, or the TPU runtime failed to start
            backend_errors["tpu"] = describe_exception(exc)
    devices = [{"id": _device_id(d), "kind": _KINDS.get(d.platform, d.platform), "name": d.device_kind}
               for d in jax.devices() + ([] if jax.default_backend() == "cpu" else jax.devices("cpu"))]
    proofs = [prove_matmul(device["id"], "float32", _matmul_on(jax, device["id"])) for device in devices]
    return {
        "version": jax.__version__,
        "module_path": jax.__file__,
        "import_seconds": import_seconds,
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
                    "proofs": "jnp matmul on each device vs a NumPy float64 reference"},
    }


def _device_id(device) -> str:
    return f"{device.platform}:{device.id}"


def _matmul_on(jax, device_id: str):
    import jax.numpy as jnp

    device = next(d for d in jax.devices(device_id.split(":")[0]) if _device_id(d) == device_id)

    def run(a, b):
        product = jnp.matmul(jax.device_put(a, device), jax.device_put(b, device))
        product.block_until_ready()
        (ran_on,) = product.devices()
        return jax.device_get(product), _device_id(ran_on)

    return run
