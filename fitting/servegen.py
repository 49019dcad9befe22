"""Import Alibaba ServeGen per-client window files as a workload spec with one group per client.

ServeGen publishes no requests, only per-client aggregates (traces/samples/servegen/
PROVENANCE.md): ``chunk-<i>-trace.csv`` (no header: window_start_s, rate, cv, pattern, shape,
scale per 10-minute window; an empty pattern is an inactive window) and
``chunk-<i>-dataset.json`` (per 6-hour window, token-length probability tables stored as Python
dict literals in strings, read with `ast.literal_eval`). The import maps them onto the spec:

- arrivals: model ``windowed`` — each window's rate and its given Gamma/Weibull gap law
  (method ``given``), plus the rate curve; ``renewal`` is the rate-weighted median shape of the
  client's dominant family, scaled to the mean rate;
- lengths: each 6-hour table weighted by the requests its window carries (Σ rate × 600 s of
  the 10-minute windows inside it), merged, and fitted like measured lengths.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from burstlab import distributions as dist
from burstlab.errors import InputError, UsageError
from burstlab.fitting.lengths import fit_counts
from burstlab.scalars import number
from burstlab.spec import (
    ArrivalSpec,
    Copula,
    Dependence,
    FamilyFit,
    GroupSpec,
    LengthSpec,
    RateCurve,
    SourceFingerprint,
    WindowFit,
    WorkloadSpec,
)

TRACE_WINDOW_S = 600.0
PATTERNS = {"Gamma": "gamma", "Weibull": "weibull"}
#: Input-length field per ServeGen category; multimodal counts text tokens only (see notes).
INPUT_FIELDS = ("input_tokens", "text_tokens")


def read_trace(path: str | Path) -> pl.DataFrame:
    """A ServeGen ``chunk-<i>-trace.csv`` as a frame; InputError names the bad line."""
    path = Path(path)
    rows = []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise InputError(path, f"cannot read ({exc.strerror})") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split(",")
        if len(parts) != 6:
            raise InputError(path, "wrong field count", line=i, expected=6, found=len(parts))
        start, rate, cv, pattern, shape, scale = parts
        try:
            row = {
                "window_start_s": float(start),
                "rate": float(rate),
                "cv": float(cv),
                "pattern": pattern or None,
                "shape": float(shape),
                "scale": float(scale),
            }
        except ValueError:
            raise InputError(
                path, "non-numeric field", line=i, expected="numbers", found=line
            ) from None
        if row["pattern"] is not None and row["pattern"] not in PATTERNS:
            raise InputError(
                path, "unknown pattern", line=i, expected=sorted(PATTERNS), found=pattern
            )
        rows.append(row)
    if not rows:
        raise InputError(path, "no windows", expected="≥ 1 line")
    return pl.DataFrame(
        rows,
        schema={
            "window_start_s": pl.Float64,
            "rate": pl.Float64,
            "cv": pl.Float64,
            "pattern": pl.String,
            "shape": pl.Float64,
            "scale": pl.Float64,
        },
    )


def read_dataset(path: str | Path) -> dict[int, dict[str, dict[float, float]]]:
    """A ServeGen ``chunk-<i>-dataset.json``: window start → field → {value: probability}."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not a readable JSON document ({exc})") from None
    out: dict[int, dict[str, dict[float, float]]] = {}
    for key, fields in doc.items():
        parsed = {}
        for name, text in fields.items():
            try:
                table = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise InputError(
                    path, f"window {key} field {name}: not a dict literal", found=text[:60]
                ) from None
            if not isinstance(table, dict):
                raise InputError(path, f"window {key} field {name}", expected="dict", found=text)
            parsed[name] = {float(k): float(v) for k, v in table.items()}
        out[int(key)] = parsed
    return out


def _window_fits(trace: pl.DataFrame) -> list[WindowFit]:
    out = []
    for r in trace.iter_rows(named=True):
        fit = None
        if r["pattern"] and r["rate"] > 0 and r["shape"] > 0 and r["scale"] > 0:
            family = PATTERNS[r["pattern"]]
            fit = FamilyFit(family, dist.named_params(family, r["shape"], r["scale"]), "given")
        out.append(
            WindowFit(
                start_s=r["window_start_s"],
                duration_s=TRACE_WINDOW_S,
                rate_per_s=r["rate"],
                cv=r["cv"] if r["rate"] > 0 else None,
                count=round(r["rate"] * TRACE_WINDOW_S),
                fit=fit,
            )
        )
    return out


def _renewal(windows: list[WindowFit], mean_rate: float) -> FamilyFit:
    """The dominant family's rate-weighted median shape, scaled to the mean rate."""
    active = [(w, w.fit) for w in windows if w.fit is not None]
    if not active or mean_rate <= 0:
        return FamilyFit("exponential", {"scale": 1.0 / max(mean_rate, 1e-12)}, "given")
    weight: dict[str, float] = {}
    for w, fit in active:
        weight[fit.family] = weight.get(fit.family, 0.0) + w.rate_per_s
    family = max(weight, key=weight.__getitem__)
    pick = [(w, fit) for w, fit in active if fit.family == family]
    shapes = np.array([dist.shape_scale(family, fit.params)[0] for _, fit in pick])
    rates = np.array([w.rate_per_s for w, _ in pick])
    order = np.argsort(shapes)
    cum = np.cumsum(rates[order]) / rates.sum()
    shape = float(shapes[order][np.searchsorted(cum, 0.5)])
    scale = (1.0 / mean_rate) / dist.scale_one_mean(family, shape)
    return FamilyFit(
        family, dist.named_params(family, shape, scale), "given (rate-weighted median)"
    )


def _length_counts(
    dataset: dict[int, dict[str, dict[float, float]]],
    trace: pl.DataFrame,
    names: Sequence[str],
) -> tuple[np.ndarray, np.ndarray] | None:
    """Merge the 6-hour tables of the first field present, weighted by requests per window."""
    starts = sorted(dataset)
    if not starts:
        return None
    bounds = [*starts[1:], math.inf]
    values: dict[float, float] = {}
    found = False
    for lo, hi in zip(starts, bounds, strict=True):
        fields = dataset[lo]
        name = next((n for n in names if fields.get(n)), None)
        if name is None:
            continue
        found = True
        in_range = trace.filter((pl.col("window_start_s") >= lo) & (pl.col("window_start_s") < hi))
        reqs = number(in_range["rate"].sum(), "rate") * TRACE_WINDOW_S
        for v, p in fields[name].items():
            values[v] = values.get(v, 0.0) + p * reqs
    if not found or not values:
        return None
    kv = np.array(sorted(values))
    w = np.array([values[v] for v in kv])
    return (kv, w) if w.sum() > 0 else None


def client_spec(
    trace_path: str | Path, dataset_path: str | Path | None = None, name: str | None = None
) -> WorkloadSpec:
    """One ServeGen client as a spec (windowed arrivals; lengths when a dataset file exists)."""
    trace_path = Path(trace_path)
    trace = read_trace(trace_path)
    windows = _window_fits(trace)
    duration = len(windows) * TRACE_WINDOW_S
    expected = number(trace["rate"].sum(), "rate") * TRACE_WINDOW_S
    mean_rate = expected / duration
    arrivals = ArrivalSpec(
        renewal=_renewal(windows, mean_rate),
        candidates=[],
        model="windowed",
        rate_curve=RateCurve(TRACE_WINDOW_S, [float(r) for r in trace["rate"]]),
        windows=windows,
    )
    notes = [
        "imported from ServeGen per-client aggregates: no request rows exist; 'rows' is the "
        "expected request count Σ rate × 600 s"
    ]
    lengths = None
    if dataset_path is not None and Path(dataset_path).exists():
        dataset = read_dataset(dataset_path)
        inp = _length_counts(dataset, trace, INPUT_FIELDS)
        out = _length_counts(dataset, trace, ("output_tokens",))
        if inp is not None and out is not None:
            if "text_tokens" in next(iter(dataset.values())):
                notes.append("multimodal: input lengths are text tokens only (image tokens apart)")
            lengths = LengthSpec(
                input=fit_counts(*inp, "input_tokens").to_marginal(),
                output=fit_counts(*out, "output_tokens").to_marginal(),
                dependence=Dependence(spearman=0.0, copula=Copula("independent", 0.0)),
            )
            notes.append("ServeGen gives marginals only: input/output taken as independent")
    digest = hashlib.sha256(trace_path.read_bytes()).hexdigest()
    label = name or f"servegen:{trace_path.parent.parent.name}/{trace_path.parent.name}/" + (
        trace_path.name.removesuffix("-trace.csv")
    )
    return WorkloadSpec(
        source=SourceFingerprint(
            source=label,
            rows=round(expected),
            duration_s=duration,
            rate_per_s=mean_rate,
            sha256=digest,
            table="servegen-trace",
            window=[0.0, duration],
        ),
        arrivals=arrivals,
        lengths=lengths,
        notes=notes,
    )


def import_servegen(paths: Sequence[str | Path]) -> WorkloadSpec:
    """Import ServeGen client trace files (or folders holding ``chunk-*-trace.csv``) as one
    spec with a group per client, weighted by expected requests. The top level aggregates:
    summed rate curve, windowed arrivals with summed rates (gap law of the heaviest client),
    and the lengths of the heaviest client with lengths."""
    traces: list[Path] = []
    for p in map(Path, paths):
        traces += sorted(p.rglob("chunk-*-trace.csv")) if p.is_dir() else [p]
    if not traces:
        raise UsageError(
            f"no ServeGen trace files (chunk-<i>-trace.csv) in {[str(p) for p in paths]}",
            param="paths",
        )
    groups = []
    for tp in traces:
        ds = tp.with_name(tp.name.replace("-trace.csv", "-dataset.json"))
        spec = client_spec(tp, ds if ds.exists() else None)
        groups.append((spec.source.source, spec))
    total = sum(s.source.rows for _, s in groups)
    n = max(len(s.arrivals.windows or []) for _, s in groups)
    rates = np.zeros(n)
    for _, s in groups:
        r = np.array([w.rate_per_s for w in s.arrivals.windows or []])
        rates[: r.size] += r
    heaviest = max(groups, key=lambda g: g[1].source.rows)[1]
    with_lengths = [(n, s) for n, s in groups if s.lengths is not None]
    donor_name, donor = (
        max(with_lengths, key=lambda g: g[1].source.rows) if with_lengths else (None, None)
    )
    lengths = donor.lengths if donor else None
    for _, s in groups:
        if s.lengths is None and lengths is not None:
            # a client whose dataset file is absent still has to generate requests
            s.lengths = lengths
            s.notes.append(f"no dataset file: lengths borrowed from {donor_name}")
    duration = n * TRACE_WINDOW_S
    windows = [
        WindowFit(i * TRACE_WINDOW_S, TRACE_WINDOW_S, float(r), None, round(r * TRACE_WINDOW_S))
        for i, r in enumerate(rates)
    ]
    mean_rate = float(rates.mean())
    renewal = heaviest.arrivals.renewal
    shape, _ = dist.shape_scale(renewal.family, renewal.params)
    scale = (1.0 / max(mean_rate, 1e-12)) / dist.scale_one_mean(renewal.family, shape)
    top = ArrivalSpec(
        renewal=FamilyFit(renewal.family, dist.named_params(renewal.family, shape, scale), "given"),
        model="windowed",
        rate_curve=RateCurve(TRACE_WINDOW_S, [float(r) for r in rates]),
        windows=windows,
    )
    return WorkloadSpec(
        source=SourceFingerprint(
            source="servegen:" + ",".join(name.removeprefix("servegen:") for name, _ in groups),
            rows=total,
            duration_s=duration,
            rate_per_s=mean_rate,
            sha256=hashlib.sha256(
                "".join(s.source.sha256 or "" for _, s in groups).encode()
            ).hexdigest(),
            table="servegen-trace",
            by="client",
            window=[0.0, duration],
        ),
        arrivals=top,
        lengths=lengths,
        groups=[
            GroupSpec(name, s.source.rows / total if total else 1 / len(groups), s, key="client")
            for name, s in groups
        ],
        notes=[
            "aggregate of ServeGen clients: generate from groups for per-client fidelity; the "
            "top-level gap law is the heaviest client's"
        ],
    )
