"""Test seam for probe children: faults injected at import time, driven by environment variables.

Tests put this directory on the PYTHONPATH of a child's environment, so Python imports this
file at start-up (site.py imports `sitecustomize`); product code knows nothing of it. Each
variable holds comma-separated top-level module names:

AUDITOR_TEST_HIDE=onnxscript,executorch
    No finder finds them, as if the distributions were not installed: importing one raises
    Python's own ModuleNotFoundError("No module named 'onnxscript'", name="onnxscript"), and
    importlib.util.find_spec answers None (torch asks it about NumPy before importing it).
AUDITOR_TEST_BREAK=onnxruntime
    Importing one raises ImportError("simulated broken install: libonnxruntime.so: cannot
    open shared object file"), what a wheel with a missing native library raises.
AUDITOR_TEST_WRONG_NUMBERS=torch (or tensorflow)
    Once the real module has finished loading, its matrix products come out 1% off, as from a
    miscompiled kernel or a faulty device: torch.matmul and torch.Tensor.__matmul__ (the @
    operator), or tf.matmul and tf.linalg.matmul.

Each other fault is a finder placed first on sys.meta_path, so it sees an import before the
real finders do.
"""

from __future__ import annotations

import functools
import importlib.abc
import os
import sys

SKEW = 1.01


def _names(variable: str) -> frozenset:
    return frozenset(name.strip() for name in os.environ.get(variable, "").split(",") if name.strip())


class _Refuse(importlib.abc.MetaPathFinder):
    """Fail the import of the named modules, before any real finder looks for them."""

    def __init__(self, names: frozenset, error):
        self.names, self.error = names, error

    def find_spec(self, fullname, path=None, target=None):
        if fullname in self.names:
            raise self.error(fullname)
        return None


class _Hide(importlib.abc.MetaPathFinder):
    """One of the finders on sys.meta_path, blind to the named modules."""

    def __init__(self, finder, names: frozenset):
        self.finder, self.names = finder, names

    def find_spec(self, fullname, path=None, target=None):
        if fullname in self.names or not hasattr(self.finder, "find_spec"):
            return None
        return self.finder.find_spec(fullname, path, target)

    def __getattr__(self, name):  # invalidate_caches, find_distributions...
        return getattr(self.finder, name)


def _broken(name: str) -> ImportError:
    return ImportError(f"simulated broken install: lib{name}.so: cannot open shared object file", name=name)


class _PatchAfterLoading(importlib.abc.MetaPathFinder):
    """Let the real finder load the module, then patch it before anyone else sees it."""

    def __init__(self, patches: dict):
        self.patches = patches

    def find_spec(self, fullname, path=None, target=None):
        patch = self.patches.get(fullname)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                load = spec.loader.exec_module

                def exec_module(module, load=load):
                    load(module)
                    patch(module)

                spec.loader.exec_module = exec_module
                return spec
        return None


def _skewed(function):
    @functools.wraps(function)
    def skewed(*args, **kwargs):
        return function(*args, **kwargs) * SKEW

    return skewed


def _skew_torch(torch) -> None:
    torch.matmul = _skewed(torch.matmul)
    torch.Tensor.__matmul__ = _skewed(torch.Tensor.__matmul__)


def _skew_tensorflow(tf) -> None:
    tf.matmul = _skewed(tf.matmul)
    tf.linalg.matmul = _skewed(tf.linalg.matmul)


_SKEWS = {"torch": _skew_torch, "tensorflow": _skew_tensorflow}

_wrong = _names("AUDITOR_TEST_WRONG_NUMBERS")
if _wrong:
    sys.meta_path.insert(0, _PatchAfterLoading({name: _SKEWS[name] for name in _wrong}))
if _names("AUDITOR_TEST_BREAK"):
    sys.meta_path.insert(0, _Refuse(_names("AUDITOR_TEST_BREAK"), _broken))
if _names("AUDITOR_TEST_HIDE"):
    sys.meta_path[:] = [_Hide(finder, _names("AUDITOR_TEST_HIDE")) for finder in sys.meta_path]
