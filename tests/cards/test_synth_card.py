"""Spec and synthetic-workload cards: the published rows regenerate from (spec, seed), the body
names the spec and seed, and the fidelity table is the synth stage's own suite against real
Azure 2023 conv rows held out after the fitted window."""

from __future__ import annotations

import json
import re

import numpy as np
import polars as pl
import pytest
import yaml

from burstlab import cards
from burstlab.cards import card_kind
from burstlab.cards.hf import check_card
from burstlab.cards.synth import fidelity_setup
from burstlab.errors import InputError
from burstlab.spec import (
    ArrivalSpec,
    Copula,
    Dependence,
    EmpiricalDist,
    FamilyFit,
    LengthSpec,
    Marginal,
    SourceFingerprint,
    WorkloadSpec,
)
from burstlab.traces import sample_frame


def fixture_spec(window: list[float]) -> WorkloadSpec:
    """A HAND-WRITTEN spec (a fixture, not fitted): Gamma arrivals at ~5.5 req/s and
    log-uniform lengths, attributed to the Azure conv sample over `window` seconds."""

    def log_uniform(lo: float, hi: float) -> Marginal:
        edges = list(np.geomspace(lo, hi, 11))
        return Marginal(EmpiricalDist(edges, [0.1] * 10), lo, hi, (hi - lo) / np.log(hi / lo))

    return WorkloadSpec(
        SourceFingerprint("azure-llm-2023-conv", 13_000, window[1] - window[0], 5.5, window=window),
        ArrivalSpec(renewal=FamilyFit("gamma", {"a": 0.87, "scale": 0.209}, "given")),
        LengthSpec(
            log_uniform(100, 4000), log_uniform(10, 1000), Dependence(0.3, Copula("gaussian", 0.3))
        ),
    )


def front_matter(readme) -> dict:
    return yaml.safe_load(re.match(r"---\n(.*?)\n---\n", readme.read_text(), re.S).group(1))


@pytest.mark.slow
def test_spec_card_publishes_reproducible_rows_and_out_of_sample_fidelity(tmp_path):
    from burstlab import fitting
    from burstlab.synth import suite as F
    from burstlab.synth.baselines import all_baselines
    from burstlab.synth.generate import generate

    # fitted by the fitting stage on the first 40 minutes; the card holds out what follows
    spec = fitting.fit(sample_frame("azure-llm-2023-conv"), where="arrival_s < 2400").spec
    path = spec.save(tmp_path / "spec.json")
    assert card_kind(path) == ("spec", path)
    card = cards.card(path, tmp_path / "card", seed=7, duration_s=600)
    assert card.kind == "spec" and check_card(card.out_dir) == []
    meta = front_matter(card.readme)
    assert meta["license"] == "cc-by-4.0"  # fitted on the Azure trace: its licence carries over
    [entry] = meta["configs"][0]["data_files"]
    published = pl.read_parquet(card.out_dir / entry["path"])
    assert published.equals(generate(spec, duration_s=600, seed=7).frame)
    assert WorkloadSpec.load(card.out_dir / "data" / "spec.json").sha256() == spec.sha256()

    body = card.readme.read_text()
    assert f"sha256 `{spec.sha256()}`) with seed 7" in body
    real = sample_frame("azure-llm-2023-conv")
    setup = fidelity_setup(spec, None)
    t1 = spec.source.window[1]
    assert setup.out_of_sample and setup.heldout_s == pytest.approx(2400 / 3, abs=0.1)
    held = real.filter(pl.col("arrival_s").is_between(t1, t1 + setup.heldout_s, closed="left"))
    assert setup.heldout.height == held.height > 3000
    window = f"[{t1:,.0f}, {t1 + setup.heldout_s:,.0f}) s"
    assert f"Compared with {held.height:,} real requests (held-out real window: {window}" in body
    # the fidelity table is exactly the synth stage's evaluation of the same frames
    span = setup.heldout_s
    cands = {"burstlab": generate(spec, duration_s=span, seed=7).frame}
    cands.update(all_baselines(setup.train, span, 7))
    wide = F.fidelity(setup.heldout, cands, train=setup.train, window_s=span).wide()
    ks = wide.filter(pl.col("metric") == "iat_ks")
    assert re.search(
        rf"\| iat_ks \| [^|]+ \| {ks['burstlab'][0]:.3g} [✓✗] \| {ks['poisson'][0]:.3g} ", body
    )


@pytest.mark.slow
def test_synth_parquet_card_checks_its_spec(tmp_path):
    from burstlab.synth.export import export
    from burstlab.synth.generate import generate

    spec = fixture_spec([0.0, 3502.0])  # fitted on the whole trace: fidelity is in-sample
    spec_path = spec.save(tmp_path / "spec.json")
    w = generate(spec, duration_s=300, seed=1)
    parquet = export(w.frame, tmp_path / "load.parquet", "parquet", metadata=w.metadata())
    assert card_kind(parquet) == ("synth", parquet)

    bare = cards.card(parquet, tmp_path / "bare")
    assert bare.kind == "synth" and bare.problems == []
    assert "Not computed: pass the spec" in bare.readme.read_text()

    card = cards.card(parquet, tmp_path / "full", spec=spec_path)
    body = card.readme.read_text()
    assert "IN-SAMPLE" in body and f"{w.frame.height:,} **synthetic** requests" in body
    assert json.loads((card.out_dir / "data" / "spec.json").read_text())["burstlab_spec"] == 1

    other = fixture_spec([0.0, 1000.0]).save(tmp_path / "other.json")
    with pytest.raises(InputError, match="did not generate"):
        cards.card(parquet, tmp_path / "wrong", spec=other)


def test_spec_card_without_its_source_says_fidelity_was_not_computed(tmp_path):
    spec = fixture_spec([0.0, 600.0])
    spec.source.source = "burstgpt-2"  # a known dataset that is not ingested here
    card = cards.card(spec.save(tmp_path / "spec.json"), tmp_path / "card", duration_s=120)
    body = card.readme.read_text()
    assert card.problems == []
    assert "Not computed: the source `burstgpt-2` is not available here" in body
    assert front_matter(card.readme)["license"] == "cc-by-4.0"  # BurstGPT's, from the registry
