"""PyTorch probe. Runs only inside a child process (see probes/child.py).

Build facts come from torch's own APIs; ``torch._C._cuda_getArchFlags()`` is private but
is the only source of the compiled architectures without a GPU (``get_arch_list()``
returns [] whenever CUDA is unavailable).
"""

from __future__ import annotations

import contextlib
import os
import re

from auditor.probes.base import DEEP
from auditor.probes.loaded_libraries import library_version, loaded_libraries
from auditor.probes.proof import TRAIN_ORDER, Timings, import_then_probe, prove_device, skipped

# torch.compile runs Inductor, which generates and compiles C++ (CPU) or Triton (GPU)
# code: seconds even for a tiny model, so it runs under --deep only.
COMPILE_DEFERRED = "needs --deep (torch.compile generates and compiles code: seconds even for a tiny model)"


def collect() -> dict:
    return import_then_probe(_probe, "torch")


def _probe(timings: Timings, torch) -> dict:
    build = _build(torch)
    backends = {
        "cuda": bool(torch.cuda.is_available()),
        "mps": bool(torch.backends.mps.is_available()),
        "xpu": bool(hasattr(torch, "xpu") and torch.xpu.is_available()),
    }
    devices = _devices(torch, build["variant"], backends)
    proofs = []
    for device in devices:
        kernels = TorchKernels(torch, device["id"])
        proofs += prove_device(device["id"], device["kind"], kernels, _dtypes(torch, device), timings)
        if os.environ.get(DEEP):
            proofs += prove_device(device["id"], device["kind"], TorchKernels(torch, device["id"], compiled=True),
                                   ("float32",), timings, compiler="torch.compile", workloads=("train-step",))
        else:
            proofs.append(skipped(device["id"], "train-step", "float32", "torch.compile", COMPILE_DEFERRED))
    libraries = loaded_libraries()
    cudnn_runtime = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "build": build,
        "runtime": {
            "cuda_version": library_version(libraries, "libcudart"),
            "cudnn_version": _cudnn_text(cudnn_runtime),
            "loaded_libraries": libraries,
            "backends": backends,
            "threads": torch.get_num_threads(),
        },
        "devices": devices,
        "proofs": proofs,
        "sources": {
            "version": "torch.__version__",
            "build.cuda_version": "torch.version.cuda",
            "build.rocm_version": "torch.version.hip",
            "build.cudnn_version": "torch.__config__.show() CUDNN_VERSION",
            "build.compiled_architectures": "torch._C._cuda_getArchFlags() / torch.cuda.get_arch_list()",
            "build.cpu_capability": "torch.backends.cpu.get_cpu_capability()",
            "build.details.nccl": "torch.cuda.nccl.version() (RCCL's on ROCm)",
            "runtime.cuda_version": "/proc/self/maps libcudart",
            "runtime.cudnn_version": "torch.backends.cudnn.version()",
            "runtime.backends": "torch.cuda/mps/xpu.is_available()",
            "devices": "torch.cuda.get_device_properties()",
            "proofs": "matmul, conv2d and an SGD train step on each device (autocast for bfloat16/float16), "
                      "vs float64 references computed in pure Python; torch.compile under --deep",
        },
    }


def _build(torch) -> dict:
    config = torch.__config__.show()
    settings = dict(re.findall(r"(\w+)=([^,\n]*)", config.split("Build settings:", 1)[-1]))
    if torch.version.cuda:
        variant = "cuda"
    elif torch.version.hip:
        variant = "rocm"
    elif hasattr(torch, "xpu") and torch.xpu._is_compiled():  # private, but the only "built" test for XPU
        variant = "xpu"
    elif torch.backends.mps.is_built():
        variant = "mps"
    else:
        variant = "cpu"
    details = {key: settings[key] for key in ("BLAS_INFO", "BUILD_TYPE", "COMMIT_SHA", "CXX_COMPILER", "TORCH_VERSION")
               if key in settings}
    nccl = _nccl_version(torch) if variant in ("cuda", "rocm") else None
    if nccl:
        details["nccl"] = nccl
    return {
        "variant": variant,
        "cuda_version": torch.version.cuda,
        "cudnn_version": settings.get("CUDNN_VERSION") or None,
        "rocm_version": torch.version.hip,
        "compiled_architectures": _compiled_architectures(torch, variant),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl": bool(torch.backends.mkl.is_available()),
        "onednn": bool(torch.backends.mkldnn.is_available()),
        "openmp": bool(torch.backends.openmp.is_available()),
        "backends_built": {
            "cuda": bool(torch.backends.cuda.is_built()),
            "mps": bool(torch.backends.mps.is_built()),
            "xpu": bool(hasattr(torch, "xpu") and torch.xpu._is_compiled()),
        },
        "details": details,
    }


def _nccl_version(torch) -> str | None:
    """The NCCL torch loads, dotted: a (2, 21, 5) tuple, or in older torch NCCL's own code
    (2.9 on: major*10000 + minor*100 + patch, 21005 -> 2.10.5; before: major*1000 + minor*100 + patch)."""
    try:
        version = torch.cuda.nccl.version()
    except Exception:  # a build without NCCL (Windows): there is none to report
        return None
    if isinstance(version, int):
        major, rest = divmod(version, 10000 if version >= 10000 else 1000)
        version = (major, rest // 100, rest % 100)
    return ".".join(str(part) for part in version) or None


def _compiled_architectures(torch, variant: str) -> list[str]:
    if variant == "cuda":
        flags = getattr(torch._C, "_cuda_getArchFlags", lambda: "")() or ""
        return flags.split() or list(torch.cuda.get_arch_list())
    if variant == "rocm":
        return list(torch.cuda.get_arch_list())
    if variant == "xpu":
        return list(torch.xpu.get_arch_list())
    return []


def _devices(torch, variant: str, backends: dict) -> list[dict]:
    devices = [{"id": "cpu", "kind": "cpu"}]
    if backends["cuda"]:
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            devices.append({
                "id": f"cuda:{index}",
                "kind": "rocm" if variant == "rocm" else "cuda",
                "name": props.name,
                "memory_bytes": props.total_memory,
                "compute_capability": None if variant == "rocm" else f"{props.major}.{props.minor}",
                "uuid": str(getattr(props, "uuid", "") or "") or None,
            })
    if backends["mps"]:
        devices.append({"id": "mps", "kind": "mps", "name": "Apple MPS"})
    if backends["xpu"]:
        for index in range(torch.xpu.device_count()):
            props = torch.xpu.get_device_properties(index)
            devices.append({"id": f"xpu:{index}", "kind": "xpu", "name": props.name,
                            "memory_bytes": getattr(props, "total_memory", None)})
    return devices


def _dtypes(torch, device: dict) -> tuple[str, ...]:
    """float32 everywhere, plus the reduced-precision dtypes the device computes natively or
    that autocast offers on it (CPU autocast is bfloat16; CUDA has float16 everywhere and
    bfloat16 from compute capability 8.0, Ampere)."""
    kind = device["kind"]
    if kind == "cpu":
        return ("float32", "bfloat16")
    if kind == "cuda":
        major = int((device.get("compute_capability") or "0.0").split(".")[0])
        return ("float32", "float16", "bfloat16") if major >= 8 else ("float32", "float16")
    if kind == "rocm":
        return ("float32", "float16", "bfloat16") if torch.cuda.is_bf16_supported() else ("float32", "float16")
    return ("float32", "float16")


class TorchKernels:
    """The proof workloads on one torch device, in eager mode or through torch.compile."""

    def __init__(self, torch, device: str, compiled: bool = False):
        self.torch, self.device, self.compiled = torch, device, compiled
        self.device_type = device.split(":")[0]
        self._loss = torch.compile(_mlp_loss) if compiled else _mlp_loss

    def matmul(self, a, b, dtype):
        with self._autocast(dtype):
            return self._result(self._tensor(a) @ self._tensor(b))

    def conv2d(self, x, kernel, dtype):
        functional = self.torch.nn.functional
        images = self._tensor(x).permute(0, 3, 1, 2)  # NHWC -> NCHW
        weights = self._tensor(kernel).permute(3, 2, 0, 1)  # HWIO -> OIHW
        with self._autocast(dtype):
            out = functional.conv2d(images, weights, padding=1)
        return self._result(out.permute(0, 2, 3, 1))

    def train_step(self, params, x, target, learning_rate, dtype):
        torch = self.torch
        # A copy: on the CPU frombuffer shares memory, and the step must not move the shared operands.
        leaves = [self._tensor(params[name]).clone().requires_grad_() for name in TRAIN_ORDER]
        before = [leaf.detach().clone() for leaf in leaves]
        optimizer = torch.optim.SGD(leaves, lr=learning_rate)
        optimizer.zero_grad()
        with self._autocast(dtype):
            loss = self._loss(self._tensor(x), self._tensor(target), *leaves)
        loss.backward()
        optimizer.step()
        return self._result(torch.cat([(leaf.detach() - old).flatten() for leaf, old in zip(leaves, before)]))

    def matmul_on_device(self, size, dtype):
        torch = self.torch
        x, y = (torch.rand(size, size, device=self.device).to(getattr(torch, dtype)) for _ in range(2))

        def multiply():
            x @ y
            self._synchronize()

        return multiply

    def threads(self):
        # torch's own default: one thread per physical core, left as users get it.
        return self.torch.get_num_threads() if self.device_type == "cpu" else None

    def _autocast(self, dtype):
        if dtype == "float32":
            return contextlib.nullcontext()
        return self.torch.autocast(self.device_type, dtype=getattr(self.torch, dtype))

    def _tensor(self, operand):
        # frombuffer reads the float32 array in place: torch needs no NumPy for this.
        torch = self.torch
        return torch.frombuffer(operand.values, dtype=torch.float32).reshape(operand.shape).to(self.device)

    def _result(self, tensor):
        # .cpu() synchronises, so the proof's time includes the kernel, not just its launch.
        where = tensor.device
        ran_on = f"{where.type}:{where.index or 0}" if ":" in self.device else where.type
        return tensor.detach().float().cpu().reshape(-1), ran_on

    def _synchronize(self):
        module = getattr(self.torch, self.device_type, None)
        if self.device_type != "cpu" and module is not None and hasattr(module, "synchronize"):
            module.synchronize()


def _mlp_loss(x, target, w1, b1, w2, b2):
    output = (x @ w1 + b1).tanh() @ w2 + b2
    return ((output.float() - target) ** 2).mean()


def _cudnn_text(version) -> str | None:
    # 91002 -> 9.10.2 (cuDNN 9 encodes major*10000 + minor*100 + patch; 8.x used *1000).
    if not version:
        return None
    if version >= 90000:
        return f"{version // 10000}.{version % 10000 // 100}.{version % 100}"
    return f"{version // 1000}.{version % 1000 // 100}.{version % 100}"
