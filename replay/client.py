"""The open-loop replay client: one asyncio process that sends every request at its scheduled
time and records what came back.

Design choices that peers get wrong and this gets right:
- Pacing by absolute deadlines on a monotonic clock (pacer.Pacer: one kernel timer, no
  spinning; sends due together go out in one wake-up), so lateness never accumulates; what
  lateness there is, is recorded per request (`lag_s`), and the behind-schedule policy
  (`send-late` or `drop`) is explicit.
- The connection pool is never a hidden cap: its limit is the number of requests in the run
  (or --max-concurrency, whose queueing delay is then part of `lag_s` and of the
  schedule-anchored metrics), and the open-file limit is raised to match. Where the system
  grants fewer open files than that, concurrent requests are bounded to what it grants, the
  wait shows in `queue_s`/`lag_s`, and `LiveStats.client_saturated` says so.
- The client's own limits are never blamed on the server: running out of file descriptors or
  local ports, or a connect timeout while the client itself is far behind schedule, is
  recorded as error_kind `client`, not `refused` or `timeout`.
- Request bodies are bytes built before the run; the hot path is: wake, post, parse SSE, append
  a row to typed columns. Records go to Parquet on a worker thread (records.RecordWriter).
- Faults are data: refused connections, HTTP errors, timeouts, cut streams and malformed SSE
  become per-request error records and the run goes on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import gc
import resource
import sys
import time
from array import array
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import aiohttp
from yarl import URL

from burstlab.errors import ReplayError
from burstlab.replay.pacer import Pacer
from burstlab.replay.records import RecordWriter, chunk_tokens
from burstlab.replay.schedule import now
from burstlab.replay.sse import DONE, MalformedEvent, SSEParser, TokenCounter, interpret

Policy = Literal["send-late", "drop"]
T = TypeVar("T")
GC_SAFETY_OBJECTS = 2_000_000
ENDPOINT_PATHS = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}
#: File descriptors kept out of the connection pool: the event loop's epoll and timer, the
#: record writer's files, stdio, imported libraries.
FD_RESERVE = 64
#: The client is itself behind schedule when a send leaves the pacer this late (seconds); a
#: connect timeout then is the client's fault, not the server's.
BEHIND_S = 0.05
#: Local socket errors that are the client's limits, not the server's answer.
CLIENT_ERRNOS = {
    errno.EMFILE: "open-file limit reached",
    errno.ENFILE: "system open-file limit reached",
    errno.EADDRNOTAVAIL: "local ports exhausted",
    errno.ENOBUFS: "out of socket buffers",
    errno.ENOMEM: "out of memory",
}
SATURATED_BEHIND = f"sends more than {BEHIND_S * 1000:g} ms behind schedule"
SATURATED_FDS = "open-file limit reached"


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
    client_errors: int = 0  # records with error_kind "client": the client's own failures
    #: the first sign the client, not the server, limited the run (a short phrase), else None
    client_saturated: str | None = None

    def saturated(self, reason: str) -> None:
        """Remember the first reason the client could not keep up."""
        if self.client_saturated is None:
            self.client_saturated = reason


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
    #: prompt tokens the trace means to be served from a prefix cache (PromptSet
    #: .intended_cached); None: the trace has no hash_ids
    intended_cached: Sequence[int | None] | None = None

    def __len__(self) -> int:
        return len(self.req_id)


def raise_open_file_limit(wanted: int) -> int:
    """Raise the soft open-file limit toward `wanted` (+ headroom); returns the new soft limit
    (sys.maxsize when unlimited)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    goal = wanted + 256
    if soft != resource.RLIM_INFINITY and soft < goal:
        new = goal if hard == resource.RLIM_INFINITY else min(goal, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
    return sys.maxsize if soft == resource.RLIM_INFINITY else soft


def socket_budget(wanted: int) -> int:
    """Concurrent connections the process can hold: `wanted`, or fewer when the open-file limit
    (raised as far as allowed) leaves less than that after FD_RESERVE."""
    return max(1, min(wanted, raise_open_file_limit(wanted) - FD_RESERVE))


def client_reason(exc: BaseException | None) -> str | None:
    """The client-side limit behind a connection error (EMFILE, local ports, ...), else None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        code = getattr(exc, "errno", None)
        if code in CLIENT_ERRNOS:
            return CLIENT_ERRNOS[code]
        inner = getattr(exc, "os_error", None)
        exc = inner if isinstance(inner, BaseException) else (exc.__cause__ or exc.__context__)
    return None


class _Attempt:
    """The mutable state of one request while it is in flight (run-clock seconds)."""

    __slots__ = (
        "attempts", "cached_srv", "chars", "completion_srv", "cumulative", "dispatch", "end",
        "error", "error_kind", "finish", "first_byte", "first_token", "i", "intended",
        "prompt_srv", "queue_s", "sent", "status", "times", "tokens",
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
        self.times = array("d")  # chunk arrival times, run-clock seconds
        self.chars = array("q")  # generated characters per chunk
        self.error_kind: str | None = None
        self.error: str | None = None
        self.finish: str | None = None
        self.prompt_srv: int | None = None
        self.completion_srv: int | None = None
        self.cached_srv: int | None = None  # prompt tokens served from the server's cache
        # continuous usage (vLLM continuous_usage_stats): the last cumulative completion_tokens
        # and the tokens of every chunk from its increments; None while the server sends no
        # usage on token chunks
        self.cumulative: int | None = None
        self.tokens: array | None = None
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
        timerfd: bool | None = None,
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
        self.timerfd = timerfd  # None: the kernel timer where available (tests force the fallback)
        self.stats = LiveStats(scheduled=len(plan))
        self._followers: dict[int, list[int]] = {}
        for i, f in enumerate(plan.follows):
            if f >= 0:
                self._followers.setdefault(f, []).append(i)
        self._tasks: set[asyncio.Task] = set()
        self.t0 = 0.0
        self.t0_unix: float | None = None
        self.pacer: Pacer | None = None
        self._sem: asyncio.Semaphore | None = None
        self._sem_is_fd_cap = False
        self._all_done: asyncio.Future | None = None
        self._behind_at = -1.0  # run-clock time of the last send > BEHIND_S late (seconds)
        self.max_pacer_lag_s = 0.0  # latest a send left the pacer (no concurrency queue; s)
        # the records' worker_id: the writer's (workers.WorkerWriter), else null (one process);
        # written here because the cache columns come after it
        self._worker_id: int | None = getattr(writer, "worker_id", None)

    # -- the run ---------------------------------------------------------------------------
    async def run(self) -> LiveStats:
        """Send everything, wait for every response, flush records. Cancellation (Ctrl-C)
        records in-flight requests as `cancelled` and still flushes."""
        loop = asyncio.get_running_loop()
        wanted = self.opts.max_concurrency or max(1, len(self.plan))
        budget = socket_budget(wanted)
        # Idle connections are closed after 4 s, before common servers' 5 s keep-alive timeout
        # (llama.cpp's httplib, uvicorn), so the pool rarely hands out one the server dropped.
        connector = _CountingConnector(
            self.stats, limit=budget, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=4.0
        )
        timeout = aiohttp.ClientTimeout(
            total=self.opts.timeout_s,
            sock_connect=self.opts.connect_timeout_s,
            sock_read=self.opts.read_timeout_s,
        )
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.opts.api_key:
            headers["Authorization"] = f"Bearer {self.opts.api_key}"
        # parsed once: aiohttp would otherwise parse the URL and merge header dicts per request
        self._url = URL(self.opts.target)
        if budget < len(self.plan) or self.opts.max_concurrency:
            # the request waits for a slot (queue_s) instead of inside aiohttp's pool
            self._sem = asyncio.Semaphore(budget)
            self._sem_is_fd_cap = budget < wanted
        self._all_done = loop.create_future()
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            read_bufsize=1 << 18,
            headers=headers,
            skip_auto_headers=("User-Agent",),
        ) as session:
            self._session = session
            self.pacer = Pacer(loop, timerfd=self.timerfd)
            ticker = loop.create_task(self._ticker())
            try:
                self.t0 = now()
                self.t0_unix = time.time()  # the same instant on the wall clock
                self._start_pacing()
                if self.stats.done < self.stats.scheduled:
                    await self._all_done
                while self._tasks:  # the last tasks are finishing their bookkeeping
                    await asyncio.wait(set(self._tasks))
            except asyncio.CancelledError:
                self.stats.interrupted = True
                self.pacer.close()
                for task in list(self._tasks):
                    task.cancel()
                if self._tasks:
                    await asyncio.gather(*self._tasks, return_exceptions=True)
                raise
            finally:
                self.pacer.close()
                ticker.cancel()
                self._tick()
                self.writer.close()
        return self.stats

    def _start_pacing(self) -> None:
        """Queue the first send; each send queues the next, so the pacer's heap stays small."""
        plan = self.plan
        self._order = sorted(
            (i for i in range(len(plan)) if plan.follows[i] < 0), key=plan.intended_s.__getitem__
        )
        self._next = 0
        self._queue_next()

    def _queue_next(self) -> None:
        if self._next < len(self._order):
            i = self._order[self._next]
            assert self.pacer is not None
            self.pacer.call_at(self.t0 + self.plan.intended_s[i], self._send_next)

    def _send_next(self) -> None:
        i = self._order[self._next]
        self._next += 1
        self._queue_next()
        self._dispatch(i, self.plan.intended_s[i])

    def _dispatch(self, i: int, intended: float) -> None:
        """Release request i from the pacer: drop it (policy drop, too late) or start it."""
        stats = self.stats
        dispatch = now() - self.t0
        late = dispatch - intended
        if late > BEHIND_S:
            self._behind_at = dispatch
            stats.saturated(SATURATED_BEHIND)
        if late > self.max_pacer_lag_s:
            self.max_pacer_lag_s = late
        if self.opts.policy == "drop" and late > self.opts.late_after_s:
            stats.dropped += 1
            self._record_unsent(i, intended, dispatch, "dropped", "behind schedule (policy drop)")
            self._release_followers(i, dispatch)
            return
        task = asyncio.get_running_loop().create_task(self._one(i, intended, dispatch))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        """Forget a finished request task; a bug that escaped it ends the run with its error
        instead of leaving the run waiting for a record that will never come."""
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        done = self._all_done
        if exc is not None and done is not None and not done.done():
            done.set_exception(exc)

    def _release_followers(self, i: int, end_s: float) -> None:
        """Schedule the next turns of i's session: think time after i ended (or was dropped)."""
        pacer = self.pacer
        for j in self._followers.get(i, ()):
            intended = end_s + (self.plan.think_s[j] or 0.0)
            if pacer is not None and not pacer.closed:
                pacer.call_at(self.t0 + intended, self._dispatch, j, intended)

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

    def _count_done(self) -> None:
        stats = self.stats
        stats.done += 1
        done = self._all_done
        if stats.done >= stats.scheduled and done is not None and not done.done():
            done.set_result(None)

    # -- one request -----------------------------------------------------------------------
    async def _one(self, i: int, intended: float, dispatch: float) -> None:
        stats, t0 = self.stats, self.t0
        r = _Attempt(i, intended, dispatch)
        sem = self._sem
        if sem is not None:
            if self._sem_is_fd_cap and sem.locked():
                stats.saturated(SATURATED_FDS)
            try:
                await sem.acquire()
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
            await self._send(r, parser)
        except asyncio.CancelledError:
            r.fail("cancelled", "run interrupted")
            self._finish(r, parser.comments)
            raise
        finally:
            stats.in_flight -= 1
            if sem is not None:
                sem.release()
        end = self._finish(r, parser.comments)
        if self._followers:
            self._release_followers(i, end)

    async def _send(self, r: _Attempt, parser: SSEParser) -> None:
        """One request with its stale keep-alive re-sends; every failure becomes `r.fail`."""
        try:
            while True:
                try:
                    await self._exchange(r, parser)
                    return
                except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
                    if r.status is not None or r.attempts >= MAX_ATTEMPTS or client_reason(exc):
                        raise
                    # Nothing came back: a keep-alive connection the server had just closed
                    # (the failed one leaves the pool, and several idle ones can be stale at
                    # once). Again, on another connection; `attempts` records it.
                    r.attempts += 1
        except MalformedEvent as exc:
            r.fail("malformed", str(exc))
        except (TimeoutError, asyncio.TimeoutError) as exc:
            self._timed_out(r, exc)
        except aiohttp.ClientConnectorError as exc:
            self._os_failure(r, exc, "refused", f"connection failed: {exc}")
        except (
            aiohttp.ClientPayloadError,
            aiohttp.ClientOSError,
            aiohttp.ServerDisconnectedError,
        ) as exc:
            # before the response head: the server reset or closed the connection on us;
            # after it: the stream was cut mid-body
            kind = "reset" if r.status is None else "cut"
            self._os_failure(r, exc, kind, f"connection {kind}: {type(exc).__name__}: {exc}")
        except aiohttp.ClientError as exc:
            r.fail("client", f"{type(exc).__name__}: {exc}")
        except OSError as exc:
            self._os_failure(r, exc, "refused", f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug of the client's must not lose the record or the run
            r.fail("client", f"client error: {type(exc).__name__}: {exc}")

    def _os_failure(self, r: _Attempt, exc: BaseException, kind: str, text: str) -> None:
        """A socket-level failure: the client's own limit when the errno says so."""
        reason = client_reason(exc)
        if reason is None:
            r.fail(kind, text)
            return
        self.stats.saturated(reason)
        r.fail("client", f"{reason}: {type(exc).__name__}: {exc}")

    def _timed_out(self, r: _Attempt, exc: BaseException) -> None:
        """A timeout is the server's unless it hit connecting while the client was itself far
        behind schedule (its event loop too busy to finish the handshake in time)."""
        text = f"timed out: {type(exc).__name__} {exc}".strip()
        if r.status is None and _is_connect_timeout(exc) and self._behind_since(r.sent):
            self.stats.saturated(SATURATED_BEHIND)
            r.fail("client", f"connect {text} while the client was behind schedule")
            return
        r.fail("timeout", text)

    def _behind_since(self, t: float) -> bool:
        """Whether the client fell behind schedule (a send left the pacer more than BEHIND_S
        late, or one is that overdue now) at or after run-clock time `t` (seconds)."""
        if self._behind_at >= t:
            return True
        pacer = self.pacer
        overdue = pacer.next_deadline() if pacer is not None else None
        return overdue is not None and now() - overdue > BEHIND_S

    async def _exchange(self, r: _Attempt, parser: SSEParser) -> None:
        """POST one prepared body and read its SSE stream into `r` (raises on transport faults)."""
        t0 = self.t0
        async with self._session.post(self._url, data=self.plan.bodies[r.i]) as resp:
            r.first_byte = now() - t0
            r.status = status = resp.status
            if status != 200:
                body = await resp.read()
                r.end = now() - t0
                r.fail("http", f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}")
                return
            content = resp.content
            done = await self._read_stream(r, parser, content)
            r.end = now() - t0
            if not done and r.finish is None:
                r.fail("cut", "stream ended before [DONE] or a finish_reason")
            elif done and not content.is_eof():
                # read the chunked terminator so the keep-alive connection can be reused
                await _drain(content)

    async def _read_stream(
        self, r: _Attempt, parser: SSEParser, content: aiohttp.StreamReader
    ) -> bool:
        """Read SSE events into `r` until [DONE], an error event or the end of the body;
        True when the stream ended by [DONE] or an error event."""
        t0 = self.t0
        times, chars = r.times, r.chars
        readany, feed = content.readany, parser.feed
        text_chars = TokenCounter().chars
        while True:
            data = await readany()
            t = now() - t0
            payloads = feed(data) if data else parser.close()
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
                    return True
                if self._event(r, payload, t):
                    return True
            if not data:
                return False

    @staticmethod
    def _event(r: _Attempt, payload: bytes, t: float) -> bool:
        """A payload the byte scan declined (finish, usage, error, odd shapes); True on error.

        Continuous usage (a cumulative `completion_tokens` on token chunks, from the first one
        on): a chunk's tokens are the increment, and a chunk whose increment is positive is a
        token arrival even with no text (a token that completes no character). A usage that
        first comes after plain text chunks is the stream's final total (llama.cpp, OpenAI):
        it is no arrival, and each text chunk stays one token (see records.chunk_tokens).
        """
        c = interpret(payload)
        if c.error is not None:
            r.fail("server-error", c.error)
            return True
        done = c.completion_tokens
        step = 0
        if done is not None and (r.cumulative is not None or not r.times):
            step = done - (r.cumulative or 0)
            r.cumulative = done
            if r.tokens is None:
                r.tokens = array("q")
        if c.text_chars or step > 0:
            if r.first_token is None:
                r.first_token = t
            r.times.append(t)
            r.chars.append(c.text_chars)
            if r.tokens is not None:
                r.tokens.append(max(step, 0) if done is not None else 1)
        if c.finish_reason is not None:
            r.finish = c.finish_reason
        if done is not None:
            r.completion_srv = done
            r.prompt_srv = c.prompt_tokens
        if c.cached_tokens is not None:
            r.cached_srv = c.cached_tokens
        return False

    def _finish(self, r: _Attempt, comments: int) -> float:
        end = r.end if r.end is not None else now() - self.t0
        kind = r.error_kind
        ok = kind is None
        if not ok:
            self.stats.errors += 1
            if kind == "client":
                self.stats.client_errors += 1
        plan, i = self.plan, r.i
        lag = r.sent - r.intended
        completion_srv = r.completion_srv
        n = len(r.times)
        tokens: Sequence[int] | None = r.tokens
        if tokens is not None and len(tokens) != n:  # a token chunk without usage among them
            tokens = None
        if tokens is not None:  # counted from continuous usage: the client's count is exact
            out_client = sum(tokens)
        else:
            out_client = n
            if completion_srv and completion_srv > n:
                tokens = chunk_tokens(r.chars, completion_srv)
        self.writer.add((
            plan.req_id[i], plan.session_id[i], plan.turn[i], r.intended, r.dispatch, r.sent,
            r.first_byte, r.first_token, end, r.times, r.chars,
            tokens if tokens is not None else _ones(n), r.status, ok, kind, r.error, r.finish,
            False, lag > self.opts.late_after_s, lag, r.queue_s, plan.input_tokens[i],
            plan.prompt_tokens_client[i], r.prompt_srv, plan.output_tokens_target[i],
            out_client, completion_srv, comments, r.attempts,
            None if plan.oversized is None else plan.oversized[i], self._worker_id,
            r.cached_srv, None if plan.intended_cached is None else plan.intended_cached[i],
        ))  # fmt: skip
        self._count_done()
        return end

    def _record_unsent(self, i: int, intended: float, at: float, kind: str, text: str) -> None:
        plan = self.plan
        self.writer.add((
            plan.req_id[i], plan.session_id[i], plan.turn[i], intended, at, None, None, None, at,
            [], [], [], None, False, kind, text, None, kind == "dropped", False, None, None,
            plan.input_tokens[i], plan.prompt_tokens_client[i], None,
            plan.output_tokens_target[i], None, None, None, 0,
            None if plan.oversized is None else plan.oversized[i], self._worker_id, None,
            None if plan.intended_cached is None else plan.intended_cached[i],
        ))  # fmt: skip
        self._count_done()


def _is_connect_timeout(exc: BaseException) -> bool:
    """aiohttp's sock_connect timeout (ConnectionTimeoutError from 3.10, a ServerTimeoutError
    saying "connect" before)."""
    cls = getattr(aiohttp, "ConnectionTimeoutError", None)
    if cls is not None and isinstance(exc, cls):
        return True
    return isinstance(exc, aiohttp.ServerTimeoutError) and "connect" in str(exc).lower()


_ONES = array("q", [1]) * 4096


def _ones(n: int) -> array:
    """`n` ones (one token per chunk), as the typed column takes them."""
    return _ONES[:n] if n <= len(_ONES) else array("q", [1]) * n


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
