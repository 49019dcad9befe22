"""The open-loop replay client: one asyncio process that sends every request at its scheduled
time and records what came back.

Design choices that peers get wrong and this gets right:
- Pacing by absolute deadlines on a monotonic clock (schedule.wait_until), so lateness never
  accumulates; what lateness there is, is recorded per request (`lag_s`), and the behind-schedule
  policy (`send-late` or `drop`) is explicit.
- The connection pool is never a hidden cap: its limit is the number of requests in the run
  (or --max-concurrency, whose queueing delay is then part of `lag_s` and of the
  schedule-anchored metrics), and the open-file limit is raised to match.
- Request bodies are bytes built before the run; the hot path is: wait, post, parse SSE, append
  a tuple. Records go to Parquet on a worker thread (records.RecordWriter).
- Faults are data: refused connections, HTTP errors, timeouts, cut streams and malformed SSE
  become per-request error records and the run goes on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import resource
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import aiohttp

from burstlab.errors import ReplayError
from burstlab.replay.records import RecordWriter, chunk_tokens
from burstlab.replay.schedule import now, wait_until
from burstlab.replay.sse import DONE, MalformedEvent, SSEParser, interpret, text_chars

Policy = Literal["send-late", "drop"]
T = TypeVar("T")
GC_SAFETY_OBJECTS = 2_000_000
ENDPOINT_PATHS = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}


@dataclass(frozen=True)
class ClientOptions:
    """How requests are sent. Times in seconds.

    late_after_s: a request sent more than this after its intended time is `late`; under the
        `drop` policy one that is already this far behind when due is not sent at all.
    timeout_s: whole-request limit; read_timeout_s: longest silence inside a stream (None: no
        limit, because a request queued inside a busy engine gets no byte until it is served).
    api_key: sent as a Bearer token, never written to run.json or logs.
    """

    url: str
    endpoint: Literal["completions", "chat"] = "completions"
    policy: Policy = "send-late"
    late_after_s: float = 0.005
    max_concurrency: int | None = None
    timeout_s: float = 600.0
    read_timeout_s: float | None = None
    connect_timeout_s: float = 10.0
    api_key: str | None = field(default=None, repr=False)

    @property
    def target(self) -> str:
        return self.url.rstrip("/") + ENDPOINT_PATHS[self.endpoint]

    def public(self) -> dict:
        """Options for run.json: everything except the API key."""
        return {
            "url": self.url,
            "endpoint": self.endpoint,
            "target": self.target,
            "policy": self.policy,
            "late_after_s": self.late_after_s,
            "max_concurrency": self.max_concurrency,
            "timeout_s": self.timeout_s,
            "read_timeout_s": self.read_timeout_s,
            "connect_timeout_s": self.connect_timeout_s,
            "api_key": "<from env>" if self.api_key else None,
        }


@dataclass
class LiveStats:
    """Counters the progress bar and calibration read while a run goes on."""

    scheduled: int = 0
    sent: int = 0
    done: int = 0
    errors: int = 0
    dropped: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    connections: int = 0  # TCP connections opened (keep-alive reuse keeps this low)
    last_lag_s: float = 0.0
    max_lag_s: float = 0.0
    interrupted: bool = False


@dataclass
class Plan:
    """What the client sends: parallel lists indexed by position in the schedule.

    Built by run.py from a Schedule and a PromptSet; `follows[i]` is the position of the request
    that request i waits for (later session turns), else -1.
    """

    req_id: Sequence[int]
    intended_s: Sequence[float]
    bodies: Sequence[bytes]
    input_tokens: Sequence[int]
    prompt_tokens_client: Sequence[int | None]
    output_tokens_target: Sequence[int]
    session_id: Sequence[str | None]
    turn: Sequence[int | None]
    follows: Sequence[int]
    think_s: Sequence[float | None]
    oversized: Sequence[bool | None] | None = None  # None: the server's context is unknown

    def __len__(self) -> int:
        return len(self.req_id)


def raise_open_file_limit(wanted: int) -> int:
    """Raise the soft open-file limit toward `wanted` (+ headroom); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    goal = wanted + 256
    if soft != resource.RLIM_INFINITY and soft < goal:
        new = goal if hard == resource.RLIM_INFINITY else min(goal, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
    return soft


class _Attempt:
    """The mutable state of one request while it is in flight (run-clock seconds)."""

    __slots__ = (
        "attempts", "chars", "completion_srv", "dispatch", "end", "error", "error_kind", "finish",
        "first_byte", "first_token", "i", "intended", "prompt_srv", "queue_s", "sent", "status",
        "times",
    )  # fmt: skip

    def __init__(self, i: int, intended: float, dispatch: float) -> None:
        self.i = i
        self.intended = intended
        self.dispatch = dispatch
        self.queue_s = 0.0
        self.sent = dispatch
        self.status: int | None = None
        self.first_byte: float | None = None
        self.first_token: float | None = None
        self.end: float | None = None
        self.times: list[float] = []
        self.chars: list[int] = []
        self.error_kind: str | None = None
        self.error: str | None = None
        self.finish: str | None = None
        self.prompt_srv: int | None = None
        self.completion_srv: int | None = None
        self.attempts = 1

    def fail(self, kind: str, text: str) -> None:
        """Record the first failure only: a later symptom must not hide the cause."""
        if self.error_kind is None:
            self.error_kind, self.error = kind, text


async def _drain(content: aiohttp.StreamReader, limit_s: float = 1.0) -> None:
    """Read what is left of a finished response body (at most `limit_s`), ignoring errors."""
    timeout = getattr(asyncio, "timeout", None)
    if timeout is None:  # Python 3.10: leave it; aiohttp then closes the connection
        return
    with contextlib.suppress(Exception):
        async with timeout(limit_s):
            while await content.readany():
                pass


#: Sends of one request when the connection fails before any response byte (stale keep-alive).
MAX_ATTEMPTS = 3


class _CountingConnector(aiohttp.TCPConnector):
    """Counts the TCP connections it opens into LiveStats (a TraceConfig would do the same but
    adds several awaited signal calls to every request)."""

    def __init__(self, stats: LiveStats, **kwargs) -> None:
        super().__init__(**kwargs)
        self._stats = stats

    async def _create_connection(self, req, traces, timeout):
        self._stats.connections += 1
        return await super()._create_connection(req, traces, timeout)


class ReplayClient:
    """Sends a Plan open-loop and writes one record per request to a RecordWriter."""

    def __init__(
        self,
        plan: Plan,
        options: ClientOptions,
        writer: RecordWriter,
        *,
        on_tick: Callable[[LiveStats], None] | None = None,
        tick_s: float = 0.25,
    ):
        if options.endpoint not in ENDPOINT_PATHS:
            raise ReplayError(
                f"unknown endpoint {options.endpoint!r}; expected one of {sorted(ENDPOINT_PATHS)}"
            )
        if options.policy not in ("send-late", "drop"):
            raise ReplayError(f"unknown policy {options.policy!r}; expected send-late or drop")
        self.plan = plan
        self.opts = options
        self.writer = writer
        self.on_tick = on_tick
        self.tick_s = tick_s
        self.stats = LiveStats(scheduled=len(plan))
        self._followers: dict[int, list[int]] = {}
        for i, f in enumerate(plan.follows):
            if f >= 0:
                self._followers.setdefault(f, []).append(i)
        self._tasks: set[asyncio.Task] = set()
        self.t0 = 0.0
        self.t0_unix: float | None = None

    # -- the run ---------------------------------------------------------------------------
    async def run(self) -> LiveStats:
        """Send everything, wait for every response, flush records. Cancellation (Ctrl-C)
        records in-flight requests as `cancelled` and still flushes."""
        pool = self.opts.max_concurrency or max(1, len(self.plan))
        raise_open_file_limit(pool)
        # Idle connections are closed after 4 s, before common servers' 5 s keep-alive timeout
        # (llama.cpp's httplib, uvicorn), so the pool rarely hands out one the server dropped.
        connector = _CountingConnector(
            self.stats, limit=pool, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=4.0
        )
        timeout = aiohttp.ClientTimeout(
            total=self.opts.timeout_s,
            sock_connect=self.opts.connect_timeout_s,
            sock_read=self.opts.read_timeout_s,
        )
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.opts.api_key:
            headers["Authorization"] = f"Bearer {self.opts.api_key}"
        self._headers = headers
        self._sem = (
            asyncio.Semaphore(self.opts.max_concurrency) if self.opts.max_concurrency else None
        )
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            read_bufsize=1 << 18,
            skip_auto_headers=("User-Agent",),
        ) as session:
            self._session = session
            ticker = asyncio.get_running_loop().create_task(self._ticker())
            try:
                self.t0 = now()
                self.t0_unix = time.time()  # the same instant on the wall clock
                await self._pace()
                while self._tasks:
                    await asyncio.wait(set(self._tasks))
            except asyncio.CancelledError:
                self.stats.interrupted = True
                for task in list(self._tasks):
                    task.cancel()
                if self._tasks:
                    await asyncio.gather(*self._tasks, return_exceptions=True)
                raise
            finally:
                ticker.cancel()
                self._tick()
                self.writer.close()
        return self.stats

    async def _pace(self) -> None:
        plan, t0 = self.plan, self.t0
        order = sorted(
            (i for i in range(len(plan)) if plan.follows[i] < 0), key=plan.intended_s.__getitem__
        )
        for i in order:
            intended = plan.intended_s[i]
            deadline = t0 + intended
            if now() < deadline:
                await wait_until(deadline)
            self._dispatch(i, intended)

    def _dispatch(self, i: int, intended: float) -> None:
        dispatch = now() - self.t0
        if self.opts.policy == "drop" and dispatch - intended > self.opts.late_after_s:
            self.stats.dropped += 1
            self._record_unsent(i, intended, dispatch, "dropped", "behind schedule (policy drop)")
            self._release_followers(i, dispatch)
            return
        task = asyncio.get_running_loop().create_task(self._one(i, intended, dispatch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _release_followers(self, i: int, end_s: float) -> None:
        """Schedule the next turns of i's session: think time after i ended (or was dropped)."""
        for j in self._followers.get(i, ()):
            think = self.plan.think_s[j] or 0.0
            task = asyncio.get_running_loop().create_task(self._followup(j, end_s + think))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _followup(self, j: int, intended: float) -> None:
        await wait_until(self.t0 + intended)
        self._dispatch(j, intended)

    async def _ticker(self) -> None:
        last_flush = now()
        while True:
            await asyncio.sleep(self.tick_s)
            t = now()
            if len(self.writer) >= self.writer.flush_every or t - last_flush >= self.writer.flush_s:
                self.writer.flush()
                last_flush = t
            if gc.get_count()[0] > GC_SAFETY_OBJECTS:
                gc.collect(0)  # only if cyclic garbage really piles up (measured: ~0 per request)
            self._tick()

    def _tick(self) -> None:
        if self.on_tick is not None:
            self.on_tick(self.stats)

    # -- one request -----------------------------------------------------------------------
    async def _one(self, i: int, intended: float, dispatch: float) -> None:
        stats, t0 = self.stats, self.t0
        r = _Attempt(i, intended, dispatch)
        if self._sem is not None:
            try:
                await self._sem.acquire()
            except asyncio.CancelledError:
                self._record_unsent(i, intended, now() - t0, "cancelled", "run interrupted")
                raise
            r.queue_s = now() - t0 - dispatch
        stats.in_flight += 1
        if stats.in_flight > stats.peak_in_flight:
            stats.peak_in_flight = stats.in_flight
        parser = SSEParser()
        r.sent = sent = now() - t0
        stats.sent += 1
        stats.last_lag_s = lag = sent - intended
        if lag > stats.max_lag_s:
            stats.max_lag_s = lag
        try:
            while True:
                try:
                    await self._exchange(r, parser)
                    break
                except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
                    if r.status is not None or r.attempts >= MAX_ATTEMPTS:
                        raise
                    # Nothing came back: a keep-alive connection the server had just closed
                    # (the failed one leaves the pool, and several idle ones can be stale at
                    # once). Again, on another connection; `attempts` records it.
                    r.attempts += 1
        except MalformedEvent as exc:
            r.fail("malformed", str(exc))
        except (TimeoutError, asyncio.TimeoutError) as exc:
            r.fail("timeout", f"timed out: {type(exc).__name__} {exc}".strip())
        except aiohttp.ClientConnectorError as exc:
            r.fail("refused", f"connection failed: {exc}")
        except (
            aiohttp.ClientPayloadError,
            aiohttp.ClientOSError,
            aiohttp.ServerDisconnectedError,
        ) as exc:
            # before the response head: the server reset or closed the connection on us;
            # after it: the stream was cut mid-body
            kind = "reset" if r.status is None else "cut"
            r.fail(kind, f"connection {kind}: {type(exc).__name__}: {exc}")
        except aiohttp.ClientError as exc:
            r.fail("client", f"{type(exc).__name__}: {exc}")
        except OSError as exc:
            r.fail("refused", f"{type(exc).__name__}: {exc}")
        except asyncio.CancelledError:
            r.fail("cancelled", "run interrupted")
            self._finish(r, parser.comments)
            raise
        finally:
            stats.in_flight -= 1
            if self._sem is not None:
                self._sem.release()
        end = self._finish(r, parser.comments)
        if self._followers:
            self._release_followers(i, end)

    async def _exchange(self, r: _Attempt, parser: SSEParser) -> None:
        """POST one prepared body and read its SSE stream into `r` (raises on transport faults)."""
        t0 = self.t0
        async with self._session.post(
            self.opts.target, data=self.plan.bodies[r.i], headers=self._headers
        ) as resp:
            r.first_byte = now() - t0
            r.status = status = resp.status
            if status != 200:
                body = await resp.read()
                r.end = now() - t0
                r.fail("http", f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}")
                return
            content = resp.content
            times, chars = r.times, r.chars
            done = False
            while not done:
                data = await content.readany()
                t = now() - t0
                payloads = parser.feed(data) if data else parser.close()
                for payload in payloads:
                    n = text_chars(payload)
                    if n is not None:  # a plain token chunk: the hot path
                        if n:
                            if r.first_token is None:
                                r.first_token = t
                            times.append(t)
                            chars.append(n)
                        continue
                    if payload == DONE:
                        done = True
                        break
                    c = interpret(payload)
                    if c.error is not None:
                        r.fail("server-error", c.error)
                        done = True
                        break
                    if c.text_chars:
                        if r.first_token is None:
                            r.first_token = t
                        times.append(t)
                        chars.append(c.text_chars)
                    if c.finish_reason is not None:
                        r.finish = c.finish_reason
                    if c.completion_tokens is not None:
                        r.completion_srv = c.completion_tokens
                        r.prompt_srv = c.prompt_tokens
                if not data:
                    break
            r.end = now() - t0
            if not done and r.finish is None:
                r.fail("cut", "stream ended before [DONE] or a finish_reason")
            elif done and not content.is_eof():
                # read the chunked terminator so the keep-alive connection can be reused
                await _drain(content)

    def _finish(self, r: _Attempt, comments: int) -> float:
        end = r.end if r.end is not None else now() - self.t0
        ok = r.error_kind is None
        self.stats.done += 1
        if not ok:
            self.stats.errors += 1
        plan, i = self.plan, r.i
        lag = r.sent - r.intended
        completion_srv = r.completion_srv
        self.writer.add((
            plan.req_id[i], plan.session_id[i], plan.turn[i], r.intended, r.dispatch, r.sent,
            r.first_byte, r.first_token, end, r.times, r.chars,
            chunk_tokens(r.chars, completion_srv), r.status, ok, r.error_kind, r.error, r.finish,
            False, lag > self.opts.late_after_s, lag, r.queue_s, plan.input_tokens[i],
            plan.prompt_tokens_client[i], r.prompt_srv, plan.output_tokens_target[i],
            len(r.times), completion_srv, comments, r.attempts,
            None if plan.oversized is None else plan.oversized[i],
        ))  # fmt: skip
        return end

    def _record_unsent(self, i: int, intended: float, at: float, kind: str, text: str) -> None:
        plan = self.plan
        self.stats.done += 1
        self.writer.add((
            plan.req_id[i], plan.session_id[i], plan.turn[i], intended, at, None, None, None, at,
            [], [], [], None, False, kind, text, None, kind == "dropped", False, None, None,
            plan.input_tokens[i], plan.prompt_tokens_client[i], None,
            plan.output_tokens_target[i], None, None, None, 0,
            None if plan.oversized is None else plan.oversized[i],
        ))  # fmt: skip


@contextlib.contextmanager
def quiet_runtime(switch_interval_s: float = 0.0005) -> Iterator[None]:
    """Keep the interpreter from stalling the pacer during a run.

    The cyclic garbage collector can pause for tens of ms once many records are alive, so it is
    frozen and off for the run (collected after). That is safe because a request leaves almost
    no cyclic garbage (measured: 0-0.3 objects per request); should it pile up anyway (over
    GC_SAFETY_OBJECTS net container allocations), the ticker collects the young generation. A
    short GIL switch interval makes the record writer thread hand the GIL back within ~0.5 ms.
    """
    was_enabled = gc.isenabled()
    old_interval = sys.getswitchinterval()
    gc.collect()
    gc.freeze()
    gc.disable()
    sys.setswitchinterval(switch_interval_s)
    try:
        yield
    finally:
        sys.setswitchinterval(old_interval)
        gc.unfreeze()
        if was_enabled:
            gc.enable()
        gc.collect()


def _run_on_new_loop(coro: Coroutine[Any, Any, T]) -> T:
    with quiet_runtime():
        try:
            import uvloop
        except ImportError:
            return asyncio.run(coro)
        return uvloop.run(coro)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop when it is installed (faster I/O), else asyncio's loop,
    inside quiet_runtime().

    Where an event loop already runs in this thread (a Jupyter notebook), the coroutine gets a
    loop of its own on a worker thread, so `replay()` works from a notebook cell as it does
    from a script.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_on_new_loop(coro)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="burstlab-replay") as pool:
        return pool.submit(_run_on_new_loop, coro).result()
