"""The shared yardstick for compute proofs, used inside framework children.

Every framework runs the same three seeded workloads on each of its devices, and each
result is compared with one float64 reference computed by NumPy, so errors from
different frameworks, devices and dtypes are comparable:

- ``matmul``: a 256x256 product, plus a larger timed product for the achieved GFLOP/s;
- ``conv2d``: a 3x3 convolution, NHWC input, 'same' padding;
- ``train-step``: one step of a two-layer tanh MLP with a mean-squared-error loss: forward,
  backward, and an SGD update by the framework's own optimizer machinery. What is compared
  is the parameter *update*, which a wrong gradient changes entirely, not the parameters
  themselves, which a wrong gradient barely moves.

Reduced precision (bfloat16, float16) runs as mixed precision, the way users run it:
operands are cast down for the compute, parameters and the loss stay float32.
Both torch and TensorFlow depend on NumPy, so it is always there.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional, Protocol

MATMUL_SIZE = 256
# Relative error (max |result - reference| / max |reference|) allowed per dtype. float32
# is loose enough for TF32 tensor cores (10-bit mantissa), which TensorFlow enables by
# default on Ampere and newer; a wrong kernel or a corrupt device is off by far more.
TOLERANCE = {"float32": 2e-3, "float16": 1e-2, "bfloat16": 5e-2}
# Size of the timed product per device kind: big enough to keep an accelerator busy for
# milliseconds, small enough that a slow CPU dtype (bfloat16 without AMX) stays well
# under a second.
THROUGHPUT_SIZE = {"cpu": 512}
THROUGHPUT_SIZE_ACCELERATOR = 4096
# Timed repetitions stop after this long, so slow devices cost little.
THROUGHPUT_BUDGET_S = 0.05

Result = tuple[Any, str]  # (NumPy array, the device the result really came from)


class Kernels(Protocol):
    """One framework on one device: the three workloads in its own API."""

    def matmul(self, a, b, dtype: str) -> Result: ...

    def conv2d(self, x, kernel, dtype: str) -> Result: ...

    def train_step(self, params: dict, x, target, learning_rate: float, dtype: str) -> Result: ...

    def matmul_on_device(self, a, b, dtype: str) -> Callable[[], None]:
        """Place the operands on the device once; return a function that multiplies them
        and waits for the result, so timing measures the kernel and not the copies."""


def matmul_operands(size: int = MATMUL_SIZE, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.standard_normal((size, size), dtype=np.float32), rng.standard_normal((size, size), dtype=np.float32)


def conv_operands(seed: int = 1):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 16, 16, 3), dtype=np.float32)  # NHWC
    kernel = rng.standard_normal((3, 3, 3, 8), dtype=np.float32)  # HWIO
    return x, kernel


def conv2d_reference(x, kernel):
    """'same' 3x3 convolution (cross-correlation, as every framework computes it) in float64."""
    import numpy as np

    padded = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))  # N,H,W,C,3,3
    return np.einsum("nhwcij,ijco->nhwo", windows, kernel.astype(np.float64))


TRAIN_SHAPES = {"w1": (16, 32), "b1": (32,), "w2": (32, 4), "b2": (4,)}
TRAIN_ORDER = ("w1", "b1", "w2", "b2")  # the order in which frameworks return the updates
LEARNING_RATE = 0.1


def train_operands(seed: int = 2):
    import numpy as np

    rng = np.random.default_rng(seed)
    params = {name: (rng.standard_normal(shape, dtype=np.float32) * 0.5).astype(np.float32)
              for name, shape in TRAIN_SHAPES.items()}
    x = rng.standard_normal((32, 16), dtype=np.float32)
    target = rng.standard_normal((32, 4), dtype=np.float32)
    return params, x, target


def train_step_reference(params: dict, x, target, learning_rate: float):
    """The SGD update of one step of tanh MLP + mean squared error, by hand, in float64."""
    import numpy as np

    p = {name: value.astype(np.float64) for name, value in params.items()}
    x, target = x.astype(np.float64), target.astype(np.float64)
    hidden = np.tanh(x @ p["w1"] + p["b1"])
    output = hidden @ p["w2"] + p["b2"]
    d_output = 2.0 * (output - target) / output.size
    d_hidden = (d_output @ p["w2"].T) * (1.0 - hidden ** 2)
    grads = {"w1": x.T @ d_hidden, "b1": d_hidden.sum(0), "w2": hidden.T @ d_output, "b2": d_output.sum(0)}
    return np.concatenate([(-learning_rate * grads[name]).ravel() for name in TRAIN_ORDER])


def relative_error(result, reference) -> float:
    import numpy as np

    result = np.asarray(result, dtype=np.float64).reshape(np.shape(reference))
    scale = float(np.abs(reference).max()) or 1.0
    error = float(np.abs(result - reference).max()) / scale
    return error if np.isfinite(error) else float("inf")


def prove_device(device: str, kind: str, kernels: Kernels, dtypes: tuple[str, ...],
                 compiler: Optional[str] = None, workloads: tuple[str, ...] = ("matmul", "conv2d", "train-step")) -> list[dict]:
    """Every workload in every dtype on one device, each judged against its reference."""
    import numpy as np

    a, b = matmul_operands()
    x, kernel = conv_operands()
    params, inputs, target = train_operands()
    cases = {
        "matmul": (f"matmul {MATMUL_SIZE}x{MATMUL_SIZE}", lambda dtype: kernels.matmul(a, b, dtype),
                   lambda: a.astype(np.float64) @ b.astype(np.float64)),
        "conv2d": ("conv2d 3x3 2x16x16x3->8", lambda dtype: kernels.conv2d(x, kernel, dtype),
                   lambda: conv2d_reference(x, kernel)),
        "train-step": ("train step (MLP 16-32-4, SGD)",
                       lambda dtype: kernels.train_step(params, inputs, target, LEARNING_RATE, dtype),
                       lambda: train_step_reference(params, inputs, target, LEARNING_RATE)),
    }
    proofs = []
    for workload in workloads:
        operation, run, reference = cases[workload]
        expected = reference()
        for dtype in dtypes:
            proof = _judge(device, operation, workload, dtype, compiler, lambda: run(dtype), expected)
            if workload == "matmul" and proof["ok"]:
                proof["gflops"] = _throughput(kernels, dtype, THROUGHPUT_SIZE.get(kind, THROUGHPUT_SIZE_ACCELERATOR))
            proofs.append(proof)
    return proofs


def skipped(device: str, workload: str, dtype: str, compiler: Optional[str], reason: str) -> dict:
    """A proof deliberately not run in this mode, saying why (for example: needs --deep)."""
    return {"device": device, "operation": workload, "workload": workload, "dtype": dtype, "compiler": compiler,
            "ok": False, "skipped": reason}


def _judge(device: str, operation: str, workload: str, dtype: str, compiler: Optional[str],
           run: Callable[[], Result], reference) -> dict:
    """Run once to warm up, once timed, and compare; the result must come from the device asked for:
    a framework that silently falls back to the CPU has not proven the accelerator."""
    proof = {"device": device, "operation": operation, "workload": workload, "dtype": dtype, "compiler": compiler,
             "tolerance": TOLERANCE[dtype], "ok": False}
    try:
        run()  # warm-up: first calls pay for kernel selection, tracing and lazy initialisation
        started = time.perf_counter()
        result, ran_on = run()
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


def _throughput(kernels: Kernels, dtype: str, size: int) -> Optional[float]:
    """Achieved GFLOP/s of a size x size product (2*size^3 operations), best of a few runs."""
    a, b = matmul_operands(size, seed=3)
    try:
        multiply = kernels.matmul_on_device(a, b, dtype)
        multiply()  # warm-up at this size
        best, spent = float("inf"), 0.0
        while spent < THROUGHPUT_BUDGET_S:
            started = time.perf_counter()
            multiply()
            elapsed = time.perf_counter() - started
            best, spent = min(best, elapsed), spent + elapsed
    except Exception:  # the correctness proof already passed; a throughput failure is not news
        return None
    return round(2 * size ** 3 / best / 1e9, 1)
