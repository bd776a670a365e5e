"""The guardian process (see guardian.py): python -S -I guardian_main.py FD RUN_ID TMPDIR OWNER_PID.

It waits for end-of-file on FD, the read end of a pipe only the auditor OWNER_PID can write
to, then kills every process tagged AUDITOR_RUN=RUN_ID and removes OWNER_PID's scratch
directories in TMPDIR. It starts with every audit that starts a subprocess, so it uses only
the modules a bare interpreter (-S) has already loaded: posix and _signal, not os and signal,
whose imports (enum among them) would more than double its start-up, about 10 ms of CPU.
"""

import sys
import time

try:
    import _signal as signal
    import posix as os
except ImportError:  # an interpreter without CPython's built-in modules
    import os
    import signal

_S_IFMT, _S_IFDIR = 0o170000, 0o040000  # from <sys/stat.h>, as the stat module has them

_SCRATCH_PREFIX = "auditor-"  # guardian.SCRATCH_PREFIX; this file cannot import the package
_KILL_ROUNDS = 200  # a process forking as fast as it is killed is caught within this many scans
_ROUND_PAUSE_S = 0.005


def main(argv: list) -> None:
    read_end, run_id, tmpdir, owner = int(argv[1]), argv[2], argv[3], int(argv[4])
    # Ctrl-C and hangups are for the auditor, which ends and so tells the guardian; a SIGTERM
    # (a system shutting down) means clean up now.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit)
    try:
        remove_stale_scratch(tmpdir, owner)
        while os.read(read_end, 1 << 10):
            pass  # the auditor never writes; end-of-file means it is gone
    finally:
        kill_run(f"AUDITOR_RUN={run_id}".encode())
        remove_scratch(tmpdir, lambda pid: pid == owner)


def kill_run(tag: bytes) -> None:
    """SIGKILL every process carrying tag, until a scan of /proc finds none alive."""
    for _ in range(_KILL_ROUNDS):
        doomed = _members(tag)
        if not doomed:
            return
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass  # gone already, or not ours to kill
        time.sleep(_ROUND_PAUSE_S)


def _members(tag: bytes) -> set:
    """Live processes whose environment holds tag, and their descendants: a child started with
    a scrubbed environment (env -i) is still the audit's while its parent lives."""
    me, tagged, children = os.getpid(), [], {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as status:
                state, ppid = status.read().rsplit(b")", 1)[1].split()[:2]
            if state in (b"Z", b"X"):
                continue  # dead, awaiting its parent's wait
            with open(f"/proc/{name}/environ", "rb") as environ:
                if tag in environ.read().split(b"\0"):
                    tagged.append(int(name))
        except (OSError, ValueError):
            continue  # gone meanwhile, or another user's
        children.setdefault(int(ppid), []).append(int(name))
    doomed, pending = set(), tagged
    while pending:
        pid = pending.pop()
        if pid not in doomed:
            doomed.add(pid)
            pending.extend(children.get(pid, ()))
    return doomed


def remove_stale_scratch(tmpdir: str, owner: int) -> None:
    """Scratch directories of auditors that died without cleaning up (a SIGKILL while no guardian
    watched, or a guardian killed with them)."""
    remove_scratch(tmpdir, lambda pid: pid != owner and not _alive(pid))


def remove_scratch(tmpdir: str, whose) -> None:
    """Remove this user's auditor-<pid>-* directories in tmpdir whose pid satisfies whose(pid)."""
    try:
        names = os.listdir(tmpdir)
    except OSError:
        return
    for name in names:
        pid = name[len(_SCRATCH_PREFIX):].partition("-")[0]
        if not name.startswith(_SCRATCH_PREFIX) or not pid.isdigit() or not whose(int(pid)):
            continue
        path = f"{tmpdir}/{name}"
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if info.st_uid == os.getuid() and info.st_mode & _S_IFMT == _S_IFDIR:  # a real directory (no symlink), ours
            import shutil  # only here: most runs have nothing to remove

            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _exit(_signum, _frame) -> None:
    sys.exit(0)


if __name__ == "__main__":
    main(sys.argv)
