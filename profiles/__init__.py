"""The built-in readiness profiles, installed as the package ``auditor.builtin_profiles``.

Only the ``*.toml`` files here matter; this file exists so that the folder is a regular
package, which setuptools' editable installs can map (see ``[tool.setuptools.package-dir]``).
"""
