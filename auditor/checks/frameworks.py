"""FW: a framework is installed but cannot be imported, or cannot compute correctly."""

from __future__ import annotations

from typing import Callable, Iterator

from auditor.checks.base import Hit, check
from auditor.facts import ComputeProof, FrameworkFacts, Snapshot

def _installed(fw: FrameworkFacts) -> str:
    return f"{fw.distribution} {fw.distribution_version}"


def _reinstall(fw: FrameworkFacts) -> str:
    return f"pip install --force-reinstall {fw.distribution}=={fw.distribution_version}"


@check("FW001", "framework-not-importable", "error",
       "A framework is installed but importing it raises an error.",
       "The package metadata says the framework is installed, but `import` fails, usually from a "
       "missing or mismatched native library, a NumPy ABI mismatch, or a half-finished install. "
       "Anything that uses the framework will fail the same way.")
def not_importable(snapshot: Snapshot):
    for fw in snapshot.frameworks.values():
        if fw.probe.status == "error":
            yield Hit(f"{_installed(fw)} is installed but `import {fw.name}` fails",
                      [f"probe {fw.name}: {fw.probe.reason}"],
                      f"Reinstall it: `{_reinstall(fw)}`. If the error names a missing library, install "
                      "that library or remove the LD_LIBRARY_PATH entry that shadows it.", framework=fw.name)


@check("FW002", "framework-import-crashed", "error",
       "Importing a framework killed the Python process.",
       "The framework's import ended its process with a signal or an exit, not an exception. "
       "SIGILL means the binary uses instructions this CPU lacks; SIGSEGV or SIGABRT usually "
       "means two copies of a native library (CUDA, OpenMP, protobuf) clashed. Every script that "
       "imports it will die the same way, without a Python traceback.")
def import_crashed(snapshot: Snapshot):
    for fw in snapshot.frameworks.values():
        if fw.probe.status == "crashed":
            yield Hit(f"Importing {fw.name} ({_installed(fw)}) crashed the process",
                      [f"probe {fw.name}: {fw.probe.reason}"],
                      f"Reproduce with `python -X faulthandler -c 'import {fw.name}'`; check LD_PRELOAD and "
                      f"LD_LIBRARY_PATH for foreign copies of its libraries, then `{_reinstall(fw)}`.", framework=fw.name)


@check("FW003", "framework-import-timeout", "error",
       "Importing and probing a framework did not finish before its deadline.",
       "The framework's probe (import, device listing and a small matmul) hung. Typical causes "
       "are a GPU driver that does not answer, a network filesystem holding the site-packages, "
       "or a lock held by another process.")
def import_timeout(snapshot: Snapshot):
    for fw in snapshot.frameworks.values():
        if fw.probe.status == "timeout":
            yield Hit(f"Probing {fw.name} ({_installed(fw)}) did not finish in time",
                      [f"probe {fw.name}: {fw.probe.reason}"],
                      f"Time it by hand: `python -X importtime -c 'import {fw.name}'`; if it is just slow, "
                      "raise the deadline with `auditor audit --timeout SECONDS`.", framework=fw.name)


@check("FW004", "compute-proof-failed", "error",
       "A device failed a real float32 computation or gave wrong numbers.",
       "The framework ran a seeded matmul, a 3x3 convolution and one training step (forward, "
       "backward, SGD update) on the device in float32 and compared each with a float64 NumPy "
       "reference. A device that raises, answers from another device, or exceeds the tolerance "
       "cannot be trusted for training or inference, whatever its availability flag says.")
def compute_proof_failed(snapshot: Snapshot):
    for fw, proof in _failed_proofs(snapshot, lambda p: p.compiler is None and p.dtype == "float32"):
        yield Hit(f"{fw.name} {fw.version}: {proof.operation} on {proof.device} failed",
                  [f"{proof.operation} ({proof.dtype}) on {proof.device}: {proof.error}"],
                  _fix(proof, "Run the same computation by hand on that device; for GPUs check the driver, the "
                              "compiled architectures of the build, and `nvidia-smi -q` for errors."), framework=fw.name)


@check("FW005", "xla-compile-failed", "warning",
       "TensorFlow could not compile and run an XLA (jit_compile=True) function.",
       "Keras and tf.function use XLA when asked for jit_compile=True; on TPUs it is the only path. "
       "A failing XLA compile means those models fail while eager code still runs. The matmul and "
       "convolution are compiled in every full audit, the training step under --deep.")
def xla_failed(snapshot: Snapshot):
    for fw, proof in _failed_proofs(snapshot, lambda p: p.compiler == "xla"):
        yield Hit(f"{fw.name} {fw.version}: XLA compilation failed on {proof.device}",
                  [f"{proof.operation} on {proof.device}: {proof.error}"],
                  _fix(proof, "Set jit_compile=False in the meantime; for GPUs check that ptxas/nvvm from "
                              "the CUDA toolkit are found (XLA_FLAGS=--xla_gpu_cuda_data_dir=...)."), framework=fw.name)


@check("FW008", "torch-compile-failed", "warning",
       "torch.compile could not compile and run a training step.",
       "Under --deep, the auditor compiles one training step with torch.compile (TorchInductor) "
       "on each device and checks its update against a float64 reference. Inductor generates C++ "
       "for CPUs, which needs a working C++ compiler, and Triton kernels for GPUs, which need the "
       "triton package that matches torch. Eager code still runs when this fails, but "
       "torch.compile'd models, and libraries that compile by default, do not.")
def torch_compile_failed(snapshot: Snapshot):
    for fw, proof in _failed_proofs(snapshot, lambda p: p.compiler == "torch.compile"):
        yield Hit(f"{fw.name} {fw.version}: torch.compile failed on {proof.device}",
                  [f"{proof.operation} on {proof.device}: {proof.error}"],
                  _fix(proof, "On CPUs install a C++ compiler (`apt-get install g++`); on GPUs reinstall the "
                              "triton that torch pins (`pip install --force-reinstall torch==<installed>`); "
                              "meanwhile run eagerly (drop torch.compile)."), framework=fw.name)


@check("FW009", "mixed-precision-failed", "warning",
       "A device computes float32 correctly but fails in bfloat16 or float16.",
       "Mixed precision (torch.autocast, Keras mixed_float16/mixed_bfloat16, JAX casts) is how "
       "models train fast on modern accelerators. The auditor runs the same workloads with the "
       "compute cast to each reduced-precision dtype the device offers and compares them with "
       "the float64 reference at a tolerance suited to the dtype. A failure means mixed-precision "
       "training or inference will fail or drift on this device.")
def mixed_precision_failed(snapshot: Snapshot):
    for fw, proof in _failed_proofs(snapshot, lambda p: p.compiler is None and p.dtype != "float32"):
        yield Hit(f"{fw.name} {fw.version}: {proof.dtype} {proof.operation} on {proof.device} failed",
                  [f"{proof.operation} ({proof.dtype}) on {proof.device}: {proof.error}"],
                  _fix(proof, f"Train in float32 on {proof.device} until this is resolved; check that the "
                              "device supports the dtype natively (bfloat16 needs compute capability 8.0 on "
                              "NVIDIA GPUs)."), framework=fw.name)


@check("FW010", "framework-probe-failed", "warning",
       "A framework imports, but its probe failed before proving anything.",
       "`import` worked, so this is not FW001: scripts that import the framework start. The probe "
       "then failed while reading the build, listing the devices or preparing the proofs, so "
       "nothing about the framework is proven here, and the call that failed will fail the same "
       "way in a script that makes it. A module the probe found missing is named, with its install.")
def probe_failed_after_import(snapshot: Snapshot):
    for fw in snapshot.frameworks.values():
        if fw.probe.status != "ok" or not fw.probe_error:
            continue
        evidence = [f"probe {fw.name}: `import {fw.name}` worked ({fw.import_seconds} s), then: {fw.probe_error}"]
        if fw.missing_module:
            yield Hit(f"{fw.name} {fw.version} imports, but probing it needs {fw.missing_module}, which is not "
                      "installed", evidence, f"{_install(fw.missing_module)}, then run the audit again.", framework=fw.name)
        else:
            yield Hit(f"{fw.name} {fw.version} imports, but probing it failed", evidence,
                      f"Make the call the error names by hand after `import {fw.name}` to see its full "
                      "traceback; for device listing errors, check the driver and the *_VISIBLE_DEVICES "
                      "and JAX_PLATFORMS variables.", framework=fw.name)


def _install(module: str) -> str:
    return f"Install the distribution that provides the `{module}` module (usually `pip install {module}`)"


def _fix(proof: ComputeProof, otherwise: str) -> str:
    """Installing the module the computation found missing, when that is why it failed."""
    if proof.missing_module:
        return f"{_install(proof.missing_module)}: {proof.operation} needs it on {proof.device}."
    return otherwise


def _failed_proofs(snapshot: Snapshot,
                   wanted: Callable[[ComputeProof], bool]) -> Iterator[tuple[FrameworkFacts, ComputeProof]]:
    """Each proof that failed (not merely deferred) and that a check's predicate selects."""
    for fw in snapshot.frameworks.values():
        for proof in fw.proofs or ():
            if proof.failed and wanted(proof):
                yield fw, proof
