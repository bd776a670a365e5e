"""Replay the real-world corpus and score the auditor's verdicts against what the threads found.

    python benchmarks/realworld.py [--json FILE] [CASE.json ...]

Each file in tests/realworld/cases/ is a replayable snapshot (``auditor check --profile GOAL
--snapshot FILE`` reads it as is) whose ``case`` key holds what a public thread or official
table says: the goal, the verdict it reached, the cause and the fix. For every case this prints

  verdict right   the goal's built-in profile verdict equals the expected one (or, on a case
                  expected ready, is "not checked": nothing fails, the proofs are unknown)
  cause named     every finding code the case expects fired
  fix fits        the fix of the cause (or, without a cause, of the goal's next steps) contains
                  every string the case names, and no command the case rules out
  false alarm     an error finding that is not one of the case's causes, or a failed requirement
                  on a case that is expected ready

and then the totals. The suite (tests/test_realworld.py) asserts each case through score_case.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditor.profiles.loader import load_profile  # noqa: E402
from auditor.pipeline import build_report  # noqa: E402
from auditor.snapshot_file import load_snapshot  # noqa: E402

CASES = ROOT / "tests" / "realworld" / "cases"


@dataclass
class CaseResult:
    case: str
    goal: str
    expected: str
    verdict: str
    verdict_right: bool
    causes_expected: list[str]
    causes_named: bool
    fix_fits: bool
    fix: str
    false_alarms: list[str] = field(default_factory=list)

    @property
    def right(self) -> bool:
        return self.verdict_right and self.causes_named and self.fix_fits and not self.false_alarms


def score_case(path: Path) -> CaseResult:
    case = json.loads(path.read_text(encoding="utf-8"))["case"]
    snapshot = load_snapshot(path)
    profile = load_profile(case["goal"], ROOT)
    report = build_report(snapshot, goals=[profile])
    verdict = report.verdicts[0]
    goal = report.recommendation.goals[0]
    codes = {finding.code for finding in report.findings}
    causes = [f for f in report.findings if f.code in case["cause_codes"]]
    fix = " | ".join(f.fix or "" for f in causes) if causes else " | ".join(
        f"{step.reason}: {step.action}" for step in goal.next_steps)
    every_fix = fix + " | " + " | ".join(step.command or "" for step in goal.next_steps)
    fits = (all(text in fix for text in case["fix_contains"])
            and not any(text in every_fix for text in case["fix_excludes"]))
    allowed = set(case["cause_codes"]) | set(case["allowed_codes"])
    alarms = [f"{f.code}: {f.title}" for f in report.findings if f.severity == "error" and f.code not in allowed]
    if case["expected"] == "ready":
        alarms += [f"{r.id} failed: {r.title}" for r in verdict.requirements if r.status == "fail"]
    # A case its thread found working is right when nothing fails here and what a thread cannot
    # show (the proofs, the machine's capacity) is "not checked": unknown is neither a failure nor a pass.
    right = verdict.status == case["expected"] or (case["expected"], verdict.status) == ("ready", "not-checked")
    return CaseResult(path.stem, case["goal"], case["expected"], verdict.status, right,
                      case["cause_codes"], set(case["cause_codes"]) <= codes, fits, fix, sorted(set(alarms)))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", type=Path, help="case files (default: every file in tests/realworld/cases)")
    parser.add_argument("--json", type=Path, help="also write every case's result here")
    args = parser.parse_args(argv)
    paths = args.cases or sorted(CASES.glob("*.json"))
    results = [score_case(path) for path in paths]
    for r in results:
        marks = "".join("." if ok else "x" for ok in (r.verdict_right, r.causes_named, r.fix_fits, not r.false_alarms))
        print(f"{marks}  {r.case:<44} {r.goal:<18} expected {r.expected:<9} got {r.verdict}")
        if not r.right:
            if not r.causes_named:
                print(f"      cause not named: expected {', '.join(r.causes_expected)}")
            if not r.fix_fits:
                print(f"      fix does not fit: {r.fix[:300]}")
            for alarm in r.false_alarms:
                print(f"      false alarm: {alarm}")
    broken = [r for r in results if r.expected == "not-ready"]
    print(f"\n{len(results)} cases ({len(broken)} broken, {len(results) - len(broken)} healthy)")
    print(f"verdicts right  {sum(r.verdict_right for r in results)}/{len(results)}")
    print(f"causes named    {sum(r.causes_named for r in broken)}/{len(broken)} broken cases")
    print(f"fixes that fit  {sum(r.fix_fits for r in broken)}/{len(broken)} broken cases")
    print(f"false alarms    {sum(len(r.false_alarms) for r in results)} (in {sum(bool(r.false_alarms) for r in results)} cases)")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n", encoding="utf-8")
    return 0 if all(r.right for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
