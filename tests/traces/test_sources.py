"""Every source adapter on hand-written fixtures in its documented format (tests/fixtures/)."""

from __future__ import annotations

import gzip
import io
import tarfile

import polars as pl
import pytest

from burstlab.errors import InputError
from burstlab.parquet import read_metadata
from burstlab.traces import SourceInfo, ingest, ingest_many, open, source_info
from burstlab.traces.generic import ingest_generic


def _reconciles(result) -> None:
    meta = read_metadata(result.path)
    assert meta["rows_read"] == meta["rows_kept"] + sum(meta["rows_dropped"].values())
    assert (meta["rows_read"], meta["rows_kept"]) == (result.rows_read, result.rows_kept)
    assert pl.scan_parquet(result.path).select(pl.len()).collect().item() == result.rows_kept


def test_burstgpt_v1_failed_rows_kept_and_bad_rows_counted(fixture_copy):
    path = fixture_copy("BurstGPT_1.FIXTURE.csv", "BurstGPT_1.csv")
    result = ingest("burstgpt", [path])
    assert result.source == "burstgpt-1"
    assert (result.rows_read, result.rows_kept) == (8, 6)
    assert result.dropped == {
        "missing or non-integer token count": 1,
        "missing or non-numeric Timestamp": 1,
    }
    _reconciles(result)
    df = open("burstgpt-1").collect()
    assert df["arrival_s"].to_list() == [0.0, 40.0, 113.0, 113.0, 195.0, 200.0]
    assert df["failed"].to_list() == [False, False, False, True, False, True]
    assert df["output_tokens"].filter(df["failed"]).to_list() == [0, 0]
    assert df["kind"].to_list()[:4] == ["conversation", "conversation", "conversation", "api"]
    assert df["model"].to_list()[:3] == ["ChatGPT", "ChatGPT", "GPT-4"]
    assert read_metadata(result.path)["t0_source_s"] == 5.0


def test_burstgpt_v3_reads_columns_by_name(fixture_copy):
    v1 = fixture_copy("BurstGPT_1.FIXTURE.csv", "BurstGPT_1.csv")
    v3 = fixture_copy("BurstGPT_3.FIXTURE.csv", "BurstGPT_3.csv")
    results = {r.source: r for r in ingest_many("burstgpt", [v1, v3])}
    assert sorted(results) == ["burstgpt-1", "burstgpt-3"]
    df = open("burstgpt-3").collect()
    assert df["input_tokens"].to_list() == [100, 150, 80, 500, 20]
    assert df["session_id"].to_list() == ["s-1", "s-1", None, "s-2", "s-2"]
    assert df["source_latency_s"].to_list() == [1.5, 2.25, 0.75, 3.0, 0.5]
    assert df["arrival_s"].to_list() == [0.0, 1.0, 2.0, 5.0, 5.0]
    assert df["failed"].sum() == 1


def test_azure_2024_mixed_offsets_and_fractions(fixture_copy):
    path = fixture_copy("AzureLLMInferenceTrace_conv_1week.FIXTURE.csv")
    result = ingest("azure-llm-2024-conv", [path])
    assert (result.rows_read, result.rows_kept) == (6, 5)
    assert result.dropped == {"unparsable TIMESTAMP": 1}
    assert result.t0_utc == "2024-05-10T00:00:00.009930000Z"
    df = open("azure-llm-2024-conv").collect()
    # 02:00:02.5+02:00 is 00:00:02.5 UTC
    assert df["arrival_s"].to_list() == pytest.approx(
        [0.0, 0.99007, 2.49007, 2.990071, 172799.99007], abs=1e-9
    )
    assert df["kind"].unique().to_list() == ["conv"]


def test_azure_2025_multimodal_gzip_matched_by_name(tmp_path, fixture_copy):
    raw = fixture_copy("AzureLMMInferenceTrace_multimodal.FIXTURE.csv").read_bytes()
    gz = tmp_path / "AzureLMMInferenceTrace_multimodal.csv.gz"
    gz.write_bytes(gzip.compress(raw))
    result = ingest("azure-llm", [gz])
    assert result.source == "azure-llm-2025-multimodal"
    df = open(result.source).collect()
    assert df["num_images"].to_list() == [1, 0, 3, 2]
    assert df["num_images"].dtype == pl.Int16
    assert df["arrival_s"].to_list() == pytest.approx([0.0, 0.377, 1.877, 5.127], abs=1e-9)
    assert result.t0_utc == "2025-05-01T10:00:00.123000000Z"


def test_azure_functions_2021_arrival_is_end_minus_duration(fixture_copy):
    path = fixture_copy("AzureFunctionsInvocationTrace2021.FIXTURE.csv")
    result = ingest("azure-functions-2021", [path])
    assert (result.rows_read, result.rows_kept) == (5, 4)
    assert result.dropped == {"negative duration": 1}
    df = open("azure-functions-2021").collect()
    # ends 10.5, 12, 11, 20.25 minus durations 0.5, 1, 3, 0.25 -> 10, 11, 8, 20; t0 = 8.
    # Logged by end time, the arrivals are out of order: written sorted, 3 rows moved
    assert df["arrival_s"].to_list() == [0.0, 2.0, 3.0, 12.0]
    assert df["duration_s"].to_list() == [3.0, 0.5, 1.0, 0.25]
    assert df["function"].to_list() == ["f-3", "f-1", "f-2", "f-3"]
    assert (result.input_time_sorted, result.rows_moved) == (False, 3)


def _wide_day(day: int, cells: dict[tuple[str, int], int]) -> bytes:
    """An Azure Functions 2019 invocations file: 2 functions x 1,440 minute columns, zero
    except the given (function, minute) cells — written here instead of a 1,444-column fixture."""
    header = ["HashOwner", "HashApp", "HashFunction", "Trigger", *map(str, range(1, 1441))]
    lines = [",".join(header)]
    for fn, trigger in (("fa", "http"), ("fb", "timer")):
        counts = [str(cells.get((fn, m), 0)) for m in range(1, 1441)]
        lines.append(",".join(["o1", "app1", fn, trigger, *counts]))
    return ("\n".join(lines) + "\n").encode()


def _tar_xz(path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:xz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_azure_functions_2019_tar_wide_to_long_and_aux_tables(tmp_path):
    durations = (
        "HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,"
        "percentile_Average_1,percentile_Average_25,percentile_Average_50,percentile_Average_75,"
        "percentile_Average_99,percentile_Average_100\n"
        "o1,app1,fa,250,5,100,900,100,110,200,240,300,800,900\n"
    )
    memory = (
        "HashOwner,HashApp,SampleCount,AverageAllocatedMb,AverageAllocatedMb_pct1,"
        "AverageAllocatedMb_pct5,AverageAllocatedMb_pct25,AverageAllocatedMb_pct50,"
        "AverageAllocatedMb_pct75,AverageAllocatedMb_pct95,AverageAllocatedMb_pct99,"
        "AverageAllocatedMb_pct100\n"
        "o1,app1,120,150.5,100,110,130,150,160,180,190,200\n"
    )
    archive = tmp_path / "azurefunctions-dataset2019.tar.xz"
    _tar_xz(
        archive,
        {
            "invocations_per_function_md.anon.d01.csv": _wide_day(
                1, {("fa", 1): 3, ("fa", 1440): 2, ("fb", 10): 1}
            ),
            "invocations_per_function_md.anon.d02.csv": _wide_day(2, {("fa", 1): 4}),
            "function_durations_percentiles.anon.d01.csv": durations.encode(),
            "app_memory_percentiles.anon.d01.csv": memory.encode(),
        },
    )
    results = {r.source: r for r in ingest_many("azure-functions", [archive])}
    assert sorted(results) == [
        "azure-functions-2019",
        "azure-functions-2019-durations",
        "azure-functions-2019-memory",
    ]
    inv = results["azure-functions-2019"]
    assert inv.table_kind == "invocations"
    assert (inv.rows_read, inv.rows_kept) == (2 * 2 * 1440, 4)
    assert inv.dropped == {"zero invocations (absent row = 0)": 5756}
    assert inv.span_s == 1441 * 60.0  # minutes 0..1440 hold invocations
    _reconciles(inv)
    df = open("azure-functions-2019").collect().sort("minute", "function")
    assert df.select("function", "minute", "count", "trigger").rows() == [
        ("fa", 0, 3, "http"),
        ("fb", 9, 1, "timer"),
        ("fa", 1439, 2, "http"),
        ("fa", 1440, 4, "http"),
    ]
    dur = open("azure-functions-2019-durations").collect().row(0, named=True)
    assert (dur["day"], dur["average_s"], dur["p99_s"], dur["count"]) == (1, 0.25, 0.8, 5)
    mem = open("azure-functions-2019-memory").collect().row(0, named=True)
    assert (mem["average_mb"], mem["p100_mb"]) == (150.5, 200.0)


def test_huawei_cold_starts_region_and_pod_resources(fixture_copy):
    path = fixture_copy("huawei_cold_start.FIXTURE.csv", "day_000_cold_start.csv", subdir="R2")
    result = ingest("huawei", [path])
    assert result.source == "huawei-2025-cold-starts"
    assert (result.rows_read, result.rows_kept) == (5, 4)
    assert result.dropped == {"missing or non-numeric totalCost_cold_start": 1}
    df = open(result.source).collect()
    assert df["region"].unique().to_list() == ["R2"]
    assert df["pod_cpu_millicores"].to_list() == [300, 300, 1000, 3400]
    assert df["pod_memory_mb"].to_list() == [128, 128, 1024, 4096]
    assert df["function"][0] == "332---439---pool22-300-128"
    assert df["arrival_s"].to_list() == pytest.approx([0.0, 0.122, 5.396, 86459.896], abs=1e-9)
    assert df["scheduling_s"][2] == 3.560717


def test_huawei_region_folders_ingest_as_one_dataset(tmp_path, fixture_copy):
    fixture_copy("huawei_cold_start.FIXTURE.csv", "day_00.csv", subdir="cs/R1")
    fixture_copy("huawei_cold_start.FIXTURE.csv", "day_00.csv", subdir="cs/R3")
    (tmp_path / "cs" / "R3" / "notes.txt").write_text("not a trace\n")
    result = ingest("huawei", [tmp_path / "cs"])
    assert (result.source, result.rows_read, result.rows_kept) == ("huawei-2025-cold-starts", 10, 8)
    regions = open(result.source).collect()["region"].value_counts().sort("region").rows()
    assert regions == [("R1", 4), ("R3", 4)]


def test_huawei_files_told_apart_by_columns(fixture_copy):
    cold = fixture_copy("huawei_cold_start.FIXTURE.csv", "day_03.csv", subdir="R4")
    assert ingest("huawei", [cold]).source == "huawei-2025-cold-starts"  # not a minute table
    minute = fixture_copy("huawei_requests_minute.FIXTURE.csv", "day_03.csv")
    with pytest.raises(InputError, match="fits several huawei datasets") as err:
        ingest("huawei", [minute])
    assert "huawei-2023-requests-minute" in str(err.value)


def test_huawei_per_request_table(fixture_copy):
    path = fixture_copy("huawei_per_request.FIXTURE.csv", "R1_per_request_00000.csv")
    result = ingest("huawei", [path])
    assert (result.source, result.table_kind, result.rows_kept) == (
        "huawei-2025-requests",
        "function_requests",
        4,
    )
    df = open(result.source).collect()
    assert df["arrival_s"].to_list() == pytest.approx([0.0, 0.255, 1.005, 9.01], abs=1e-9)
    assert df["duration_s"].to_list() == [0.026421, 0.52, 1.1, 2.05]


def test_huawei_per_minute_wide_table(fixture_copy):
    path = fixture_copy("huawei_requests_minute.FIXTURE.csv")
    result = ingest("huawei-2025-requests-minute", [path])
    assert (result.rows_read, result.rows_kept) == (9, 4)
    assert result.dropped == {"empty cell (no data)": 2, "zero invocations (absent row = 0)": 3}
    df = open(result.source).collect().sort("minute", "function")
    assert df.select("function", "minute", "count").rows() == [
        ("400---418---pool22-300-128", 0, 3),
        ("12---7---pool24-600-512", 1, 1),
        ("400---418---pool22-300-128", 1, 5),
        ("9---7---pool24-600-512", 2, 2),
    ]
    assert df["owner"].to_list() == ["418", "7", "418", "7"]


def test_generic_mapping_and_time_unit(fixture_copy):
    path = fixture_copy("generic_requests.FIXTURE.csv")
    result = ingest_generic(
        [path],
        "arrival_s=ts_ms,input_tokens=prompt,output_tokens=completion,session_id=user",
        time_unit="ms",
        source_id="my-trace",
    )
    assert (result.source, result.rows_kept) == ("my-trace", 4)
    df = open("my-trace").collect()
    assert df["arrival_s"].to_list() == [0.0, 0.25, 3.0, 3.0]
    assert df["session_id"].to_list() == ["alice", "bob", "alice", "carol"]
    assert read_metadata(result.path)["generic"]["time_unit"] == "ms"
    # the same bytes under another mapping are not "unchanged"
    again = ingest_generic(
        [path],
        "arrival_s=ts_ms,input_tokens=completion,output_tokens=prompt",
        time_unit="ms",
        source_id="my-trace",
    )
    assert not again.skipped
    assert open("my-trace").collect()["input_tokens"].to_list() == [5, 6, 0, 8]


def test_source_info_carries_licence_citation_and_documented_caveats():
    """Per-source knowledge lives on the adapters; the traces face hands it to later stages."""
    from burstlab.traces import registry

    conv = source_info("azure-llm-2023-conv")
    assert isinstance(conv, SourceInfo)
    assert (conv.id, conv.family, conv.table) == ("azure-llm-2023-conv", "azure-llm", "requests")
    assert conv.licence.startswith("CC-BY-4.0") and "Splitwise" in conv.citation
    assert conv.homepage == "https://github.com/Azure/AzurePublicDataset"
    assert conv.url.endswith("/AzureLLMInferenceTrace_conv.csv")
    assert len(conv.caveats) == 3
    assert "November 11th 2023" in conv.caveats[0] and "2023-11-16" in conv.caveats[0]
    # one dataset's caveats (per year) vs a family's (every BurstGPT file)
    assert source_info("azure-llm-2024-code").caveats[1] == (
        "No failure flag (`failed` is always false)."
    )
    assert source_info("azure-llm-2023-code").caveats == conv.caveats
    burst = [source_info(f"burstgpt-{p}").caveats for p in ("1", "2", "without-fails-3")]
    assert burst[0] == burst[1] == burst[2] and len(burst[0]) == 3
    assert burst[0][0].startswith("`Timestamp` is in whole seconds since the trace start")
    assert (
        source_info("mooncake-conversation")
        .caveats[0]
        .startswith("Timestamps are integer milliseconds but quantized to ~3 s buckets")
    )
    assert (
        source_info("azure-functions-2019-memory").caveats
        == source_info("azure-functions-2019").caveats
    )
    assert "arrival = end − duration" in source_info("azure-functions-2021").caveats[0]
    # the family's caveats come first, then the dataset's own
    adapter, src = registry.source_ids()["huawei-2025-cold-starts"]
    assert source_info(src.id).caveats == (*adapter.caveats, *src.caveats)
    assert "pod id encodes" in source_info(src.id).caveats[0]
    # every named dataset documents something; ids no adapter declares have no info
    assert all(source_info(sid).caveats for sid in registry.source_ids())
    assert len(registry.source_ids()) == 23
    assert source_info("my-trace") is None and source_info("synth:abc") is None
