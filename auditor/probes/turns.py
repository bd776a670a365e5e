"""Throughput timed with the machine to itself: the turns the framework children take.

The framework children run at once, so that an audit takes about as long as its slowest
import. A matmul timed next to another child's import measures that import as much as the
device: on a 2-core machine PyTorch float32 read 34 GFLOP/s inside the audit, timed while
TensorFlow was importing, and 230 alone. So a child times its matmuls only after all its
proofs, in a turn the parent grants once every framework child has finished importing and
proving (each waits for its turn, or has ended), to one child at a time, in the order the
children were seated (the registry's), so that runs are comparable. Export children, which
take no turns but convert models for tens of seconds, are stopped (SIGSTOP to their process
group) for the turn and continued right after it.

No turn may cost a probe its deadline, nor the audit its end: a waiting child whose deadline
is near is granted at once, told it is not alone; a turn still running after TURN_LIMIT_S
stops counting as alone and lets the next one start; a child that ends, crashes or breaks the
protocol drops out of it; a parent that goes away leaves its children to measure anyway.

The protocol, one byte at a time over two pipes per child, whose descriptors the child finds
in AUDITOR_TURN_FDS ("<request fd>,<grant fd>"):

  child -> parent  WAITING, after its proofs; then it blocks reading the grant;
  parent -> child  ALONE ("go, you are alone") or SHARED ("go, but not alone");
  child -> parent  DONE, once its timings are taken;
  parent -> child  ALONE if the turn stayed its own to the end, SHARED if another was granted
                   meanwhile (a child near its deadline) or it overran TURN_LIMIT_S.

End-of-file ends the protocol for that child: the parent counts the child as ended; the child
measures at once and records that it cannot say whether it was alone (None). A child started
without the variable (run on its own, outside an audit) measures at once, None too.
"""

from __future__ import annotations

import math
import os
import select
import selectors
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

TURN_FDS = "AUDITOR_TURN_FDS"
WAITING, DONE = b"w", b"d"  # child -> parent
ALONE, SHARED = b"a", b"s"  # parent -> child: the grant, and the verdict on the finished turn
# A waiting child takes its turn at once, shared, when less than this is left of its deadline
# (the larger of a floor and a fraction of it): one hung import must not time the others out.
NEAR_DEADLINE_S, NEAR_DEADLINE_FRACTION = 10.0, 0.25
# A turn takes a few hundred milliseconds per device and dtype; one running longer than this
# (dozens of GPUs, or a hung kernel) loses its claim to be alone, the export children
# continue, and the next turn starts, shared.
TURN_LIMIT_S = 30.0
_VERDICT_WAIT_S = 5.0  # the parent answers DONE at once; silence this long means it is gone
# Pipes to pass (pass_fds) and groups to stop: POSIX only. Elsewhere children measure at once.
_SUPPORTED = os.name == "posix"
_CAN_PAUSE = hasattr(os, "killpg") and hasattr(signal, "SIGSTOP")
_RUNNING, _WAITING, _HOLDING, _ENDED = "running", "waiting", "holding", "ended"


# --- the child's side ----------------------------------------------------------------------


class Turn:
    """A framework child's one turn, taken after all its proofs, for its timings."""

    def __init__(self, fds: Optional[tuple[int, int]]):
        self._fds = fds  # (request, grant); None: no parent grants turns

    @classmethod
    def from_environment(cls) -> Turn:
        """The turn the parent offers. Taken before the framework imports: the descriptors are
        made close-on-exec then, so that no process the framework starts holds them open (the
        parent would not see this child end)."""
        value = os.environ.pop(TURN_FDS, None)
        if value is None:
            return cls(None)
        try:
            request, grant = (int(fd) for fd in value.split(","))
            os.set_inheritable(request, False)
            os.set_inheritable(grant, False)
        except (ValueError, OSError):  # not two descriptors this process holds: no turn to wait for
            return cls(None)
        return cls((request, grant))

    def take(self, measure: Callable[[], None]) -> Optional[bool]:
        """Wait for the turn, run ``measure`` in it, end it. Whether it had the machine to itself:
        True, False, or None where no parent said (run on its own, or the parent went away)."""
        if self._fds is None:
            measure()
            return None
        (request, grant), self._fds = self._fds, None
        try:
            granted = _exchange(request, grant, WAITING, None)
            measure()
            verdict = _exchange(request, grant, DONE, _VERDICT_WAIT_S) if granted else b""
        finally:
            os.close(request)
            os.close(grant)
        if SHARED in (granted, verdict):
            return False
        return True if granted == verdict == ALONE else None


def _exchange(request: int, grant: int, message: bytes, timeout: Optional[float]) -> bytes:
    """Send one byte, then read the parent's one-byte answer; b"" when it is gone or silent."""
    try:
        os.write(request, message)
        if timeout is not None and not select.select([grant], [], [], timeout)[0]:
            return b""
        return os.read(grant, 1)
    except OSError:
        return b""


# --- the parent's side ---------------------------------------------------------------------


@dataclass(eq=False)
class Seat:
    """One framework child's place in the turns: the parent's ends of its two pipes, the child's
    ends (passed to it under the same numbers, closed here once it has started), and where it is."""

    name: str
    forced_at: float  # time.monotonic() from which it is granted at once: its deadline is near
    request: int  # read end: what the child says
    grant: int  # write end: what it is told
    child_fds: tuple[int, ...]  # (request's write end, grant's read end)
    state: str = _RUNNING
    told: bytes = b""  # the grant it was given
    overruns_at: float = math.inf
    spoiled: bool = False  # its alone turn was shared after all: another was granted, or it overran
    _open: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self._open = [self.request, self.grant, *self.child_fds]

    @property
    def environment(self) -> dict[str, str]:
        return {TURN_FDS: ",".join(map(str, self.child_fds))}

    def close_child_ends(self) -> None:
        self._close(*self.child_fds)

    def close(self) -> None:
        self._close(*self._open)

    def _close(self, *fds: int) -> None:
        for fd in fds:
            if fd in self._open:  # each descriptor once: its number may be reused by then
                self._open.remove(fd)
                os.close(fd)


class Turns:
    """The parent's side: a seat per framework child, and a thread that grants the turns while
    the audit waits for its children. Leaving it (a with block) stops the thread, continues
    every group it stopped and closes every descriptor, however the audit ends."""

    def __init__(self) -> None:
        self._seats: list[Seat] = []
        self._pausable: dict[str, int] = {}  # export child -> its process group
        self._paused: set[int] = set()
        self._alone: Optional[Seat] = None  # the holder of the turn that is, so far, alone
        self._lock = threading.Lock()  # guards what the audit's thread tells the coordinator:
        self._ended: set[str] = set()
        self._busy = True  # the audit runs its own probes: no turn is alone yet
        self._stopping = False
        self._wake = os.pipe() if _SUPPORTED else None
        if self._wake:
            os.set_blocking(self._wake[0], False)
            os.set_blocking(self._wake[1], False)
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> Turns:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def seat(self, name: str, deadline_s: float) -> Optional[Seat]:
        """A seat for the child about to start with this deadline; None where turns are not
        supported (the child then measures at once). Seats are taken in the order turns go."""
        if not _SUPPORTED:
            return None
        request, request_child = os.pipe()
        grant_child, grant = os.pipe()
        os.set_blocking(request, False)
        os.set_blocking(grant, False)
        margin = max(NEAR_DEADLINE_S, NEAR_DEADLINE_FRACTION * deadline_s)
        seat = Seat(name, time.monotonic() + deadline_s - margin, request, grant, (request_child, grant_child))
        self._seats.append(seat)
        return seat

    def pause_during_turns(self, name: str, group: int) -> None:
        """Stop this (export) child's process group during each alone turn."""
        self._pausable[name] = group

    def start(self) -> None:
        """Start granting, once every child has started."""
        if self._wake and self._seats and self._thread is None:
            self._thread = threading.Thread(target=self._coordinate, name="turns", daemon=True)
            self._thread.start()

    def idle(self) -> None:
        """The audit now only waits for its children: alone turns may begin."""
        with self._lock:
            self._busy = False
        self._wake_up()

    def ended(self, name: str) -> None:
        """The child has ended (or could not start): it takes no turn, and is not to be stopped."""
        with self._lock:
            self._ended.add(name)
        self._wake_up()

    def close(self) -> None:
        with self._lock:
            self._stopping = True
        self._wake_up()
        if self._thread:
            self._thread.join()
        self._resume()
        for seat in self._seats:
            seat.close_child_ends()
            seat.close()
        if self._wake:
            for fd in self._wake:
                os.close(fd)
            self._wake = None

    def _wake_up(self) -> None:
        if self._wake:
            try:
                os.write(self._wake[1], b".")
            except OSError:  # full: a wake-up is pending already
                pass

    # --- the coordinator thread: the only one that reads or writes the seats' pipes ---

    def _coordinate(self) -> None:
        selector = selectors.DefaultSelector()
        try:
            selector.register(self._wake[0], selectors.EVENT_READ)
            for seat in self._seats:
                if seat.state != _ENDED:
                    selector.register(seat.request, selectors.EVENT_READ, seat)
            while any(seat.state != _ENDED for seat in self._seats):
                with self._lock:
                    ended, stopping, busy = set(self._ended), self._stopping, self._busy
                if stopping:
                    break
                for seat in self._seats:
                    if seat.name in ended:
                        self._drop(seat, selector)
                for name in ended & self._pausable.keys():
                    del self._pausable[name]
                self._grant(time.monotonic(), busy, selector)
                for key, _ in selector.select(self._next_event(time.monotonic())):
                    if key.data is None:
                        _drain(self._wake[0])
                    else:
                        self._receive(key.data, selector)
        finally:
            # Whatever stopped it: nothing stays stopped, and a child still waiting sees
            # end-of-file and measures anyway.
            for seat in self._seats:
                self._drop(seat, selector)
            selector.close()

    def _grant(self, now: float, busy: bool, selector: selectors.BaseSelector) -> None:
        if self._alone and now >= self._alone.overruns_at:
            self._share()
        # Alone only when every other child waits or has ended, and no turn is in progress (or
        # the one in progress overran).
        while not busy and all(seat.state in (_WAITING, _ENDED) or (seat.state == _HOLDING and now >= seat.overruns_at)
                               for seat in self._seats):
            first = next((seat for seat in self._seats if seat.state == _WAITING), None)
            if first is None:
                break
            alone = all(seat.state != _HOLDING for seat in self._seats) and self._pause()
            if self._give(first, ALONE if alone else SHARED, now, selector):
                self._alone = first if alone else None
                break
            if alone:  # it was gone: the next one, then
                self._resume()
        for seat in self._seats:
            if seat.state == _WAITING and now >= seat.forced_at and self._give(seat, SHARED, now, selector):
                self._share()

    def _give(self, seat: Seat, grant: bytes, now: float, selector: selectors.BaseSelector) -> bool:
        try:
            os.write(seat.grant, grant)
        except OSError:  # it is gone
            self._drop(seat, selector)
            return False
        seat.state, seat.told, seat.overruns_at = _HOLDING, grant, now + TURN_LIMIT_S
        return True

    def _receive(self, seat: Seat, selector: selectors.BaseSelector) -> None:
        try:
            said = os.read(seat.request, 64)
        except BlockingIOError:
            return
        except OSError:
            said = b""
        if said == WAITING and seat.state == _RUNNING:
            seat.state = _WAITING
            return
        if said == DONE and seat.state == _HOLDING:
            verdict = ALONE if seat.told == ALONE and not seat.spoiled else SHARED
            try:
                os.write(seat.grant, verdict)
            except OSError:
                pass  # gone: its verdict does not matter any more
        # Done, ended (end-of-file), or outside the protocol: either way it takes no further part.
        self._drop(seat, selector)

    def _drop(self, seat: Seat, selector: selectors.BaseSelector) -> None:
        if seat is self._alone:
            self._alone = None
            self._resume()
        if seat.state != _ENDED:
            seat.state = _ENDED
            if seat.request in selector.get_map():
                selector.unregister(seat.request)
        seat.close()

    def _share(self) -> None:
        """The alone turn, if one runs, is not alone any more: the export children may go on."""
        if self._alone:
            self._alone.spoiled = True
            self._alone = None
            self._resume()

    def _pause(self) -> bool:
        """Stop every export child still running; False where one cannot be stopped."""
        if not self._pausable:
            return True
        if not _CAN_PAUSE:
            return False
        for group in self._pausable.values():
            try:
                os.killpg(group, signal.SIGSTOP)
            except ProcessLookupError:
                continue  # ended meanwhile: nothing to stop
            except OSError:
                self._resume()
                return False
            self._paused.add(group)
        return True

    def _resume(self) -> None:
        for group in self._paused:
            try:
                os.killpg(group, signal.SIGCONT)
            except OSError:
                pass  # gone
        self._paused.clear()

    def _next_event(self, now: float) -> Optional[float]:
        """Seconds until a waiting child's deadline nears or a turn overruns; None: no such moment."""
        moments = [seat.forced_at for seat in self._seats if seat.state == _WAITING]
        moments += [seat.overruns_at for seat in self._seats if seat.state == _HOLDING and seat.overruns_at > now]
        return max(0.0, min(moments) - now) if moments else None


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 1 << 10):
            pass
    except BlockingIOError:
        pass
