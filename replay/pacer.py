"""Precise deadlines without spinning: the pacer that releases every scheduled send.

Event-loop timers have millisecond resolution (libuv) or round their epoll timeout up to it
(asyncio), so a pacer built on `asyncio.sleep` must spin through the last stretch before each
deadline — at 500 req/s and up that spin costs a whole core. On Linux the `Pacer` instead arms
one kernel timer (a `timerfd` on CLOCK_MONOTONIC with an absolute expiry, the clock
`time.perf_counter` reads) and watches its file descriptor with `loop.add_reader`: the loop
sleeps in epoll until the timer fires, microseconds after the deadline. A final busy-wait of
at most `spin_s` (default 20 µs) absorbs the kernel's wake-up latency; every callback due
within `slack_s` of a wake-up runs in that same wake-up, so a burst of sends costs one.
Elsewhere (or where the clocks differ) the loop timer is used with the historical spin.

Callbacks run on the loop's thread, in deadline order (ties in the order they were added).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import heapq
import os
import sys
import time
from collections.abc import Callable
from typing import Any

#: Arm the kernel timer this long before the deadline and busy-wait the rest (seconds): the
#: kernel's wake-up latency on an idle core is ~10-60 µs, so this trades a few µs of CPU per
#: wake-up for lag close to zero.
SPIN_S = 20e-6
#: Callbacks due within this long after a wake-up run in it (seconds); the busy-wait to reach
#: each one's deadline is bounded by it.
SLACK_S = 50e-6
#: Fallback (no timerfd): the last stretch spent yielding to the loop, as event-loop timers
#: are only millisecond-accurate (seconds).
LOOP_SPIN_S = 0.0015

CLOCK_MONOTONIC = 1
TFD_NONBLOCK = os.O_NONBLOCK if hasattr(os, "O_NONBLOCK") else 0o4000
TFD_CLOEXEC = 0o2000000
TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def now() -> float:
    """The run clock (seconds, monotonic): `time.perf_counter`."""
    return time.perf_counter()


def _libc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.timerfd_settime.argtypes = [
            ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p,
        ]  # fmt: skip
    except (OSError, AttributeError):
        return None
    return libc


def perf_counter_is_monotonic() -> bool:
    """Whether `time.perf_counter` reads CLOCK_MONOTONIC (true on Linux), so a timerfd on that
    clock expires at perf_counter deadlines. Checked by the clock's name and by value."""
    info = time.get_clock_info("perf_counter")
    if "CLOCK_MONOTONIC" not in info.implementation or "RAW" in info.implementation:
        return False
    mono = getattr(time, "clock_gettime", None)
    if mono is None:
        return False
    a = time.perf_counter()
    b = mono(CLOCK_MONOTONIC)
    c = time.perf_counter()
    return a - 1e-3 <= b <= c + 1e-3


_LIBC = _libc()
TIMERFD_OK = _LIBC is not None and perf_counter_is_monotonic()


class TimerFd:
    """A non-blocking CLOCK_MONOTONIC timerfd armed at absolute deadlines (seconds)."""

    def __init__(self) -> None:
        if _LIBC is None:
            raise OSError("timerfd is not available")
        fd = _LIBC.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"timerfd_create: {os.strerror(err)}")
        self.fd: int = fd
        self._spec = _Itimerspec()
        self._ref = ctypes.byref(self._spec)

    def arm(self, deadline: float) -> None:
        """Expire at `deadline` (CLOCK_MONOTONIC seconds); one in the past fires at once."""
        value = self._spec.it_value
        sec = int(deadline)
        value.tv_sec = sec
        value.tv_nsec = max(1, int((deadline - sec) * 1e9))  # 0/0 would disarm
        if value.tv_nsec >= 1_000_000_000:
            value.tv_sec, value.tv_nsec = sec + 1, 0
        self._set(TFD_TIMER_ABSTIME)

    def disarm(self) -> None:
        self._spec.it_value.tv_sec = self._spec.it_value.tv_nsec = 0
        self._set(0)

    def _set(self, flags: int) -> None:
        assert _LIBC is not None
        if _LIBC.timerfd_settime(self.fd, flags, self._ref, None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"timerfd_settime: {os.strerror(err)}")

    def clear(self) -> None:
        """Consume the expiration count so the fd stops being readable."""
        with contextlib.suppress(BlockingIOError, InterruptedError):
            os.read(self.fd, 8)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Pacer:
    """Runs callbacks at absolute `clock()` deadlines (seconds) on the running loop.

    `call_at(deadline, fn, *args)` queues; the pacer keeps one timer armed for the earliest
    deadline. `wakeups` and `spun_s` count the work it did (for benchmarks). Use `timerfd=False`
    to force the loop-timer fallback (tests, other platforms).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        timerfd: bool | None = None,
        spin_s: float = SPIN_S,
        slack_s: float = SLACK_S,
    ) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._heap: list[tuple[float, int, Callable[..., Any], tuple]] = []
        self._seq = 0
        self.spin_s = spin_s
        self.slack_s = max(slack_s, spin_s)
        self.wakeups = 0
        self.spun_s = 0.0
        self._armed: float | None = None
        self._handle: asyncio.TimerHandle | asyncio.Handle | None = None
        self._tfd: TimerFd | None = None
        if TIMERFD_OK if timerfd is None else timerfd:
            self._tfd = TimerFd()
            self._loop.add_reader(self._tfd.fd, self._on_timerfd)
        self.closed = False

    @property
    def uses_timerfd(self) -> bool:
        return self._tfd is not None

    def __len__(self) -> int:
        return len(self._heap)

    def next_deadline(self) -> float | None:
        """The earliest pending deadline (perf_counter seconds), None when nothing waits."""
        return self._heap[0][0] if self._heap else None

    def call_at(self, deadline: float, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` at `deadline` (perf_counter seconds), never before it."""
        if self.closed:
            raise RuntimeError("the pacer is closed")
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, fn, args))
        if self._heap[0][0] == deadline and (self._armed is None or deadline < self._armed):
            self._arm(deadline)

    def close(self) -> None:
        """Forget pending callbacks and release the timer."""
        if self.closed:
            return
        self.closed = True
        self._heap.clear()
        if self._handle is not None:
            self._handle.cancel()
        if self._tfd is not None:
            with contextlib.suppress(Exception):  # the loop may be closed already
                self._loop.remove_reader(self._tfd.fd)
            self._tfd.close()

    # -- the timer -------------------------------------------------------------------------
    def _arm(self, deadline: float) -> None:
        self._armed = deadline
        if self._tfd is not None:
            self._tfd.arm(deadline - self.spin_s)
            return
        if self._handle is not None:
            self._handle.cancel()
        delay = deadline - now() - LOOP_SPIN_S
        if delay > 0:
            self._handle = self._loop.call_later(delay, self._on_loop_timer)
        else:
            self._handle = self._loop.call_soon(self._on_loop_timer)

    def _on_timerfd(self) -> None:
        assert self._tfd is not None
        self._tfd.clear()
        self._armed = None
        self._run_due()

    def _on_loop_timer(self) -> None:
        self._handle = None
        self._armed = None
        if self._heap and self._heap[0][0] > now():
            # the loop-timer fallback yields to the loop until the deadline has passed
            self._armed = self._heap[0][0]
            self._handle = self._loop.call_soon(self._on_loop_timer)
            return
        self._run_due()

    def _run_due(self) -> None:
        """Run every callback due by now + slack_s (busy-waiting to each deadline), then arm
        the timer for the next one."""
        heap = self._heap
        if not heap:
            return
        self.wakeups += 1
        t = now()
        horizon = t + self.slack_s
        pop = heapq.heappop
        while heap and heap[0][0] <= horizon:
            deadline, _, fn, args = pop(heap)
            if t < deadline:
                start = t
                while t < deadline:
                    t = now()
                self.spun_s += t - start
            try:
                fn(*args)
            except Exception as exc:  # a failing callback must not stop the pacer
                self._loop.call_exception_handler(
                    {"message": "pacer callback failed", "exception": exc}
                )
        if heap and not self.closed:
            self._arm(heap[0][0])


async def sleep_until(deadline: float, *, timerfd: bool | None = None) -> None:
    """Return at `deadline` (perf_counter seconds), never before it, by a one-off Pacer.

    For occasional waits; a stream of deadlines should share one Pacer (`ReplayClient` does).
    """
    if deadline <= now():
        return
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    pacer = Pacer(loop, timerfd=timerfd)
    try:
        pacer.call_at(deadline, _resolve, fut)
        await fut
    finally:
        pacer.close()


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)
