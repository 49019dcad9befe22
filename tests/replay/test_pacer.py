"""The pacer (kernel-timer deadlines, batched wake-ups, the loop-timer fallback), the typed
record buffers, and how the client tells its own limits from the server's faults."""

from __future__ import annotations

import asyncio
import errno
import sys
import time

import aiohttp
import polars as pl
import pytest

from burstlab.replay import pacer as pacer_mod
from burstlab.replay.client import (
    SATURATED_BEHIND,
    ClientOptions,
    LiveStats,
    Plan,
    ReplayClient,
    _Attempt,
    client_reason,
    socket_budget,
)
from burstlab.replay.pacer import Pacer, now, sleep_until
from burstlab.replay.records import (
    COLUMNS,
    RECORD_SCHEMA,
    RecordBuffer,
    RecordWriter,
    columns_table,
    read_records,
    records_frame,
)

MODES = [pytest.param(True, id="timerfd"), pytest.param(False, id="loop-timer")]


def _needs(timerfd: bool) -> None:
    if timerfd and not pacer_mod.TIMERFD_OK:
        pytest.skip("no timerfd on this platform")


async def _collect(pacer: Pacer, deadlines: list[float]) -> list[tuple[int, float, float]]:
    """Queue one callback per deadline; return (index, deadline, when it ran) in run order."""
    ran: list[tuple[int, float, float]] = []
    done = asyncio.get_running_loop().create_future()

    def hit(k: int, deadline: float) -> None:
        ran.append((k, deadline, now()))
        if len(ran) == len(deadlines):
            done.set_result(None)

    for k, d in enumerate(deadlines):
        pacer.call_at(d, hit, k, d)
    await asyncio.wait_for(done, 10)
    return ran


@pytest.mark.parametrize("timerfd", MODES)
def test_callbacks_run_in_deadline_order_and_never_early(timerfd):
    _needs(timerfd)

    async def go():
        pacer = Pacer(timerfd=timerfd)
        t0 = now() + 0.01
        deadlines = [t0 + k * 0.003 for k in (5, 1, 3, 0, 4, 2)]
        try:
            return await _collect(pacer, deadlines), pacer.uses_timerfd
        finally:
            pacer.close()

    ran, used = asyncio.run(go())
    assert used == timerfd
    assert [d for _, d, _ in ran] == sorted(d for _, d, _ in ran)
    assert all(at >= d for _, d, at in ran)


@pytest.mark.parametrize("timerfd", MODES)
def test_sends_due_together_share_one_wake_up_in_the_order_added(timerfd):
    _needs(timerfd)

    async def go():
        pacer = Pacer(timerfd=timerfd, slack_s=0.001)
        deadline = now() + 0.02
        ran = await _collect(pacer, [deadline] * 5)
        pacer.close()
        return ran, pacer.wakeups

    ran, wakeups = asyncio.run(go())
    assert [k for k, _, _ in ran] == [0, 1, 2, 3, 4]
    assert wakeups == 1


def test_a_failing_callback_does_not_stop_the_others():
    async def go():
        loop = asyncio.get_running_loop()
        errors = []
        loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx["exception"]))
        pacer = Pacer()
        deadline = now() + 0.005
        pacer.call_at(deadline, lambda: 1 / 0)
        ran = await _collect(pacer, [deadline, deadline])
        pacer.close()
        return ran, errors

    ran, errors = asyncio.run(go())
    assert len(ran) == 2
    assert [type(e) for e in errors] == [ZeroDivisionError]


def test_a_closed_pacer_forgets_pending_calls_and_refuses_new_ones():
    async def go():
        pacer = Pacer()
        ran = []
        pacer.call_at(now() + 0.01, ran.append, 1)
        assert len(pacer) == 1 and pacer.next_deadline() is not None
        pacer.close()
        await asyncio.sleep(0.03)
        with pytest.raises(RuntimeError):
            pacer.call_at(now(), ran.append, 2)
        return ran

    assert asyncio.run(go()) == []


def test_sleep_until_returns_at_once_for_a_past_deadline_and_after_a_future_one():
    async def go():
        await sleep_until(now() - 1.0)
        deadline = now() + 0.01
        await sleep_until(deadline)
        return now() - deadline

    assert asyncio.run(go()) >= 0.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux clock identity")
def test_perf_counter_is_the_timerfd_clock_on_linux():
    assert pacer_mod.perf_counter_is_monotonic()
    assert time.get_clock_info("perf_counter").implementation == "clock_gettime(CLOCK_MONOTONIC)"


# -- typed record buffers ------------------------------------------------------------------
def _row(**over) -> tuple:
    base = dict.fromkeys(COLUMNS)
    base.update(
        req_id=7, session_id="s", turn=2, intended_s=0.5, end_s=1.25,
        chunk_times_s=[0.75, 1.0], chunk_chars=[3, 4], chunk_tokens=[1, 2], status=200,
        ok=True, finish_reason="length", dropped=False, late=False, lag_s=0.001,
        input_tokens=12, output_tokens_target=3, attempts=1,
    )  # fmt: skip
    base.update(over)
    return tuple(base[c] for c in COLUMNS)


def test_typed_buffers_round_trip_values_and_nulls_like_a_plain_frame():
    rows = [
        _row(),
        _row(req_id=8, session_id=None, turn=None, status=None, ok=False, error_kind="client",
             error="open-file limit reached", chunk_times_s=[], chunk_chars=[], chunk_tokens=[],
             oversized=True),
        _row(req_id=9, chunk_times_s=None, lag_s=None, oversized=False, attempts=0),
    ]  # fmt: skip
    got = records_frame(rows)
    want = pl.DataFrame([dict(zip(COLUMNS, r, strict=True)) for r in rows], schema=RECORD_SCHEMA)
    assert got.schema == want.schema
    assert got.to_dicts() == want.to_dicts()


def test_a_row_shorter_than_the_schema_gets_nulls_for_the_missing_last_columns():
    full = _row()
    got = records_frame([full[:-1]])
    assert got.row(0)[:-1] == records_frame([full]).row(0)[:-1]
    assert got.row(0)[-1] is None


def test_take_hands_off_the_columns_and_starts_empty_ones():
    buf = RecordBuffer()
    buf.add(_row())
    buf.add(_row(req_id=8))
    cols, n = buf.take()
    assert n == 2 and len(buf) == 0
    buf.add(_row(req_id=9))
    assert columns_table(cols, n).column("req_id").to_pylist() == [7, 8]
    assert len(buf) == 1


def test_writer_names_parts_with_its_prefix_and_read_records_finds_them(tmp_path):
    writer = RecordWriter(tmp_path / "records", prefix="w03")
    writer.add(_row())
    writer.flush()
    writer.add(_row(req_id=3))
    writer.close()
    names = sorted(p.name for p in (tmp_path / "records").iterdir())
    assert names == ["w03-00000.parquet", "w03-00001.parquet"]
    assert writer.written == 2
    assert read_records(tmp_path)["req_id"].to_list() == [3, 7]


# -- the client's own limits ---------------------------------------------------------------
def test_client_reason_finds_fd_and_port_exhaustion_behind_wrappers():
    emfile = OSError(errno.EMFILE, "Too many open files")
    assert client_reason(emfile) == "open-file limit reached"
    try:
        try:
            raise emfile
        except OSError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert client_reason(outer) == "open-file limit reached"
    assert client_reason(OSError(errno.EADDRNOTAVAIL, "x")) == "local ports exhausted"
    assert client_reason(ConnectionRefusedError(errno.ECONNREFUSED, "refused")) is None


def test_socket_budget_is_what_the_open_file_limit_grants():
    assert socket_budget(10) == 10
    assert 1 <= socket_budget(10**9) < 10**9


def test_saturation_keeps_the_first_reason():
    stats = LiveStats()
    stats.saturated("open-file limit reached")
    stats.saturated(SATURATED_BEHIND)
    assert stats.client_saturated == "open-file limit reached"


def _client() -> ReplayClient:
    plan = Plan(
        req_id=[0], intended_s=[0.0], bodies=[b"{}"], input_tokens=[1], prompt_tokens_client=[1],
        output_tokens_target=[1], session_id=[None], turn=[None], follows=[-1], think_s=[None],
    )  # fmt: skip
    return ReplayClient(plan, ClientOptions(url="http://127.0.0.1:9"), writer=None)  # type: ignore[arg-type]


def test_a_connect_timeout_is_the_clients_only_while_it_is_behind_schedule():
    timeout = aiohttp.ConnectionTimeoutError("Connection timeout to host http://127.0.0.1:9")
    client = _client()
    r = _Attempt(0, 0.0, 0.0)
    client._timed_out(r, timeout)
    assert r.error_kind == "timeout" and client.stats.client_saturated is None

    client._behind_at = 0.5  # a send left the pacer > BEHIND_S late after this one was sent
    r = _Attempt(0, 0.0, 0.0)
    r.sent = 0.2
    client._timed_out(r, timeout)
    assert r.error_kind == "client"
    assert client.stats.client_saturated == SATURATED_BEHIND

    r = _Attempt(0, 0.0, 0.0)
    r.status = 200  # a read timeout mid-stream stays the server's
    client._timed_out(r, TimeoutError())
    assert r.error_kind == "timeout"


def test_a_bug_escaping_a_request_ends_the_run_with_its_error(instant_server, tmp_path):
    server = instant_server()
    plan = Plan(
        req_id=[0, 1], intended_s=[0.0, 0.01], bodies=[b"{}"] * 2, input_tokens=[1] * 2,
        prompt_tokens_client=[1] * 2, output_tokens_target=[1] * 2, session_id=[None] * 2,
        turn=[None] * 2, follows=[-1] * 2, think_s=[None] * 2,
    )  # fmt: skip

    class Broken(RecordWriter):
        def add(self, row: tuple) -> None:
            raise ValueError("broken writer")

    client = ReplayClient(plan, ClientOptions(url=server.base_url), Broken(tmp_path / "records"))
    with pytest.raises(ValueError, match="broken writer"):
        asyncio.run(asyncio.wait_for(client.run(), 30))
