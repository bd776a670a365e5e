"""PyTorch probe. Runs only inside a child process (see probes/child.py).

Build facts come from torch's own APIs; ``torch._C._cuda_getArchFlags()`` is private but
is the only source of the compiled architectures without a GPU (``get_arch_list()``
returns [] whenever CUDA is unavailable).
"""

from __future__ import annotations

import re
import time

from auditor.probes.loaded_libraries import library_version, loaded_libraries
from auditor.probes.proof import prove_matmul


def collect() -> dict:
    started = time.perf_counter()
    import torch

    import_seconds = round(time.perf_counter() - started, 3)
    build = _build(torch)
    backends = {
        "cuda": bool(torch.cuda.is_available()),
        "mps": bool(torch.backends.mps.is_available()),
        "xpu": bool(hasattr(torch, "xpu") and torch.xpu.is_available()),
    }
    devices = _devices(torch, build["variant"], backends)
    proofs = [prove_matmul(device["id"], "float32", _matmul_on(torch, device["id"])) for device in devices]
    libraries = loaded_libraries()
    cudnn_runtime = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "version": torch.__version__,
        "module_path": torch.__file__,
        "import_seconds": import_seconds,
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
            "runtime.cuda_version": "/proc/self/maps libcudart",
            "runtime.cudnn_version": "torch.backends.cudnn.version()",
            "runtime.backends": "torch.cuda/mps/xpu.is_available()",
            "devices": "torch.cuda.get_device_properties()",
            "proofs": "matmul on each device vs a NumPy float64 reference",
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
        "details": {key: settings[key] for key in ("BLAS_INFO", "BUILD_TYPE", "COMMIT_SHA", "CXX_COMPILER", "TORCH_VERSION")
                    if key in settings},
    }


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


def _matmul_on(torch, device: str):
    def run(a, b):
        x = torch.from_numpy(a).to(device)
        y = torch.from_numpy(b).to(device)
        product = x @ y
        ran_on = str(product.device)
        # .cpu() synchronises, so the time includes the kernel, not just its launch.
        return product.cpu().numpy(), "cuda:0" if ran_on == "cuda" else ran_on

    return run


def _cudnn_text(version) -> str | None:
    # 91002 -> 9.10.2 (cuDNN 9 encodes major*10000 + minor*100 + patch; 8.x used *1000).
    if not version:
        return None
    if version >= 90000:
        return f"{version // 10000}.{version % 10000 // 100}.{version % 100}"
    return f"{version // 1000}.{version % 1000 // 100}.{version % 100}"
