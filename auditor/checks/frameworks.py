"""FW: a framework is installed but cannot be imported, or cannot compute correctly."""

from __future__ import annotations

from typing import Callable, Iterator

from auditor.builds import framework_install
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
       "Anything that uses the framework will fail the same way.",
       fix="Reinstall the framework at its installed version (`pip install --force-reinstall "
           "<distribution>==<version>`); if the error names a missing library, install that library or remove the "
           "LD_LIBRARY_PATH entry that shadows it.",
       example="torch 2.7.1 is installed but `import torch` fails\n"
               "probe torch: ImportError: libcudnn.so.9: cannot open shared object file: No such file or "
               "directory")
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
       "imports it will die the same way, without a Python traceback.",
       fix="Reproduce the crash with `python -X faulthandler -c 'import <framework>'`, remove foreign copies of "
           "its native libraries from LD_PRELOAD and LD_LIBRARY_PATH, then reinstall it: `pip install "
           "--force-reinstall <distribution>==<version>`.",
       example="Importing tensorflow (tensorflow 2.18.0) crashed the process\n"
               "probe tensorflow: killed by SIGILL")
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
       "or a lock held by another process.",
       fix="Time the import by hand (`python -X importtime -c 'import <framework>'`) to see what hangs; if it is "
           "only slow, raise the deadline with `auditor audit --timeout SECONDS`.",
       example="Probing jax (jax 0.6.2) did not finish in time\n"
               "probe jax: no answer within 120 s; killed")
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
       "cannot be trusted for training or inference, whatever its availability flag says.",
       fix="Run the same computation by hand on that device; for a GPU, check the driver, the build's compiled "
           "architectures and `nvidia-smi -q` for errors. If the error names a missing module, install it.",
       example="torch 2.7.1+cu128: matmul 256x256 on cuda:0 failed\n"
               "matmul 256x256 (float32) on cuda:0: result differs from the float64 reference by 0.0381")
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
       "convolution are compiled in every full audit, the training step under --deep.",
       fix="Set `jit_compile=False` in the meantime; on GPUs, check that ptxas and nvvm from the CUDA toolkit are "
           "found (`export XLA_FLAGS=--xla_gpu_cuda_data_dir=<CUDA toolkit directory>`).",
       example="tensorflow 2.18.0: XLA compilation failed on /device:GPU:0\n"
               "matmul 256x256 on /device:GPU:0: InternalError: libdevice not found at ./libdevice.10.bc")
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
       "torch.compile'd models, and libraries that compile by default, do not.",
       fix="On CPUs install a C++ compiler (`apt-get install g++`); on GPUs reinstall the triton that torch pins "
           "(`pip install --force-reinstall torch==<installed version>`); meanwhile run eagerly, without "
           "torch.compile.",
       example="torch 2.7.1+cpu: torch.compile failed on cpu\n"
               "train step (MLP 16-32-4, SGD) on cpu: BackendCompilerFailed: backend='inductor' raised: "
               "InvalidCxxCompiler: No working C++ compiler found in torch._inductor.config.cpp.cxx: (None, "
               "'g++')")
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
       "training or inference will fail or drift on this device.",
       fix="Train in float32 on that device until it is resolved, and check that the device supports the dtype "
           "natively (bfloat16 needs compute capability 8.0 on NVIDIA GPUs). If the error names a missing module, "
           "install it.",
       example="torch 2.7.1+cu128: float16 matmul 256x256 on cuda:0 failed\n"
               "matmul 256x256 (float16) on cuda:0: 65536 of the 65536 result values are NaN or infinite")
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
       "way in a script that makes it. A module the probe found missing is named, with its install.",
       fix="Install the module the probe found missing (`pip install <module>`) and run the audit again; "
           "otherwise make the failing call by hand after `import <framework>` to see its traceback, and check "
           "the driver and the *_VISIBLE_DEVICES and JAX_PLATFORMS variables.",
       example="torch 2.7.1+cpu imports, but probing it needs numpy, which is not installed\n"
               "probe torch: `import torch` worked (1.84 s), then: ModuleNotFoundError: No module named 'numpy'")
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


@check("FW012", "nothing-usable", "error",
       "No ML framework can be used here: none is installed, or none proved a computation.",
       "The audit's verdict rests on proof. When no framework (PyTorch, TensorFlow, JAX) is installed, "
       "or every installed one failed to import or to compute a float32 matmul, convolution and train "
       "step correctly on any device, nothing on this machine is ready for ML work, whatever else is "
       "healthy. This finding makes that an error, so `--fail-on error` exits 1 and the exit code agrees "
       "with the verdict. Unknown is not nothing: a replayed snapshot that recorded no proofs, and a "
       "--quick audit of installed frameworks, do not raise it.",
       fix="Install a framework (`pip install torch`, or the GPU build the finding names), or fix the framework's "
           "own error finding (FW001-FW004, FW010), then run `auditor audit` again.",
       example="No ML framework is installed: neither PyTorch, TensorFlow nor JAX\n"
               "package metadata: no torch, tensorflow (or tensorflow-cpu, tf-nightly...) or jax distribution")
def nothing_usable(snapshot: Snapshot):
    modules = {module for package in snapshot.packages.values() for module in package.modules}
    if not snapshot.frameworks:
        if modules & {"torch", "tensorflow", "jax"}:
            return  # installed but not probed (a snapshot from elsewhere): unknown, not nothing
        yield Hit("No ML framework is installed: neither PyTorch, TensorFlow nor JAX",
                  ["package metadata: no torch, tensorflow (or tensorflow-cpu, tf-nightly...) or jax distribution"],
                  f"{_first_install(snapshot)} (then `auditor audit` proves it)." + _elsewhere(snapshot))
        return
    if snapshot.mode == "quick":
        return
    why = {}
    for fw in snapshot.frameworks.values():
        if fw.probe.status != "ok":
            why[fw.name] = f"probe {fw.probe.status}: {fw.probe.reason}"
        elif fw.proofs is None or fw.devices is None:
            return  # not measured: unknown, never "nothing"
        elif any(p.ok and p.compiler is None and p.dtype == "float32" for p in fw.proofs):
            return
        else:
            failed = [p for p in fw.proofs if p.failed]
            why[fw.name] = (f"{failed[0].operation} on {failed[0].device}: {failed[0].error}" if failed
                            else "no float32 computation was proven on any device")
    if any(fw.probe.status == "skipped" for fw in snapshot.frameworks.values()):
        return
    yield Hit(f"None of the {len(why)} installed framework(s) proved a computation here",
              [f"{name}: {reason}" for name, reason in why.items()],
              "Fix the framework's own error finding above (FW001-FW004, FW010): each names its command; "
              "then run `auditor audit` again.")


def _first_install(snapshot: Snapshot) -> str:
    """PyTorch's install command for this machine and Python: the build that fits its GPUs when it has
    some, a release with wheels for the audited Python; else why no release can be installed."""
    fitted = framework_install(snapshot, "torch")
    return f"Install one: `{fitted.command}`" if fitted.command else f"Install one: {fitted.reason}"


def _elsewhere(snapshot: Snapshot) -> str:
    """Where the auditor audited its own environment (installed with pipx or `uv tool`, it holds no
    framework), the frameworks may well be in the project's."""
    if snapshot.audits_another_python() is False:
        return " If the frameworks are in another environment, audit that one: `auditor audit --python PATH`."
    return ""


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
