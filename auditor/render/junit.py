"""JUnit XML: one <testsuite> per profile, one <testcase> per requirement and per counted check.

The strictest common flavour is written, Apache Ant's (the "Jenkins-style" JUnit.xsd): every
testsuite carries id, package, name, timestamp (no time zone), hostname, tests, failures,
errors and time, then <properties>, its test cases, <system-out> and <system-err>; a test
case holds at most one <failure>. GitLab shows ``classname`` as the suite, so it is the
profile's name, and ``name`` is the requirement's stable id.

A failing requirement is a <failure> whose text is the evidence and the fix. JUnit has no
warning: a warning is a passing test case, listed with its evidence in the suite's <system-out>.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree

from auditor.decisions.verdict import CheckReport, ProfileVerdict, RequirementResult
from auditor.render.check_base import CheckRenderer
from auditor.render.summary import audited_python

# Characters XML 1.0 cannot carry at all (an error message may hold terminal escapes).
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


class JunitRenderer(CheckRenderer):
    name = "junit"

    def render(self, check: CheckReport) -> str:
        root = ElementTree.Element("testsuites")
        for index, verdict in enumerate(check.verdicts):
            root.append(self._suite(index, verdict, check))
        ElementTree.indent(root)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"

    def _suite(self, index: int, verdict: ProfileVerdict, check: CheckReport) -> ElementTree.Element:
        snapshot = check.report.snapshot
        suite = ElementTree.Element("testsuite", {
            "id": str(index), "package": "auditor", "name": verdict.profile,
            "timestamp": snapshot.generated_at[:19],  # the schema allows no time zone; generated_at is UTC
            "hostname": "localhost",  # the snapshot keeps no host name, on purpose
            "tests": str(len(verdict.requirements)), "failures": str(verdict.count("fail")), "errors": "0",
            "skipped": str(verdict.count("not-checked") + verdict.count("not-applicable")), "time": "0"})
        properties = ElementTree.SubElement(suite, "properties")
        for name, value in (("verdict", verdict.status), ("description", verdict.description),
                            ("source", verdict.source), ("auditor.version", snapshot.auditor_version),
                            ("audit.mode", snapshot.mode), ("audit.generated_at", snapshot.generated_at),
                            ("audit.python", audited_python(snapshot))):
            ElementTree.SubElement(properties, "property", {"name": name, "value": _xml(value)})
        for result in verdict.requirements:
            suite.append(self._case(verdict.profile, result))
        warnings = [result for result in verdict.requirements if result.status == "warn"]
        ElementTree.SubElement(suite, "system-out").text = _xml("\n\n".join(
            _details(f"WARNING {result.id}: {result.title}", result) for result in warnings))
        ElementTree.SubElement(suite, "system-err").text = ""
        return suite

    def _case(self, profile: str, result: RequirementResult) -> ElementTree.Element:
        case = ElementTree.Element("testcase", {"classname": profile, "name": result.id, "time": "0"})
        if result.status == "fail":
            kind = result.id.removeprefix("check.") if result.id.startswith("check.") else "requirement"
            failure = ElementTree.SubElement(case, "failure", {"message": _xml(result.title), "type": kind})
            failure.text = _xml(_details("", result))
        elif result.status in ("not-checked", "not-applicable"):
            # Neither passed nor failed: a CI server shows it as skipped, with why.
            reason = "not checked" if result.status == "not-checked" else "not applicable"
            ElementTree.SubElement(case, "skipped", {"message": _xml(f"{reason}: {'; '.join(result.evidence)}"
                                                                    + (f" ({result.fix})" if result.fix else ""))})
        return case


def _details(heading: str, result: RequirementResult) -> str:
    lines = [heading] if heading else []
    lines += [f"evidence: {line}" for line in result.evidence]
    if result.waiver:
        lines.append(f"waived until {result.waiver.expires}: {result.waiver.reason}")
    if result.fix:
        lines.append(f"fix: {result.fix}")
    return "\n".join(lines)
