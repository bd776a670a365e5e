"""Export and serving paths: each child converts a tiny model, runs it in the target runtime and
compares the output with the source model's. They run only inside child processes (see
probes/child.py); common.py holds what they share.
"""
