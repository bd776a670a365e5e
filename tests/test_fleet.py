"""`auditor fleet merge`: the fleet report from saved snapshots, as Slurm or a Kubernetes DaemonSet
leaves them; the skew findings (FLT) on snapshots of the simulated machines and of the real-world
corpus; every format; the bad inputs. The Ray side is tests/test_fleet_ray.py."""

from __future__ import annotations

import copy
import json
import re
import socket
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import run_auditor
from test_html_report import CHROMIUM, EMBEDDED
from test_terminal import assert_clean, run_in_terminal, terminal_env

CASES = Path(__file__).parent / "realworld" / "cases"


def _case(name: str) -> dict:
    return json.loads((CASES / f"{name}.json").read_text())


def _write(directory: Path, name: str, snapshot: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(snapshot))
    return path


def _merge(*args: str) -> tuple[int, dict]:
    result = run_auditor("fleet", "merge", *args, "--format", "json")
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def _codes(report: dict) -> list[str]:
    return [f["code"] for f in report["findings"]]


def _finding(report: dict, code: str) -> dict:
    (finding,) = [f for f in report["findings"] if f["code"] == code]
    return finding


# --- the real-world corpus: one node got another torch build ----------------------------------

@pytest.fixture(scope="module")
def cu126_and_cu128(tmp_path_factory) -> Path:
    """Three V100 nodes: one with torch's cu126 wheel, which has the V100's sm_70 kernels, two with the
    cu128 one, which dropped them (the corpus' twin cases)."""
    directory = tmp_path_factory.mktemp("v100-fleet")
    _write(directory, "node1", _case("v100-torch2110-cu126"))
    for name in ("node2", "node3"):
        _write(directory, name, _case("v100-torch2110-cu128"))
    return directory


def test_a_build_skew_is_one_finding_whose_fix_follows_the_node_that_works(cu126_and_cu128):
    code, report = _merge(str(cu126_and_cu128))
    assert code == 1
    torch = _finding(report, "FLT005")
    assert torch["title"] == ("torch differs across nodes: 2.11.0+cu128 · cuda 12.8 on node2, node3; "
                              "2.11.0+cu126 · cuda 12.6 on node1")
    # Most nodes run cu128, but cu128 has no sm_70 kernels: the fix is node1's build, not the majority's.
    assert torch["fix"] == ("On node2, node3: `python -m pip install 'torch==2.11.0' --index-url "
                            "https://download.pytorch.org/whl/cu126`, the torch 2.11.0+cu126 that node1 runs.")
    goals = {f["title"].split(" ")[0] for f in report["findings"] if f["code"] == "FLT008"}
    assert "gpu-training" in goals
    gpu_training = next(f for f in report["findings"] if f["code"] == "FLT008" and f["title"].startswith("gpu-training"))
    assert any(line.startswith("node2: not-ready: ARC001") for line in gpu_training["evidence"])


def test_nodes_are_grouped_by_configuration(cu126_and_cu128):
    _, report = _merge(str(cu126_and_cu128))
    assert [(g["number"], g["nodes"]) for g in report["groups"]] == [(1, ["node2", "node3"]), (2, ["node1"])]
    assert report["groups"][0]["differs"] == {"torch version": "2.11.0+cu128", "torch build": "cuda 12.8"}
    assert report["groups"][1]["differs"] == {"torch version": "2.11.0+cu126", "torch build": "cuda 12.6"}
    assert report["common"]["NVIDIA GPUs"] == "1 x Tesla V100"
    rows = {row["name"]: row for row in report["nodes"]}
    assert rows["node1"]["frameworks"] == ["torch 2.11.0+cu126 (cuda 12.6)"]
    assert (rows["node1"]["group"], rows["node2"]["group"]) == (2, 1)


def test_files_and_directories_merge_alike(cu126_and_cu128):
    _, from_directory = _merge(str(cu126_and_cu128))
    _, from_files = _merge(*(str(p) for p in sorted(cu126_and_cu128.glob("*.json"))))
    assert from_files["nodes"] == [dict(row, where=row["where"]) for row in from_directory["nodes"]]
    assert from_files["findings"] == from_directory["findings"]


# --- NCCL, the net plugin, Python: skew crafted into one node's snapshot --------------------

@pytest.fixture(scope="module")
def h100_snapshot(simulated_audits) -> dict:
    return json.loads(simulated_audits["h100-node"].snapshot.read_text())


def _nodes_with(tmp_path: Path, base: dict, change) -> Path:
    for name in ("gpu-a", "gpu-b"):
        _write(tmp_path, name, base)
    odd = copy.deepcopy(base)
    change(odd)
    _write(tmp_path, "gpu-c", odd)
    return tmp_path


def _with_nccl(snapshot: dict, version: str) -> dict:
    snapshot = copy.deepcopy(snapshot)
    snapshot["frameworks"]["torch"]["build"]["details"]["nccl"] = version
    return snapshot


def test_an_nccl_skew_is_an_error_naming_each_version(tmp_path, h100_snapshot):
    base = _with_nccl(h100_snapshot, "2.27.3")
    directory = _nodes_with(tmp_path, base, lambda odd: odd["frameworks"]["torch"]["build"]["details"].update(nccl="2.21.5"))
    code, report = _merge(str(directory))
    assert code == 1
    nccl = _finding(report, "FLT003")
    assert nccl["severity"] == "error"
    assert nccl["title"] == "NCCL torch loads differs across nodes: 2.27.3 on gpu-a, gpu-b; 2.21.5 on gpu-c"
    assert nccl["evidence"] == ["2.27.3: 2 nodes (gpu-a, gpu-b)", "2.21.5: 1 node (gpu-c)"]
    assert "FLT005" not in _codes(report)  # the same torch everywhere: only its NCCL was changed


def test_a_net_plugin_on_some_nodes_only_is_an_error(tmp_path, h100_snapshot):
    def plugin(odd):
        odd["accelerators"]["cuda_toolkit"]["libraries"]["libnccl-net.so"] = "/opt/aws-ofi-nccl/lib/libnccl-net.so"
    code, report = _merge(str(_nodes_with(tmp_path, h100_snapshot, plugin)))
    finding = _finding(report, "FLT004")
    assert finding["title"] == ("NCCL net plugin (libnccl-net.so) differs across nodes: none on gpu-a, gpu-b; "
                                "present on gpu-c")
    assert "gpu-c: /opt/aws-ofi-nccl/lib/libnccl-net.so" in finding["evidence"]


def test_python_and_gpu_count_skews_are_warnings(tmp_path, h100_snapshot):
    def older(odd):
        odd["machine"]["python"]["version"] = "3.10.12"
        odd["accelerators"]["nvidia"]["gpus"] = odd["accelerators"]["nvidia"]["gpus"][:7]
    _, report = _merge(str(_nodes_with(tmp_path, h100_snapshot, older)))
    python = _finding(report, "FLT007")
    version = h100_snapshot["machine"]["python"]["version"]
    assert python["title"] == f"Python differs across nodes: CPython {version} on gpu-a, gpu-b; CPython 3.10.12 on gpu-c"
    assert python["severity"] == "warning"
    gpus = _finding(report, "FLT006")
    assert gpus["title"] == ("NVIDIA GPUs differs across nodes: 8 x NVIDIA H100 80GB HBM3 on gpu-a, gpu-b; "
                             "7 x NVIDIA H100 80GB HBM3 on gpu-c")


def test_identical_nodes_have_no_skew_and_exit_0(tmp_path, simulated_audits):
    snapshot = json.loads(simulated_audits["laptop-no-gpu"].snapshot.read_text())
    for name in ("a", "b", "c"):
        _write(tmp_path, name, snapshot)
    code, report = _merge(str(tmp_path), "--goal", "research")
    assert _codes(report) == []
    assert [g["nodes"] for g in report["groups"]] == [["a", "b", "c"]]
    assert report["summary"] == "3 nodes; 1 configuration; research ready on 3/3; no skew found."
    assert code == 0


def test_simulated_machines_merge_with_their_differences(tmp_path, simulated_audits):
    for name in ("h100-node", "rtx4090-workstation", "laptop-no-gpu"):
        (tmp_path / f"{name}.json").write_text(simulated_audits[name].snapshot.read_text())
    _, report = _merge(str(tmp_path))
    driver = _finding(report, "FLT001")
    assert driver["title"] == "NVIDIA driver differs across nodes: 550.90.07 on h100-node; 560.35.03 on rtx4090-workstation"
    gpus = _finding(report, "FLT006")
    assert "8 x NVIDIA H100 80GB HBM3 on h100-node" in gpus["title"] and "(none) on laptop-no-gpu" in gpus["title"]
    rows = {row["name"]: row for row in report["nodes"]}
    assert rows["rtx4090-workstation"]["gpus"] == "1 x NVIDIA GeForce RTX 4090"
    assert len(report["groups"]) == 3


# --- what cannot be merged ------------------------------------------------------------------

def test_a_broken_file_is_its_nodes_row_and_the_rest_is_reported(tmp_path):
    _write(tmp_path, "good", _case("v100-torch2110-cu126"))
    (tmp_path / "truncated.json").write_text('{"schema_version": "1.7", "machine": ')
    (tmp_path / "other.json").write_text('{"hello": 1}')
    (tmp_path / ".half-written.json").write_text("{")  # a writer's temporary file: not a node
    code, report = _merge(str(tmp_path))
    assert code == 1
    rows = {row["name"]: row for row in report["nodes"]}
    assert sorted(rows) == ["good", "other", "truncated"]
    assert rows["good"]["status"] == "audited"
    assert rows["truncated"]["reason"].startswith(f"snapshot {tmp_path / 'truncated.json'} is not JSON:")
    assert rows["other"]["reason"] == (f"snapshot {tmp_path / 'other.json'}: $.schema_version is missing; "
                                       "is this an auditor snapshot?")
    assert sorted(f["title"].split(" ")[0] for f in report["findings"] if f["code"] == "FLT009") == ["other", "truncated"]


@pytest.mark.parametrize("args, message", [
    (("fleet", "merge", "/nonexistent/snaps"), "/nonexistent/snaps: no such file or directory"),
    (("fleet",), "say which fleet: `auditor fleet --ray ADDRESS|auto`, or `auditor fleet merge FILES...|DIR` for "
                 "saved snapshots"),
    (("fleet", "--deep", "merge", "x"), "--ray, --deep, --collective, --timeout, --node-timeout and --save-snapshots "
                                        "go with `auditor fleet --ray`, not with `fleet merge`"),
    (("fleet", "merge", ".", "--goal", "nonsense"), None),
    (("fleet", "merge"), "Missing argument 'FILES...|DIR'. (see 'auditor fleet merge --help')"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    result = run_auditor(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("auditor: error: ")
    if message:
        assert result.stderr == f"auditor: error: {message}\n"


def test_an_empty_directory_is_an_input_error(tmp_path):
    result = run_auditor("fleet", "merge", str(tmp_path))
    assert (result.returncode, result.stderr) == (2, f"auditor: error: {tmp_path} holds no snapshot (*.json)\n")


def test_an_unwritable_output_fails_before_anything_is_read(tmp_path, cu126_and_cu128):
    result = run_auditor("fleet", "merge", str(cu126_and_cu128), "-o", str(tmp_path / "missing" / "fleet.md"))
    assert result.returncode == 2 and result.stderr.startswith("auditor: error: cannot write the report to ")


# --- formats --------------------------------------------------------------------------------

def test_markdown_has_the_summary_a_row_per_node_and_the_findings(cu126_and_cu128):
    result = run_auditor("fleet", "merge", str(cu126_and_cu128), "--format", "markdown")
    _, report = _merge(str(cu126_and_cu128))
    lines = result.stdout.splitlines()
    assert lines[0] == "# Fleet audit"
    assert f"**{report['summary']}**" in lines
    header = next(line for line in lines if line.startswith("| Node |"))
    assert header.startswith("| Node | Group | GPUs | Driver | Frameworks | ")
    rows = [line for line in lines if re.match(r"\| node\d ", line)]
    assert len(rows) == 3 and all(row.count("|") == header.count("|") for row in rows)
    assert any(line.startswith("- **error FLT005** torch differs across nodes") for line in lines)


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.text, self.sources = [], []

    def handle_starttag(self, tag, attrs):
        self.sources += [value for name, value in attrs if name in ("src", "href") and value]

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_self_contained_and_embeds_the_json_report(cu126_and_cu128):
    html = run_auditor("fleet", "merge", str(cu126_and_cu128), "--format", "html").stdout
    _, report = _merge(str(cu126_and_cu128))
    embedded = json.loads(EMBEDDED.search(html).group(1))
    assert {k: v for k, v in embedded.items() if k != "generated_at"} == {
        k: v for k, v in report.items() if k != "generated_at"}
    parser = _Text()
    parser.feed(html)
    assert parser.sources == []
    assert report["summary"] in "".join(parser.text)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)")
@pytest.mark.parametrize("width", [390, 1280])
def test_html_in_a_browser_fits_and_requests_nothing(cu126_and_cu128, tmp_path, width):
    from playwright.sync_api import sync_playwright

    page = tmp_path / "fleet.html"
    assert run_auditor("fleet", "merge", str(cu126_and_cu128), "--format", "html", "-o", str(page)).returncode == 1
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        tab = browser.new_page(viewport={"width": width, "height": 900})
        requests, errors = [], []
        tab.on("request", lambda request: requests.append(request.url))
        tab.on("console", lambda message: message.type == "error" and errors.append(message.text))
        tab.goto(page.as_uri(), wait_until="load")
        assert requests == [page.as_uri()] and errors == []
        assert tab.evaluate("document.documentElement.scrollWidth") <= width
        assert tab.locator("#nodes tbody tr").count() == 3
        assert tab.eval_on_selector_all("#findings .card", "els => els.map(e => e.dataset.code)").count("FLT005") == 1
        tab.screenshot(path=str(tmp_path / f"fleet-{width}.png"), full_page=True)
        browser.close()


@pytest.mark.parametrize("columns", [80, 120])
def test_text_on_a_terminal_fits_and_leads_with_the_summary(cu126_and_cu128, columns):
    screen = run_in_terminal("fleet", "merge", str(cu126_and_cu128), columns=columns, env=terminal_env())
    assert_clean(screen, columns, codes=(1,))
    lines = screen.lines
    assert lines[0].startswith("auditor ") and "fleet audit of 3 snapshot files" in lines[0]
    assert lines[1].startswith("3 nodes; 2 configurations;")
    assert lines.index("Nodes") < lines.index("Fleet findings") < lines.index("Configurations")


# --- the checks, and %N for per-node files --------------------------------------------------

def test_fleet_checks_are_listed_and_explained():
    listed = run_auditor("checks").stdout
    assert re.search(r"^FLT003 +error +nccl-version-skew", listed, re.M)
    explained = run_auditor("explain", "FLT004")
    assert explained.returncode == 0 and "NVIDIA/nccl#1634" in explained.stdout


def test_a_machines_own_audit_runs_no_fleet_check(simulated_audits):
    report = json.loads(simulated_audits["h100-node"].result.stdout)
    assert not [f for f in report["findings"] if f["code"].startswith("FLT")]


def test_percent_n_in_a_snapshot_name_is_this_hosts_name(tmp_path, cu126_and_cu128):
    result = run_auditor("audit", "--snapshot", str(cu126_and_cu128 / "node1.json"), "--format", "json",
                         "-o", str(tmp_path / "report-%N.json"), "--save-snapshot", str(tmp_path / "snap-%N.json"))
    assert result.returncode in (0, 1), result.stderr
    host = socket.gethostname().split(".")[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"report-{host}.json", f"snap-{host}.json"]


def test_the_fleet_schema_is_published_and_current():
    from auditor.schema import published_schema, render_schema

    assert published_schema("fleet") == render_schema("fleet"), \
        "regenerate: python -m auditor.schema fleet > auditor/schemas/fleet-v1.json"


def test_fleet_json_validates_against_its_schema(cu126_and_cu128, tmp_path):
    import jsonschema

    from auditor.schema import published_schema

    (tmp_path / "broken.json").write_text("{")
    _, report = _merge(str(cu126_and_cu128), str(tmp_path / "broken.json"))
    schema = json.loads(published_schema("fleet"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(report, schema, cls=jsonschema.Draft202012Validator)
    assert report["schema_version"] == "1.0"
    report["nodes"][0]["errors"] = "two"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report, schema, cls=jsonschema.Draft202012Validator)


def test_a_report_option_before_merge_means_the_same_as_after_it(cu126_and_cu128):
    before = run_auditor("fleet", "--format", "json", "--goal", "gpu-training", "merge", str(cu126_and_cu128))
    after = run_auditor("fleet", "merge", str(cu126_and_cu128), "--format", "json", "--goal", "gpu-training")
    assert before.returncode == after.returncode == 1
    strip = lambda text: {k: v for k, v in json.loads(text).items() if k != "generated_at"}  # noqa: E731
    assert strip(before.stdout) == strip(after.stdout)
    assert [g["goal"] for g in strip(after.stdout)["goals"]] == ["gpu-training"]
