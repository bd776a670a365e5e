"""Readiness profiles: what a machine must offer for a purpose, and its verdict on each requirement.

document.py declares the file format (typed_toml.py reads TOML into it and derives the JSON
Schema, schema.py); loader.py finds, validates and merges profiles (merge.py, for `extends`);
needs.py says what the probes must do for them; evaluate.py turns a profile and an audit
report into a ProfileVerdict (verdict.py), with the host, compute and export requirements in
their own modules and fixes.py for the install commands.
"""
