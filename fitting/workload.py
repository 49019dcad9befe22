"""Fit a whole workload: a canonical ``requests`` table in, a `WorkloadSpec` (plus every
intermediate result, for the report and for notebooks) out.

Steps: arrival renewal fits (with timestamp-grid detection) → rate curve and burst regime
(the ``modulated`` model synth uses by default) → 10-minute window fits → token lengths with
dependence and load coupling → sessions and prefix sharing where the source has them →
per-group specs with ``by``. Each step's result object keeps its diagnostics.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from burstlab import __version__, traces
from burstlab.errors import FitError, InputError, SchemaError
from burstlab.fitting.analytics import Burstiness, analyse
from burstlab.fitting.arrivals import ArrivalFit, fit_arrivals
from burstlab.fitting.choice import ArrivalChoice, choose_arrival_model
from burstlab.fitting.lengths import LengthsFit, fit_lengths
from burstlab.fitting.modulation import ModulationFit, fit_modulation
from burstlab.fitting.prefix import fit_prefix, prefix_note
from burstlab.fitting.select import audit
from burstlab.fitting.sessions import SessionFit, fit_sessions
from burstlab.results import Result, Summary
from burstlab.spec import GroupSpec, SourceFingerprint, WorkloadSpec

#: A group (``by``) needs this many requests to get its own spec.
MIN_GROUP_ROWS = 200
#: The burst regime needs this many burst windows; shorter traces stay renewal.
MIN_BURST_WINDOWS = 20


@dataclass
class WorkloadFit(Result):
    """Everything fitted on one table; ``spec`` is what synth consumes.

    ``summary()`` shows every candidate table with its diagnostics (the arrival families, the
    burst regimes, the arrival-model choice, the length families) and the spec's notes;
    ``table()`` is the inter-arrival candidates; ``to_dict()`` the spec document;
    ``report(path)`` writes the HTML report with charts."""

    spec: WorkloadSpec
    arrivals: ArrivalFit
    modulation: ModulationFit | None
    lengths: LengthsFit | None
    burstiness: Burstiness
    sessions: SessionFit | None = None
    groups: dict[str, WorkloadFit] = field(default_factory=dict)
    arrival_s: np.ndarray | None = None  # sorted arrival times, for the report
    choice: ArrivalChoice | None = None  # the audit of the arrival-model choice
    rows: pl.DataFrame | None = None  # the fitted rows (after `where`), for the report

    def table(self) -> pl.DataFrame:
        return self.arrivals.table()

    def to_dict(self) -> dict[str, Any]:
        return self.spec.to_dict()

    def summary(self) -> Summary:
        src = self.spec.source
        s = Summary(
            f"fit of {src.source}: {src.rows:,} requests over {src.duration_s:,.0f} s, "
            f"arrival model {self.spec.arrivals.model}"
        )
        s.add("inter-arrival candidates", audit(self.arrivals.table()))
        if self.modulation is not None:
            s.add(
                "burst regime candidates",
                self.modulation.table().select("regime", "bic", "idc_rms_log_error", "chosen"),
            )
        if self.choice is not None:
            s.add("arrival model candidates (gap KS + dispersion error)", self.choice.candidates)
        if self.lengths is not None:
            for part in (self.lengths.input, self.lengths.output):
                s.add(f"{part.column} candidates", audit(part.table()))
        s.notes.extend(self.spec.notes)
        return s

    def report(self, path: str | Path) -> Path:
        """Write the HTML report (candidates, Q-Q, dispersion, rate and length charts)."""
        from burstlab.fitting.report import write_report  # altair: only when a report is asked

        return write_report(self, path)


def fingerprint(df: pl.DataFrame) -> str:
    """SHA-256 of arrival_s (float64), input_tokens and output_tokens (int64) in arrival order."""
    h = hashlib.sha256()
    for col, dtype in (("arrival_s", np.float64), ("input_tokens", np.int64)):
        h.update(np.ascontiguousarray(df[col].to_numpy(), dtype=dtype).tobytes())
    h.update(np.ascontiguousarray(df["output_tokens"].to_numpy(), dtype=np.int64).tobytes())
    return h.hexdigest()


def fit(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    source: str | None = None,
    where: str | None = None,
    by: str | None = None,
    window: tuple[float, float] | None = None,
    gof: bool = False,
    seed: int = 0,
    modulation: bool = True,
    _group: bool = False,
) -> WorkloadFit:
    """Fit arrivals, burst regime, lengths, sessions and prefixes of a ``requests`` table.

    ``source``: dataset id for the fingerprint (default: the table's ``source`` column).
    ``where``: SQL condition applied first; ``window``: (start, end) trace seconds, only the
    rows arriving in [start, end) (times are not rebased). ``by``: also fit one spec per value of this
    column (groups with ≥ `MIN_GROUP_ROWS` rows; weights are request shares). ``gof``: add
    parametric-bootstrap p-values to the arrival candidates (slow).
    """
    lf = traces.select(frame, where=where, window=window)
    names = lf.collect_schema().names()
    if "arrival_s" not in names:
        raise SchemaError(f"fitting needs a requests table with arrival_s; found {names}")
    df = lf.sort("arrival_s").collect()
    missing = df["arrival_s"].null_count()
    if missing:
        raise InputError(None, f"{missing} rows have no arrival time", field="arrival_s")
    if df.height < 10:
        raise FitError(f"need at least 10 requests to fit a workload, found {df.height}")
    t = df["arrival_s"].to_numpy().astype(np.float64)
    span = float(t[-1] - t[0])
    if span > 0 and not math.isfinite(df.height / span):  # a denormal span: 10 / 1e-316 = inf
        raise FitError(
            f"the {df.height} arrivals span {span:g} s: a rate of {df.height} per {span:g} s "
            "is beyond the float range (are the timestamps in seconds?)"
        )
    src = source or (str(df["source"][0]) if "source" in df.columns else "unknown")
    has_lengths = {"input_tokens", "output_tokens"} <= set(df.columns)
    lengths = fit_lengths(df) if has_lengths else None  # first: it fails fast (all failed …)
    arrivals = fit_arrivals(t, gof=gof, seed=seed)
    burst = analyse(t, None if _group else "all")
    mod = None
    choice = None
    spec_arrivals = arrivals.to_spec()
    spec_arrivals.windows = burst.windows
    notes = list(arrivals.notes)
    duration = float(t[-1] - t[0])
    if modulation and duration >= MIN_BURST_WINDOWS * 5.0:
        try:
            mod = fit_modulation(t, resolution_s=arrivals.resolution.resolution_s, seed=seed)
        except FitError as exc:  # too few windows or gaps for a regime: the renewal model stays
            notes.append(f"no burst regime: {exc}")
            mod = None
        if mod is not None and duration / mod.window_s >= MIN_BURST_WINDOWS:
            spec_arrivals = mod.apply(spec_arrivals)
            choice = choose_arrival_model(t, arrivals, mod, seed=seed)
            # the regime stays in the spec whichever model wins, for anyone who asks for it
            spec_arrivals.model = choice.model
            spec_arrivals.gap_law = choice.gap_law
            if choice.model == "modulated":
                spec_arrivals.gap_shape = choice.gap_shape
            notes.append(choice.note())
        else:
            mod = None
    sessions = fit_sessions(df)
    prefix = fit_prefix(df)
    if prefix is not None:
        notes.append(prefix_note(prefix))
    fp = SourceFingerprint(
        source=src,
        rows=df.height,
        duration_s=duration,
        rate_per_s=df.height / duration if duration > 0 else float("nan"),
        sha256=fingerprint(df) if has_lengths else None,
        table="requests",
        where=where,
        by=by,
        window=[float(t[0]), float(t[-1])],
    )
    spec = WorkloadSpec(
        source=fp,
        arrivals=spec_arrivals,
        lengths=lengths.to_spec() if lengths else None,
        sessions=sessions.to_spec() if sessions else None,
        prefix=prefix,
        notes=notes + (lengths.input.notes + lengths.output.notes if lengths else []),
        created_by=f"burstlab {__version__}",
    )
    result = WorkloadFit(
        spec, arrivals, mod, lengths, burst, sessions, arrival_s=t, rows=df, choice=choice
    )
    if by is not None:
        if by not in df.columns:
            raise SchemaError(f"cannot group by {by!r}: the table has columns {df.columns}")
        parts = df.partition_by(by, as_dict=True)
        groups = []
        for key, part in sorted(parts.items(), key=lambda kv: str(kv[0])):
            if part.height < MIN_GROUP_ROWS:
                spec.notes.append(f"group {key[0]!r}: {part.height} rows, too few for a spec")
                continue
            try:
                sub = fit(part, source=src, gof=gof, seed=seed, modulation=modulation, _group=True)
            except FitError as exc:  # one group that cannot carry a model does not sink the rest
                spec.notes.append(f"group {key[0]!r}: not fitted ({exc})")
                continue
            sub.spec.source.where = f"{by} = {key[0]!r}" + (f" AND ({where})" if where else "")
            result.groups[str(key[0])] = sub
            groups.append(GroupSpec(str(key[0]), part.height, sub.spec, key=by))
        total = sum(g.weight for g in groups)
        for g in groups:
            g.weight = g.weight / total
        spec.groups = groups or None
    spec.validate()
    return result
