"""Which native libraries a framework really loaded, from the child's /proc/self/maps.

Build info says what a framework was compiled against; the memory map says what this
process is running with (peer tools confuse the two: pytorch#21399, #78489).
"""

from __future__ import annotations

import os
import re

# Libraries that decide whether acceleration works, and which version is in use.
_INTERESTING = re.compile(
    r"lib(cudart|cuda|cudnn|cublas|cublasLt|nccl|nvrtc|nvJitLink|cufft|cusparse|cusolver|curand|"
    r"amdhip64|rocblas|MIOpen|rccl|hsa-runtime64|mkl_[a-z_]+|dnnl|mkldnn|gomp|iomp5|omp|openblas\w*|"
    r"ze_loader|sycl|tpu|nvidia-ml)[.-]"
)


def loaded_libraries(maps_path: str = "/proc/self/maps") -> list[str]:
    """Base names of interesting shared libraries mapped into this process (Linux only)."""
    try:
        with open(maps_path, encoding="utf-8", errors="replace") as maps:
            paths = {line.split()[-1] for line in maps if "/" in line and ".so" in line}
    except OSError:
        return []
    return sorted({os.path.basename(p) for p in paths if _INTERESTING.search(os.path.basename(p))})


def library_version(libraries: list[str], stem: str) -> str | None:
    """The version in a soname such as libcudart.so.12.8.90 -> 12.8.90 (or 12 when that is all there is)."""
    for name in libraries:
        match = re.match(rf"{re.escape(stem)}\.so\.([\d.]+)$", name)
        if match:
            return match.group(1)
    return None
