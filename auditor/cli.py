"""The command line: `auditor audit`, `auditor checks`, `auditor explain CODE`.

Every error reaches the user as one line and a documented exit code (errors.ExitCode);
a traceback is shown only with AUDITOR_DEBUG=1.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Optional

import click

import auditor
from auditor.config import FAIL_ON
from auditor.errors import ExitCode, InputError, Interrupted


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(auditor.__version__, "--version", prog_name="auditor")
def cli() -> None:
    """Prove whether this machine and Python environment are ready for ML work."""


@cli.command()
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="Report format.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to FILE (atomically) instead of standard output.")
@click.option("--quick", is_flag=True, help="Read package metadata only; import no framework.")
@click.option("--deep", is_flag=True,
              help="Also run the slow proofs: torch.compile, XLA train steps, and every export path "
                   "(TFLite/LiteRT, SavedModel for TF Serving, ExecuTorch, ONNX Runtime, Core ML, TorchScript).")
@click.option("--fail-on", type=click.Choice(FAIL_ON), default=None,
              help="Exit 1 when a finding of this severity or worse is found; default: the config file's "
                   "fail-on, else error.")
@click.option("--select", multiple=True, metavar="CODES",
              help="Run only the checks whose code starts with one of CODES: comma-separated codes or "
                   "prefixes (GPU,FW004), repeatable; default: every check.")
@click.option("--ignore", multiple=True, metavar="CODES",
              help="Skip the checks whose code starts with one of CODES. Where --select and --ignore both "
                   "match a check, the longer entry wins.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Read [tool.auditor] settings from FILE instead of the nearest pyproject.toml "
                                 "with one (in this directory or above). The command line wins over the file.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="Deadline in seconds for each framework probe (default 120).")
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Read /proc, /sys, /dev, /etc and /opt under DIR instead of / (for tests and chroots).")
@click.option("--snapshot", "snapshot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Replay a saved snapshot (or JSON report) through the checks instead of probing.")
@click.option("--save-snapshot", "save_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also save the facts snapshot to FILE (atomically).")
def audit(output_format: str, output: Optional[Path], quick: bool, deep: bool, fail_on: Optional[str],
          select: tuple[str, ...], ignore: tuple[str, ...], config_path: Optional[Path], timeout_s: Optional[float],
          root: Optional[Path], snapshot_path: Optional[Path], save_path: Optional[Path]) -> int:
    """Audit this machine and its ML frameworks, and print a readiness report.

    Settings come from the command line, then [tool.auditor] in pyproject.toml, then the defaults.
    """
    from auditor.checks.base import SEVERITY_RANK
    from auditor.config import resolve
    from auditor.output import check_writable, write_atomically
    from auditor.probes.fsroot import FsRoot
    from auditor.probes.registry import EXPORT_PATHS
    from auditor.probes.runner import ProbeOptions
    from auditor.render import FORMATS
    from auditor.render.text import TextRenderer
    from auditor.report import build_report
    from auditor.snapshot_file import load_snapshot, save_snapshot

    selection, fail_on = resolve(config_path, select, ignore, fail_on)
    for path in (output, save_path):
        if path:
            check_writable(path)
    if snapshot_path:
        probing = [flag for flag, given in (("--quick", quick), ("--deep", deep), ("--timeout", timeout_s),
                                            ("--root", root)) if given]
        if probing:
            raise InputError(f"--snapshot replays saved facts and cannot be combined with {', '.join(probing)}")
        snapshot = load_snapshot(snapshot_path)
    else:
        if quick and deep:
            raise InputError("--quick imports no framework and --deep runs the slowest proofs; choose one")
        options = ProbeOptions(root=FsRoot(root) if root else FsRoot(), quick=quick, deep=deep,
                               exports=frozenset(EXPORT_PATHS if deep else ()), framework_deadline_s=timeout_s)
        snapshot = _collect_with_progress(options)
    report = build_report(snapshot, selection)
    if save_path:
        save_snapshot(save_path, snapshot)

    if output_format == "text":
        color = output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        width = click.get_terminal_size()[0] if color else 100
        renderer = TextRenderer(color=color, width=width)
    else:
        renderer = FORMATS[output_format]()
    text = renderer.render(report)
    if output:
        write_atomically(output, text)
    else:
        click.echo(text, nl=False)

    if fail_on != "never" and report.worst_severity() >= SEVERITY_RANK[fail_on]:
        return ExitCode.FINDINGS
    return ExitCode.OK


def _collect_with_progress(options):
    """Show which probes are still running, on stderr, only when a person is watching."""
    from auditor.probes.runner import collect_snapshot

    if not sys.stderr.isatty():
        return collect_snapshot(options)
    from rich.console import Console

    done: list[str] = []
    with Console(stderr=True).status("Probing frameworks (each in its own process)...") as status:
        def on_progress(name: str, outcome: str) -> None:
            done.append(f"{name}: {outcome}")
            status.update(f"Probing frameworks... {', '.join(done)}")

        return collect_snapshot(options, on_progress)


@cli.command("checks")
def list_checks() -> int:
    """List every check with its code, default severity and summary."""
    from auditor.checks import REGISTRY

    for check in sorted(REGISTRY, key=lambda c: c.code):
        click.echo(f"{check.code:<7} {check.severity:<8} {check.name:<40} {check.summary}")
    return ExitCode.OK


@cli.command()
@click.argument("code")
def explain(code: str) -> int:
    """Explain one check: what it looks at, why it matters, and its default severity."""
    from auditor.checks import find_check
    from auditor.checks.selection import unknown_code_message

    check = find_check(code)
    if check is None:
        raise InputError(unknown_code_message(code))
    click.echo(f"{check.code} ({check.name}), default severity {check.severity}\n\n{check.summary}\n\n{check.explanation}")
    return ExitCode.OK


def main(argv: Optional[list[str]] = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        _error("no command given; try 'auditor audit' (see 'auditor --help')")
        sys.exit(ExitCode.INPUT_ERROR)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _raise_interrupted)
    try:
        result = cli.main(args=args, prog_name="auditor", standalone_mode=False)
        code = result if isinstance(result, int) else ExitCode.OK
    except click.exceptions.Exit as done:  # --help, --version
        code = done.exit_code
    except click.UsageError as exc:
        hint = f" (see 'auditor {exc.ctx.command_path.split(' ', 1)[1] + ' ' if exc.ctx and ' ' in exc.ctx.command_path else ''}--help')"
        _error(f"{exc.format_message()}{hint}")
        code = ExitCode.INPUT_ERROR
    except InputError as exc:
        _error(str(exc))
        code = ExitCode.INPUT_ERROR
    except Interrupted as interrupted:  # probe children were killed on the way out
        _error(f"interrupted by {interrupted}")
        code = interrupted.exit_code
    except Exception as exc:  # the promise is one line and exit 3, never a traceback
        if os.environ.get("AUDITOR_DEBUG"):
            raise
        _error(f"internal error: {type(exc).__name__}: {exc} (set AUDITOR_DEBUG=1 for the traceback)")
        code = ExitCode.INTERNAL_ERROR
    sys.exit(int(code))


def _raise_interrupted(signum: int, _frame) -> None:
    raise Interrupted(signum)


def _error(message: str) -> None:
    click.echo(f"auditor: error: {message}", err=True)
