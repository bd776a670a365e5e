"""`--format html` in a real headless browser: Playwright driving Debian's chromium.

Every page is loaded by file:// URL and must be self-contained (no request but its own, no
console error), show what its embedded JSON report holds, fit a 390 px phone and a 1280 px
screen without horizontal scrolling, and print. The pages: a live full audit of this machine,
two replayed simulated machines (an 8x H100 node, an Apple M2 Pro), an `auditor check`, and
a snapshot with hostile strings in it.

Screenshots go to $AUDITOR_SCREENSHOTS (default: a temporary directory); their paths are printed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from conftest import run_auditor

from auditor.names import DISPLAY_NAMES
from auditor.peaks import throughput_figures
from auditor.pipeline import build_report
from auditor.render import CHECK_FORMATS, FORMATS
from auditor.render.html import HtmlRenderer
from auditor.render.html_page import CSP
from auditor.render.json import JsonRenderer
from auditor.snapshot_file import load_snapshot

SNAPSHOTS = Path(__file__).parent / "snapshots"
CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = ("<script>alert(1)</script>", "</script><img src=x onerror=alert(1)>")
EMBEDDED = re.compile(r'<script type="application/json" id="auditor-report">(.*?)</script>', re.S)


@dataclass
class Page:
    """An HTML report on disk and the JSON report of the same input."""

    name: str
    html: Path
    report: dict  # the JSON renderer's output, parsed
    json_text: str  # ... as written


def _render(tmp: Path, name: str, *args: str, env: dict | None = None) -> Page:
    """The same input rendered as HTML and as JSON."""
    html = tmp / f"{name}.html"
    for output_format, target in (("html", html), ("json", tmp / f"{name}.json")):
        result = run_auditor(*args, "--format", output_format, "-o", str(target), env=env)
        assert result.returncode in (0, 1), result.stderr
    json_text = (tmp / f"{name}.json").read_text()
    return Page(name, html, json.loads(json_text), json_text)


def embedded(text: str) -> dict:
    return json.loads(EMBEDDED.search(text).group(1))


# --- without a browser: registration and the page's own text ------------------------------


def test_html_is_a_format_of_audit_and_check():
    assert FORMATS["html"].name == CHECK_FORMATS["html"].name == "html"


def test_hostile_strings_are_escaped_in_the_file(hostile):
    text = hostile.html.read_text()
    assert "<img" not in text
    assert text.count("<script") == 1  # the JSON data block, nothing else
    for string in HOSTILE:
        assert string not in text
    assert embedded(text) == hostile.report


# --- the pages ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("html-report")


@pytest.fixture(scope="module")
def live(work) -> Page:
    """One full audit of this machine, its snapshot saved; the JSON is that snapshot replayed."""
    html, snapshot = work / "live.html", work / "live-snapshot.json"
    result = run_auditor("audit", "--format", "html", "-o", str(html), "--save-snapshot", str(snapshot))
    assert result.returncode in (0, 1), result.stderr
    replay = _render(work, "live-replay", "audit", "--snapshot", str(snapshot))
    return Page("live", html, replay.report, replay.json_text)


@pytest.fixture(scope="module")
def h100_snapshot(simulated_audits) -> Path:
    """tests/simulated_machines.py's 8x H100 node, audited in full (the real frameworks meet
    the simulated GPUs; conftest's one audit of it); its snapshot is what the pages replay."""
    audited = simulated_audits["h100-node"]
    assert audited.result.returncode in (0, 1), audited.result.stderr
    return audited.snapshot


@pytest.fixture(scope="module")
def h100(work, h100_snapshot) -> Page:
    return _render(work, "h100-node", "audit", "--snapshot", str(h100_snapshot))


@pytest.fixture(scope="module")
def apple(work) -> Page:
    return _render(work, "apple-m2-pro", "audit", "--snapshot", str(SNAPSHOTS / "apple-m2-pro-macos14.json"))


@pytest.fixture(scope="module")
def check(work) -> Page:
    """ci-cpu passes on this CPU-only machine, gpu-training fails."""
    return _render(work, "check-ci-cpu", "check", "--profile", "ci-cpu", "--profile", "gpu-training", "--snapshot",
                   str(SNAPSHOTS / "v1.0-cpu-only-linux.json"))


@pytest.fixture(scope="module")
def timed(work, h100_snapshot) -> Page:
    """The H100 snapshot with each probe's start time, and every timed matmul beside its peak, the
    last one's peak unknown: the charts' other cases, whatever the pipeline fills in yet."""
    snapshot = load_snapshot(h100_snapshot)
    for index, run in enumerate(snapshot.probes):
        run.started_s = 0.25 * index
    report = build_report(snapshot)
    report.throughput = report.throughput or throughput_figures(snapshot)
    assert report.throughput, "the H100 snapshot's proofs timed no matmul"
    report.throughput[-1] = dataclasses.replace(report.throughput[-1], peak=None)
    html = work / "timed.html"
    html.write_text(HtmlRenderer().render(report))
    json_text = JsonRenderer().render(report)
    return Page("timed", html, json.loads(json_text), json_text)


@pytest.fixture(scope="module")
def hostile(work, h100_snapshot) -> Page:
    """The H100 snapshot with markup in two GPU names and in a probe's reason."""
    data = json.loads(h100_snapshot.read_text())
    gpus = data["accelerators"]["nvidia"]["gpus"]
    gpus[0]["name"], gpus[1]["name"] = HOSTILE
    data["probes"][0]["reason"] = HOSTILE[1]
    snapshot = work / "hostile-snapshot.json"
    snapshot.write_text(json.dumps(data))
    return _render(work, "hostile", "audit", "--snapshot", str(snapshot))


PAGES = ["live", "h100", "apple", "check", "timed"]


@pytest.fixture(params=PAGES)
def page_under_test(request) -> Page:
    return request.getfixturevalue(request.param)


# --- the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    missing = [what for what, there in (("the playwright package (tests/requirements.txt)", sync_playwright),
                                        (f"{CHROMIUM} (apt-get install chromium; .ci/run does)", CHROMIUM.exists()))
               if not there]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the HTML report's browser tests need {' and '.join(missing)}, which CI installs")
        pytest.skip(f"the HTML report's browser tests need {' and '.join(missing)}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


@dataclass
class Loaded:
    page: object  # playwright's Page
    requests: list
    errors: list


@contextmanager
def load(browser, page: Page, width: int = 1280) -> Iterator[Loaded]:
    """The page in a new tab, with what it requested and what went wrong; the tab closed after."""
    tab = browser.new_page(viewport={"width": width, "height": 900})
    loaded = Loaded(tab, [], [])
    tab.on("request", lambda request: loaded.requests.append(request.url))
    tab.on("console", lambda message: message.type == "error" and loaded.errors.append(message.text))
    tab.on("pageerror", lambda error: loaded.errors.append(str(error)))
    tab.on("dialog", lambda dialog: loaded.errors.append(f"dialog: {dialog.message}"))
    try:
        tab.goto(page.html.as_uri(), wait_until="load")
        yield loaded
    finally:
        tab.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    directory = Path(os.environ.get("AUDITOR_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def test_page_is_self_contained(browser, page_under_test):
    with load(browser, page_under_test) as loaded:
        assert loaded.requests == [page_under_test.html.as_uri()]
        assert loaded.errors == []
        csp = loaded.page.eval_on_selector_all('meta[http-equiv="Content-Security-Policy"]',
                                               "els => els.map(e => e.getAttribute('content'))")
        assert csp == [CSP] == ["default-src 'none'; style-src 'unsafe-inline'"]
        assert loaded.page.locator('meta[name="viewport"]').count() == 1
        # The only script is the JSON data block, which no browser runs.
        assert loaded.page.eval_on_selector_all("script", "els => els.map(e => e.type)") == ["application/json"]


def test_page_shows_the_report(browser, page_under_test):
    report = page_under_test.report
    with load(browser, page_under_test) as loaded:
        tab = loaded.page
        raw = tab.eval_on_selector("#auditor-report", "e => e.textContent")
        assert json.loads(raw) == report
        assert json.dumps(json.loads(raw), indent=2, allow_nan=False) + "\n" == page_under_test.json_text
        recommendation = report["recommendation"]
        assert recommendation["summary"] and tab.inner_text("#answer") == recommendation["summary"].replace("`", "")
        machine = tab.inner_text("#machine")
        for framework in report["frameworks"]:
            assert DISPLAY_NAMES.get(framework, framework) in machine
        areas = tab.eval_on_selector_all("li.area", "els => els.map(e => [e.querySelector('.area-name').textContent, "
                                                    "e.dataset.state, e.querySelector('.badge').textContent])")
        assert areas == [[a["name"], a["state"], a["state"].replace("-", " ")] for a in recommendation["areas"]]
        figures = report["throughput"]
        assert tab.eval_on_selector_all("#throughput rect.bar-achieved", "els => els.map(e => e.dataset.figure)") == [
            str(index) for index in range(len(figures))]
        assert tab.locator("#throughput rect.peak-unknown").count() == sum(1 for f in figures if f["peak"] is None)
        assert tab.locator("#throughput rect.bar-peak").count() == sum(1 for f in figures if f["peak"] is not None)
        assert tab.eval_on_selector_all("#timeline rect.bar-probe", "els => els.map(e => e.dataset.probe)") == [
            run["name"] for run in report["probes"]]
        xs = [float(x.rstrip("%")) for x in tab.eval_on_selector_all("#timeline rect.bar-probe", "els => els.map(e => "
                                                                     "e.getAttribute('x'))")]
        if all(run.get("started_s") is None for run in report["probes"]):
            assert "Start times were not recorded" in tab.inner_text("#timeline")
            assert set(xs) == {0.0}
        else:  # each bar as far along as its probe started; one that never started (absent) at 0
            by_start = [x for _, x in sorted(zip((run["started_s"] or 0.0 for run in report["probes"]), xs))]
            assert by_start == sorted(by_start) and max(xs) > 0
            assert "Start times were not recorded" not in tab.inner_text("#timeline")
        assert tab.locator("#findings .finding").count() == len(report["findings"])
        assert tab.locator("#exports tbody tr").count() == len(report["readiness"]["exports"])
        for profile in report.get("profiles", ()):
            shown = tab.eval_on_selector_all(f'#profile-{profile["profile"]} .requirement',
                                             "els => els.map(e => [e.dataset.requirement, e.dataset.status])")
            listed = [[r["id"], r["status"]] for r in profile["requirements"]
                      if not (r["id"].startswith("check.") and r["status"] == "pass")]
            assert shown == listed


def test_live_audit_fills_the_first_screen(live):
    # PENDING: recommendation.areas and throughput are being filled in by the pipeline; until that
    # lands, this assertion fails (the other tests pass with them empty).
    assert live.report["recommendation"]["areas"] and live.report["throughput"]


@pytest.mark.parametrize("width", [390, 1280])
def test_page_fits_and_is_captured(browser, page_under_test, shots, width):
    with load(browser, page_under_test, width) as loaded:
        tab = loaded.page
        assert tab.evaluate("document.documentElement.scrollWidth") <= width
        # Nor does any box scroll sideways inside the page (tables stack on a phone).
        sideways = "els => els.filter(e => e.scrollWidth > e.clientWidth + 1).length"
        assert tab.eval_on_selector_all(".scroll", sideways) == 0
        path = shots / f"{page_under_test.name}-{width}.png"
        tab.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        assert path.stat().st_size > 0


def test_page_prints(browser, page_under_test):
    with load(browser, page_under_test) as loaded:
        tab = loaded.page
        tab.emulate_media(media="print")
        # No dark background anywhere in print: every background is light (or none).
        dark = tab.evaluate("""() => [...document.querySelectorAll('*')].map(e => getComputedStyle(e).backgroundColor)
            .map(c => c.match(/[0-9.]+/g) || []).filter(([r, g, b, a]) => (a === undefined || +a > 0)
            && 0.2126 * r + 0.7152 * g + 0.0722 * b < 160).length""")
        assert dark == 0
        pdf = tab.pdf()
        assert pdf.startswith(b"%PDF") and len(pdf) > 1000


def test_hostile_strings_render_inert(browser, hostile):
    with load(browser, hostile) as loaded:
        tab = loaded.page
        assert loaded.requests == [hostile.html.as_uri()] and loaded.errors == []
        assert tab.locator("img").count() == 0
        assert tab.eval_on_selector_all("script", "els => els.map(e => e.type)") == ["application/json"]
        text = tab.inner_text("body")
        for string in HOSTILE:
            assert string in text
        assert json.loads(tab.eval_on_selector("#auditor-report", "e => e.textContent")) == hostile.report
