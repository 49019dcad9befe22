"""Peers' generators, rebuilt on the same training data, so every fidelity report shows what
burstlab is better than (the issue asks for these three, always):

- ``poisson``: Poisson arrivals at the training mean rate, (input, output) pairs resampled
  from the training requests — `vllm bench serve --request-rate R` over a dataset.
- ``gamma``: one Gamma renewal process at the training mean rate and the training gaps' CV
  (shape = 1/CV²), pairs resampled — `vllm bench serve --burstiness` at the fitted CV.
- ``burstgpt_demo``: Gamma arrivals with shape 0.25 at the mean rate, input and output
  lengths independent Zipf(1.1) on 1..(training max) — the BurstGPT repo's demo generator.

Each returns a canonical requests frame with `source = "baseline:<name>"`; times are seconds
on [0, duration_s).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from burstlab.errors import FitError
from burstlab.scalars import integer, number
from burstlab.spec import FamilyFit
from burstlab.synth.arrivals import renewal_arrivals
from burstlab.synth.generate import _positive
from burstlab.synth.table import requests_table

#: BurstGPT demo constants (their Zipf exponent and Gamma shape).
ZIPF_EXPONENT = 1.1
BURSTGPT_GAMMA_SHAPE = 0.25


def _rate(train: pl.DataFrame) -> float:
    t = train["arrival_s"]
    span = number(t.max(), "arrival_s") - number(t.min(), "arrival_s")
    return (train.height - 1) / span if span > 0 else float(train.height)


def _checked(train: pl.DataFrame, duration_s: float) -> float:
    """`duration_s` as a float (UsageError unless finite and > 0); FitError when `train` cannot
    carry a baseline: fewer than 2 arrivals, or no successful request to resample."""
    duration_s = _positive(duration_s, "duration_s")
    if train.height < 2:
        raise FitError(f"a baseline needs at least 2 training requests, found {train.height}")
    ok = train.filter(~pl.col("failed").fill_null(False)) if "failed" in train.columns else train
    if ok.is_empty():
        raise FitError("a baseline resamples successful requests; every training request failed")
    return duration_s


def _gamma(shape: float) -> FamilyFit:
    """Unit-mean Gamma gaps (shape 1 is exponential: Poisson arrivals)."""
    return FamilyFit("gamma", {"a": shape, "scale": 1.0 / shape}, "given")


def _resampled_pairs(
    rng: np.random.Generator, train: pl.DataFrame, n: int
) -> tuple[np.ndarray, np.ndarray]:
    ok = train.filter(~pl.col("failed").fill_null(False))
    pick = rng.integers(0, ok.height, n)
    return ok["input_tokens"].to_numpy()[pick], ok["output_tokens"].to_numpy()[pick]


def zipf_lengths(rng: np.random.Generator, exponent: float, max_tokens: int, n: int) -> np.ndarray:
    """`n` draws from Zipf(`exponent`) truncated to 1..max_tokens (exact inverse CDF)."""
    k = np.arange(1, max_tokens + 1, dtype=np.float64)
    cdf = np.cumsum(k**-exponent)
    cdf /= cdf[-1]
    return np.searchsorted(cdf, rng.random(n), side="right") + 1


def poisson(train: pl.DataFrame, duration_s: float, seed: int = 0) -> pl.DataFrame:
    """Poisson at the training mean rate, lengths resampled as pairs (vLLM bench style)."""
    duration_s = _checked(train, duration_s)
    rng = np.random.default_rng(seed)
    t = renewal_arrivals(rng, _gamma(1.0), _rate(train), duration_s)
    inp, out = _resampled_pairs(rng, train, t.size)
    return requests_table("baseline:poisson", t, inp, out)


def gamma_renewal(train: pl.DataFrame, duration_s: float, seed: int = 0) -> pl.DataFrame:
    """One Gamma renewal at the training rate and gap CV, pairs resampled (vLLM --burstiness)."""
    duration_s = _checked(train, duration_s)
    rng = np.random.default_rng(seed)
    gaps = np.diff(np.sort(train["arrival_s"].to_numpy()))
    cv = float(gaps.std() / gaps.mean()) if gaps.mean() > 0 else 1.0
    # regular arrivals (CV 0) are the Gamma limit of a huge shape; 1e6 is regular to 0.1 %
    t = renewal_arrivals(rng, _gamma(1.0 / max(cv, 1e-3) ** 2), _rate(train), duration_s)
    inp, out = _resampled_pairs(rng, train, t.size)
    return requests_table("baseline:gamma", t, inp, out)


def burstgpt_demo(train: pl.DataFrame, duration_s: float, seed: int = 0) -> pl.DataFrame:
    """Gamma(shape 0.25) arrivals at the training rate, independent Zipf(1.1) lengths."""
    duration_s = _checked(train, duration_s)
    rng = np.random.default_rng(seed)
    t = renewal_arrivals(rng, _gamma(BURSTGPT_GAMMA_SHAPE), _rate(train), duration_s)
    inp = zipf_lengths(
        rng, ZIPF_EXPONENT, integer(train["input_tokens"].max(), "input_tokens"), t.size
    )
    out = zipf_lengths(
        rng, ZIPF_EXPONENT, integer(train["output_tokens"].max(), "output_tokens"), t.size
    )
    return requests_table("baseline:burstgpt_demo", t, inp, out)


#: Name → generator(train, duration_s, seed); the order reports use.
BASELINES: dict[str, Callable[[pl.DataFrame, float, int], pl.DataFrame]] = {
    "poisson": poisson,
    "gamma": gamma_renewal,
    "burstgpt_demo": burstgpt_demo,
}


def all_baselines(train: pl.DataFrame, duration_s: float, seed: int = 0) -> dict[str, pl.DataFrame]:
    """Every baseline generated for `duration_s` seconds from the training frame."""
    return {name: gen(train, duration_s, seed) for name, gen in BASELINES.items()}
