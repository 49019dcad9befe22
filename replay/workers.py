"""Many client processes on one machine: one planner, N senders, one run.

One asyncio process delivers a few thousand short streamed requests per second on one core
(docs/replay.md, Measured: ~250–320 µs of CPU per 16-token request when saturated; the issue
that asked for this measured exactly up to 3,000 req/s on one core). Above that the client, not
the server, sets the numbers, so a run can be sent by N processes:

- The parent plans: it builds the whole schedule and every request body once (run.py), then
  `shard_indices` deals it out deterministically. A session's turns stay in one worker (think
  times and `follows` hold; `follows` is remapped to positions inside the shard); every other
  request is a unit of its own. Units are dealt in schedule order to the worker with the fewest
  requests so far (ties: the lowest id), which for sessionless requests is plain round-robin.
- Each worker is a separate Python process started fresh (``python -c``, like multiprocessing's
  "spawn": nothing of the parent's state is inherited, and it is sent only its shard's bodies,
  pickled over a pipe). It builds its `ReplayClient` and record writer and says it is ready.
  The parent then fixes ONE start instant t0 a little in the future (START_MARGIN_S) on
  `time.perf_counter`, which on Linux is ``clock_gettime(CLOCK_MONOTONIC)``: one clock for the
  whole machine, the same reading in every process (`check_shared_clock` verifies the
  implementation). Each worker's client uses t0 as its run-clock zero instead of the instant
  its own `run` began, so every record of every worker is on one run clock.
- Each worker writes its own record parts, ``records/wKKK-part-NNNNN.parquet`` (atomic, like a
  single client's), with ``worker_id`` = K in every record. The run's records are all parts
  together, so the merged records and summary are those of one client except for
  ``worker_id``.
- Live progress: every worker sends a snapshot of its `LiveStats` each tick; the parent sums
  them (`aggregate`) for the progress bar.
- Ctrl-C: the workers ignore SIGINT (a terminal sends it to the whole process group); the
  parent catches it and tells each worker to stop, which cancels its client: in-flight
  requests are recorded as cancelled and the records flushed, as one client does. A second
  Ctrl-C terminates the workers. A worker that dies (kill -9, a crash) loses only the records
  it had not flushed yet; its `WorkerOutcome.exit` says how it ended ("killed by signal 9
  (SIGKILL)"), and the others go on. A worker whose parent is gone stops too.

`PER_WORKER_RPS` is what "auto" assumes one worker sends: half the measured single-core
ceiling, because the ceiling was measured with short streams on an otherwise idle core.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import multiprocessing.connection as mp_connection
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from burstlab.errors import ReplayError, UsageError
from burstlab.replay.client import ClientOptions, LiveStats, Plan, ReplayClient, run_async
from burstlab.replay.records import COLUMNS, RecordWriter
from burstlab.replay.schedule import now
from burstlab.replay.summary import WorkerOutcome

Workers = int | Literal["auto"]

#: Requests per second one worker is assumed to send on schedule, for `workers="auto"`: half
#: the measured single-process ceiling (3,000 req/s of short streams on one core; see the
#: module docstring), because longer streams and a busy machine cost more per request.
PER_WORKER_RPS = 1500.0
#: Seconds between the parent fixing t0 and t0: every worker is already waiting by then.
START_MARGIN_S = 0.25
#: Longest wait for the workers to start (import, unpickle their shard) before the run fails.
READY_TIMEOUT_S = 120.0
#: Seconds between a worker's checks for a stop message while it runs.
STOP_POLL_S = 0.05
#: Seconds between a worker's checks for the start message while it waits (the start instant
#: is START_MARGIN_S after the message is sent, so this only has to be well below that).
START_POLL_S = 0.002
#: Seconds between progress updates in the parent.
TICK_S = 0.25
#: Record part name prefix of worker `k` (parts are f"{prefix}-NNNNN.parquet").
PART_PREFIX = "w{:03d}-part"


def check_shared_clock() -> str:
    """The implementation of `time.perf_counter` (the run clock) when it is one clock for the
    whole machine; ReplayError otherwise. On Linux it is clock_gettime(CLOCK_MONOTONIC), on
    macOS mach_absolute_time / CLOCK_UPTIME_RAW, on Windows QueryPerformanceCounter: all
    system-wide, so one t0 means the same instant in every process."""
    info = time.get_clock_info("perf_counter")
    impl = info.implementation
    shared = ("CLOCK_MONOTONIC", "CLOCK_UPTIME", "mach_absolute_time", "QueryPerformanceCounter")
    if not info.monotonic or not any(name in impl for name in shared):
        raise ReplayError(
            f"the run clock ({impl}) is not known to be one clock for every process on this "
            "machine; run with one client process"
        )
    return impl


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    getter = getattr(os, "sched_getaffinity", None)
    if getter is not None:
        with contextlib.suppress(OSError):
            return max(1, len(getter(0)))
    return max(1, os.cpu_count() or 1)


def peak_rate(intended_s: Sequence[float]) -> float:
    """The most requests intended inside any one whole second of the schedule (requests/s)."""
    counts: dict[int, int] = {}
    for t in intended_s:
        k = math.floor(t)
        counts[k] = counts.get(k, 0) + 1
    return float(max(counts.values(), default=0))


def check_workers(workers: object, param: str = "workers") -> Workers:
    """`workers` as a whole number ≥ 1 or "auto"; UsageError otherwise."""
    if workers == "auto":
        return "auto"
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise UsageError(f"expected a whole number ≥ 1 or auto, found {workers!r}", param=param)
    return workers


def parse_workers(text: str, param: str = "workers") -> Workers:
    """``auto`` or a whole number ≥ 1 from text; UsageError otherwise."""
    text = text.strip().lower()
    if text == "auto":
        return "auto"
    try:
        return check_workers(int(text), param)
    except ValueError:
        raise UsageError(
            f"expected a whole number ≥ 1 or auto, found {text!r}", param=param
        ) from None


def resolve_workers(workers: Workers, plan: Plan, cores: int | None = None) -> int:
    """How many worker processes send `plan`: `workers` when a number, else enough for the
    schedule's busiest second at PER_WORKER_RPS each, at most `cores` (default: this
    process's cores); never more than the plan has units (sessions and sessionless requests)."""
    check_workers(workers)
    if workers == "auto":
        need = math.ceil(peak_rate(plan.intended_s) / PER_WORKER_RPS)
        n = min(max(1, need), cores or available_cores())
    else:
        n = workers
    return max(1, min(n, len(set(_groups(plan))) if n > 1 else 1))


def _groups(plan: Plan) -> list[int]:
    """Per position: the position of the first request of its group (a session: same
    session_id or linked by `follows`; else the request alone)."""
    parent = list(range(len(plan)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    first_of: dict[str, int] = {}
    for i, (sid, f) in enumerate(zip(plan.session_id, plan.follows, strict=True)):
        if sid is not None:
            union(i, first_of.setdefault(sid, i))
        if f >= 0:
            union(i, f)
    return [find(i) for i in range(len(plan))]


def shard_indices(plan: Plan, n: int) -> list[list[int]]:
    """Positions of `plan` per worker (each in schedule order), deterministically: a session
    stays whole; units (sessions, sessionless requests) go in schedule order to the worker with
    the fewest requests so far, ties to the lowest id — round-robin when there are no sessions.
    """
    groups = _groups(plan)
    size: dict[int, int] = {}
    for g in groups:
        size[g] = size.get(g, 0) + 1
    load = [0] * n
    owner: dict[int, int] = {}
    shards: list[list[int]] = [[] for _ in range(n)]
    for i, g in enumerate(groups):
        k = owner.get(g)
        if k is None:
            k = min(range(n), key=load.__getitem__)
            owner[g] = k
            load[k] += size[g]
        shards[k].append(i)
    return shards


def shard_plan(plan: Plan, positions: Sequence[int]) -> Plan:
    """The sub-plan of `positions` (schedule order kept), `follows` remapped into it."""
    where = {old: new for new, old in enumerate(positions)}

    def pick(values: Sequence[Any]) -> list[Any]:
        return [values[i] for i in positions]

    follows = []
    for i in positions:
        f = plan.follows[i]
        if f >= 0 and f not in where:
            raise ReplayError(f"request {plan.req_id[i]} follows one in another shard")
        follows.append(where[f] if f >= 0 else -1)
    # every per-request column of the plan, whatever columns it grows (None stays None)
    columns: dict[str, Any] = {
        f.name: None if getattr(plan, f.name) is None else pick(getattr(plan, f.name))
        for f in dataclasses.fields(plan)
        if f.name != "follows"
    }
    return Plan(**columns, follows=follows)


class WorkerWriter(RecordWriter):
    """A RecordWriter that stamps every record with its worker's id (the last column,
    ``worker_id``) and names its parts `prefix`-NNNNN.parquet."""

    def __init__(
        self,
        folder: str | Path,
        *,
        worker_id: int = 0,
        prefix: str = "part",
        flush_every: int = 2000,
        flush_s: float = 2.0,
    ):
        super().__init__(folder, prefix=prefix, flush_every=flush_every, flush_s=flush_s)
        self.worker_id = worker_id
        self._short = len(COLUMNS) - 1 if COLUMNS[-1] == "worker_id" else -1

    def add(self, row: tuple) -> None:
        if len(row) == self._short:
            row = (*row, self.worker_id)
        super().add(row)


class SharedStartClient(ReplayClient):
    """A ReplayClient whose run clock starts at a given instant (`start`, `now()` seconds)
    instead of when its `run` begins: the workers of one run share one t0."""

    _start: float | None = None

    @property
    def t0(self) -> float:  # type: ignore[override]
        return self._t0

    @t0.setter
    def t0(self, value: float) -> None:
        self._t0 = value if self._start is None else self._start

    def start_at(self, t0: float) -> None:
        """Use `t0` (a `now()` reading) as run-clock zero."""
        self._start = t0
        self._t0 = t0


# -- the worker process ---------------------------------------------------------------------
# A worker is `python -c WORKER_CODE` with two pipes: control (parent → worker: the job, then
# ("start", t0) or ("stop",)) and reports (worker → parent: ready, ticks, done, failed), as
# multiprocessing Connections. Not multiprocessing's own "spawn": that re-imports the parent's
# __main__ file, which re-runs a user's script that has no `if __name__ == "__main__"` guard.
# No lock is shared between processes (a Queue or Event has one, and a worker killed while
# holding it would hang the rest); a closed control pipe means the parent is gone: stop.

#: What a worker process runs. SIGINT is ignored from the first line: Ctrl-C reaches the
#: workers through the parent, which stops them in order. `burstlab.replay` is entered as a bare
#: package (its submodules import as usual, its __init__ is not run): that __init__ loads the
#: report and capacity stack (altair, ~1.3 s of a worker's start on a busy core) that a worker
#: never uses.
WORKER_CODE = (
    "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "import importlib.util, sys, types\n"
    "spec = importlib.util.find_spec('burstlab.replay')\n"
    "if spec is not None and spec.submodule_search_locations:\n"
    "    pkg = types.ModuleType('burstlab.replay')\n"
    "    pkg.__path__ = list(spec.submodule_search_locations)\n"
    "    pkg.__spec__ = spec\n"
    "    sys.modules['burstlab.replay'] = pkg\n"
    "from burstlab.replay.workers import worker_entry\n"
    "worker_entry()\n"
)


@dataclass
class _Job:
    """What the parent sends a worker first (pickled over its control pipe)."""

    worker_id: int
    plan: Plan
    options: ClientOptions
    folder: str
    flush_every: int
    flush_s: float


def _snapshot(stats: LiveStats) -> dict[str, Any]:
    return dataclasses.asdict(stats)


def worker_entry() -> None:
    """A worker process's main (see WORKER_CODE): argv is [-c, REPORT_FD, CONTROL_FD,
    worker=K] (the last only names the process for `ps`)."""
    report = mp_connection.Connection(int(sys.argv[1]), readable=False)
    control = mp_connection.Connection(int(sys.argv[2]), writable=False)
    try:
        job: _Job = control.recv()
        writer = WorkerWriter(
            job.folder, worker_id=job.worker_id, prefix=PART_PREFIX.format(job.worker_id),
            flush_every=job.flush_every, flush_s=job.flush_s,
        )  # fmt: skip
        client = SharedStartClient(job.plan, job.options, writer)
    except Exception as exc:  # reported to the parent, one line
        report.send(("failed", _one_line(exc)))
        sys.exit(1)
    started, stop = threading.Event(), threading.Event()
    t0: list[float] = []

    def listen() -> None:
        while True:
            try:
                msg: tuple[Any, ...] = control.recv()
            except (EOFError, OSError):  # the parent is gone
                msg = ("stop",)
            if msg[0] == "start":
                t0.append(float(msg[1]))
            else:
                stop.set()
            started.set()
            if stop.is_set():
                return

    threading.Thread(target=listen, name="burstlab-control", daemon=True).start()
    client.on_tick = lambda s: report.send(("tick", _snapshot(s)))
    try:
        interrupted = run_async(_run_from_start(client, report, started, stop, t0))
    except Exception as exc:  # reported to the parent, one line
        report.send(("failed", _one_line(exc)))
        sys.exit(1)
    report.send(("done", (_snapshot(client.stats), interrupted)))


async def _run_from_start(
    client: SharedStartClient,
    report: Any,
    started: threading.Event,
    stop: threading.Event,
    t0: list[float],
) -> bool:
    """Inside the event loop (so its setup is done before the start instant): say ready,
    wait for the start (or a stop), run the client from the shared t0 until done or stopped.
    True when it was stopped."""
    report.send(("ready", None))
    while not started.is_set():
        await asyncio.sleep(START_POLL_S)
    if stop.is_set() or not t0:
        client.writer.close()
        return True
    client.start_at(t0[0])
    task = asyncio.get_running_loop().create_task(client.run())
    stopped = False
    while not task.done():
        await asyncio.wait({task}, timeout=STOP_POLL_S)
        if not task.done() and not stopped and stop.is_set():
            stopped = True
            task.cancel()
    try:
        task.result()
    except asyncio.CancelledError:
        stopped = True
    return stopped


def _one_line(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- the parent -----------------------------------------------------------------------------
@dataclass
class ParallelRun:
    """What the worker processes did: `stats` summed over workers, one `WorkerOutcome` each
    (`requests` filled in from the records later), the client-reported saturation reasons,
    whether the run was interrupted, and run-clock zero on the wall clock (`t0_unix`, s)."""

    stats: LiveStats
    workers: list[WorkerOutcome]
    reasons: list[str] = field(default_factory=list)
    client_errors: int = 0
    interrupted: bool = False
    t0_unix: float | None = None


def aggregate(snapshots: Sequence[dict[str, Any]]) -> LiveStats:
    """Per-worker LiveStats snapshots (dicts) as one LiveStats: counts summed, lags the
    worst, `interrupted` if any was; fields the client adds later are summed when numbers."""
    total = LiveStats()
    names = [f.name for f in dataclasses.fields(LiveStats)]
    for snap in snapshots:
        for name in names:
            value = snap.get(name)
            if name in ("last_lag_s", "max_lag_s"):
                setattr(total, name, max(getattr(total, name), value or 0.0))
            elif name == "interrupted":
                total.interrupted = total.interrupted or bool(value)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                setattr(total, name, getattr(total, name) + value)
            elif value is not None and getattr(total, name, None) is None:
                setattr(total, name, value)  # e.g. the first saturation reason
    return total


def _exit_text(code: int | None, failure: str | None, interrupted: bool) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown"
        return f"killed by signal {-code} ({name})"
    if code > 0 or failure:
        return f"exited with status {code}" + (f": {failure}" if failure else "")
    return "interrupted" if interrupted else "ok"


class _Interrupts:
    """Counts SIGINTs in the parent while workers run, instead of raising KeyboardInterrupt in
    the middle of reading their reports; the parent loop stops the workers on the first and
    terminates them on the second."""

    def __init__(self) -> None:
        self.count = 0
        self._old: Any = None

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


class _Worker:
    """The parent's side of one worker process: the process and both pipe ends."""

    def __init__(self, k: int, env: dict[str, str]) -> None:
        report_r, report_w = os.pipe()
        control_r, control_w = os.pipe()
        self.id = k
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER_CODE, str(report_w), str(control_r), f"worker={k}"],
            pass_fds=(report_w, control_r),
            stdin=subprocess.DEVNULL,
            env=env,
        )
        os.close(report_w)  # the worker holds the only write end: EOF when it ends
        os.close(control_r)
        self.report = mp_connection.Connection(report_r, writable=False)
        self.control = mp_connection.Connection(control_w, readable=False)
        self.ready = False
        self.latest: dict[str, Any] = {}
        self.final: tuple[dict[str, Any], bool] | None = None
        self.failure: str | None = None
        self.open = True

    def tell(self, msg: Any) -> None:
        """Send a control message; a worker that is gone is left alone."""
        with contextlib.suppress(OSError, ValueError):
            self.control.send(msg)

    def receive(self) -> None:
        """Handle every report waiting on the pipe (EOF: the worker ended or died)."""
        try:
            while True:
                kind, payload = self.report.recv()
                if kind == "ready":
                    self.ready = True
                elif kind == "tick":
                    self.latest = payload
                elif kind == "done":
                    self.final = payload
                    self.latest = payload[0]
                elif kind == "failed":
                    self.failure = payload
                if not self.report.poll():
                    return
        except (EOFError, OSError):
            self.open = False
            self.report.close()

    @property
    def alive(self) -> bool:
        return self.open or self.proc.poll() is None

    def outcome(self, planned: int) -> WorkerOutcome:
        code = self.proc.poll()
        stopped = self.final[1] if self.final else False
        text = _exit_text(code, self.failure, stopped)
        if self.final is None and text == "ok":
            text = "ended without a report"
        return WorkerOutcome(id=self.id, planned=planned, requests=0, exit=text)


def _read(workers: Sequence[_Worker], timeout_s: float) -> None:
    """Handle the reports that arrive within `timeout_s` seconds."""
    readers = {w.report: w for w in workers if w.open}
    if not readers:
        time.sleep(timeout_s)
        return
    for conn in mp_connection.wait(list(readers), timeout=timeout_s):
        readers[conn].receive()  # type: ignore[index]


def _child_env() -> dict[str, str]:
    """The environment of a worker: this one, with this interpreter's import path (so a
    burstlab imported from a source tree or a path added at run time imports there too)."""
    paths = [p for p in sys.path if p and Path(p).exists()]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([*paths, env.get("PYTHONPATH", "")]))
    return env


def run_workers(
    plan: Plan,
    options: ClientOptions,
    folder: str | Path,
    workers: int,
    *,
    flush_every: int = 2000,
    flush_s: float = 2.0,
    on_tick: Callable[[LiveStats], None] | None = None,
    start_margin_s: float = START_MARGIN_S,
) -> ParallelRun:
    """Send `plan` from `workers` processes (see the module docstring); records land in
    `folder` as each worker's parts. Returns when every worker has ended."""
    check_shared_clock()
    shards = [s for s in shard_indices(plan, workers) if s]
    env = _child_env()
    procs: list[_Worker] = []
    t0_unix = None
    with _Interrupts() as interrupts:
        try:
            procs = [_Worker(k, env) for k in range(len(shards))]
            for w, positions in zip(procs, shards, strict=True):  # while they import
                job = _Job(w.id, shard_plan(plan, positions), options, str(folder),
                           flush_every, flush_s)  # fmt: skip
                w.tell(job)
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not all(w.ready for w in procs) and not interrupts.count:
                broken = [w for w in procs if w.failure or (not w.ready and not w.alive)]
                if broken or time.monotonic() > deadline:
                    w = (broken or [w for w in procs if not w.ready])[0]
                    why = w.failure or _exit_text(w.proc.poll(), None, False)
                    raise ReplayError(f"client process {w.id} did not start: {why}")
                _read(procs, TICK_S)
            if not interrupts.count:
                t0 = now() + start_margin_s
                t0_unix = time.time() + (t0 - now())
                for w in procs:
                    w.tell(("start", t0))
            stopping = 0
            last = 0.0
            while any(w.alive for w in procs):
                if interrupts.count > stopping:
                    stopping = interrupts.count
                    for w in procs:
                        w.tell(("stop",))
                        if stopping >= 2 and w.proc.poll() is None:
                            w.proc.terminate()
                _read(procs, TICK_S)
                if on_tick is not None and time.monotonic() - last >= TICK_S:
                    last = time.monotonic()
                    on_tick(aggregate([w.latest for w in procs]))
        finally:
            for w in procs:
                w.tell(("stop",))
                with contextlib.suppress(subprocess.TimeoutExpired):
                    w.proc.wait(timeout=30 if w.ready else 5)
                if w.proc.poll() is None:
                    w.proc.kill()
                    w.proc.wait()
                w.control.close()
                if w.open:
                    w.report.close()
    outcomes = [w.outcome(len(pos)) for w, pos in zip(procs, shards, strict=True)]
    reasons = [
        f"client process {w.id}: {w.latest['client_saturated']}"
        for w in procs
        if w.latest.get("client_saturated")
    ]
    stats = aggregate([w.latest for w in procs])
    if on_tick is not None:
        on_tick(stats)
    return ParallelRun(
        stats=stats,
        workers=outcomes,
        reasons=reasons,
        client_errors=int(getattr(stats, "client_errors", 0) or 0),
        interrupted=bool(interrupts.count) or any(o.exit == "interrupted" for o in outcomes),
        t0_unix=t0_unix,
    )
