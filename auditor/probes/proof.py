"""The shared yardstick for compute proofs, used inside framework children.

Every framework multiplies the same seeded float32 matrices and is compared with one
float64 product computed by NumPy, so errors from different frameworks and devices are
comparable. Both torch and TensorFlow depend on NumPy, so it is always there.
"""

from __future__ import annotations

import time
from typing import Any, Callable

MATMUL_SIZE = 256
# Relative error (max |result - reference| / max |reference|) allowed per dtype. float32
# is loose enough for TF32 tensor cores (10-bit mantissa), which TensorFlow enables by
# default on Ampere and newer; a wrong kernel or a corrupt device is off by far more.
TOLERANCE = {"float32": 2e-3, "float16": 1e-2, "bfloat16": 5e-2}


def matmul_operands(size: int = MATMUL_SIZE, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    return a, b


def relative_error(result, reference) -> float:
    import numpy as np

    result = np.asarray(result, dtype=np.float64)
    scale = float(np.abs(reference).max()) or 1.0
    error = float(np.abs(result - reference).max()) / scale
    return error if np.isfinite(error) else float("inf")


def prove_matmul(device: str, dtype: str, run: Callable[[Any, Any], tuple[Any, str]], operation: str = "matmul") -> dict:
    """Run ``run(a, b) -> (result as NumPy, device it actually ran on)`` and judge it.

    The result must come from the device asked for: a framework that silently falls back
    to the CPU has not proven the accelerator.
    """
    import numpy as np

    a, b = matmul_operands()
    reference = a.astype(np.float64) @ b.astype(np.float64)
    proof = {"device": device, "operation": f"{operation} {MATMUL_SIZE}x{MATMUL_SIZE}", "dtype": dtype,
             "tolerance": TOLERANCE[dtype], "ok": False}
    try:
        run(a, b)  # warm-up: first calls pay for kernel selection and lazy initialisation
        started = time.perf_counter()
        result, ran_on = run(a, b)
        proof["seconds"] = round(time.perf_counter() - started, 6)
    except Exception as exc:  # a failing kernel is the finding, not a crash of the probe
        from auditor.probes.child import describe_exception

        proof["error"] = describe_exception(exc)
        return proof
    proof["max_relative_error"] = relative_error(result, reference)
    if ran_on != device:
        proof["error"] = f"asked for {device} but the result came from {ran_on}"
    elif proof["max_relative_error"] > TOLERANCE[dtype]:
        proof["error"] = f"result differs from the float64 reference by {proof['max_relative_error']:.3g}"
    else:
        proof["ok"] = True
    return proof
