"""Validation of a workload spec (`burstlab.spec`): do the numbers make sense?

Probabilities are ≥ 0 and sum to 1, parameters are positive and finite, families are known and
carry exactly their parameters, histogram edges increase, a gap law has a finite mean, a model
has the parts it needs. Every failure is a `SpecError` that names the field path, e.g.
``spec.lengths.input.empirical.edges: edges must be strictly increasing`` — the same paths
`burstlab.jsondoc` uses for type errors, so a person can find the number in the file.
"""

from __future__ import annotations

import math
from typing import Any

from burstlab import distributions as dist
from burstlab.errors import SpecError

#: The spec's dataclasses (`burstlab.spec`), named for the signatures below; not imported,
#: because burstlab.spec imports this module (no import cycles between modules).
ArrivalSpec = EmpiricalDist = FamilyFit = Marginal = PrefixSpec = WorkloadSpec = Any


def _check(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise SpecError(f"{where}: {msg}")


def _finite_pos(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x > 0


def _check_probs(p: list[float], where: str, total: float = 1.0) -> None:
    _check(all(q >= 0 and math.isfinite(q) for q in p), where, "probabilities must be ≥ 0")
    _check(
        abs(sum(p) - total) <= 1e-6 * max(1.0, len(p)),
        where,
        f"probabilities must sum to {total:g}, found {sum(p):.9g}",
    )


def _validate_family(fit: FamilyFit, where: str, gaps: bool = False) -> None:
    """A known family with exactly its parameters, each positive and finite (``p`` in (0, 1]);
    with `gaps`, also a finite mean (synth divides gaps by it to get a rate)."""
    base = fit.family.removesuffix(dist.MIXTURE_SUFFIX)
    _check(
        base in dist.FAMILIES,
        f"{where}.family",
        f"unknown family {fit.family!r}; expected one of {sorted(dist.FAMILIES)} "
        "(or '<name>-mixture')",
    )
    names = dist.FAMILIES[base][1]
    if fit.family.endswith(dist.MIXTURE_SUFFIX):
        k = sum(1 for key in fit.params if key.startswith("w_"))
        expected = {f"{p}_{i}" for i in range(1, k + 1) for p in ("w", *names)}
        _check(k >= 1, f"{where}.params", "a mixture needs w_1, …")
        _check(
            set(fit.params) == expected,
            f"{where}.params",
            f"{fit.family} with {k} components takes {sorted(expected)}, "
            f"found {sorted(fit.params)}",
        )
        comps = fit.components()
        _check_probs([w for w, _, _ in comps], f"{where}.params (weights)")
        pairs = [p for _, _, p in comps]
    else:
        expected = set(names)
        _check(
            set(fit.params) == expected,
            f"{where}.params",
            f"{fit.family} takes {sorted(expected)}, found {sorted(fit.params)}",
        )
        pairs = [fit.params]
    for params in pairs:
        for name, value in params.items():
            ok = 0 < value <= 1 if name == "p" else _finite_pos(value)
            _check(ok, f"{where}.params.{name}", f"must be a positive finite number, found {value}")
    if gaps:
        mean = fit.mean()
        _check(
            math.isfinite(mean) and mean > 0,
            f"{where}.params",
            f"{fit.family} {fit.params} has no finite mean; gaps need one (it sets the rate)",
        )


def _validate_empirical(emp: EmpiricalDist, where: str) -> None:
    _check(len(emp.edges) == len(emp.probs) + 1, where, "needs len(edges) == len(probs) + 1")
    _check(all(e > 0 for e in emp.edges), f"{where}.edges", "edges must be > 0 (log-space bins)")
    _check(
        all(b > a for a, b in zip(emp.edges[:-1], emp.edges[1:], strict=True)),
        f"{where}.edges",
        "edges must be strictly increasing",
    )
    for i, m in enumerate(emp.point_masses):
        ok = math.isfinite(m.value) and m.value >= 0
        _check(ok, f"{where}.point_masses[{i}].value", f"must be finite and ≥ 0, found {m.value}")
    _check_probs(list(emp.probs) + [m.prob for m in emp.point_masses], f"{where} (bins + masses)")


#: Token counts (and turns, blocks) are int32 in the canonical tables.
INT32_MAX = 2**31 - 1


def _validate_marginal(m: Marginal, where: str) -> None:
    _validate_empirical(m.empirical, f"{where}.empirical")
    _check(m.min >= 0, f"{where}.min", f"a count must be ≥ 0, found {m.min}")
    _check(m.max <= INT32_MAX, f"{where}.max", f"must be ≤ {INT32_MAX} (int32), found {m.max}")
    _check(m.min <= m.max, where, f"min {m.min} > max {m.max}")
    if m.use == "parametric":
        _check(m.chosen is not None, f"{where}.use", "'parametric' needs a chosen family")
    for i, c in enumerate([m.chosen, *m.candidates]):
        if c is not None:
            _validate_family(c, f"{where}.candidates[{i - 1}]" if i else f"{where}.chosen")


def _validate_arrivals(a: ArrivalSpec, where: str) -> None:
    _validate_family(a.renewal, f"{where}.renewal", gaps=True)
    for i, c in enumerate(a.candidates):
        _validate_family(c, f"{where}.candidates[{i}]")
    if a.resolution_s is not None:
        _check(_finite_pos(a.resolution_s), f"{where}.resolution_s", "must be > 0 or null")
    if a.rate_curve is not None:
        rc = a.rate_curve
        _check(_finite_pos(rc.window_s), f"{where}.rate_curve.window_s", "must be > 0")
        _check(len(rc.rates_per_s) > 0, f"{where}.rate_curve.rates_per_s", "must not be empty")
        _check(
            all(r >= 0 and math.isfinite(r) for r in rc.rates_per_s),
            f"{where}.rate_curve.rates_per_s",
            "rates must be finite and ≥ 0",
        )
    if a.burst_regime is not None:
        b, w = a.burst_regime, f"{where}.burst_regime"
        k = len(b.levels)
        _check(_finite_pos(b.window_s), f"{w}.window_s", "must be > 0")
        _check(k >= 1, f"{w}.levels", "needs at least one state")
        _check(all(x >= 0 and math.isfinite(x) for x in b.levels), f"{w}.levels", "must be ≥ 0")
        _check(
            len(b.transition) == k and all(len(r) == k for r in b.transition),
            f"{w}.transition",
            f"must be {k}×{k} (one row per level)",
        )
        for i, row in enumerate(b.transition):
            _check_probs(row, f"{w}.transition[{i}]")
        _check(len(b.initial) == k, f"{w}.initial", f"needs {k} entries")
        _check_probs(b.initial, f"{w}.initial")
        _validate_family(b.within, f"{w}.within", gaps=True)
    if a.windows is not None:
        for i, win in enumerate(a.windows):
            _check(win.duration_s > 0, f"{where}.windows[{i}].duration_s", "must be > 0")
            _check(win.rate_per_s >= 0, f"{where}.windows[{i}].rate_per_s", "must be ≥ 0")
            if win.fit is not None:
                _validate_family(win.fit, f"{where}.windows[{i}].fit", gaps=True)
    if a.gap_law is not None:
        _validate_empirical(a.gap_law, f"{where}.gap_law")
    _check(
        a.gap_shape == "operational" or a.gap_law is not None,
        f"{where}.gap_shape",
        "'real-time' needs gap_law",
    )
    needs = {"modulated": a.rate_curve, "windowed": a.windows}
    if a.model in needs:
        _check(
            needs[a.model] is not None,
            f"{where}.model",
            f"model {a.model!r} needs {'rate_curve' if a.model == 'modulated' else 'windows'}",
        )


def _validate_bins(bins: list[Any], where: str, law: str) -> None:
    """Depth or reuse-gap bins: not empty, contiguous block ranges [min_blocks, max_blocks)
    from ≥ 1 block up, request counts ≥ 0, and a valid law (`law`: the field name) each."""
    _check(len(bins) > 0, where, "needs at least one bin (or null)")
    for i, b in enumerate(bins):
        w = f"{where}[{i}]"
        _check(b.min_blocks >= 1, f"{w}.min_blocks", f"must be ≥ 1, found {b.min_blocks}")
        _check(
            b.max_blocks > b.min_blocks,
            f"{w}.max_blocks",
            f"must be > min_blocks {b.min_blocks}, found {b.max_blocks}",
        )
        if i:
            prev = bins[i - 1].max_blocks
            _check(
                b.min_blocks == prev,
                f"{w}.min_blocks",
                f"bins must be contiguous: expected {prev} (the previous max_blocks), "
                f"found {b.min_blocks}",
            )
        _check(b.requests >= 0, f"{w}.requests", f"must be ≥ 0, found {b.requests}")
        _validate_empirical(getattr(b, law), f"{w}.{law}")


def _validate_prefix(p: PrefixSpec, where: str) -> None:
    """Prefix sharing: probabilities in [0, 1], block sizes ≥ 1, valid laws; the depth model
    holds fractions in [0, 1] and comes with its reuse-gap model (synth needs both)."""
    _check(p.block_tokens >= 1, f"{where}.block_tokens", f"must be ≥ 1, found {p.block_tokens}")
    _check(0 <= p.hit_rate <= 1, f"{where}.hit_rate", f"must be in [0, 1], found {p.hit_rate}")
    if p.shared_fraction_mean is not None:
        _check(
            0 <= p.shared_fraction_mean <= 1,
            f"{where}.shared_fraction_mean",
            f"must be in [0, 1], found {p.shared_fraction_mean}",
        )
    if p.popularity_zipf_s is not None:
        _check(
            p.popularity_zipf_s >= 0,
            f"{where}.popularity_zipf_s",
            f"must be ≥ 0, found {p.popularity_zipf_s}",
        )
    _check(p.requests >= 0, f"{where}.requests", f"must be ≥ 0, found {p.requests}")
    if p.shared_prefix_blocks is not None:
        _validate_marginal(p.shared_prefix_blocks, f"{where}.shared_prefix_blocks")
    for name in ("reuse_distance_requests", "reuse_distance_s"):
        if getattr(p, name) is not None:
            _validate_empirical(getattr(p, name), f"{where}.{name}")
    _check(
        (p.depth is None) == (p.reuse_gap is None),
        f"{where}.{'reuse_gap' if p.reuse_gap is None else 'depth'}",
        "depth and reuse_gap come together (synth needs both) or are both null",
    )
    if p.depth is not None:
        _validate_bins(p.depth, f"{where}.depth", "fraction")
        for i, b in enumerate(p.depth):
            w = f"{where}.depth[{i}].fraction"
            _check(b.fraction.edges[-1] <= 1, f"{w}.edges", "a shared fraction is at most 1")
            for j, m in enumerate(b.fraction.point_masses):
                _check(
                    m.value <= 1, f"{w}.point_masses[{j}].value", f"must be ≤ 1, found {m.value}"
                )
    if p.reuse_gap is not None:
        _validate_bins(p.reuse_gap, f"{where}.reuse_gap", "gap_s")


def validate_spec(spec: WorkloadSpec, where: str, version: int) -> None:
    """Check every number of `spec` (groups included) against format `version`; SpecError
    names the first bad field, prefixed by `where` (the file name when the spec was loaded
    from one)."""
    _check(spec.burstlab_spec == version, where, f"burstlab_spec must be {version}")
    s = spec.source
    _check(s.rows >= 0, f"{where}.source.rows", "must be ≥ 0")
    _check(s.duration_s >= 0, f"{where}.source.duration_s", "must be ≥ 0")
    _validate_arrivals(spec.arrivals, f"{where}.arrivals")
    if spec.lengths is not None:
        ln = spec.lengths
        _validate_marginal(ln.input, f"{where}.lengths.input")
        _validate_marginal(ln.output, f"{where}.lengths.output")
        _check(0 <= ln.failure_rate <= 1, f"{where}.lengths.failure_rate", "must be in [0, 1]")
        if ln.context_limit is not None:
            _check(
                ln.context_limit >= 1,
                f"{where}.lengths.context_limit",
                f"must be ≥ 1 token or null, found {ln.context_limit}",
            )
        rho = ln.dependence.copula.rho
        _check(
            -1 <= rho <= 1,
            f"{where}.lengths.dependence.copula.rho",
            f"must be in [-1, 1], found {rho}",
        )
        sp = ln.dependence.spearman
        _check(
            -1 <= sp <= 1, f"{where}.lengths.dependence.spearman", f"must be in [-1, 1], found {sp}"
        )
    if spec.sessions is not None:
        ss, w = spec.sessions, f"{where}.sessions"
        _validate_marginal(ss.turns, f"{w}.turns")
        if ss.think_time is not None:
            _validate_family(ss.think_time, f"{w}.think_time")
        if ss.think_time_empirical is not None:
            _validate_empirical(ss.think_time_empirical, f"{w}.think_time_empirical")
        if ss.new_tokens is not None:
            _validate_marginal(ss.new_tokens, f"{w}.new_tokens")
    if spec.prefix is not None:
        _validate_prefix(spec.prefix, f"{where}.prefix")
    if spec.groups:
        _check_probs([g.weight for g in spec.groups], f"{where}.groups (weights)")
        for i, g in enumerate(spec.groups):
            validate_spec(g.spec, f"{where}.groups[{i}].spec", version)
