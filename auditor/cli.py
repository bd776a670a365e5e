"""The command line: `auditor audit`, `auditor check`, `auditor profiles`, `auditor checks`,
`auditor explain CODE`.

Every error reaches the user as one line and a documented exit code (errors.ExitCode);
a traceback is shown only with AUDITOR_DEBUG=1.
"""

from __future__ import annotations

import dataclasses
import errno
import math
import os
import signal
import sys
from pathlib import Path
from typing import Optional

import click
from click.utils import PacifyFlushWrapper

import auditor
from auditor.config import FAIL_ON
from auditor.errors import ExitCode, InputError, Interrupted, OutputError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(auditor.__version__, "--version", prog_name="auditor")
def cli() -> None:
    """Prove whether this machine and Python environment are ready for ML work."""


_output_option = click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
                              help="Write the report to FILE (atomically) instead of standard output.")


class _Seconds(click.ParamType):
    """A deadline: a finite number of seconds, at least 1. click's FloatRange lets nan and inf
    through (nan compares false with its bounds), and either would mean no deadline at all."""

    name = "seconds"

    def convert(self, value, param, ctx):
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds) or not 1 <= seconds <= _LONGEST_DEADLINE_S:
            self.fail(f"{value!r} is not a number of seconds from 1 to {_LONGEST_DEADLINE_S}", param, ctx)
        return seconds


_SECONDS = _Seconds()
_LONGEST_DEADLINE_S = 86400  # a day; beyond it a deadline is no deadline, and OS timers overflow


def _shared_options(command):
    """The options `audit` and `check` share: which checks run, the config file, and where
    the facts come from."""
    for option in reversed((
        click.option("--select", multiple=True, metavar="CODES",
                     help="Run only the checks whose code starts with one of CODES: comma-separated codes or "
                          "prefixes (GPU,FW004), repeatable; default: every check."),
        click.option("--ignore", multiple=True, metavar="CODES",
                     help="Skip the checks whose code starts with one of CODES. Where --select and --ignore both "
                          "match a check, the longer entry wins."),
        click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     default=None, help="Read [tool.auditor] settings from FILE instead of the nearest pyproject.toml "
                                        "with one (in this directory or above). The command line wins over the file."),
        click.option("--timeout", "timeout_s", type=_SECONDS, default=None, metavar="SECONDS",
                     help="Deadline in seconds for each framework probe (default 120)."),
        click.option("--python", "python_ref", metavar="PATH", default=None,
                     help="Audit the Python environment at PATH: an interpreter (or a command on PATH, such as "
                          "python3.9), a virtual environment's directory or a conda prefix (default: $AUDITOR_PYTHON, "
                          "else the interpreter the auditor runs in)."),
        click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
                     help="Read /proc, /sys, /dev, /etc and /opt under DIR instead of / (for tests, chroots, and a "
                          "container that mounts the host's / somewhere; default: $AUDITOR_ROOT, else /)."),
        click.option("--snapshot", "snapshot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Replay a saved snapshot (or JSON report) through the checks instead of probing."),
        click.option("--save-snapshot", "save_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Also save the facts snapshot to FILE (atomically)."),
        click.option("--redact-paths", is_flag=True,
                     help="Leave this machine's user name and host name out of the report (and the saved "
                          "snapshot): the home directory becomes ~, other users' home directories lose their names."),
    )):
        command = option(command)
    return command


@cli.command()
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown", "html", "nfd"]),
              default="text",
              show_default=True, help="Report format.")
@_output_option
@click.option("--quick", is_flag=True, help="Read package metadata only; import no framework.")
@click.option("--deep", is_flag=True,
              help="Also run the slow proofs: torch.compile, XLA train steps, and every export path "
                   "(TFLite/LiteRT, SavedModel for TF Serving, ExecuTorch, ONNX Runtime, Core ML, TorchScript).")
@click.option("--fail-on", type=click.Choice(FAIL_ON), default=None,
              help="Exit 1 when a finding of this severity or worse is found; default: the config file's "
                   "fail-on, else error.")
@click.option("--goal", "goal_refs", multiple=True, metavar="NAME|PATH",
              help="Fit the recommendation to this goal: a built-in profile, a profile file, or `all` for every "
                   "built-in one (repeatable). Default: the built-in goals that apply to this machine's hardware.")
@_shared_options
def audit(output_format: str, output: Optional[Path], quick: bool, deep: bool, fail_on: Optional[str],
          goal_refs: tuple[str, ...], select: tuple[str, ...], ignore: tuple[str, ...], config_path: Optional[Path],
          timeout_s: Optional[float], python_ref: Optional[str], root: Optional[Path], snapshot_path: Optional[Path],
          save_path: Optional[Path], redact_paths: bool) -> int:
    """Audit this machine and its ML frameworks, and print a readiness report.

    Settings come from the command line, then [tool.auditor] in pyproject.toml, then the defaults.
    """
    from auditor.checks.base import SEVERITY_RANK
    from auditor.config import resolve
    from auditor.probes.registry import EXPORT_PATHS
    from auditor.probes.runner import ProbeOptions
    from auditor.redact import redact_identity
    from auditor.render import FORMATS
    from auditor.render.text import TextRenderer
    from auditor.pipeline import build_report
    from auditor.snapshot_file import load_snapshot, save_snapshot

    settings = resolve(config_path, select, ignore, fail_on)
    goals = _goals(goal_refs)
    report_target, snapshot_target = _open_outputs(output, save_path)
    if snapshot_path:
        _refuse_probing_flags(("--quick", quick), ("--deep", deep), ("--timeout", timeout_s), ("--root", root),
                              ("--python", python_ref))
        snapshot = load_snapshot(snapshot_path)
    else:
        if quick and deep:
            raise InputError("--quick imports no framework and --deep runs the slowest proofs; choose one")
        options = ProbeOptions(root=_probed_root(root), quick=quick, deep=deep,
                               exports=frozenset(EXPORT_PATHS if deep else ()), framework_deadline_s=timeout_s,
                               python=_audited_python(python_ref))
        snapshot = _collect_with_progress(options)
    if redact_paths:  # before the report is built, so every format and every finding is without the names
        snapshot = redact_identity(snapshot)
    report = build_report(snapshot, settings.selection, goals=goals)
    if snapshot_target:
        save_snapshot(snapshot_target, snapshot)

    renderer = TextRenderer(**_terminal(output)) if output_format == "text" else FORMATS[output_format]()
    _emit(renderer.render(report), report_target)
    if settings.fail_on != "never" and report.worst_severity() >= SEVERITY_RANK[settings.fail_on]:
        return ExitCode.FINDINGS
    return ExitCode.OK


def _goals(references: tuple[str, ...]) -> Optional[list]:
    """The profiles --goal names (``all``: every built-in one), loaded before anything is probed so
    that a wrong name costs no audit; None without --goal."""
    from auditor.profiles.loader import builtin_profiles, load_profile

    if not references:
        return None
    names = [name for reference in references
             for name in (builtin_profiles() if reference == "all" else [reference])]
    return [load_profile(name, Path.cwd(), "--goal") for name in dict.fromkeys(names)]


@cli.command()
@click.option("--profile", "profile_refs", multiple=True, metavar="NAME|PATH",
              help="A built-in profile (see `auditor profiles`) or a profile TOML file; repeatable. Default: "
                   "profiles from [tool.auditor].")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown", "html", "junit", "github"]),
              default="text", show_default=True,
              help="junit: one test case per requirement; github: workflow annotations, and the Markdown report "
                   "appended to $GITHUB_STEP_SUMMARY when it is set.")
@_output_option
@click.option("--fail-on", type=click.Choice(FAIL_ON), default=None,
              help="Exit 1 when a requirement fails (error) or also when one only warns (warning); never: exit 0 "
                   "whatever the verdicts. Default: the config file's fail-on, else error.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when a profile is not ready (input errors still exit 2).")
@_shared_options
def check(profile_refs: tuple[str, ...], output_format: str, output: Optional[Path], fail_on: Optional[str],
          exit_zero: bool, select: tuple[str, ...], ignore: tuple[str, ...], config_path: Optional[Path],
          timeout_s: Optional[float], python_ref: Optional[str], root: Optional[Path], snapshot_path: Optional[Path],
          save_path: Optional[Path], redact_paths: bool) -> int:
    """Check this machine against readiness profiles: each requirement passes, fails or warns.

    Exit 0 when every profile is ready, 1 when one is not, 2 on input errors, 3 on internal errors.
    """
    from auditor.config import resolve
    from auditor.probes.runner import ProbeOptions
    from auditor.profiles.loader import load_profile
    from auditor.profiles.needs import export_paths, needs_collective_proof, needs_deep_proofs
    from auditor.decisions.verdict import STATUS_RANK, CheckReport
    from auditor.redact import redact_identity
    from auditor.render import CHECK_FORMATS
    from auditor.render.check_text import CheckTextRenderer
    from auditor.render.github import append_step_summary
    from auditor.pipeline import build_report
    from auditor.snapshot_file import load_snapshot, save_snapshot

    settings = resolve(config_path, select, ignore, fail_on, profile_refs)
    if not settings.profiles:
        raise InputError("no profile to check: pass --profile NAME (`auditor profiles` lists them) or set "
                         "profiles in [tool.auditor]")
    profiles = [load_profile(reference, settings.profiles_base, settings.profiles_origin)
                for reference in settings.profiles]
    report_target, snapshot_target = _open_outputs(output, save_path)
    if snapshot_path:
        _refuse_probing_flags(("--timeout", timeout_s), ("--root", root), ("--python", python_ref))
        snapshot = load_snapshot(snapshot_path)
    else:
        options = ProbeOptions(root=_probed_root(root), deep=needs_deep_proofs(profiles),
                               collectives=needs_collective_proof(profiles),
                               exports=export_paths(profiles), framework_deadline_s=timeout_s,
                               python=_audited_python(python_ref))
        snapshot = _collect_with_progress(options)
    if redact_paths:  # before the report is built, so every format and every finding is without the names
        snapshot = redact_identity(snapshot)
        profiles = [dataclasses.replace(profile, source=redact_identity(profile.source)) for profile in profiles]
    report = build_report(snapshot, settings.selection, goals=profiles)
    if snapshot_target:
        save_snapshot(snapshot_target, snapshot)
    verdicts = CheckReport(report, report.verdicts)

    renderer = (CheckTextRenderer(**_terminal(output)) if output_format == "text"
                else CHECK_FORMATS[output_format]())
    _emit(renderer.render(verdicts), report_target)
    if output_format == "github" and os.environ.get("GITHUB_STEP_SUMMARY"):
        # After the report, which the job log should show even when the summary cannot be written.
        append_step_summary(Path(os.environ["GITHUB_STEP_SUMMARY"]), verdicts)
    if exit_zero or settings.fail_on == "never":
        return ExitCode.OK
    failing = STATUS_RANK["fail" if settings.fail_on == "error" else "warn"]
    return ExitCode.FINDINGS if verdicts.worst_status() >= failing else ExitCode.OK


@cli.group(invoke_without_command=True)
@click.pass_context
def profiles(ctx: click.Context) -> int:
    """List the built-in readiness profiles; `auditor profiles show NAME` prints one."""
    if ctx.invoked_subcommand is not None:
        return ExitCode.OK
    import datetime

    from auditor.profiles.loader import builtin_profiles, read_document

    from auditor.render.text import render_rows

    rows = [(f"{name:<18} ", read_document(location, datetime.date.today()).description)
            for name, location in builtin_profiles().items()]
    click.echo(render_rows(rows, _terminal(None)["width"] if sys.stdout.isatty() else None), nl=False)
    return ExitCode.OK


@profiles.command("show")
@click.argument("profile", metavar="NAME|PATH")
def show_profile(profile: str) -> int:
    """Print a profile file (a built-in name or a path), after checking it and what it extends."""
    from auditor.profiles.loader import load_profile, locate

    from auditor.render.text import render_rows

    load_profile(profile, Path.cwd(), "profiles show")
    text = locate(profile, Path.cwd(), "profiles show").read_text(encoding="utf-8")
    if sys.stdout.isatty():  # wrapped to fit, each line keeping its indent; piped or redirected, the file as it is
        text = render_rows([(line[:len(line) - len(line.lstrip())], line.lstrip()) for line in text.splitlines()],
                           _terminal(None)["width"])
    click.echo(text, nl=False)
    return ExitCode.OK


def _fleet_options(command):
    """The options `fleet --ray` and `fleet merge` share: the goals each node is judged on, the
    checks, the report."""
    for option in reversed((
        click.option("--goal", "goal_refs", multiple=True, metavar="NAME|PATH",
                     help="Judge every node on this goal: a built-in profile, a profile file, or `all` (repeatable). "
                          "Default: the built-in goals that apply to at least one node."),
        click.option("--profile", "profile_refs", multiple=True, metavar="NAME|PATH",
                     help="Judge every node on this profile, as `auditor check --profile` would (repeatable)."),
        click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown", "html"]),
                     default=None, help="Report format (default: text)."),
        _output_option,
        click.option("--fail-on", type=click.Choice(FAIL_ON), default=None,
                     help="Exit 1 when a fleet finding, or a node's own finding, of this severity or worse is found; "
                          "default: the config file's fail-on, else error."),
        click.option("--select", multiple=True, metavar="CODES",
                     help="Run only the checks (the nodes' and the fleet's FLT ones) whose code starts with one of "
                          "CODES."),
        click.option("--ignore", multiple=True, metavar="CODES", help="Skip the checks whose code starts with one of CODES."),
        click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     default=None, help="Read [tool.auditor] settings from FILE instead of the nearest pyproject.toml."),
    )):
        command = option(command)
    return command


@cli.group(invoke_without_command=True)
@click.option("--ray", "ray_address", metavar="ADDRESS|auto", default=None,
              help="Audit every alive node of the Ray cluster at ADDRESS (auto: the cluster this machine is in), "
                   "each on its node. Needs the [ray] extra.")
@click.option("--deep", is_flag=True, help="Run each node's slow proofs and export paths too, and the all_reduce "
                                           "proof across the nodes.")
@click.option("--collective", is_flag=True, help="Prove an all_reduce across the nodes (one torch.distributed rank "
                                                 "per node; NCCL on GPU nodes, else gloo), without the rest of --deep.")
@click.option("--timeout", "timeout_s", type=_SECONDS, default=None, metavar="SECONDS",
              help="Deadline in seconds for each framework probe on each node (default 120).")
@click.option("--node-timeout", "node_timeout_s", type=_SECONDS, default=None, metavar="SECONDS",
              help="Deadline in seconds for each node's whole audit (default 300, 900 with --deep); a node past it "
                   "is a row with its reason.")
@click.option("--save-snapshots", "snapshots_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also save each node's snapshot as DIR/NODE.json, for `auditor fleet merge DIR` later.")
@_fleet_options
@click.pass_context
def fleet(ctx: click.Context, ray_address: Optional[str], deep: bool, collective: bool, timeout_s: Optional[float],
          node_timeout_s: Optional[float], snapshots_dir: Optional[Path], **report_options) -> int:
    """Audit many machines into one fleet report: every node's verdicts side by side, the nodes grouped
    by configuration, and the skew that breaks distributed jobs (FLT checks).

    `auditor fleet --ray ADDRESS` audits a Ray cluster; `auditor fleet merge FILES...|DIR` merges the
    snapshots any other engine saved (Slurm's srun, a Kubernetes DaemonSet).
    """
    if ctx.invoked_subcommand is not None:
        if ray_address or deep or collective or timeout_s or node_timeout_s or snapshots_dir:
            raise InputError("--ray, --deep, --collective, --timeout, --node-timeout and --save-snapshots go with "
                             "`auditor fleet --ray`, not with `fleet merge`")
        ctx.obj = report_options
        return ExitCode.OK
    if not ray_address:
        raise InputError("say which fleet: `auditor fleet --ray ADDRESS|auto`, or `auditor fleet merge FILES...|DIR` "
                         "for saved snapshots")
    from auditor.fleet import ray_cluster
    from auditor.fleet.ray_collective import prove_across
    from auditor.profiles.needs import export_paths, needs_deep_proofs

    settings, goals, targets = _fleet_setup(report_options)
    deep = deep or (goals is not None and (needs_deep_proofs(goals) or bool(export_paths(goals))))
    snapshot_targets = _snapshots_directory(snapshots_dir)
    ray = ray_cluster.connect(ray_address)
    try:
        nodes = ray_cluster.alive_nodes(ray)
        deadline_s = node_timeout_s or (900.0 if deep else 300.0)
        results = ray_cluster.audit_nodes(ray, nodes, ray_cluster.audit_arguments(deep, timeout_s), deadline_s)
        proof = None
        if deep or collective:
            proof = prove_across(ray, nodes, {r.name: r.snapshot for r in results if r.snapshot is not None},
                                 timeout_s or 120.0)
    finally:
        ray.shutdown()
    if snapshot_targets is not None:
        _save_node_snapshots(snapshot_targets, results)
    return _fleet_report(results, f"the Ray cluster at {ray_address}", settings, goals, targets, report_options, proof)


@fleet.command("merge")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="FILES...|DIR")
@_fleet_options
@click.pass_obj
def fleet_merge(fleet_options: dict, paths: tuple[Path, ...], **report_options) -> int:
    """The fleet report from saved snapshots (or JSON reports), one per node: the files named, and the
    *.json files in each directory named. A file that cannot be read is its node's row."""
    from auditor.fleet.merge import merge_files, snapshot_files

    # `fleet --format json merge DIR` and `fleet merge --format json DIR` mean the same; merge's own wins.
    options = {key: value if value not in (None, ()) else fleet_options.get(key) for key, value in report_options.items()}
    settings, goals, targets = _fleet_setup(options)
    files = snapshot_files(paths)
    return _fleet_report(merge_files(files), f"{len(files)} snapshot file{'s' if len(files) != 1 else ''}",
                         settings, goals, targets, options)


def _fleet_setup(options: dict):
    """Settings, goals and the report's target, each checked before any node is asked anything."""
    from auditor.config import resolve
    from auditor.profiles.loader import load_profile

    settings = resolve(options["config_path"], options["select"] or (), options["ignore"] or (), options["fail_on"])
    goals = _goals(options["goal_refs"] or ())
    profiles = [load_profile(reference, Path.cwd(), "--profile") for reference in options["profile_refs"] or ()]
    if profiles:
        goals = (goals or []) + [p for p in profiles if p.name not in {g.name for g in goals or []}]
    report_target, _ = _open_outputs(options["output"], None)
    return settings, goals, report_target


def _snapshots_directory(directory: Optional[Path]):
    if directory is None:
        return None
    if not directory.is_dir():
        raise InputError(f"--save-snapshots {directory}: no such directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InputError(f"--save-snapshots {directory}: the directory is not writable")
    return directory


def _save_node_snapshots(directory: Path, results) -> None:
    from auditor.output import open_output
    from auditor.snapshot_file import save_snapshot

    for result in results:
        if result.snapshot is not None:
            name = "".join(c if c.isalnum() or c in "-_." else "_" for c in result.name).lstrip(".") or "node"
            save_snapshot(open_output(directory / f"{name}.json"), result.snapshot)


def _fleet_report(results, source: str, settings, goals, target, options: dict, collective=None) -> int:
    from auditor.checks.base import SEVERITY_RANK
    from auditor.pipeline import build_fleet_report
    from auditor.render.fleet import FLEET_FORMATS, FleetTextRenderer

    fleet = build_fleet_report(results, source, settings.selection, goals, collective)
    output_format = options["output_format"] or "text"
    renderer = (FleetTextRenderer(**_terminal(options["output"])) if output_format == "text"
                else FLEET_FORMATS[output_format]())
    _emit(renderer.render(fleet), target)
    # A node's own error fails the fleet as it fails that node's audit.
    worst = max([fleet.worst_severity(), *(SEVERITY_RANK["error"] if row.errors else SEVERITY_RANK["warning"]
                                           if row.warnings else -1 for row in fleet.nodes)])
    if settings.fail_on != "never" and worst >= SEVERITY_RANK[settings.fail_on]:
        return ExitCode.FINDINGS
    return ExitCode.OK


def _open_outputs(output: Optional[Path], save_path: Optional[Path]):
    """The report's and the snapshot's targets, each known to be writable before any probing."""
    from auditor.output import check_stdout, open_output

    if output is None:
        check_stdout()
    output, save_path = (_on_this_node(path) if path else None for path in (output, save_path))
    return (open_output(output) if output else None), (open_output(save_path) if save_path else None)


def _on_this_node(path: Path) -> Path:
    """%N in a file name becomes this machine's short host name, as in Slurm's file patterns: one
    `srun --ntasks-per-node=1 auditor audit --save-snapshot snaps/snap-%N.json` saves one file per node
    (srun itself expands %N only in its own --output and --error)."""
    if "%N" not in str(path):
        return path
    import socket

    return Path(str(path).replace("%N", socket.gethostname().split(".")[0]))


def _audited_python(reference: Optional[str]):
    """The interpreter to audit: --python, else $AUDITOR_PYTHON (which a replayed snapshot ignores,
    since it is a standing setting, not a flag given to this command), else the auditor's own."""
    from auditor.probes.interpreter import find_interpreter, own_interpreter

    reference = reference or os.environ.get("AUDITOR_PYTHON") or None
    return find_interpreter(reference) if reference else own_interpreter()


def _probed_root(root: Optional[Path]):
    """Where the machine's files are read: --root, else $AUDITOR_ROOT (a standing setting, as
    AUDITOR_PYTHON is: a Kubernetes pod that mounts the host's / at /host sets it once), else /."""
    from auditor.probes.fsroot import FsRoot

    if root is None and os.environ.get("AUDITOR_ROOT"):
        root = Path(os.environ["AUDITOR_ROOT"])
        if not root.is_dir():
            raise InputError(f"AUDITOR_ROOT={root}: no such directory")
    return FsRoot(root) if root else FsRoot()


def _refuse_probing_flags(*flags: tuple[str, object]) -> None:
    given = [flag for flag, value in flags if value]
    if given:
        raise InputError(f"--snapshot replays saved facts and cannot be combined with {', '.join(given)}")


def _terminal(output: Optional[Path]) -> dict:
    """Colour and width for text output. On a terminal: its width, and colour unless NO_COLOR is
    set and not empty (no-color.org). Elsewhere (a file, a pipe): no colour, and COLUMNS columns
    where that is a positive number, else 100.

    The terminal's own size wins over COLUMNS: a shell's exported COLUMNS keeps the width the
    window had when it was exported.
    """
    on_terminal = output is None and sys.stdout.isatty()
    width = os.get_terminal_size(sys.stdout.fileno()).columns if on_terminal else 0
    if not width:  # not a terminal, or one that does not know its size (a pty nobody sized reports 0)
        columns = os.environ.get("COLUMNS", "")
        width = int(columns) if columns.isdigit() and int(columns) > 0 else 100
    return {"color": on_terminal and not os.environ.get("NO_COLOR"), "width": width}


def _emit(text: str, target) -> None:
    from auditor.output import write_stdout

    if target:
        target.write(text)
    else:
        write_stdout(text)


def _collect_with_progress(options):
    """Show which probes are still running, on stderr, only when a person is watching."""
    from auditor.probes.runner import collect_snapshot

    if not sys.stderr.isatty():
        return collect_snapshot(options)
    from rich.console import Console

    done: list[str] = []
    # rich reads NO_COLOR itself, but rich 13 honours an empty one, unlike no-color.org and _terminal.
    console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")))
    with console.status("Probing frameworks (each in its own process)...") as status:
        def on_progress(name: str, outcome: str) -> None:
            done.append(f"{name}: {outcome}")
            status.update(f"Probing frameworks... {', '.join(done)}")

        return collect_snapshot(options, on_progress)


@cli.command()
@click.argument("before", metavar="A")
@click.argument("after", metavar="B")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="Report format.")
@_output_option
@click.option("--all", "show_all", is_flag=True,
              help="List every other fact that differs, noise included (timestamps, free memory, clocks, UUIDs, "
                   "probe and proof timings); without it they are counted.")
@click.option("--goal", "goal_refs", multiple=True, metavar="NAME|PATH",
              help="Compare this goal: a built-in profile, a profile file, or `all` for every built-in one "
                   "(repeatable). Default: the built-in goals that apply to either machine.")
@click.option("--select", multiple=True, metavar="CODES",
              help="Run only the checks whose code starts with one of CODES (comma-separated, repeatable).")
@click.option("--ignore", multiple=True, metavar="CODES", help="Skip the checks whose code starts with one of CODES.")
def diff(before: str, after: str, output_format: str, output: Optional[Path], show_all: bool,
         goal_refs: tuple[str, ...], select: tuple[str, ...], ignore: tuple[str, ...]) -> int:
    """Compare two audits: saved snapshots or JSON reports, or - for a fresh audit of this machine.

    Both are judged by today's checks with the same goals. The verdicts that differ come first,
    each with its cause; then the configuration that differs; then the other facts (--all).
    Exit 0 when no verdict differs, 1 when one does, 2 on input errors.
    """
    from auditor.config import resolve
    from auditor.decisions.diff import compare, goals_for_either
    from auditor.pipeline import build_report
    from auditor.probes.runner import ProbeOptions
    from auditor.render.diff import DIFF_FORMATS
    from auditor.render.diff_text import DiffTextRenderer
    from auditor.snapshot_file import load_snapshot

    if before == after == "-":
        raise InputError("A and B are both -, one fresh audit of this machine; save one with "
                         "`auditor audit --save-snapshot FILE` and compare it with -")
    selection = resolve(None, select, ignore, None).selection
    goals = _goals(goal_refs)
    report_target, _ = _open_outputs(output, None)
    # The files first: a bad one costs no audit.
    files = {reference: load_snapshot(Path(reference)) for reference in (before, after) if reference != "-"}
    fresh = (_collect_with_progress(ProbeOptions(root=_probed_root(None), python=_audited_python(None)))
             if "-" in (before, after) else None)
    snapshot_a, snapshot_b = (files.get(reference, fresh) for reference in (before, after))
    if goals is None:
        goals = goals_for_either(snapshot_a, snapshot_b)
    result = compare(build_report(snapshot_a, selection, goals=goals), build_report(snapshot_b, selection, goals=goals),
                     (before, after), with_noise=show_all)

    renderer = (DiffTextRenderer(**_terminal(output), expanded=show_all) if output_format == "text"
                else DIFF_FORMATS[output_format]())
    _emit(renderer.render(result), report_target)
    return ExitCode.FINDINGS if result.verdict_changes else ExitCode.OK


@cli.command("checks")
def list_checks() -> int:
    """List every check with its code, default severity and summary."""
    from auditor.checks import REGISTRY
    from auditor.render.text import render_rows

    # On a terminal the summary wraps under the name; piped, each check stays one line for grep.
    rows = [(f"{check.code:<7} {check.severity:<8} ", f"{check.name:<40} {check.summary}")
            for check in sorted(REGISTRY, key=lambda c: c.code)]
    click.echo(render_rows(rows, _terminal(None)["width"] if sys.stdout.isatty() else None), nl=False)
    return ExitCode.OK


@cli.command()
@click.argument("code")
def explain(code: str) -> int:
    """Explain one check: what it looks at, why it matters, its default severity, what to do about it,
    and what its finding looks like."""
    from auditor.checks import find_check
    from auditor.checks.selection import unknown_code_message

    check = find_check(code)
    if check is None:
        raise InputError(unknown_code_message(code))
    from auditor.render.text import render_rows

    paragraphs = [f"{check.code} ({check.name}), default severity {check.severity}", "", check.summary, "",
                  check.explanation, ""]
    title, evidence = check.example.split("\n")
    # Laid out as the report's Findings panel shows a finding: its title, then its evidence.
    rows = [*(("", paragraph) for paragraph in paragraphs), ("Fix: ", check.fix), ("", ""), ("", "Example:"),
            ("  ", title), ("  evidence: ", evidence)]
    click.echo(render_rows(rows, _terminal(None)["width"] if sys.stdout.isatty() else None), nl=False)
    return ExitCode.OK


def main(argv: Optional[list[str]] = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        _error("no command given; try 'auditor audit' (see 'auditor --help')")
        sys.exit(ExitCode.INPUT_ERROR)
    # A closed terminal (SIGHUP) ends the audit as Ctrl-C does: children killed, exit 128+1.
    for signum in (signal.SIGINT, signal.SIGTERM, *((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ())):
        signal.signal(signum, _raise_interrupted)
    try:
        result = cli.main(args=args, prog_name="auditor", standalone_mode=False)
        code = result if isinstance(result, int) else ExitCode.OK
        _flush_stdout()
    except click.exceptions.Exit as done:  # --help, --version
        code = done.exit_code
    except click.UsageError as exc:
        hint = f" (see 'auditor {exc.ctx.command_path.split(' ', 1)[1] + ' ' if exc.ctx and ' ' in exc.ctx.command_path else ''}--help')"
        _error(f"{exc.format_message()}{hint}")
        code = ExitCode.INPUT_ERROR
    except InputError as exc:
        _error(str(exc))
        code = ExitCode.INPUT_ERROR
    except BrokenPipeError:
        code = _reader_left()
    except SystemExit:
        # click answers a broken pipe inside a command by wrapping stdout and exiting 1,
        # which would read as "findings"; anything else exiting is passed on.
        if not isinstance(sys.stdout, PacifyFlushWrapper):
            raise
        code = _reader_left()
    except OutputError as exc:
        code = _output_error(str(exc))
    except OSError as exc:
        if exc.filename is not None or exc.errno not in _STREAM_ERRORS:
            code = _internal_error(exc)
        else:  # click.echo into a full or broken standard output: the report could not be written
            code = _output_error(f"cannot write to standard output: {exc.strerror}")
    except Interrupted as interrupted:  # probe children were killed on the way out
        _error(f"interrupted by {interrupted}")
        code = interrupted.exit_code
    except Exception as exc:  # the promise is one line and exit 3, never a traceback
        code = _internal_error(exc)
    sys.exit(int(code))


# What writing to a standard output that is a full device, a closed descriptor or a failing
# disk raises; os.write and file.write leave the filename unset, unlike an open() that failed.
_STREAM_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EBADF, errno.EFBIG})


def _internal_error(exc: Exception) -> ExitCode:
    if os.environ.get("AUDITOR_DEBUG"):
        import traceback

        traceback.print_exception(exc)  # then the same line and exit code as without it
    _error(f"internal error: {type(exc).__name__}: {exc} (set AUDITOR_DEBUG=1 for the traceback)")
    return ExitCode.INTERNAL_ERROR


def _flush_stdout() -> None:
    """What click.echo left buffered; a full device or a closed stdout must be said, not lost
    in the interpreter's exit."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except BrokenPipeError:
        raise
    except (OSError, ValueError) as exc:
        raise OutputError(f"cannot write to standard output: {getattr(exc, 'strerror', None) or exc}") from None


def _reader_left() -> ExitCode:
    """Quiet, as `| head` expects."""
    _abandon_stdout()
    return ExitCode.BROKEN_PIPE


def _output_error(message: str) -> ExitCode:
    _error(message)
    _abandon_stdout()
    return ExitCode.OUTPUT_ERROR


def _abandon_stdout() -> None:
    """The interpreter flushes stdout again on its way out and would print its own error about
    the same stream (and exit 120), so what is left of stdout goes to /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    if devnull != 1:  # with stdout closed, /dev/null takes its place by itself
        os.dup2(devnull, 1)
        os.close(devnull)
    sys.stdout = open(1, "w", closefd=False)


def _raise_interrupted(signum: int, _frame) -> None:
    raise Interrupted(signum)


def _error(message: str) -> None:
    from auditor.redact import scrub_text

    # An internal error's text can quote anything, a secret or a terminal escape included.
    click.echo(f"auditor: error: {scrub_text(message)}", err=True)
