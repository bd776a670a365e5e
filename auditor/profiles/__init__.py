"""Readiness profiles, the policy language: what a machine must offer for a purpose.

document.py declares the file format (typed_toml.py reads TOML into it and derives the JSON
Schema, schema.py); loader.py finds, validates and merges profiles (merge.py, for `extends`);
needs.py says what the probes must do for them. Judging a profile against a report is a decision:
auditor/decisions/goals.py.
"""
