"""Probes find facts and never judge them.

Inline probes (host, python, cpu, memory, packages) read files and stdlib calls in the main
process; child probes (torch, tensorflow, nvml) run in their own processes with deadlines.
registry.py lists them all; runner.py runs them and assembles the snapshot.
"""
