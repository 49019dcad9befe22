"""The versioned workload spec (DESIGN.md §2): everything synth needs to generate a workload.

A spec is plain data: dataclasses that serialise to one JSON document with ``"burstlab_spec": 1``.
Fitting writes it, synth reads it, a person audits it. Every fitted family carries its
diagnostics (log-likelihood, AIC, BIC, KS, AD, n) so the model choice can be checked, and the
source fingerprint says exactly which rows it was fitted on.

Units: seconds for times and rates per second; tokens for lengths. Distribution parameters use
SciPy's names and parameterisation (see `FAMILIES`), always with ``loc = 0``.

The field-by-field description lives in ``docs/spec.md``; keep the two in step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import numpy as np

from burstlab.errors import SpecError

SPEC_VERSION = 1

#: Family name → (scipy.stats distribution name, parameter names in scipy's order). ``loc`` is
#: always 0 and never stored. Lengths and gaps are positive, so every family lives on (0, ∞)
#: except ``geometric`` (a discrete count on 1, 2, …, used for turns per session).
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "exponential": ("expon", ("scale",)),
    "gamma": ("gamma", ("a", "scale")),
    "weibull": ("weibull_min", ("c", "scale")),
    "lognormal": ("lognorm", ("s", "scale")),
    "pareto": ("pareto", ("b", "scale")),
    "lomax": ("lomax", ("c", "scale")),
    "geometric": ("geom", ("p",)),
}

#: Mixture families: ``"<base>-mixture"`` with params ``w_1, <base params>_1, w_2, …``; the
#: weights sum to 1. E.g. ``lognormal-mixture``: ``w_1, s_1, scale_1, w_2, s_2, scale_2``.
MIXTURE_SUFFIX = "-mixture"

ArrivalModel = Literal["renewal", "modulated", "windowed"]
GapShape = Literal["operational", "real-time"]


# ---------------------------------------------------------------------------------------------
# Fitted distributions


@dataclass
class FitDiagnostics:
    """How well one fitted family explains the data it was fitted on.

    ``ks`` is the Kolmogorov–Smirnov distance sup|F_n − F| and ``ad`` the Anderson–Darling
    statistic A², both against the fitted CDF (for censored fits: on the grid the data live on).
    They are effect sizes; a p-value is given only when it is valid with estimated parameters
    (parametric bootstrap), with ``gof_method`` saying how it was obtained.
    """

    n: int  # observations the likelihood was computed on
    k: int  # free parameters (AIC/BIC penalty)
    loglik: float | None
    aic: float | None
    bic: float | None
    ks: float | None = None
    ad: float | None = None
    gof_pvalue: float | None = None
    gof_method: str | None = None  # e.g. "parametric-bootstrap ks, 200 resamples of n=2000"
    mean_ratio: float | None = None  # fitted mean / sample mean (1.0 = the rate is preserved)


@dataclass
class FamilyFit:
    """One fitted distribution: family, SciPy parameters (loc = 0), how it was fitted, diagnostics.

    ``method`` is ``"mle"`` (plain maximum likelihood), ``"mean-preserving"`` (mean fixed from
    the sample, shape by maximum likelihood), ``"interval-censored"`` (likelihood of the grid
    cell each value was recorded in; see docs/fitting.md) or ``"given"`` (imported, e.g. ServeGen).
    """

    family: str
    params: dict[str, float]
    method: str
    diagnostics: FitDiagnostics | None = None
    stderr: dict[str, float] | None = None  # asymptotic standard errors of params, same keys

    # -- evaluation (vectorised; synth samples through ppf so copulas work) --------------------

    def components(self) -> list[tuple[float, str, dict[str, float]]]:
        """``[(weight, base family, params)]`` — one entry unless this is a mixture."""
        if not self.family.endswith(MIXTURE_SUFFIX):
            return [(1.0, self.family, dict(self.params))]
        base = self.family[: -len(MIXTURE_SUFFIX)]
        names = FAMILIES[base][1]
        out = []
        i = 1
        while f"w_{i}" in self.params:
            out.append((self.params[f"w_{i}"], base, {p: self.params[f"{p}_{i}"] for p in names}))
            i += 1
        return out

    def frozen(self):
        """The SciPy frozen distribution (not for mixtures: use `cdf`/`ppf`/`sample`)."""
        if self.family.endswith(MIXTURE_SUFFIX):
            raise SpecError(f"{self.family} has no single scipy distribution; use ppf/cdf")
        return _frozen(self.family, self.params)

    def mean(self) -> float:
        """Mean of the distribution (seconds or tokens)."""
        return float(sum(w * _frozen(f, p).mean() for w, f, p in self.components()))

    def cdf(self, x: np.ndarray | float) -> np.ndarray:
        """CDF at x."""
        x = np.asarray(x, dtype=float)
        return sum(w * _frozen(f, p).cdf(x) for w, f, p in self.components())

    def pdf(self, x: np.ndarray | float) -> np.ndarray:
        """Density (pmf for the discrete geometric family) at x."""
        x = np.asarray(x, dtype=float)
        out = np.zeros_like(x)
        for w, f, p in self.components():
            d = _frozen(f, p)
            out = out + w * (d.pmf(x) if f == "geometric" else d.pdf(x))
        return out

    def ppf(self, u: np.ndarray | float) -> np.ndarray:
        """Inverse CDF at probabilities u ∈ (0, 1); mixtures by vectorised bisection."""
        u = np.asarray(u, dtype=float)
        comps = self.components()
        if len(comps) == 1:
            return _frozen(comps[0][1], comps[0][2]).ppf(u)
        lo = np.min([_frozen(f, p).ppf(np.clip(u, 1e-300, None)) for _, f, p in comps], axis=0)
        hi = np.max([_frozen(f, p).ppf(u) for _, f, p in comps], axis=0)
        for _ in range(60):  # bisection in log space: 60 halvings reach ~1e-18 relative width
            mid = np.sqrt(lo * hi) if np.all(lo > 0) else (lo + hi) / 2
            below = self.cdf(mid) < u
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        return hi

    def rescaled(self, factor: float) -> FamilyFit:
        """The same law with every value multiplied by ``factor`` (all scale parameters,
        mixture components included); e.g. ``fit.rescaled(1 / fit.mean())`` has mean 1."""
        params = {
            k: v * factor if k == "scale" or k.startswith("scale_") else v
            for k, v in self.params.items()
        }
        return FamilyFit(self.family, params, self.method, self.diagnostics, self.stderr)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw `size` values (inverse-CDF sampling, so a seeded rng is reproducible)."""
        return self.ppf(rng.random(size))


def _frozen(family: str, params: dict[str, float]):
    import scipy.stats as st

    scipy_name, names = FAMILIES[family]
    return getattr(st, scipy_name)(**{n: params[n] for n in names})  # keywords: never loc


# ---------------------------------------------------------------------------------------------
# Source fingerprint


@dataclass
class SourceFingerprint:
    """Which rows the spec was fitted on, so a spec can be traced back and compared with data.

    ``sha256`` hashes the fitted columns (arrival_s, input_tokens, output_tokens) of exactly the
    rows used, in arrival order; ``window`` is [t0, t1] in the source's seconds.
    """

    source: str
    rows: int
    duration_s: float
    rate_per_s: float
    sha256: str | None = None
    table: str = "requests"
    where: str | None = None  # SQL filter applied before fitting, if any
    by: str | None = None  # grouping column when the spec has groups
    window: list[float] | None = None  # [t0_s, t1_s]


# ---------------------------------------------------------------------------------------------
# Arrivals


@dataclass
class RateCurve:
    """Mean arrival rate (requests/s) in consecutive windows of ``window_s`` from ``start_s``.

    Beyond its last window the curve repeats from the first (``cycle``) — a curve fitted on a
    day or a week is then a daily/weekly profile; a curve fitted on a short window is flat.
    """

    window_s: float
    rates_per_s: list[float]
    start_s: float = 0.0

    def rate_at(self, t_s: np.ndarray | float) -> np.ndarray:
        """Rate (requests/s) at times t (seconds), cycling the curve."""
        t = np.asarray(t_s, dtype=float) - self.start_s
        idx = np.floor(t / self.window_s).astype(np.int64) % len(self.rates_per_s)
        return np.asarray(self.rates_per_s, dtype=float)[idx]

    def mean_rate(self) -> float:
        """Time-average of the curve (requests/s)."""
        return float(np.mean(self.rates_per_s))


@dataclass
class BurstRegime:
    """A hidden Markov chain over windows of ``window_s`` that multiplies the rate curve.

    ``kind="poisson-hmm"``: the request count of window w is Poisson with mean
    ``rate_curve(t_w) · window_s · levels[state_w]``; states follow a Markov chain with
    ``transition[i][j]`` = P(next window in j | this window in i) and ``initial`` for the first
    window. Levels are normalised so that their stationary mean is 1 (the rate curve keeps the
    mean rate). Within a window, gaps come from ``within``: a unit-mean family applied in
    operational time (see docs/spec.md, "modulated" model).
    """

    window_s: float
    levels: list[float]
    transition: list[list[float]]
    initial: list[float]
    within: FamilyFit
    kind: str = "poisson-hmm"
    diagnostics: FitDiagnostics | None = None
    stationary: list[float] | None = None  # stationary distribution of the chain
    mean_dwell_s: list[float] | None = None  # mean time spent in each state per visit


@dataclass
class WindowFit:
    """Arrival statistics of one time window (e.g. 10 minutes): rate, IAT CV, best family."""

    start_s: float
    duration_s: float
    rate_per_s: float
    cv: float | None
    count: int | None = None
    fit: FamilyFit | None = None


@dataclass
class ArrivalSpec:
    """The arrival process, in one of three models (``model`` says which synth should use).

    - ``renewal``: i.i.d. gaps from ``renewal`` (a stationary renewal process).
    - ``modulated``: intensity λ(t) = rate_curve(t) · levels[state(t)] with the burst regime's
      Markov chain (levels all 1 without one); arrivals are a unit-mean renewal process with
      gaps from ``burst_regime.within`` (or ``renewal`` rescaled to mean 1) mapped through the
      inverse of Λ(t) = ∫₀ᵗ λ.
    - ``windowed``: per-window rate and family from ``windows`` (ServeGen style); each window's
      gaps are its family rescaled to mean 1/rate.
    """

    renewal: FamilyFit
    candidates: list[FamilyFit] = field(default_factory=list)
    model: ArrivalModel = "renewal"
    resolution_s: float | None = None  # timestamp grid detected in the source; None = continuous
    rate_curve: RateCurve | None = None
    burst_regime: BurstRegime | None = None
    windows: list[WindowFit] | None = None
    #: ``modulated`` only: where the gap *values* come from. ``operational``: the regime's
    #: ``within`` gaps, time-changed by Λ⁻¹ (the values stretch with the local rate).
    #: ``real-time``: the time-changed process fixes the ORDER of the gaps (short where the
    #: regime is busy), and the values are then drawn from ``gap_law`` (seconds, real time)
    #: and assigned by rank — a client with a near-fixed cadence keeps its cadence.
    gap_shape: GapShape = "operational"
    gap_law: EmpiricalDist | None = None  # real-time gaps (seconds) of the fitted rows


# ---------------------------------------------------------------------------------------------
# Lengths


@dataclass
class PointMass:
    """A value that occurs with a probability of its own (0 tokens, a max_tokens cap …)."""

    value: float
    prob: float


@dataclass
class EmpiricalDist:
    """Log-space histogram plus point masses: a distribution that follows the data closely.

    Bin i covers [edges[i], edges[i+1]) with probability probs[i]; values are log-uniform inside
    a bin. ``point_masses`` carry the rest of the mass; the total is 1.
    """

    edges: list[float]
    probs: list[float]
    point_masses: list[PointMass] = field(default_factory=list)

    def ppf(self, u: np.ndarray | float) -> np.ndarray:
        """Inverse CDF at u ∈ [0, 1) (continuous; round for integer tokens)."""
        u = np.asarray(u, dtype=float)
        lo, hi, p = self._pieces()
        cum = np.cumsum(p)
        start = cum - p
        idx = np.clip(np.searchsorted(cum, u, side="right"), 0, len(p) - 1)
        frac = np.where(p[idx] > 0, (u - start[idx]) / np.where(p[idx] > 0, p[idx], 1), 0.0)
        frac = np.clip(frac, 0.0, 1.0)
        llo, lhi = np.log(np.maximum(lo[idx], 1e-300)), np.log(np.maximum(hi[idx], 1e-300))
        inside = np.exp(llo + frac * (lhi - llo))
        return np.where(lo[idx] == hi[idx], lo[idx], inside)

    def cdf(self, x: np.ndarray | float) -> np.ndarray:
        """CDF at x."""
        x = np.asarray(x, dtype=float)
        lo, hi, p = self._pieces()
        out = np.zeros_like(x)
        for a, b, q in zip(lo, hi, p, strict=True):
            if a == b:
                out = out + q * (x >= a)
            else:
                frac = (np.log(np.clip(x, a, b)) - math.log(a)) / (math.log(b) - math.log(a))
                out = out + q * frac
        return out

    def mean(self) -> float:
        """Mean of the histogram (log-uniform within bins) plus point masses."""
        lo, hi, p = self._pieces()
        m = np.where(lo == hi, lo, (hi - lo) / np.log(np.where(lo == hi, 2, hi / lo)))
        return float(np.sum(p * m))

    def _pieces(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bins and atoms as ordered (lo, hi, prob) pieces; an atom inside a bin splits it."""
        pieces = []
        atoms = sorted((m.value, m.prob) for m in self.point_masses)
        for a, b, q in zip(self.edges[:-1], self.edges[1:], self.probs, strict=True):
            cuts = [v for v, _ in atoms if a < v < b]
            bounds = [a, *cuts, b]
            for x0, x1 in itertools.pairwise(bounds):
                share = (math.log(x1) - math.log(x0)) / (math.log(b) - math.log(a))
                pieces.append((x0, x1, q * share))
        pieces.extend((v, v, q) for v, q in atoms)
        pieces.sort(key=lambda t: (t[0], t[1]))
        arr = np.array(pieces, dtype=float).reshape(-1, 3)
        return arr[:, 0], arr[:, 1], arr[:, 2]


@dataclass
class Marginal:
    """One length (or count) distribution: chosen family, candidates, and the empirical model.

    ``use`` says which synth should sample from: ``empirical`` (default; closest to the data)
    or ``parametric`` (``chosen``). Samples are rounded and clipped to [min, max].
    """

    empirical: EmpiricalDist
    min: float
    max: float
    mean: float
    chosen: FamilyFit | None = None
    candidates: list[FamilyFit] = field(default_factory=list)
    use: Literal["empirical", "parametric"] = "empirical"

    def ppf(self, u: np.ndarray | float) -> np.ndarray:
        """Inverse CDF in whole units (tokens, turns), clipped to [min, max]."""
        if self.use == "parametric" and self.chosen is not None:
            x = self.chosen.ppf(u)
        else:
            x = self.empirical.ppf(u)
        return np.clip(np.rint(x), self.min, self.max)


@dataclass
class Copula:
    """Dependence between input and output lengths: ``gaussian`` with correlation ``rho``
    (of the normal scores), or ``independent``."""

    kind: Literal["gaussian", "independent"] = "gaussian"
    rho: float = 0.0


@dataclass
class LoadCoupling:
    """How a length depends on load: over windows of ``window_s``, ``corr`` is the Pearson
    correlation between the request count and the mean of ``target``; ``elasticity`` is the
    least-squares slope of log(mean target) on log(count / mean count), so a window with k times
    the mean count has ``k**elasticity`` times the mean length (synth renormalises to keep the
    overall mean)."""

    window_s: float
    corr: float
    elasticity: float
    n_windows: int
    target: str = "output_tokens"
    spearman: float | None = None


@dataclass
class Dependence:
    """Input↔output dependence and length↔load coupling."""

    spearman: float
    copula: Copula = field(default_factory=Copula)
    load_coupling: LoadCoupling | None = None


@dataclass
class LengthSpec:
    """Token lengths: marginals, dependence, the context limit and the failure share."""

    input: Marginal
    output: Marginal
    dependence: Dependence
    context_limit: int | None = None  # max input + output seen or known for the model
    failure_rate: float = 0.0  # share of requests the source marks failed (output 0)


# ---------------------------------------------------------------------------------------------
# Sessions, prefixes, groups


@dataclass
class SessionSpec:
    """Multi-turn sessions: turns per session and the think time between consecutive turns'
    arrivals (seconds)."""

    sessions: int
    turns: Marginal
    think_time: FamilyFit | None = None
    think_time_empirical: EmpiricalDist | None = None
    request_share: float = 1.0  # share of requests that carry a session id
    #: tokens a user adds per turn (the first turn's whole input, later turns' input minus the
    #: previous turn's input + output), when the source's inputs carry the history; null when
    #: not measurable — synth then scales the input marginal (a named workaround). Additive.
    new_tokens: Marginal | None = None


@dataclass
class PrefixSpec:
    """Prefix sharing measured from prefix-block ids (Mooncake: 512 tokens a block)."""

    block_tokens: int = 512
    hit_rate: float = 0.0  # share of all blocks already seen earlier in the trace
    shared_prefix_blocks: Marginal | None = None  # leading blocks already seen, per request
    popularity_zipf_s: float | None = None  # Zipf exponent of how often a block is reused


@dataclass
class GroupSpec:
    """One component of a mixture workload (a model, a client): its share and its own spec."""

    name: str
    weight: float  # share of requests (weights of all groups sum to 1)
    spec: WorkloadSpec
    key: str | None = None  # the column the groups split on, e.g. "model", "client"


# ---------------------------------------------------------------------------------------------
# The document


@dataclass
class WorkloadSpec:
    """A complete workload model. With a seed it determines a synthetic workload.

    When ``groups`` is set, the top-level ``arrivals``/``lengths`` describe the whole workload
    and each group describes one component; synth may generate either.
    """

    source: SourceFingerprint
    arrivals: ArrivalSpec
    lengths: LengthSpec | None = None
    sessions: SessionSpec | None = None
    prefix: PrefixSpec | None = None
    groups: list[GroupSpec] | None = None
    notes: list[str] = field(default_factory=list)
    created_by: str | None = None
    burstlab_spec: int = SPEC_VERSION

    # -- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (version first; non-finite floats become null)."""
        body = _plain(dataclasses.asdict(self))
        return {"burstlab_spec": body.pop("burstlab_spec"), **body}

    def to_json(self, indent: int | None = 2) -> str:
        """The spec as a JSON string."""
        self.validate()
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any, where: str = "spec") -> WorkloadSpec:
        """Build and validate a spec from a parsed JSON object; SpecError names the bad field."""
        if not isinstance(data, dict):
            raise SpecError(f"{where}: expected a JSON object, found {type(data).__name__}")
        version = data.get("burstlab_spec")
        if version != SPEC_VERSION:
            raise SpecError(
                f"{where}: unsupported spec version; expected burstlab_spec={SPEC_VERSION}, "
                f"found {version!r}"
            )
        spec = _build(cls, data, where)
        spec.validate(where)
        return spec

    @classmethod
    def from_json(cls, text: str, where: str = "spec") -> WorkloadSpec:
        """Parse a JSON string."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"{where}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
        return cls.from_dict(data, where)

    def save(self, path: str | Path) -> Path:
        """Write the spec as JSON atomically (temp file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(self.to_json() + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> WorkloadSpec:
        """Read a spec file; errors name the file and the field."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise SpecError(f"{path}: cannot read spec ({exc.strerror})") from None
        return cls.from_json(text, where=str(path))

    def sha256(self) -> str:
        """Hash of the canonical JSON; synthetic rows use ``source = "synth:<first 12 hex>"``."""
        canonical = _build(WorkloadSpec, self.to_dict(), "spec").to_dict()  # 200 → 200.0 etc.
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    # -- validation ---------------------------------------------------------------------------

    def validate(self, where: str = "spec") -> None:
        """Check the numbers make sense (probabilities sum to 1, params positive …)."""
        _validate_spec(self, where)


# ---------------------------------------------------------------------------------------------
# Validation


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


def _validate_family(fit: FamilyFit, where: str) -> None:
    base = fit.family.removesuffix(MIXTURE_SUFFIX)
    _check(
        base in FAMILIES,
        f"{where}.family",
        f"unknown family {fit.family!r}; expected one of {sorted(FAMILIES)} (or '<name>-mixture')",
    )
    if fit.family.endswith(MIXTURE_SUFFIX):
        comps = fit.components()
        _check(len(comps) >= 1, f"{where}.params", "a mixture needs w_1, …")
        _check_probs([w for w, _, _ in comps], f"{where}.params (weights)")
        pairs = [p for _, _, p in comps]
    else:
        expected = set(FAMILIES[base][1])
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


def _validate_empirical(emp: EmpiricalDist, where: str) -> None:
    _check(len(emp.edges) == len(emp.probs) + 1, where, "needs len(edges) == len(probs) + 1")
    _check(all(e > 0 for e in emp.edges), f"{where}.edges", "edges must be > 0 (log-space bins)")
    _check(
        all(b > a for a, b in zip(emp.edges[:-1], emp.edges[1:], strict=True)),
        f"{where}.edges",
        "edges must be strictly increasing",
    )
    _check_probs(list(emp.probs) + [m.prob for m in emp.point_masses], f"{where} (bins + masses)")


def _validate_marginal(m: Marginal, where: str) -> None:
    _validate_empirical(m.empirical, f"{where}.empirical")
    _check(m.min <= m.max, where, f"min {m.min} > max {m.max}")
    if m.use == "parametric":
        _check(m.chosen is not None, f"{where}.use", "'parametric' needs a chosen family")
    for i, c in enumerate([m.chosen, *m.candidates]):
        if c is not None:
            _validate_family(c, f"{where}.candidates[{i - 1}]" if i else f"{where}.chosen")


def _validate_arrivals(a: ArrivalSpec, where: str) -> None:
    _validate_family(a.renewal, f"{where}.renewal")
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
        _validate_family(b.within, f"{w}.within")
    if a.windows is not None:
        for i, win in enumerate(a.windows):
            _check(win.duration_s > 0, f"{where}.windows[{i}].duration_s", "must be > 0")
            _check(win.rate_per_s >= 0, f"{where}.windows[{i}].rate_per_s", "must be ≥ 0")
            if win.fit is not None:
                _validate_family(win.fit, f"{where}.windows[{i}].fit")
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


def _validate_spec(spec: WorkloadSpec, where: str) -> None:
    _check(spec.burstlab_spec == SPEC_VERSION, where, f"burstlab_spec must be {SPEC_VERSION}")
    s = spec.source
    _check(s.rows >= 0, f"{where}.source.rows", "must be ≥ 0")
    _check(s.duration_s >= 0, f"{where}.source.duration_s", "must be ≥ 0")
    _validate_arrivals(spec.arrivals, f"{where}.arrivals")
    if spec.lengths is not None:
        ln = spec.lengths
        _validate_marginal(ln.input, f"{where}.lengths.input")
        _validate_marginal(ln.output, f"{where}.lengths.output")
        _check(0 <= ln.failure_rate <= 1, f"{where}.lengths.failure_rate", "must be in [0, 1]")
        rho = ln.dependence.copula.rho
        _check(-1 < rho < 1 or rho == 0, f"{where}.lengths.dependence.copula.rho", "in (-1, 1)")
    if spec.sessions is not None:
        _validate_marginal(spec.sessions.turns, f"{where}.sessions.turns")
        if spec.sessions.think_time is not None:
            _validate_family(spec.sessions.think_time, f"{where}.sessions.think_time")
    if spec.groups:
        _check_probs([g.weight for g in spec.groups], f"{where}.groups (weights)")
        for i, g in enumerate(spec.groups):
            _validate_spec(g.spec, f"{where}.groups[{i}].spec")


# ---------------------------------------------------------------------------------------------
# Generic (de)serialisation of the dataclasses above


def _plain(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (np.floating, np.integer)):
        return _plain(obj.item())
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _build(tp: Any, value: Any, where: str) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if value is None:
            _check(type(None) in args, where, "expected a value, found null")
            return None
        return _build(options[0], value, where)
    if origin is Literal:
        _check(value in args, where, f"expected one of {list(args)}, found {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        _check(isinstance(value, dict), where, f"expected an object, found {value!r}")
        hints = get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        unknown = sorted(set(value) - names)
        _check(not unknown, where, f"unknown field(s) {unknown}; expected some of {sorted(names)}")
        required = {
            f.name
            for f in dataclasses.fields(tp)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        missing = sorted(required - set(value))
        _check(not missing, where, f"missing field(s) {missing}")
        return tp(**{k: _build(hints[k], v, f"{where}.{k}") for k, v in value.items()})
    if origin is list:
        _check(isinstance(value, list), where, f"expected a list, found {value!r}")
        return [_build(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _check(isinstance(value, dict), where, f"expected an object, found {value!r}")
        return {k: _build(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        _check(ok, where, f"expected a number, found {value!r}")
        return float(value)
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        _check(ok, where, f"expected an integer, found {value!r}")
        return value
    if tp is str:
        _check(isinstance(value, str), where, f"expected a string, found {value!r}")
        return value
    if tp is bool:
        _check(isinstance(value, bool), where, f"expected true/false, found {value!r}")
        return value
    raise SpecError(f"{where}: cannot read type {tp!r}")  # pragma: no cover - spec bug
