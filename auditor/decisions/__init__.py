"""Decisions: from facts and findings to what the report answers.

readiness.py says what works here (each framework on each device, each export path), by proof;
goals.py judges each goal (a profile) requirement by requirement (compute_requirements.py,
host_requirements.py, export_requirements.py, with fixes.py for the install commands), into a
ProfileVerdict (verdict.py); recommendation.py is the one recommender: the framework, device and
path to use for each goal, and the next steps. Everything below (facts, checks, knowledge, the
profile language in auditor/profiles/) is read here; nothing here probes or renders.
"""
