"""Many hosts through Ray: the workers of replay/workers.py as Ray actors, one per shard.

Ray is the distributed engine here (placement, transport, failure detection); burstlab adds
only what a timed load needs on top of it:

- Planning is the same as `run_workers`: the driver builds every request body once and
  `shard_indices` deals the plan out with sessions kept whole. Each shard goes to one actor
  (``num_cpus=1``) placed by a placement group: STRICT_SPREAD (one actor per node) when the
  cluster has at least as many nodes as shards, else SPREAD; or the strategy given.
- One start instant on the wall clock. Monotonic clocks of different hosts share no zero, so
  the driver measures each actor's wall-clock offset first: CLOCK_ROUNDS round trips of
  ``actor.clock()``; for each, offset = actor ``time.time()`` − midpoint of the driver's send
  and receive; the round with the shortest round trip is kept (`estimate_offset`). Its error is
  at most half that round trip (plus any drift during the lead). The driver then picks
  ``start_unix = time.time() + lead`` on its own clock; actor K starts at its wall-clock
  reading ``start_unix + offset_K``, converted once into its own `time.perf_counter` instant,
  and runs a `SharedStartClient` from it. Records are on each worker's run clock, whose zero
  is that one instant.
- Records: each actor writes its parts (``wKKK-part-NNNNN.parquet``, ``worker_id`` = K) to a
  temporary folder on its own host and returns them as Parquet bytes when done; the driver
  writes them atomically into the run's records folder under the same names. No shared file
  system is needed. An actor that dies loses its records (they travel at the end).
- Per worker the driver keeps the node it ran on, its clock offset and that round trip, and
  from the records the schedule-lag statistics per node (`RayInfo`, written to run.json).

Every host needs the same burstlab (and Python) installed as the driver; Ray itself comes from
the optional extra ``burstlab[ray]``. `ray` is imported only here, and only when called.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import importlib.util
import io
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from burstlab.atomic import staged_file
from burstlab.engines import optional_import
from burstlab.errors import MissingExtraError, ReplayError, UsageError
from burstlab.replay.client import ClientOptions, LiveStats, Plan, run_async
from burstlab.replay.schedule import now
from burstlab.replay.summary import WorkerOutcome
from burstlab.replay.workers import (
    PART_PREFIX,
    TICK_S,
    ParallelRun,
    SharedStartClient,
    WorkerWriter,
    aggregate,
    shard_indices,
    shard_plan,
)

#: What needs the optional package ray (extra `ray`).
RAY_PURPOSE = "multi-host replay"
#: Seconds between picking the start instant and it: every actor has been told by then.
START_LEAD_S = 2.0
#: Round trips per actor for its clock offset (the shortest one is kept).
CLOCK_ROUNDS = 7
#: Longest wait for the placement group and the actors to be ready, seconds.
READY_TIMEOUT_S = 120.0
#: Seconds between an actor's checks for a stop request while it runs.
STOP_POLL_S = 0.05
#: Placement strategies a caller may name ("auto": STRICT_SPREAD when there are enough nodes).
PLACEMENTS = ("auto", "STRICT_SPREAD", "SPREAD", "PACK", "STRICT_PACK")


def require_ray() -> None:
    """MissingExtraError unless Ray is installed, without importing it. A real package: a
    folder named ``ray`` on the import path (a namespace package, e.g. tests/ray) is not."""
    try:
        spec = importlib.util.find_spec("ray")
    except (ImportError, ValueError):  # a broken or half-removed install
        spec = None
    if spec is None or spec.origin is None:
        raise MissingExtraError("ray", "ray", RAY_PURPOSE)


def import_ray() -> Any:
    """The `ray` module, or MissingExtraError naming the extra ``ray``."""
    require_ray()
    return optional_import("ray", "ray", RAY_PURPOSE)


def estimate_offset(samples: Sequence[tuple[float, float, float]]) -> tuple[float, float]:
    """(offset_s, rtt_s) of a remote clock from round trips ``(sent, remote, received)``: the
    driver's wall-clock reading when it asked, the remote's reading, the driver's when the
    answer came (seconds). offset = remote − midpoint of sent and received, from the round
    with the shortest round trip (its error is at most half of it); remote ≈ local + offset.
    UsageError for no samples or a round that ends before it starts."""
    if not samples:
        raise UsageError("expected at least one round trip, found none", param="samples")
    best: tuple[float, float] | None = None
    for sent, remote, received in samples:
        rtt = received - sent
        if rtt < 0:
            raise UsageError(
                f"a round trip ends before it starts ({sent} > {received})", param="samples"
            )
        if best is None or rtt < best[1]:
            best = (remote - (sent + received) / 2, rtt)
    assert best is not None
    return best


def check_placement(placement: str) -> str:
    """`placement` as one of PLACEMENTS (case-insensitive); UsageError otherwise."""
    upper = placement.strip().upper()
    if upper == "AUTO":
        return "auto"
    if upper not in PLACEMENTS:
        raise UsageError(
            f"expected one of {', '.join(PLACEMENTS)}, found {placement!r}", param="placement"
        )
    return upper


def check_address(address: object, param: str = "ray") -> str:
    """A Ray address: "local" (start a cluster in this process), "auto" (the cluster this
    host belongs to) or ``HOST:PORT`` / ``ray://HOST:PORT``; UsageError otherwise."""
    if not isinstance(address, str) or not address.strip():
        raise UsageError(
            f"expected local, auto or a cluster address HOST:PORT, found {address!r}", param=param
        )
    text = address.strip()
    if text.lower() in ("local", "auto"):
        return text.lower()
    host, sep, port = text.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UsageError(
            f"expected local, auto or a cluster address HOST:PORT, found {address!r}", param=param
        )
    return text


@dataclass
class RayWorker:
    """One actor of a Ray run: the node it ran on (Ray node id and IP), its wall-clock offset
    from the driver (`offset_s`: actor − driver, seconds) and the round trip it was measured
    with (`rtt_s`), and how long before the start instant it was told to start (`armed_s`,
    seconds on its own clock; negative: it was told late and started late)."""

    id: int
    node_id: str
    node_ip: str
    offset_s: float
    rtt_s: float
    armed_s: float | None = None


@dataclass
class RayInfo:
    """What a Ray run adds to run.json: the address asked for, the cluster's alive nodes, the
    placement used, each worker (`RayWorker`), and the schedule lag of the records per node
    (`lag_by_node`: node id → n, mean, p50, p99, max, seconds)."""

    address: str
    nodes: int
    placement: str
    lead_s: float
    workers: list[RayWorker] = field(default_factory=list)
    lag_by_node: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RayRun(ParallelRun):
    """A `ParallelRun` sent by Ray actors, with what Ray adds (`ray`)."""

    ray: RayInfo | None = None


# -- the actor ------------------------------------------------------------------------------
class ReplayActor:
    """One shard's sender, as a Ray actor (made remote by `run_ray_workers`, which gives it
    threads so that `stats` and `stop` answer while `run` sends)."""

    def __init__(
        self, worker_id: int, plan: Plan, options: ClientOptions, flush_every: int, flush_s: float
    ) -> None:
        self.worker_id = worker_id
        self.folder = Path(tempfile.mkdtemp(prefix=f"burstlab-ray-w{worker_id:03d}-"))
        self.writer = WorkerWriter(
            self.folder, worker_id=worker_id, prefix=PART_PREFIX.format(worker_id),
            flush_every=flush_every, flush_s=flush_s,
        )  # fmt: skip
        self.client = SharedStartClient(plan, options, self.writer)
        self._stop = threading.Event()
        self._latest: dict[str, Any] = dataclasses.asdict(self.client.stats)
        self.client.on_tick = self._tick

    def _tick(self, stats: LiveStats) -> None:
        self._latest = dataclasses.asdict(stats)

    def where(self) -> tuple[str, str]:
        """(Ray node id, node IP) of this actor."""
        ray = import_ray()
        ctx = ray.get_runtime_context()
        return str(ctx.get_node_id()), str(ray.util.get_node_ip_address())

    def clock(self) -> float:
        """This host's wall clock, seconds since the epoch."""
        return time.time()

    def stats(self) -> dict[str, Any]:
        """The latest LiveStats snapshot (a dict)."""
        return self._latest

    def stop(self) -> None:
        """Ask `run` to stop: in-flight requests are recorded as cancelled."""
        self._stop.set()

    def run(self, start_local_unix: float) -> dict[str, Any]:
        """Send the shard from `start_local_unix` (this host's wall clock, seconds) and return
        stats, whether it was stopped, how long before the start it was armed (seconds), and the
        record parts as (name, Parquet bytes)."""
        armed = start_local_unix - time.time()
        t0 = now() + armed
        try:
            stopped = run_async(self._send(t0))
            parts = [
                (p.name, p.read_bytes())
                for p in sorted(self.folder.glob("*.parquet"))
                if not p.name.startswith(".")
            ]
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
        return {
            "stats": dataclasses.asdict(self.client.stats),
            "stopped": stopped,
            "armed_s": armed,
            "parts": parts,
        }

    async def _send(self, t0: float) -> bool:
        """Run the client from `t0` (a `now()` instant) until done or stopped; True if stopped."""
        if self._stop.is_set():
            self.writer.close()
            return True
        self.client.start_at(t0)
        task = asyncio.get_running_loop().create_task(self.client.run())
        stopped = False
        while not task.done():
            await asyncio.wait({task}, timeout=STOP_POLL_S)
            if not task.done() and not stopped and self._stop.is_set():
                stopped = True
                task.cancel()
        try:
            task.result()
        except asyncio.CancelledError:
            stopped = True
        return stopped


# -- the driver -----------------------------------------------------------------------------
def _connect(ray: Any, address: str) -> bool:
    """Connect this process to Ray (unless it already is); True when this call did."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if address == "local":
        ray.init(include_dashboard=False, **kwargs)
    else:
        ray.init(address=address, **kwargs)
    return True


def _lag_by_node(frames: dict[int, Any], node_of: dict[int, str]) -> dict[str, dict[str, float]]:
    """Schedule-lag statistics (seconds) of each node's records: n, mean, p50, p99, max."""
    import polars as pl

    by_node: dict[str, list[Any]] = {}
    for k, frame in frames.items():
        by_node.setdefault(node_of[k], []).append(frame.select("lag_s"))
    out: dict[str, dict[str, float]] = {}
    for node, parts in sorted(by_node.items()):
        lag = pl.concat(parts)["lag_s"].drop_nulls()
        if lag.len() == 0:
            out[node] = {"n": 0}
            continue
        out[node] = {
            "n": int(lag.len()),
            "mean": float(lag.mean()),  # type: ignore[arg-type]
            "p50": float(lag.quantile(0.5)),  # type: ignore[arg-type]
            "p99": float(lag.quantile(0.99)),  # type: ignore[arg-type]
            "max": float(lag.max()),  # type: ignore[arg-type]
        }
    return out


def _one_line(exc: BaseException) -> str:
    """`exc` in one line; for a Ray task error, the exception the actor raised."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_ray_workers(
    plan: Plan,
    options: ClientOptions,
    folder: str | Path,
    n: int,
    address: str = "local",
    *,
    placement: str = "auto",
    lead_s: float = START_LEAD_S,
    flush_every: int = 2000,
    flush_s: float = 2.0,
    on_tick: Callable[[LiveStats], None] | None = None,
) -> RayRun:
    """Send `plan` from `n` Ray actors (see the module docstring); records land in `folder`
    as each worker's parts. `address`: "local", "auto" or a cluster address (when this process
    is already connected to Ray, that connection is used). `lead_s`: seconds from picking the
    start instant to it. Returns when every actor has ended (or died)."""
    address = check_address(address, param="address")
    placement = check_placement(placement)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"expected a whole number ≥ 1, found {n!r}", param="n")
    if not 0 < lead_s < 600:
        raise UsageError(f"must be seconds in (0, 600), found {lead_s}", param="lead_s")
    ray = import_ray()
    groups = importlib.import_module("ray.util.placement_group")
    strategies = importlib.import_module("ray.util.scheduling_strategies")
    placement_group, remove_placement_group = groups.placement_group, groups.remove_placement_group
    PlacementGroupSchedulingStrategy = strategies.PlacementGroupSchedulingStrategy

    shards = [s for s in shard_indices(plan, n) if s]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    started_here = _connect(ray, address)
    pg = None
    actors: list[Any] = []
    workers: list[RayWorker] = []
    results: dict[int, dict[str, Any]] = {}
    failures: dict[int, str] = {}
    latest: dict[int, dict[str, Any]] = {}
    interrupts = 0
    try:
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        cpus = float(ray.cluster_resources().get("CPU", 0))
        if cpus < len(shards):
            raise ReplayError(
                f"the Ray cluster has {cpus:g} CPUs on {nodes} nodes; {len(shards)} workers need "
                "one each: ask for fewer workers or add nodes"
            )
        strategy = placement
        if strategy == "auto":
            strategy = "STRICT_SPREAD" if nodes >= len(shards) else "SPREAD"
        pg = placement_group([{"CPU": 1}] * len(shards), strategy=strategy)
        ready, _ = ray.wait([pg.ready()], timeout=READY_TIMEOUT_S)
        if not ready:
            raise ReplayError(
                f"the Ray cluster ({nodes} nodes) cannot place {len(shards)} workers of one CPU "
                f"each ({strategy}) within {READY_TIMEOUT_S:.0f} s"
            )
        remote = ray.remote(num_cpus=1, max_concurrency=4, max_restarts=0)(ReplayActor)
        for k, positions in enumerate(shards):
            strat = PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=k)
            actors.append(
                remote.options(scheduling_strategy=strat, name=None).remote(
                    k, shard_plan(plan, positions), options, flush_every, flush_s
                )
            )
        try:
            where = ray.get([a.where.remote() for a in actors], timeout=READY_TIMEOUT_S)
        except Exception as exc:
            raise ReplayError(f"a Ray worker did not start: {_one_line(exc)}") from None
        for k, a in enumerate(actors):
            samples = []
            for _ in range(CLOCK_ROUNDS):
                sent = time.time()
                remote_t = ray.get(a.clock.remote())
                samples.append((sent, remote_t, time.time()))
            offset, rtt = estimate_offset(samples)
            workers.append(RayWorker(k, where[k][0], where[k][1], offset, rtt))
        start_unix = time.time() + lead_s
        runs = {a.run.remote(start_unix + w.offset_s): k for k, (a, w) in
                enumerate(zip(actors, workers, strict=True))}  # fmt: skip
        pending = list(runs)
        last = 0.0
        while pending:
            try:
                done, pending = ray.wait(pending, num_returns=len(pending), timeout=TICK_S)
            except KeyboardInterrupt:
                # the first Ctrl-C stops the actors (in-flight requests recorded as cancelled,
                # records returned); a second one leaves them (their records are lost)
                interrupts += 1
                if interrupts >= 2:
                    break
                for a in actors:
                    with contextlib.suppress(Exception):
                        a.stop.remote()
                continue
            for ref in done:
                k = runs[ref]
                try:
                    results[k] = ray.get(ref)
                    latest[k] = results[k]["stats"]
                except Exception as exc:  # the actor died or raised
                    failures[k] = _one_line(exc)
            if on_tick is not None and pending and time.monotonic() - last >= TICK_S:
                last = time.monotonic()
                live = {runs[r] for r in pending}
                with contextlib.suppress(Exception):
                    snaps = ray.get([actors[k].stats.remote() for k in live], timeout=TICK_S)
                    latest.update(dict(zip(live, snaps, strict=True)))
                on_tick(aggregate(list(latest.values())))
    finally:
        for a in actors:
            with contextlib.suppress(Exception):
                ray.kill(a)
        if pg is not None:
            with contextlib.suppress(Exception):
                remove_placement_group(pg)
        if started_here:
            ray.shutdown()
    import polars as pl

    frames: dict[int, Any] = {}
    outcomes: list[WorkerOutcome] = []
    for k, positions in enumerate(shards):
        result = results.get(k)
        if result is not None:
            workers[k].armed_s = result["armed_s"]
            for name, data in result["parts"]:
                with staged_file(folder / name) as tmp:
                    tmp.write_bytes(data)
            if result["parts"]:
                frames[k] = pl.concat(
                    [pl.read_parquet(io.BytesIO(data)) for _, data in result["parts"]],
                    how="diagonal_relaxed",
                )
            text = "interrupted" if result["stopped"] else "ok"
        else:
            text = f"lost on Ray node {workers[k].node_ip}: {failures.get(k, 'no result')}"
        outcomes.append(WorkerOutcome(id=k, planned=len(positions), requests=0, exit=text))
    stats = aggregate([latest[k] for k in sorted(latest)])
    if on_tick is not None:
        on_tick(stats)
    reasons = [
        f"client process {k}: {snap['client_saturated']}"
        for k, snap in sorted(latest.items())
        if snap.get("client_saturated")
    ]
    info = RayInfo(
        address=address, nodes=nodes, placement=strategy, lead_s=lead_s, workers=workers,
        lag_by_node=_lag_by_node(frames, {w.id: w.node_id for w in workers}),
    )  # fmt: skip
    return RayRun(
        stats=stats,
        workers=outcomes,
        reasons=reasons,
        client_errors=int(getattr(stats, "client_errors", 0) or 0),
        interrupted=bool(interrupts) or any(o.exit == "interrupted" for o in outcomes),
        t0_unix=start_unix,
        ray=info,
    )
