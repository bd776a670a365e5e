"""The shared yardstick for compute proofs, used inside framework children, and how those
children report a probe that failed after the framework imported.

Every framework runs the same three seeded workloads on each of its devices, and each
result is compared with one float64 reference computed here, in pure Python, so errors
from different frameworks, devices and dtypes are comparable:

- ``matmul``: a 256x256 product, plus a larger timed product for the achieved GFLOP/s,
  timed after all the child's proofs, in a turn with the machine to itself (Timings);
- ``conv2d``: a 3x3 convolution, NHWC input, 'same' padding;
- ``train-step``: one step of a two-layer tanh MLP with a mean-squared-error loss: forward,
  backward, and an SGD update by the framework's own optimizer machinery. What is compared
  is the parameter *update*, which a wrong gradient changes entirely, not the parameters
  themselves, which a wrong gradient barely moves.

Reduced precision (bfloat16, float16) runs as mixed precision, the way users run it:
operands are cast down for the compute, parameters and the loss stay float32.

Nothing here needs NumPy: torch runs without it (it only warns), and a proof must not
fail where the framework works. Operands are float32 ``array``s that torch reads with
``torch.frombuffer``; TensorFlow and JAX cannot be imported without NumPy, so their
kernels may use it. The reference is not computed by the framework itself (its float64
path on the CPU would be cheap), because a framework that multiplies wrongly would then
agree with itself.
"""

from __future__ import annotations

import functools
import math
import random
import time
from array import array
from dataclasses import dataclass
from operator import mul, sub
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Tuple

from auditor.probes.turns import Turn

if TYPE_CHECKING:  # novermin: typing.Protocol is 3.8+, and only type checkers read Kernels as one
    from typing import Protocol
else:  # at run time nothing checks against Kernels: a plain base class does on every Python
    Protocol = object

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
# Timed repetitions stop after this long, so slow devices cost little: on a CPU, dozens to
# hundreds of runs of the 512 product (1-8 ms each), enough for their best to settle.
THROUGHPUT_BUDGET_S = 0.2


@dataclass(frozen=True)
class Operand:
    """A float32 tensor, row-major: what each framework builds its input tensors from."""

    values: array  # typecode "f": every value is exactly a float32
    shape: tuple[int, ...]

    def rows(self) -> list[list[float]]:
        """A matrix as a list of rows of Python floats (float64 holds each float32 exactly)."""
        width = self.shape[-1]
        return [self.values[start:start + width].tolist() for start in range(0, len(self.values), width)]


# (the result's values, flat and row-major, in anything with .tolist(): a CPU tensor or an
# array, converted to Python floats only after the timing; the device they really came from).
# typing.Tuple: an alias is evaluated at run time, and tuple[...] needs Python 3.9.
Result = Tuple[Any, str]


class Kernels(Protocol):
    """One framework on one device: the three workloads in its own API."""

    def matmul(self, a: Operand, b: Operand, dtype: str) -> Result: ...

    def conv2d(self, x: Operand, kernel: Operand, dtype: str) -> Result: ...

    def train_step(self, params: dict[str, Operand], x: Operand, target: Operand, learning_rate: float,
                   dtype: str) -> Result: ...

    def matmul_on_device(self, size: int, dtype: str) -> Callable[[], None]:
        """Make two size x size operands on the device once (any values: only the time counts);
        return a function that multiplies them and waits for the result, so timing measures
        the kernel and not the copies."""

    def threads(self) -> Optional[int]:
        """The intra-op threads the framework runs this device's kernels with, as it says; None
        where it does not say, or where threads are not what computes (an accelerator)."""


def _uniform(rng: random.Random, shape: tuple[int, ...], scale: float = 1.0) -> Operand:
    """Seeded values uniform in [-scale, scale), rounded to float32."""
    return Operand(array("f", [scale * (2.0 * rng.random() - 1.0) for _ in range(_product(shape))]), shape)


def _product(shape: tuple[int, ...]) -> int:
    """The number of values in a tensor of this shape (math.prod is 3.8+)."""
    return functools.reduce(mul, shape, 1)


def _matmul(a_rows: list[list[float]], b_columns: list[list[float]]) -> list[list[float]]:
    return [[sum(map(mul, row, column)) for column in b_columns] for row in a_rows]


def _columns(rows: list[list[float]]) -> list[list[float]]:
    return [list(column) for column in zip(*rows)]


@functools.lru_cache(maxsize=None)
def matmul_case(size: int = MATMUL_SIZE, seed: int = 0) -> tuple[Operand, Operand, list[float]]:
    """a, b and the float64 reference of a @ b: every one of its size^2 entries.

    The device computes a full size^3 product, but b is built as u1 v1^T + u2 v2^T, of rank 2,
    so the reference a @ b = (a u1) v1^T + (a u2) v2^T costs 4*size^2 multiply-adds: a quarter
    of a million for 256x256, about 40 ms in pure Python on the 2-core CI machine, instead of
    the 16.7 million of a @ b, which take 0.65 s there (measured); checking only a sample of
    the entries instead would leave most of the product unchecked. The rank does not make the
    device's work easier: every output entry is still a sum of size products, and a wrong,
    skipped or misplaced term changes it. u and v hold multiples of 2^-10 in [-1, 1], so each
    entry of b needs at most 22 bits: b is exact in float32, and the reference is exact for
    the very b the device is given.
    """
    rng = random.Random(seed)
    a = _uniform(rng, (size, size))
    u1, u2, v1, v2 = ([rng.randint(-1024, 1024) / 1024 for _ in range(size)] for _ in range(4))
    b = Operand(array("f", [p * q + r * s for p, r in zip(u1, u2) for q, s in zip(v1, v2)]), (size, size))
    a_rows = a.rows()
    a_u1, a_u2 = ([sum(map(mul, row, u)) for row in a_rows] for u in (u1, u2))
    reference = [x * q + y * s for x, y in zip(a_u1, a_u2) for q, s in zip(v1, v2)]
    return a, b, reference


@functools.lru_cache(maxsize=None)
def conv2d_case(seed: int = 1) -> tuple[Operand, Operand, list[float]]:
    """x (NHWC), kernel (HWIO) and their 'same' 3x3 convolution (cross-correlation, as every
    framework computes it) in float64, NHWC."""
    rng = random.Random(seed)
    x = _uniform(rng, (2, 16, 16, 3), 2.0)
    kernel = _uniform(rng, (3, 3, 3, 8))
    batch, height, width, channels = x.shape
    size, _, _, outputs = kernel.shape
    # One list of weights per output channel, in the order the window below is read.
    filters = [[kernel.values[((i * size + j) * channels + c) * outputs + o]
                for i in range(size) for j in range(size) for c in range(channels)] for o in range(outputs)]
    pad = size // 2
    reference = []
    for n in range(batch):
        for y in range(height):
            for z in range(width):
                window = [x.values[((n * height + y + i - pad) * width + z + j - pad) * channels + c]
                          if 0 <= y + i - pad < height and 0 <= z + j - pad < width else 0.0
                          for i in range(size) for j in range(size) for c in range(channels)]
                reference.extend(sum(map(mul, window, weights)) for weights in filters)
    return x, kernel, reference


TRAIN_SHAPES = {"w1": (16, 32), "b1": (32,), "w2": (32, 4), "b2": (4,)}
TRAIN_ORDER = ("w1", "b1", "w2", "b2")  # the order in which frameworks return the updates
LEARNING_RATE = 0.1


@functools.lru_cache(maxsize=None)
def train_case(seed: int = 2) -> tuple[dict[str, Operand], Operand, Operand, list[float]]:
    """Parameters, inputs, targets and the SGD update of one step of a tanh MLP with a mean
    squared error, derived by hand in float64, in TRAIN_ORDER."""
    rng = random.Random(seed)
    params = {name: _uniform(rng, shape) for name, shape in TRAIN_SHAPES.items()}
    x, target = _uniform(rng, (32, 16), 2.0), _uniform(rng, (32, 4), 2.0)
    w1, w2 = params["w1"].rows(), params["w2"].rows()
    b1, b2 = params["b1"].values.tolist(), params["b2"].values.tolist()
    inputs = x.rows()
    hidden = [[math.tanh(value + bias) for value, bias in zip(row, b1)] for row in _matmul(inputs, _columns(w1))]
    output = [[value + bias for value, bias in zip(row, b2)] for row in _matmul(hidden, _columns(w2))]
    count = len(output) * len(output[0])
    d_output = [[2.0 * (out - want) / count for out, want in zip(row, wanted)]
                for row, wanted in zip(output, target.rows())]
    d_hidden = [[back * (1.0 - h * h) for back, h in zip(row, hidden_row)]
                for row, hidden_row in zip(_matmul(d_output, w2), hidden)]  # w2's rows are w2.T's columns
    grads = {"w1": _matmul(_columns(inputs), _columns(d_hidden)), "b1": [[sum(c) for c in _columns(d_hidden)]],
             "w2": _matmul(_columns(hidden), _columns(d_output)), "b2": [[sum(c) for c in _columns(d_output)]]}
    update = [-LEARNING_RATE * g for name in TRAIN_ORDER for row in grads[name] for g in row]
    return params, x, target, update


def relative_error(result: Sequence[float], reference: Sequence[float]) -> Optional[float]:
    """max |result - reference| / max |reference| (1 for an all-zero reference); None when
    the result holds a NaN or an infinity, which no tolerance can judge and JSON cannot hold."""
    if not all(map(math.isfinite, result)):
        return None
    scale = max(map(abs, reference), default=0.0) or 1.0
    return max(map(abs, map(sub, result, reference)), default=0.0) / scale


def import_then_probe(probe: Callable[..., dict], *names: str) -> dict:
    """A framework child's facts: import the framework (and its companions, e.g. jaxlib), timed,
    then run ``probe`` on a Timings and the modules, then take the timings it left. A failure
    after the import worked is recorded as the probe's (FW010), with the version and import time
    kept: it is not the framework's import failure (FW001)."""
    import importlib

    timings = Timings(Turn.from_environment())  # before the import: see from_environment
    started = time.perf_counter()
    modules = [importlib.import_module(name) for name in names]
    imported = {"version": modules[0].__version__, "module_path": modules[0].__file__,
                "import_seconds": round(time.perf_counter() - started, 3)}
    try:
        facts = probe(timings, *modules)
    except Exception as exc:
        return {**imported, **_failure(exc, "probe_error")}
    timings.measure()
    return {**imported, **facts}


def _failure(exc: Exception, key: str) -> dict:
    """The exception, in one line under ``key``, and the top-level module it says is not
    installed, if that is what it says (the check's fix installs it)."""
    from auditor.probes.child_entry import describe_exception

    missing = exc.name.partition(".")[0] if isinstance(exc, ModuleNotFoundError) and exc.name else None
    return {key: describe_exception(exc), "missing_module": missing}


def prove_device(device: str, kind: str, kernels: Kernels, dtypes: tuple[str, ...], timings: Timings,
                 compiler: Optional[str] = None, workloads: tuple[str, ...] = ("matmul", "conv2d", "train-step")) -> list[dict]:
    """Every workload in every dtype on one device, each judged against its reference; each
    passing matmul owes ``timings`` the device's throughput in its dtype."""
    cases = {
        "matmul": (f"matmul {MATMUL_SIZE}x{MATMUL_SIZE}", matmul_case,
                   lambda a, b, dtype: kernels.matmul(a, b, dtype)),
        "conv2d": ("conv2d 3x3 2x16x16x3->8", conv2d_case, lambda x, kernel, dtype: kernels.conv2d(x, kernel, dtype)),
        "train-step": ("train step (MLP 16-32-4, SGD)", train_case,
                       lambda params, x, target, dtype: kernels.train_step(params, x, target, LEARNING_RATE, dtype)),
    }
    proofs = []
    for workload in workloads:
        operation, case, run = cases[workload]
        *operands, reference = case()
        for dtype in dtypes:
            proof = _judge(device, operation, workload, dtype, compiler,
                           lambda: run(*operands, dtype), reference)  # noqa: B023 (called at once)
            if workload == "matmul" and proof["ok"]:
                timings.add(proof, kernels, dtype, THROUGHPUT_SIZE.get(kind, THROUGHPUT_SIZE_ACCELERATOR))
            proofs.append(proof)
    return proofs


def skipped(device: str, workload: str, dtype: str, compiler: Optional[str], reason: str) -> dict:
    """A proof deliberately not run in this mode, saying why (for example: needs --deep)."""
    return {"device": device, "operation": workload, "workload": workload, "dtype": dtype, "compiler": compiler,
            "ok": False, "skipped": reason}


def _judge(device: str, operation: str, workload: str, dtype: str, compiler: Optional[str],
           run: Callable[[], Result], reference: list[float]) -> dict:
    """Run once to warm up, once timed, and compare; the result must come from the device asked for:
    a framework that silently falls back to the CPU has not proven the accelerator."""
    proof = {"device": device, "operation": operation, "workload": workload, "dtype": dtype, "compiler": compiler,
             "tolerance": TOLERANCE[dtype], "ok": False}
    try:
        run()  # warm-up: first calls pay for kernel selection, tracing and lazy initialisation
        started = time.perf_counter()
        values, ran_on = run()
        proof["seconds"] = round(time.perf_counter() - started, 6)
        result = values.tolist()
    except Exception as exc:  # a failing kernel is the finding, not a crash of the probe
        proof.update(_failure(exc, "error"))
        return proof
    if len(result) != len(reference):
        proof["error"] = f"the result has {len(result)} values; the reference has {len(reference)}"
        return proof
    error = relative_error(result, reference)
    proof["max_relative_error"] = error
    if ran_on != device:
        proof["error"] = f"asked for {device} but the result came from {ran_on}"
    elif error is None:
        proof["non_finite"] = True
        bad = sum(1 for value in result if not math.isfinite(value))
        proof["error"] = f"{bad} of the {len(result)} result values are NaN or infinite"
    elif error > TOLERANCE[dtype]:
        proof["error"] = f"result differs from the float64 reference by {error:.3g}"
    else:
        proof["ok"] = True
    return proof


class Timings:
    """The throughput a framework child owes its passing matmul proofs.

    Timed right after each proof, a product would share the machine with the other children,
    still importing their frameworks: it would measure them. So prove_device only notes what
    is owed, and the child, after all its proofs, times everything in one turn (turns.py),
    writing into each proof its ``gflops``, the ``threads`` the framework ran it with, and
    whether it was ``measured_alone``.
    """

    def __init__(self, turn: Turn):
        self._turn = turn
        self._owed: list[tuple[dict, Kernels, str, int]] = []  # (proof, kernels, dtype, size)

    def add(self, proof: dict, kernels: Kernels, dtype: str, size: int) -> None:
        self._owed.append((proof, kernels, dtype, size))

    def measure(self) -> None:
        if not self._owed:
            return  # no turn to take: the child just ends, which releases its place
        alone = self._turn.take(self._time_all)
        for proof, *_ in self._owed:
            if proof["gflops"] is not None:
                proof["measured_alone"] = alone

    def _time_all(self) -> None:
        for proof, kernels, dtype, size in self._owed:
            proof.update(_time_matmul(kernels, dtype, size))


def _time_matmul(kernels: Kernels, dtype: str, size: int) -> dict:
    """Achieved GFLOP/s of a size x size product (2*size^3 operations), best of the runs that
    fit in THROUGHPUT_BUDGET_S, and the threads it ran on; gflops None when it failed."""
    try:
        multiply = kernels.matmul_on_device(size, dtype)
        multiply()  # warm-up at this size
        best, spent = float("inf"), 0.0
        while spent < THROUGHPUT_BUDGET_S:
            started = time.perf_counter()
            multiply()
            elapsed = time.perf_counter() - started
            best, spent = min(best, elapsed), spent + elapsed
        threads = kernels.threads()
    except Exception:  # the correctness proof already passed; a throughput failure is not news
        return {"gflops": None}
    return {"gflops": round(2 * size ** 3 / best / 1e9, 1), "threads": threads}
