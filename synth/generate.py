"""WorkloadSpec + seed + duration → a canonical `requests` table (the one generation entry).

Knobs, all explicit so a run is reproducible from (spec sha, seed, knobs):
- `duration_s`: length of the produced workload (seconds).
- `rate_scale`: multiplies the intensity (rate curve × regime levels), so a 2× workload has
  the same burst *structure* at twice the load — not the same trace played twice as fast.
- `speedup`: compresses time: the workload of `duration_s · speedup` seconds is played in
  `duration_s` (every gap ÷ speedup, bursts get shorter too). Use it when you want exactly
  that, e.g. to squeeze a day's profile into an hour.
- `group_mix`: new shares of the spec's groups (ServeGen-style mixtures); each group stays its
  own point process, so there is no fixed count per window.
- `failures`: mark the source's share of requests failed (output 0).

Prefix sharing is not a knob: when the spec (or a group's spec) carries a prefix model
(`PrefixSpec.depth` and `reuse_gap`, fitted from `hash_ids`), every generated request gets
Mooncake-style `hash_ids` drawn from it (synth/prefix.py), on a random stream of its own so
the other columns are the same with or without it. `rate_scale` keeps the fitted reuse gaps in
seconds (more users, same think times); `speedup` compresses them with everything else.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, get_args

import numpy as np
import polars as pl

from burstlab.errors import SpecError, UsageError
from burstlab.results import Result, Summary
from burstlab.scalars import integer
from burstlab.spec import ArrivalModel, GroupSpec, WorkloadSpec
from burstlab.synth.arrivals import arrival_times, check_count, mean_rate
from burstlab.synth.lengths import sample_lengths
from burstlab.synth.prefix import prefix_hash_ids
from burstlab.synth.sessions import SystemPrompts, session_requests
from burstlab.synth.table import requests_table


@dataclass(frozen=True)
class Workload(Result):
    """A generated workload and how it was made.

    `frame` is the canonical requests table (`source = "synth:<spec sha256[:12]>"`).
    `diagnostics`: requests generated vs expected from the spec's mean rate, realised rate,
    per-group counts — enough to see at a glance that the knobs did what was asked.
    """

    frame: pl.DataFrame
    spec_sha256: str
    seed: int
    duration_s: float
    rate_scale: float = 1.0
    speedup: float = 1.0
    group_mix: dict[str, float] | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """The `source` value of every row."""
        return synth_source(self.spec_sha256)

    def table(self) -> pl.DataFrame:
        """The generated requests (canonical ``requests`` table)."""
        return self.frame

    def to_dict(self) -> dict[str, Any]:
        return self.metadata()

    def summary(self) -> Summary:
        f = self.frame
        expected = self.diagnostics.get("expected_requests")
        s = Summary(
            f"{f.height:,} synthetic requests over {self.duration_s:,.0f} s "
            f"({f.height / self.duration_s:,.3g} req/s; seed {self.seed}, rate scale "
            f"{self.rate_scale:g}, speedup {self.speedup:g})"
        )
        lengths = f.select(
            pl.col("input_tokens").mean().alias("input mean"),
            pl.col("input_tokens").median().alias("input median"),
            pl.col("output_tokens").mean().alias("output mean"),
            pl.col("output_tokens").median().alias("output median"),
            pl.col("failed").sum().alias("failed"),
        )
        s.add("token lengths", lengths)
        if expected is not None:
            s.notes.append(f"expected from the spec's mean rate: {expected:,.0f} requests")
        s.notes.append(f"source {self.source} (spec sha256 {self.spec_sha256[:12]}…)")
        return s

    def metadata(self) -> dict[str, Any]:
        """Provenance for exported files (Parquet key-value metadata)."""
        return {
            "source": self.source,
            "spec_sha256": self.spec_sha256,
            "seed": self.seed,
            "duration_s": self.duration_s,
            "rate_scale": self.rate_scale,
            "speedup": self.speedup,
            "group_mix": self.group_mix,
            "rows": self.frame.height,
            "diagnostics": self.diagnostics,
        }


def _before(t: np.ndarray, duration_s: float) -> int:
    """How many of the sorted times `t` lie before `duration_s`: t ÷ speedup can round up
    onto the end of the window, which is open (arrivals lie in [0, duration_s))."""
    return t.size if t.size == 0 or t[-1] < duration_s else int(np.searchsorted(t, duration_s))


def synth_source(spec_sha256: str) -> str:
    """The canonical `source` id of rows generated from a spec."""
    return f"synth:{spec_sha256[:12]}"


def expected_rate(spec: WorkloadSpec) -> float:
    """Long-run mean arrival rate (requests/s) the spec implies before any rate scale."""
    return mean_rate(spec.arrivals)


def with_arrival_model(spec: WorkloadSpec, arrival_model: str) -> WorkloadSpec:
    """A copy of `spec` (and of each group's spec) whose arrivals use `arrival_model` instead of
    the one model selection chose: ``renewal`` (i.i.d. gaps), ``modulated`` (rate curve × burst
    regime) or ``windowed`` (the per-window fits).

    Why: the fit keeps every arrival model it estimated in the spec, and a user comparing them
    (or distrusting the choice) should not have to edit JSON. The copy has its own sha256, so
    generated rows say which variant made them. SpecError names what is missing when the spec
    never fitted that model (no rate curve, no windows); an unknown model is a UsageError."""
    if arrival_model not in get_args(ArrivalModel):
        raise UsageError(
            f"unknown arrival model {arrival_model!r}; "
            f"expected one of {', '.join(get_args(ArrivalModel))}",
            param="arrival_model",
        )
    needs = {"modulated": ("rate_curve", "a rate curve"), "windowed": ("windows", "windows")}

    def swap(s: WorkloadSpec, where: str) -> WorkloadSpec:
        attr, what = needs.get(arrival_model, (None, ""))
        if attr is not None and getattr(s.arrivals, attr) is None:
            raise SpecError(
                f"{where}: arrival model {arrival_model!r} needs {what}, and the spec has none"
            )
        groups = (
            [replace(g, spec=swap(g.spec, f"{where} group {g.name!r}")) for g in s.groups]
            if s.groups
            else s.groups
        )
        return replace(s, arrivals=replace(s.arrivals, model=arrival_model), groups=groups)

    return swap(spec, "spec")


def _positive(value: Any, param: str) -> float:
    """A knob that must be a finite number > 0 (seconds, a factor), as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise UsageError(f"expected a number, found {value!r}", param=param)
    x = float(value)
    if not (math.isfinite(x) and x > 0):
        raise UsageError(f"must be a finite number > 0, found {x:g}", param=param)
    return x


def _seed(value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise UsageError(f"expected an integer ≥ 0, found {value!r}", param="seed")
    if value < 0:
        raise UsageError(f"must be ≥ 0, found {value}", param="seed")
    return int(value)


def _mix(group_mix: Mapping[str, float], groups: list[GroupSpec]) -> dict[str, float]:
    """`group_mix` checked: known names, finite weights ≥ 0, at least one > 0."""
    if not isinstance(group_mix, Mapping):
        raise UsageError(
            f"expected a mapping of group name to weight, found {group_mix!r}", param="group_mix"
        )
    names = [g.name for g in groups]
    unknown = sorted(set(map(str, group_mix)) - set(names))
    if unknown:
        raise UsageError(
            f"names {unknown} not in the spec; expected some of {names}", param="group_mix"
        )
    mix: dict[str, float] = {}
    for name, weight in group_mix.items():
        ok = isinstance(weight, (int, float, np.integer, np.floating)) and not isinstance(
            weight, (bool, np.bool_)
        )
        if not (ok and math.isfinite(float(weight)) and float(weight) >= 0):
            raise UsageError(
                f"the weight of {name!r} must be a finite number ≥ 0, found {weight!r}",
                param="group_mix",
            )
        mix[str(name)] = float(weight)
    if not any(w > 0 for w in mix.values()):
        raise UsageError(f"no group has a weight > 0: {mix}", param="group_mix")
    return mix


def _one(
    spec: WorkloadSpec,
    rng: np.random.Generator,
    horizon_s: float,
    rate_scale: float,
    failures: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if spec.lengths is None:
        raise SpecError("spec has no length model (lengths); cannot generate requests")
    t = arrival_times(spec.arrivals, rng, horizon_s, rate_scale)
    ln = sample_lengths(rng, spec.lengths, t, failures=failures)
    return t, ln.input_tokens, ln.output_tokens, ln.failed


def generate(
    spec: WorkloadSpec,
    *,
    duration_s: float,
    seed: int = 0,
    rate_scale: float = 1.0,
    speedup: float = 1.0,
    group_mix: Mapping[str, float] | None = None,
    use_groups: bool | None = None,
    failures: bool = False,
    sessions: bool = False,
    prompts: SystemPrompts | None = None,
) -> Workload:
    """Generate `duration_s` seconds of requests from `spec` (same seed → identical table).

    With groups in the spec (and `use_groups` not False), every group is generated from its
    own spec at rate × (its mix share ÷ its fitted share) and the groups are merged; the
    group name fills `model` or `kind` when the groups split on that column. Otherwise the
    top-level arrivals and lengths are used. With `sessions`, requests are turns of
    multi-turn conversations with `session_id` and prefix `hash_ids` (synth/sessions.py;
    `prompts` adds a shared system-prompt pool); groups are not used then. Otherwise, when
    the spec has a prefix model, requests get `hash_ids` drawn from it (synth/prefix.py).
    """
    duration_s = _positive(duration_s, "duration_s")
    speedup = _positive(speedup, "speedup")
    rate_scale = _positive(rate_scale, "rate_scale")
    seed = _seed(seed)
    horizon = duration_s * speedup
    if not math.isfinite(horizon):
        raise UsageError(
            f"duration_s × speedup = {duration_s:g} × {speedup:g} is not a finite time",
            param="duration_s",
        )
    if isinstance(group_mix, Mapping) and not group_mix:
        group_mix = None  # an empty mix changes nothing
    grouped = bool(spec.groups) and use_groups is not False and not sessions
    if group_mix is not None and not grouped:
        why = "session workloads do not use groups" if sessions else "the spec's groups are off"
        raise UsageError(why if spec.groups else "the spec has no groups to mix", param="group_mix")
    expected = expected_rate(spec) * rate_scale * horizon
    check_count(expected)
    sha = spec.sha256()
    try:
        if sessions:
            frame, diagnostics = _session_frame(
                spec, sha, seed, horizon, rate_scale, speedup, duration_s, prompts
            )
        else:
            frame, diagnostics = _request_frame(
                spec,
                sha,
                seed,
                horizon,
                rate_scale,
                speedup,
                duration_s,
                group_mix,
                grouped,
                failures,
            )
    except MemoryError:
        raise UsageError(
            f"not enough memory for about {expected:.3g} requests; generate a shorter "
            "duration_s or a lower rate_scale",
            param="duration_s",
        ) from None
    diagnostics = {
        "requests": frame.height,
        "expected_requests": expected,
        "rate_per_s": frame.height / duration_s,
        **diagnostics,
    }
    return Workload(
        frame,
        sha,
        seed,
        duration_s,
        rate_scale,
        speedup,
        dict(group_mix) if group_mix else None,
        diagnostics,
    )


def _session_frame(
    spec: WorkloadSpec,
    sha: str,
    seed: int,
    horizon: float,
    rate_scale: float,
    speedup: float,
    duration_s: float,
    prompts: SystemPrompts | None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    cols = session_requests(
        spec, np.random.default_rng(seed), horizon, rate_scale=rate_scale, prompts=prompts
    )
    t = cols["arrival_s"] / speedup
    k = _before(t, duration_s)
    extra = {"session_id": cols["session_id"][:k], "hash_ids": cols["hash_ids"][:k]}
    frame = requests_table(
        synth_source(sha), t[:k], cols["input_tokens"][:k], cols["output_tokens"][:k], extra=extra
    )
    return frame, {"sessions": frame["session_id"].n_unique()}


def _request_frame(
    spec: WorkloadSpec,
    sha: str,
    seed: int,
    horizon: float,
    rate_scale: float,
    speedup: float,
    duration_s: float,
    group_mix: Mapping[str, float] | None,
    grouped: bool,
    failures: bool,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    groups = spec.groups if grouped else None
    parts: list[tuple[np.ndarray, ...]] = []
    labels: list[np.ndarray] = []
    counts: dict[str, int] = {}
    key: str | None = None
    if groups:
        mix = (
            _mix(group_mix, groups) if group_mix is not None else {g.name: g.weight for g in groups}
        )
        total = sum(mix.values())
        children = np.random.SeedSequence(seed).spawn(len(groups))
        for g, child in zip(groups, children, strict=True):
            share = mix.get(g.name, 0.0) / total if total > 0 else 0.0
            if share <= 0:
                continue
            scale = rate_scale * share / g.weight
            part = _one(g.spec, np.random.default_rng(child), horizon, scale, failures)
            parts.append(part)
            labels.append(np.full(part[0].size, g.name, dtype=object))
            counts[g.name] = int(part[0].size)
            key = g.key
    else:
        parts.append(_one(spec, np.random.default_rng(seed), horizon, rate_scale, failures))
    t, inp, out, failed = (np.concatenate([p[i] for p in parts]) for i in range(4))
    order = np.argsort(t, kind="stable") if len(parts) > 1 else slice(None)
    t_spec = t[order]  # seconds of the spec's clock (before the speedup)
    t = t_spec / speedup
    k = _before(t, duration_s)
    extra: dict[str, pl.Series] = {}
    if labels and key in ("model", "kind"):
        extra[key] = pl.Series(np.concatenate(labels)[order][:k], dtype=pl.String)
    names = np.concatenate(labels)[order][:k] if labels else None
    ids = _hash_ids(spec, groups, seed, t_spec[:k], inp[order][:k], names)
    if ids is not None:
        extra["hash_ids"] = ids
    frame = requests_table(
        synth_source(sha),
        t[:k],
        inp[order][:k],
        out[order][:k],
        failed=failed[order][:k],
        extra=extra,
    )
    diagnostics: dict[str, Any] = {"failed": int(failed.sum())}
    if ids is not None:
        diagnostics["prefix_blocks"] = integer(ids.list.len().sum(), "hash_ids")
    if counts:
        diagnostics["group_requests"] = counts
    return frame, diagnostics


#: Seeds the prefix stream apart from the arrivals and lengths (ASCII "pref").
PREFIX_STREAM = 0x70726566


def _hash_ids(
    spec: WorkloadSpec,
    groups: list[GroupSpec] | None,
    seed: int,
    t_s: np.ndarray,
    input_tokens: np.ndarray,
    names: np.ndarray | None,
) -> pl.Series | None:
    """`hash_ids` for sorted requests (arrivals `t_s` in the spec's seconds) from the spec's
    prefix model, or from each group's own over that group's rows (ids never shared between
    groups); None when no model applies. Its own random stream per (seed, group)."""
    models = [
        (i, g.name, g.spec.prefix)
        for i, g in enumerate(groups or [])
        if g.spec.prefix is not None and g.spec.prefix.generative()
    ]
    if names is None or not models:
        if spec.prefix is None or not spec.prefix.generative():
            return None
        rng = np.random.default_rng([seed, PREFIX_STREAM])
        return prefix_hash_ids(spec.prefix, rng, t_s, input_tokens)
    row_ids: list[pl.DataFrame] = []
    start = 0
    for i, name, prefix in models:
        rows = np.flatnonzero(names == name)
        if rows.size == 0:
            continue
        rng = np.random.default_rng([seed, PREFIX_STREAM, i])
        ids = prefix_hash_ids(prefix, rng, t_s[rows], input_tokens[rows], start_id=start)
        used = ids.explode().drop_nulls().to_numpy()
        start = int(used.max()) + 1 if used.size else start
        row_ids.append(pl.DataFrame({"_row": rows, "hash_ids": ids}))
    whole = pl.DataFrame({"_row": np.arange(t_s.size)})
    if row_ids:
        whole = whole.join(pl.concat(row_ids), on="_row", how="left")
    else:
        whole = whole.with_columns(pl.lit(None, dtype=pl.List(pl.Int64)).alias("hash_ids"))
    return whole.sort("_row")["hash_ids"]
