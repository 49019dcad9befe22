"""Source cards on the real shipped samples: valid HF card, right licence/configs/rows, and
every number in the body equal to what polars computes on the shipped Parquet."""

from __future__ import annotations

import re
import shutil

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from burstlab import cards
from burstlab.cards import card_kind
from burstlab.cards.hf import check_card, hf_license, publish, size_category
from burstlab.cards.stats import fmt
from burstlab.errors import BurstlabError, InputError, MissingExtraError, UsageError
from burstlab.parquet import read_metadata
from burstlab.traces import ingest


def front_matter(readme) -> dict:
    text = readme.read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match, "README.md must start with YAML front matter"
    return yaml.safe_load(match.group(1))


@pytest.fixture(scope="module")
def conv_card(tmp_path_factory):
    """One card for the module's read-only tests (a card takes a few seconds to write)."""
    root = tmp_path_factory.mktemp("conv")
    ingest("azure-llm-2023-conv", sample=True, data_dir=root / "data")
    return cards.card("azure-llm-2023-conv", root / "card", data_dir=root / "data")


def test_conv_card_is_valid_hf_card_with_licence_and_configs(conv_card):
    assert conv_card.kind == "source"
    assert conv_card.problems == []
    assert check_card(conv_card.out_dir) == []
    meta = front_matter(conv_card.readme)
    assert meta["license"] == "cc-by-4.0"
    assert meta["size_categories"] == ["10K<n<100K"]
    assert meta["source_datasets"] == ["extended|Azure/AzurePublicDataset"]
    assert meta["pretty_name"].startswith("azure-llm-2023-conv")
    [config] = meta["configs"]
    assert config["config_name"] == "default"
    [entry] = config["data_files"]
    assert entry == {"split": "train", "path": "data/azure-llm-2023-conv.parquet"}
    data = conv_card.out_dir / entry["path"]
    assert pl.read_parquet(data).height == 19_366
    # the copy keeps the provenance footer of the ingested file
    prov = read_metadata(data)
    assert prov["rows_kept"] == 19_366
    assert (
        prov["input_sha256"] == "2f1e5b666d4e3055fdbba98598ce2ec307767b9064e03e2fa46676dbcc7d0bf8"
    )


def test_conv_card_numbers_match_the_data(conv_card):
    body = conv_card.readme.read_text(encoding="utf-8")
    df = pl.read_parquet(conv_card.out_dir / conv_card.data_files[0])
    span = df["arrival_s"].max() - df["arrival_s"].min()
    # overview row: rows | span | rate | failed
    assert f"| 19,366 | {span:,.1f} | {19_366 / span:.3g} | 0 |" in body
    assert "| 19,366 | 3,501.7 | 5.53 | 0 |" in body  # PROVENANCE.md: 3,502 s, 5.53 req/s
    for col in ("input_tokens", "output_tokens"):
        s = df[col]
        row = re.search(rf"\| {col} \| ([^\n]+) \|", body).group(1).split(" | ")
        numbers = [float(x.replace(",", "")) for x in row]
        expected = [
            round(s.mean(), 1),
            s.quantile(0.5, interpolation="linear"),
            s.quantile(0.9, interpolation="linear"),
            s.quantile(0.99, interpolation="linear"),
            s.min(),
            s.max(),
        ]
        assert numbers == pytest.approx(expected, abs=0.051), col
    # burstiness, arrival and length models are the fitting stage's own numbers
    from burstlab import fitting
    from burstlab.spec import WorkloadSpec

    fit = fitting.fit(df)
    row = fit.burstiness.row()
    for key, head in (
        ("idc_60s", "index of dispersion of counts, 60 s"),
        ("iat_cv", "inter-arrival CV (1 = Poisson)"),
    ):
        assert f"| {head} | {fmt(float(f'{row[key]:.4g}'))} |" in body
    assert "| index of dispersion of counts, 60 s | 16.4 |" in body  # far from Poisson's 1
    best = fit.arrivals.best
    assert best.family == "gamma"
    assert f"Renewal family: **gamma** ({best.method};" in body
    assert f"a = {best.params['a']:.4g} ± {best.stderr['a']:.2g}" in body
    assert (
        f"burst regime on {fit.modulation.window_s:g} s windows: **{fit.modulation.chosen.label}**"
        in body
    )
    out_best = fit.lengths.output.best.family
    assert (
        f"**output_tokens** (19,366 values, mean 211.1, 7–1,000): best family **{out_best}**"
        in body
    )
    # busy minutes have shorter outputs (docs/design.md §4: corr ≈ −0.8 at 60 s)
    load60 = fit.lengths.load.filter(pl.col("window_s") == 60.0).row(0, named=True)
    assert load60["corr"] < -0.7
    assert f"| 60 | 59 | {load60['corr']:.3g} |" in body
    published = WorkloadSpec.load(conv_card.out_dir / "data" / "spec.json")
    assert published.sha256() == fit.spec.sha256()
    assert "data/spec.json" in conv_card.data_files
    # the PROVENANCE.md figures: context p50 1,020, max 14,050; generated p50 129, max 1,000
    assert "| input_tokens | 1,154.7 | 1,020 |" in body
    assert "| 14,050 |" in body and "| output_tokens | 211.1 | 129 |" in body


def test_conv_card_provenance_caveats_and_charts(conv_card):
    body = conv_card.readme.read_text(encoding="utf-8")
    assert "https://github.com/Azure/AzurePublicDataset" in body
    assert "AzureLLMInferenceTrace_conv.csv | 719,188 |" in body
    assert "Splitwise" in body  # citation
    assert "November 11th 2023" in body and "2023-11-16" in body  # documented date caveat
    assert "`output_tokens` looks capped at 1,000: 11 rows equal the maximum" in body
    assert "shipped with burstlab" in body
    assert "| `arrival_s` | Float64 | no | seconds since the first request" in body
    assert sorted(conv_card.charts) == [
        "charts/dispersion.png",
        "charts/dispersion.svg",
        "charts/rate.png",
        "charts/rate.svg",
        "charts/tokens.png",
        "charts/tokens.svg",
    ]
    for rel in conv_card.charts:
        raw = (conv_card.out_dir / rel).read_bytes()
        assert raw.startswith(b"\x89PNG") if rel.endswith(".png") else b"<svg" in raw[:500]
        if rel.endswith(".png"):
            assert body.count(f"]({rel})") == 1


def test_mooncake_card_states_quantized_timestamps(data_dir, tmp_path):
    ingest("mooncake-conversation", sample=True, data_dir=data_dir)
    card = cards.card("mooncake-conversation", tmp_path / "mc", data_dir=data_dir)
    body = card.readme.read_text(encoding="utf-8")
    meta = front_matter(card.readme)
    assert meta["license"] == "apache-2.0"
    assert meta["size_categories"] == ["1K<n<10K"]
    df = pl.read_parquet(tmp_path / "mc" / card.data_files[0])
    assert df.height == 3_000
    zero_share = (df["arrival_s"].diff().drop_nulls() == 0).mean()
    assert f"Arrival times lie on a 3 s grid: {zero_share:.1%} of inter-arrival gaps are 0" in body
    assert "Renewal family: **exponential** (interval-censored mean-preserving" in body
    assert "first 3,000 of 12,031" in body


def test_check_card_reports_bad_licence_and_missing_data(conv_card, tmp_path):
    card_dir = shutil.copytree(conv_card.out_dir, tmp_path / "broken")
    readme = card_dir / "README.md"
    text = readme.read_text(encoding="utf-8")
    readme.write_text(text.replace("license: cc-by-4.0", "license: CC BY 4.0"), encoding="utf-8")
    (card_dir / conv_card.data_files[0]).unlink()
    problems = check_card(card_dir)
    assert any("'CC BY 4.0' is not a Hub licence id" in p for p in problems)
    assert any("no file matches 'data/azure-llm-2023-conv.parquet'" in p for p in problems)
    assert len(problems) == 2


def test_licence_and_size_mapping():
    assert hf_license("CC-BY-4.0 (data); MIT (code in the repository)") == "cc-by-4.0"
    assert hf_license("Apache-2.0") == "apache-2.0"
    assert hf_license("CC BY 4.0") == "cc-by-4.0"
    assert hf_license("some custom terms") == "other"
    assert hf_license(None) == "unknown"
    assert [size_category(n) for n in (999, 1_000, 19_366, 27_000_000)] == [
        "n<1K",
        "1K<n<10K",
        "10K<n<100K",
        "10M<n<100M",
    ]


@pytest.mark.slow
def test_cli_card_refuses_to_overwrite_without_flag(data_dir, tmp_path):
    from burstlab.cli import app

    ingest("azure-llm-2023-code", sample=True, data_dir=data_dir)
    out = tmp_path / "code-card"
    runner = CliRunner()
    args = ["--data-dir", str(data_dir), "card", "azure-llm-2023-code", "--out", str(out)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "source card written" in first.output
    assert pl.read_parquet(out / "data" / "azure-llm-2023-code.parquet").height == 8_819
    readme = (out / "README.md").read_bytes()
    again = runner.invoke(app, args)
    assert again.exit_code == 2  # a UsageError: the out parameter, shown as the --out flag
    assert f"--out: {out} already exists" in " ".join(again.output.split())
    assert (out / "README.md").read_bytes() == readme  # refused before any work
    (out / "stale.txt").write_text("left from an older card")
    forced = runner.invoke(app, [*args, "--overwrite"])
    assert forced.exit_code == 0, forced.output
    assert check_card(out) == []
    assert not (out / "stale.txt").exists()  # the folder is replaced whole
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "charts", "data"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["code-card"]  # no staging left


def test_card_targets_are_classified_with_clear_errors(data_dir, tmp_path):
    assert card_kind("azure-llm-2023-conv") == ("source", None)
    with pytest.raises(InputError, match="not ingested in this data directory"):
        cards.card("azure-llm-2023-conv", tmp_path / "x", data_dir=data_dir)
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(InputError, match="not a workload spec"):
        card_kind(bad)
    with pytest.raises(InputError, match="replay run"):
        card_kind(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        card_kind(tmp_path / "missing.parquet")
    (tmp_path / "taken").write_text("x")
    with pytest.raises(UsageError, match="is a file; a card is written to a folder") as err:
        publish(tmp_path / "taken", lambda out: pytest.fail("built into a file"), overwrite=True)
    assert err.value.param == "out" and "--" not in err.value.message
    assert (tmp_path / "taken").read_text() == "x"


def test_a_non_empty_out_folder_is_refused_before_any_work(tmp_path):
    out = tmp_path / "card"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="already exists") as err:
        publish(out, lambda folder: pytest.fail("built although refused"))
    assert err.value.param == "out" and "--" not in err.value.message
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card"]


def test_missing_huggingface_hub_names_the_extra(conv_card, data_dir, tmp_path, monkeypatch):
    import sys

    from burstlab.cli import app

    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import now raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'burstlab\[card\]'") as err:
        check_card(conv_card.out_dir)
    assert str(err.value) == (
        "validating a dataset card needs the optional package 'huggingface_hub': "
        "pip install 'burstlab[card]'"
    )
    assert (err.value.extra, err.value.module) == ("card", "huggingface_hub")
    # a card fails before any work, and leaves nothing behind
    ingest("azure-llm-2023-code", sample=True, data_dir=data_dir)
    with pytest.raises(MissingExtraError):
        cards.card("azure-llm-2023-code", tmp_path / "card", data_dir=data_dir)
    assert not (tmp_path / "card").exists()
    # the CLI prints the install hint whole: `[card]` is not swallowed as rich markup
    result = CliRunner().invoke(
        app, ["--data-dir", str(data_dir), "card", "azure-llm-2023-code", "-o", str(tmp_path / "c")]
    )
    assert result.exit_code == 2
    assert "pip install 'burstlab[card]'" in result.output
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.slow
def test_a_card_that_fails_midway_leaves_nothing_behind(data_dir, tmp_path, monkeypatch, overwrite):
    """The token chart fails after the data copy and the rate chart are written: the card's
    folder must not appear (or, with overwrite, the old card must stay as it was), and a
    re-run must succeed."""
    from burstlab.cards import source

    ingest("azure-llm-2023-code", sample=True, data_dir=data_dir)
    out = tmp_path / "card"
    old = None
    if overwrite:
        old = cards.card("azure-llm-2023-code", out, data_dir=data_dir).readme.read_bytes()
    written = []
    real_save = source.save_card_chart

    def save_then_fail(chart, folder, stem):
        written.append((folder, stem))
        if stem == "tokens":
            assert (folder / "data" / "azure-llm-2023-code.parquet").is_file()
            assert (folder / "charts" / "rate.png").is_file()  # half a card exists, staged
            raise RuntimeError("chart writer broke")
        return real_save(chart, folder, stem)

    monkeypatch.setattr(source, "save_card_chart", save_then_fail)
    with pytest.raises(RuntimeError, match="chart writer broke"):
        cards.card("azure-llm-2023-code", out, data_dir=data_dir, overwrite=overwrite)
    assert [stem for _, stem in written] == ["rate", "tokens"]
    staged = written[0][0]
    assert staged != out and staged.parent == out.parent and staged.name.startswith(".card.")
    assert not staged.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["card"] if overwrite else [])
    if overwrite:
        assert (out / "README.md").read_bytes() == old
        assert check_card(out) == []

    monkeypatch.setattr(source, "save_card_chart", real_save)
    again = cards.card("azure-llm-2023-code", out, data_dir=data_dir, overwrite=overwrite)
    assert again.out_dir == out and again.readme == out / "README.md" and again.problems == []
    assert pl.read_parquet(out / "data" / "azure-llm-2023-code.parquet").height == 8_819
    assert sorted(again.charts) == [
        f"charts/{stem}.{ext}"
        for stem in ("dispersion", "rate", "tokens")
        for ext in ("png", "svg")
    ]
    assert all((out / rel).is_file() for rel in [*again.charts, *again.data_files])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card"]


def test_an_invalid_card_is_never_put_in_place(data_dir, tmp_path, monkeypatch):
    """A card that fails offline validation raises, names the problem at its final path, and
    leaves no folder."""
    from burstlab.cards import source

    ingest("azure-llm-2023-code", sample=True, data_dir=data_dir)
    real = source.front_matter
    monkeypatch.setattr(
        source, "front_matter", lambda **kw: {**real(**kw), "size_categories": ["huge"]}
    )
    out = tmp_path / "card"
    with pytest.raises(BurstlabError, match="dataset card failed validation") as err:
        cards.card("azure-llm-2023-code", out, data_dir=data_dir)
    assert f"{out / 'README.md'}: size_categories ['huge']" in str(err.value)
    assert ".tmp" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_cards_for_other_sources_state_their_measured_caveats(data_dir, tmp_path, samples):
    """Hand-written FIXTURE files of sources whose real files are not shipped: a BurstGPT
    requests table (whole-second timestamps, a failed row) and a Huawei cold-start table."""
    fixtures = samples.parents[1] / "tests" / "fixtures"
    for name, sub in (
        ("BurstGPT_1.FIXTURE.csv", "BurstGPT_1.csv"),
        ("huawei_cold_start.FIXTURE.csv", "R2/day_000_cold_start.csv"),
    ):
        dest = tmp_path / "in" / sub
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fixtures / name, dest)
    burst = ingest("burstgpt", [tmp_path / "in" / "BurstGPT_1.csv"], data_dir=data_dir)
    card = cards.card(burst.source, tmp_path / "burst", data_dir=data_dir)
    body = card.readme.read_text()
    df = pl.read_parquet(card.out_dir / card.data_files[0])
    assert df.height == burst.rows_kept == 6
    zero = (df["arrival_s"].sort().diff().drop_nulls() == 0).mean()
    assert f"{zero:.2%} of inter-arrival gaps are exactly 0" in body  # too few rows for a grid
    assert "`Timestamp` is in whole seconds since the trace start" in body  # documented
    failed = int(df["failed"].sum())
    assert failed >= 1
    assert f"{failed:,} rows ({failed / df.height:.2%}) are failed requests" in body
    assert front_matter(card.readme)["license"] == "cc-by-4.0"

    cold = ingest("huawei", [tmp_path / "in" / "R2"], data_dir=data_dir)
    card = cards.card(cold.source, tmp_path / "cold", data_dir=data_dir)
    body = card.readme.read_text()
    assert card.problems == [] and "4 rows." in body
    total = pl.read_parquet(card.out_dir / card.data_files[0])["total_s"]
    assert f"| `total_s` | 4 | {fmt(round(total.mean(), 4))} |" in body
    assert "| `pod_cpu_millicores` | Int32 | yes | CPU of the pod, millicores |" in body
