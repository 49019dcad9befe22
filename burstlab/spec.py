"""The versioned workload spec (docs/design.md §2): everything synth needs to generate a workload.

A spec is plain data: dataclasses that serialise to one JSON document with ``"burstlab_spec": 1``.
Fitting writes it, synth reads it, a person audits it — the contract between the two stages.
Every fitted family carries its diagnostics (log-likelihood, AIC, BIC, KS, AD, n) so the model
choice can be checked, and the source fingerprint says exactly which rows it was fitted on.

Units: seconds for times and rates per second; tokens for lengths. Distribution parameters use
SciPy's names and parameterisation (`burstlab.distributions.FAMILIES`), always with
``loc = 0``. Every evaluation and draw (``FamilyFit.cdf``, ``EmpiricalDist.ppf``, …) is a thin
delegation to `burstlab.distributions`, the one distribution core fitting and synth share.

JSON: `burstlab.jsondoc` writes and reads the dataclasses with field-path errors, under one
policy for non-finite numbers — a spec never holds NaN or ±inf; ``null`` means "not
available" and only optional fields may be null; saving refuses a non-finite number in a
required field. `WorkloadSpec.save` validates, checks that the JSON reads back to the same
spec, and writes atomically. Validation lives in `burstlab.spec_checks`.

The field-by-field description lives in ``docs/spec.md``; keep the two in step.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from burstlab import distributions as dist
from burstlab import jsondoc
from burstlab.atomic import write_text
from burstlab.errors import SpecError
from burstlab.spec_checks import validate_spec

SPEC_VERSION = 1

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

    # -- evaluation: thin delegations to the distribution core (burstlab.distributions) --------

    def components(self) -> list[tuple[float, str, dict[str, float]]]:
        """``[(weight, base family, params)]`` — one entry unless this is a mixture."""
        return dist.components(self.family, self.params)

    def frozen(self):
        """The SciPy frozen distribution (not for mixtures: use `cdf`/`ppf`/`sample`)."""
        return dist.frozen(self.family, self.params)

    def mean(self) -> float:
        """Mean of the distribution (seconds or tokens); inf when it has none."""
        return dist.mean(self.family, self.params)

    def cdf(self, x: np.ndarray | float) -> np.ndarray:
        """CDF at x."""
        return dist.cdf(self.family, self.params, x)

    def sf(self, x: np.ndarray | float) -> np.ndarray:
        """Survival function 1 − CDF at x."""
        return dist.sf(self.family, self.params, x)

    def pdf(self, x: np.ndarray | float) -> np.ndarray:
        """Density (pmf for the discrete geometric family) at x."""
        return dist.pdf(self.family, self.params, x)

    def ppf(self, u: np.ndarray | float) -> np.ndarray:
        """Inverse CDF at probabilities u ∈ (0, 1); mixtures by vectorised bisection."""
        return dist.ppf(self.family, self.params, u)

    def rescaled(self, factor: float) -> FamilyFit:
        """The same law with every value multiplied by ``factor`` (all scale parameters,
        mixture components included); e.g. ``fit.rescaled(1 / fit.mean())`` has mean 1."""
        params = {
            k: v * factor if k == "scale" or k.startswith("scale_") else v
            for k, v in self.params.items()
        }
        return FamilyFit(self.family, params, self.method, self.diagnostics, self.stderr)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw `size` values with numpy's native generators (`distributions.sample`: the
        sampler synth uses; a seeded rng is reproducible). For draws that must follow given
        uniforms (a copula), use ``ppf(u)``."""
        return dist.sample(self.family, self.params, rng, size)


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
        """Inverse CDF at u ∈ [0, 1] (continuous; round for integer tokens): log-linear inside
        a bin, exactly 0.0 below the mass of an atom at 0 (`distributions.empirical_ppf`)."""
        return dist.empirical_ppf(self, u)

    def cdf(self, x: np.ndarray | float) -> np.ndarray:
        """CDF at x."""
        return dist.empirical_cdf(self, x)

    def mean(self) -> float:
        """Mean of the histogram (log-uniform within bins) plus point masses."""
        return dist.empirical_mean(self)


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
            x = np.asarray(self.chosen.ppf(u), dtype=np.float64)
        else:
            x = dist.empirical_ppf(self.empirical, u, exact_atoms=False)  # rounded next
        return dist.round_clip(x, self.min, self.max)


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
class PrefixDepthBin:
    """How deep the shared prefix goes for requests of ``min_blocks`` ≤ blocks < ``max_blocks``
    (a request of n input tokens has ⌈n / block_tokens⌉ blocks).

    ``fraction`` is the law of (leading blocks already used by an earlier request) ÷ (the
    request's blocks): a point mass at 0 (nothing shared), one at 1 (the whole prompt was
    seen before) and a log-space histogram in between."""

    min_blocks: int
    max_blocks: int  # exclusive
    requests: int  # fitted requests in this bin
    fraction: EmpiricalDist


@dataclass
class ReuseGapBin:
    """How long ago the reused prefix was last used, for requests whose shared prefix is
    ``min_blocks`` ≤ depth < ``max_blocks`` blocks deep.

    ``gap_s`` is the law of the time (seconds) between a request and the previous use of the
    deepest block it shares (its *parent*): a point mass at 0 for the same timestamp, a
    log-space histogram above. Synth picks the parent by this gap."""

    min_blocks: int
    max_blocks: int  # exclusive
    requests: int  # fitted requests (with a shared prefix) in this bin
    gap_s: EmpiricalDist


@dataclass
class PrefixSpec:
    """Prefix sharing measured from prefix-block ids (Mooncake: 512 tokens a block).

    The summary statistics (``hit_rate``, ``shared_prefix_blocks``, the reuse distances, the
    Zipf exponent) describe the source; ``depth`` and ``reuse_gap`` are the generative model
    synth draws ``hash_ids`` from (docs/synth.md, "Prefix sharing"). A spec without them
    (fitted before they existed) generates no ``hash_ids``."""

    block_tokens: int = 512
    hit_rate: float = 0.0  # share of all blocks already used by an earlier request
    shared_prefix_blocks: Marginal | None = None  # leading blocks already seen, per request
    popularity_zipf_s: float | None = None  # Zipf exponent of how often a block is reused
    #: mean over requests of (leading shared blocks ÷ blocks), requests with ≥ 1 block
    shared_fraction_mean: float | None = None
    #: per reused block: requests since the previous request that used the same block
    reuse_distance_requests: EmpiricalDist | None = None
    #: per reused block: seconds since the previous request that used the same block
    reuse_distance_s: EmpiricalDist | None = None
    #: the generative model: shared-prefix depth by block count, ordered by min_blocks
    depth: list[PrefixDepthBin] | None = None
    #: the generative model: parent gap (seconds) by shared depth, ordered by min_blocks
    reuse_gap: list[ReuseGapBin] | None = None
    requests: int = 0  # requests with hash_ids the statistics were measured on

    def generative(self) -> bool:
        """True when the spec carries the model synth generates ``hash_ids`` from."""
        return bool(self.depth) and bool(self.reuse_gap)


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

    # -- serialisation (burstlab.jsondoc; the non-finite number policy is jsondoc's) ----------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict, version first. A non-finite number becomes null in an
        optional field; in a required field it is a SpecError naming the field."""
        body = jsondoc.dump(type(self), self, error=SpecError, where="spec")
        return {"burstlab_spec": body.pop("burstlab_spec"), **body}

    def to_json(self, indent: int | None = 2) -> str:
        """The spec as a JSON string (validated first)."""
        self.validate()
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any, where: str = "spec") -> WorkloadSpec:
        """Build and validate a spec from a parsed JSON object; SpecError names the bad field."""
        if not isinstance(data, dict):
            raise SpecError(f"{where}: expected a JSON object, found {type(data).__name__}")
        version = data.get("burstlab_spec")
        if version != SPEC_VERSION:
            found = "nothing" if "burstlab_spec" not in data else jsondoc.show(version)
            raise SpecError(
                f"{where}: unsupported spec version; expected burstlab_spec={SPEC_VERSION}, "
                f"found {found}"
            )
        spec = jsondoc.build(cls, data, error=SpecError, where=where)
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
        """Write the spec as JSON: validate, dump, read the text back and check that it dumps
        to the same JSON (so a saved spec always loads), then write atomically (a unique temp
        file renamed into place, `burstlab.atomic.write_text`). A SpecError names the field
        and leaves no file behind."""
        text = self.to_json() + "\n"
        again = type(self).from_json(text).to_json() + "\n"
        if again != text:
            pairs = itertools.zip_longest(text.splitlines(), again.splitlines())
            line = next(i for i, (a, b) in enumerate(pairs, 1) if a != b)
            raise SpecError(f"{path}: the spec does not read back to the same JSON (line {line})")
        return write_text(path, text)

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
        """Hash of the canonical JSON (sorted keys, float fields as floats); synthetic rows use
        ``source = "synth:<first 12 hex>"``."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    # -- validation ---------------------------------------------------------------------------

    def validate(self, where: str = "spec") -> None:
        """Check the numbers make sense (probabilities sum to 1, params positive …); SpecError
        names the field path (`burstlab.spec_checks`)."""
        validate_spec(self, where, SPEC_VERSION)
