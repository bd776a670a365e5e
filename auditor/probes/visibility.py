"""The environment variables that decide which accelerators a framework may see."""

from __future__ import annotations

from auditor.probes.base import ProbeContext

VISIBILITY_VARIABLES = ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "NVIDIA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES",
                        "ROCR_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL", "ZE_AFFINITY_MASK", "TPU_VISIBLE_CHIPS",
                        "HSA_OVERRIDE_GFX_VERSION")  # ROCm loads kernels for the gfx target it names


def collect_visibility(ctx: ProbeContext) -> dict[str, str]:
    return {name: ctx.environ[name] for name in VISIBILITY_VARIABLES if name in ctx.environ}
