"""Dataset cards for synthetic workloads: from a workload spec (generated here with a seed) or
from a Parquet file `burstlab synth` wrote.

The body names the spec (its sha256, source fingerprint, arrival and length models with their
diagnostics), the seed and knobs, the generated table's statistics, and the fidelity report
against the spec's source (docs/design.md §4: the synthetic window next to real-vs-real windows and
the peers' generators). Nothing in it is presented as real data.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from burstlab import synth, traces
from burstlab.cards.charts import rate_chart, save_card_chart, token_cdf_chart
from burstlab.cards.fit import format_params, gap_shape_text, round_ic
from burstlab.cards.hf import CardResult, finish_card, front_matter
from burstlab.cards.stats import (
    kv_table,
    md_table,
    render_sections,
    summarize_requests,
    summary_markdown,
)
from burstlab.cards.tables import read_table
from burstlab.errors import BurstlabError, InputError
from burstlab.parquet import read_metadata
from burstlab.scalars import number
from burstlab.spec import WorkloadSpec

#: Longest held-out window the fidelity section uses (seconds); docs/design.md §4's 20 minutes.
HOLDOUT_MAX_S = 1200.0


@dataclass(frozen=True)
class FidelitySetup:
    """Which real rows the synthetic workload is judged against, and whether that is honest.

    `out_of_sample` is true when the held-out window lies after the rows the spec was fitted
    on; otherwise the comparison is in-sample (the spec saw those rows) and the card says so.
    """

    train: pl.DataFrame
    heldout: pl.DataFrame
    heldout_s: float
    out_of_sample: bool
    note: str


def spec_card(
    spec_path: str | Path,
    out: Path,
    *,
    seed: int = 0,
    duration_s: float | None = None,
    data_dir: str | Path | None = None,
) -> CardResult:
    """Generate the spec's workload (`duration_s`, default the fitted span; `seed`) and fill the
    empty folder `out` with its card (`burstlab.cards.card` stages the folder; `hf.publish`)."""
    spec = WorkloadSpec.load(spec_path)
    duration = float(duration_s or spec.source.duration_s)
    workload = synth.generate(spec, duration_s=duration, seed=seed)
    data_rel = f"data/synth-{spec.sha256()[:12]}-seed{seed}.parquet"
    synth.export(workload.frame, out / data_rel, "parquet", metadata=workload.metadata())
    (out / "data" / "spec.json").write_text(spec.to_json(), encoding="utf-8")
    return _synthetic_card(out, data_rel, workload.metadata(), spec, seed, data_dir)


def synth_parquet_card(
    parquet: str | Path,
    out: Path,
    *,
    spec_path: str | Path | None = None,
    data_dir: str | Path | None = None,
) -> CardResult:
    """Fill the empty folder `out` with the card of a Parquet file `burstlab synth` wrote; with
    its spec, add the fidelity report (`burstlab.cards.card` stages the folder; `hf.publish`)."""
    parquet = Path(parquet)
    meta = read_metadata(parquet)
    spec = None
    if spec_path is not None:
        spec = WorkloadSpec.load(spec_path)
        if meta.get("spec_sha256") and meta["spec_sha256"] != spec.sha256():
            raise InputError(
                spec_path,
                "this spec did not generate the Parquet file",
                expected=meta["spec_sha256"],
                found=spec.sha256(),
            )
    data_rel = f"data/{parquet.name}"
    (out / "data").mkdir(exist_ok=True)
    shutil.copyfile(parquet, out / data_rel)
    if spec is not None:
        (out / "data" / "spec.json").write_text(spec.to_json(), encoding="utf-8")
    seed = meta.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(parquet, "the burstlab metadata's seed is not a whole number", found=seed)
    return _synthetic_card(out, data_rel, meta, spec, seed, data_dir, shown_as=parquet)


def _synthetic_card(
    out: Path,
    data_rel: str,
    meta: dict[str, Any],
    spec: Any,
    seed: int,
    data_dir: str | Path | None,
    shown_as: Path | None = None,
) -> CardResult:
    frame = read_table(out / data_rel, shown_as=shown_as)
    name = str(meta.get("source") or frame["source"][0])
    charts = save_card_chart(rate_chart(frame, f"{name}: request rate"), out, "rate")
    charts += save_card_chart(token_cdf_chart(frame, f"{name}: token lengths"), out, "tokens")
    sections = [
        ("About", about_markdown(meta, spec, frame.height)),
        ("Generation", generation_markdown(meta)),
    ]
    if spec is not None:
        sections.append(("Workload spec", spec_markdown(spec)))
        sections.append(("Fidelity against the source", fidelity_markdown(spec, seed, data_dir)))
    else:
        sections.append(
            (
                "Fidelity against the source",
                "Not computed: pass the spec that generated this file (`--spec`) to add it.",
            )
        )
    sections += [
        ("Summary statistics", summary_markdown(summarize_requests(frame))),
        ("Charts", "![rate](charts/rate.png)\n\n![tokens](charts/tokens.png)"),
        ("Caveats", "\n".join(f"- {c}" for c in synthetic_caveats(spec))),
    ]
    source = spec.source.source if spec is not None else None
    body = render_sections(f"Synthetic workload {name}", sections)
    card_meta = front_matter(
        pretty_name=f"burstlab synthetic workload {name}" + (f" (from {source})" if source else ""),
        license_text=_licence(source),
        rows=frame.height,
        data_files=[data_rel],
        tags=["synthetic", "workload-generator"],
    )
    data_files = [data_rel] + (["data/spec.json"] if spec is not None else [])
    return finish_card(
        "synth" if spec is None else "spec", out, card_meta, body, data_files, charts
    )


def _licence(source: str | None) -> str | None:
    """The generated rows are fitted on the source trace: its licence carries over."""
    if not source:
        return None
    info = traces.source_info(source)
    return info.licence if info is not None else None


def about_markdown(meta: dict[str, Any], spec: Any, rows: int) -> str:
    text = (
        f"{rows:,} **synthetic** requests in burstlab's canonical `requests` schema, generated "
        f"by burstlab from a workload spec (sha256 `{meta.get('spec_sha256', '?')}`) with seed "
        f"{meta.get('seed')}. No row is a real request; the same spec and seed regenerate "
        "exactly these rows (`burstlab synth SPEC --seed …`)."
    )
    if spec is not None:
        fp = spec.source
        text += (
            f" The spec was fitted on `{fp.source}`: {fp.rows:,} requests over "
            f"{fp.duration_s:,.1f} s ({fp.rate_per_s:.3g} req/s)"
            + (f", window {fp.window} s" if fp.window else "")
            + (f", rows where `{fp.where}`" if fp.where else "")
            + "."
        )
    return text


def generation_markdown(meta: dict[str, Any]) -> str:
    keys = ("spec_sha256", "seed", "duration_s", "rate_scale", "speedup", "group_mix")
    rows = [[k, f"`{meta[k]}`" if k == "spec_sha256" else meta.get(k)] for k in keys if k in meta]
    diag = meta.get("diagnostics") or {}
    rows += [[f"diagnostics: {k}", v] for k, v in diag.items() if not isinstance(v, dict | list)]
    return kv_table(rows)


def spec_markdown(spec: Any) -> str:
    """Arrival and length models with their diagnostics, as the spec records them."""
    arr = spec.arrivals
    parts = [
        f"Arrival model: **{arr.model}**; renewal family **{arr.renewal.family}** "
        f"({arr.renewal.method}, {format_params(arr.renewal.params)})"
        + (f"; timestamp grid {arr.resolution_s:g} s" if arr.resolution_s else "")
        + "."
    ]
    if arr.rate_curve is not None:
        rc = arr.rate_curve
        n = len(rc.rates_per_s)
        parts.append(
            f"Rate curve: {n} window{'s' if n != 1 else ''} of {rc.window_s:g} s, "
            f"{min(rc.rates_per_s):.3g}–{max(rc.rates_per_s):.3g} req/s."
        )
    if arr.burst_regime is not None:
        br = arr.burst_regime
        parts.append(
            f"Burst regime: {len(br.levels)} states on {br.window_s:g} s windows, rate "
            f"multipliers {min(br.levels):.3g}–{max(br.levels):.3g} (stationary mean 1)."
        )
    if gap_shape_text(arr):
        parts.append(gap_shape_text(arr))
    if arr.candidates:
        parts.append(candidates_table(arr.candidates, arr.renewal))
    lengths = spec.lengths
    rows = []
    for label, marginal in (("input_tokens", lengths.input), ("output_tokens", lengths.output)):
        chosen = marginal.chosen
        rows.append(
            [
                label,
                marginal.use,
                chosen.family if chosen else None,
                format_params(chosen.params) if chosen else None,
                round(marginal.mean, 1),
                marginal.min,
                marginal.max,
            ]
        )
    parts.append(
        md_table(["length", "sampled from", "best family", "params", "mean", "min", "max"], rows)
    )
    dep = lengths.dependence
    dep_text = f"Input/output dependence: Spearman {dep.spearman:.3g}, {dep.copula.kind} copula"
    if dep.copula.kind == "gaussian":
        dep_text += f" (ρ = {dep.copula.rho:.3g})"
    if dep.load_coupling is not None:
        lc = dep.load_coupling
        dep_text += (
            f"; {lc.target} vs load over {lc.window_s:g} s windows: corr {lc.corr:.3g}, "
            f"elasticity {lc.elasticity:.3g}"
        )
    parts.append(dep_text + ".")
    extras = [n for n in ("sessions", "prefix", "groups") if getattr(spec, n, None)]
    if extras:
        parts.append("Also modelled: " + ", ".join(extras) + ".")
    parts.append("The full spec is `data/spec.json`.")
    return "\n\n".join(parts)


def candidates_table(candidates: list[Any], chosen: Any) -> str:
    """Every candidate family with its diagnostics (the spec keeps them for audit)."""
    rows = []
    for c in candidates:
        picked = c.family == chosen.family and c.method == chosen.method
        d = c.diagnostics
        rows.append(
            [
                c.family,
                c.method,
                format_params(c.params),
                *(
                    (d.n, round_ic(d.loglik), round_ic(d.aic), round_ic(d.bic), d.ks, d.ad)
                    if d
                    else (None,) * 6
                ),
                "**yes**" if picked else "",
            ]
        )
    headers = ["family", "method", "params", "n", "loglik", "AIC", "BIC", "KS", "AD", "chosen"]
    return md_table(headers, rows)


def fidelity_setup(spec: Any, data_dir: str | Path | None) -> FidelitySetup:
    """Held-out real rows for the spec's source: after the fitted window when the trace goes on
    (out of sample), else the last part of the fitted window (in sample, said so)."""
    real = _source_frame(spec.source.source, data_dir)
    end = number(real["arrival_s"].max(), "arrival_s")
    t0, t1 = spec.source.window or (0.0, end)
    span = t1 - t0
    held_s = min(HOLDOUT_MAX_S, span / 3)  # the envelope needs a longer training period
    if end - t1 >= held_s:
        train, held = _cut(real, t0, t1), _cut(real, t1, t1 + held_s)
        note = f"held-out real window: [{t1:,.0f}, {t1 + held_s:,.0f}) s, after the fitted rows"
        return FidelitySetup(train, held, held_s, True, note)
    train, held = _cut(real, t0, t1 - held_s), _cut(real, t1 - held_s, t1)
    note = (
        f"IN-SAMPLE: the spec was fitted on the whole trace, so the comparison window "
        f"[{t1 - held_s:,.0f}, {t1:,.0f}) s is part of what it saw"
    )
    return FidelitySetup(train, held, held_s, False, note)


def fidelity_markdown(spec: Any, seed: int, data_dir: str | Path | None) -> str:
    """The docs/design.md §4 suite: burstlab vs the real envelope and the peers' generators."""
    try:
        setup = fidelity_setup(spec, data_dir)
    except BurstlabError as exc:
        return f"Not computed: the source `{spec.source.source}` is not available here ({exc})."
    candidates = {"burstlab": synth.generate(spec, duration_s=setup.heldout_s, seed=seed).frame}
    candidates.update(synth.all_baselines(setup.train, setup.heldout_s, seed))
    result = synth.fidelity(
        setup.heldout,
        candidates,
        train=setup.train,
        window_s=setup.heldout_s,
        resolution_s=spec.arrivals.resolution_s,
    )
    wide, within = result.wide(), result.wide("within")
    names = list(candidates)
    rows = []
    for i, metric in enumerate(wide["metric"]):
        lo, hi = wide["env_low"][i], wide["env_high"][i]
        env = f"{lo:.3g} – {hi:.3g}" if lo is not None else "–"
        cells = [f"{wide[n][i]:.3g}" + (" ✓" if within[n][i] else " ✗") for n in names]
        rows.append([metric, env, *cells])
    inside = sum(bool(v) for v in within["burstlab"])
    return (
        f"Compared with {setup.heldout.height:,} real requests ({setup.note}). Each generator "
        f"made {setup.heldout_s:,.0f} s of load with seed {seed}; the real envelope is the range "
        "of the same metric between real windows of that length from the training period and "
        f"the held-out window (✓ = inside it with {result.slack:.0%} slack). Baselines: Poisson at "
        "the mean rate, one Gamma renewal at the fitted CV (vLLM `--burstiness` style), and the "
        "BurstGPT demo generator, all fitted on the same training rows.\n\n"
        f"burstlab is inside the envelope on **{inside} of {len(rows)}** metrics.\n\n"
        + md_table(["metric", "real envelope", *names], rows)
    )


def synthetic_caveats(spec: Any) -> list[str]:
    out = [
        "Every row is synthetic. It reproduces the fitted statistics of the source, not its "
        "individual requests; never report it as real traffic.",
        "Lengths are token counts for the source's tokenizer; replaying against another "
        "model's tokenizer changes what a prompt of N tokens is.",
    ]
    if spec is not None and getattr(spec, "notes", None):
        out += [str(n) for n in (spec.notes if isinstance(spec.notes, list) else [spec.notes])]
    return out


def _source_frame(source: str, data_dir: str | Path | None) -> pl.DataFrame:
    """The spec's source rows, resolved like every SOURCE argument (`traces.scan`)."""
    return traces.scan(source, data_dir).collect()


def _cut(frame: pl.DataFrame, start_s: float, end_s: float) -> pl.DataFrame:
    return synth.window(frame, start_s, end_s)
