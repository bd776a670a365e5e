"""auditor: proves whether this machine and Python environment are ready for ML work.

Kept import-light on purpose: probe children import this package too, before they
import a framework, so nothing here may pull in click, rich or a framework.
"""

__version__ = "0.1.0"
