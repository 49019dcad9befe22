"""Numbers a canonical column cannot hold are dropped with a reason, never a crash or a NaN.

Every canonical integer column is narrower than what the readers parse (int32 tokens, minute
and count; int16 num_images and day), and float cells may say ``nan`` or ``inf``. Each case
below crashed the ingest (a polars cast error) or wrote a non-finite number before the fix.
The files are written here in each source's FORMAT; no row is real.
"""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from burstlab.errors import InputError
from burstlab.traces import ingest, ingest_generic, ingest_many, open, sample_frame

BURSTGPT = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
INT32_MAX = 2**31 - 1


def _finite(path) -> None:
    """No NaN or ±inf in any float column of the written file."""
    frame = pl.read_parquet(path)
    for name, dtype in frame.schema.items():
        if dtype.is_float():
            assert frame[name].is_finite().all(), f"{name}: {frame[name].to_list()}"


def _reconciles(result) -> None:
    assert result.rows_read == result.rows_kept + sum(result.dropped.values())


def test_burstgpt_token_count_above_int32_is_dropped_and_counted(tmp_path, data_dir):
    path = tmp_path / "BurstGPT_1.csv"
    path.write_text(
        BURSTGPT + "5,ChatGPT,472,18,490,Conversation log\n"
        "7,ChatGPT,99999999999,18,100000000017,Conversation log\n"
        f"9,GPT-4,12,{INT32_MAX + 1},{INT32_MAX + 13},API log\n"
        f"11,GPT-4,{INT32_MAX},0,{INT32_MAX},API log\n"
    )
    result = ingest("burstgpt-1", [path])
    assert (result.rows_read, result.rows_kept) == (4, 2)
    assert result.dropped == {"token count out of range": 2}
    df = pl.read_parquet(result.path)
    assert df["input_tokens"].to_list() == [472, INT32_MAX]  # the int32 maximum itself is kept
    assert df["arrival_s"].to_list() == [0.0, 6.0]
    with pytest.raises(InputError) as err:
        ingest("burstgpt-1", [path], strict=True)
    assert (err.value.path, err.value.line) == (path, 3)
    assert "token count out of range" in str(err.value)


def test_burstgpt_out_of_range_row_through_the_cli(tmp_path, data_dir):
    from burstlab.cli import app

    path = tmp_path / "BurstGPT_1.csv"
    path.write_text(BURSTGPT + "5,ChatGPT,1,2,3,API log\n7,ChatGPT,99999999999,18,9,API log\n")
    result = CliRunner().invoke(app, ["ingest", "burstgpt-1", str(path)])
    assert result.exit_code == 0, result.output
    assert "dropped 1 rows: token count out of range" in result.output
    assert "InvalidOperationError" not in result.output


def test_non_finite_and_huge_timestamps_are_dropped(tmp_path, data_dir):
    path = tmp_path / "BurstGPT_1.csv"
    rows = ["nan", "inf", "-inf", "1e400", "1e30", "9e9", "-9e9", "3", "1"]
    path.write_text(BURSTGPT + "".join(f"{t},ChatGPT,5,6,11,API log\n" for t in rows))
    result = ingest("burstgpt-1", [path])
    # 9e9 s is 9e18 ns: fits int64 but two such times cannot be subtracted safely
    assert result.dropped == {"missing or non-numeric Timestamp": 5, "time out of range": 2}
    assert pl.read_parquet(result.path)["arrival_s"].to_list() == [0.0, 2.0]
    _reconciles(result)


def test_optional_float_nan_becomes_null_and_required_one_drops_the_row(tmp_path, data_dir):
    v3 = tmp_path / "BurstGPT_3.csv"
    v3.write_text(
        "Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,"
        "Log Type\n1,s1,nan,ChatGPT,5,6,11,API log\n2,s1,inf,ChatGPT,5,6,11,API log\n"
        "3,s2,0.5,ChatGPT,5,6,11,API log\n"
    )
    result = ingest("burstgpt-3", [v3])
    assert (result.rows_read, result.rows_kept) == (3, 3)  # the request happened; its latency
    latency = pl.read_parquet(result.path)["source_latency_s"].to_list()  # is not known
    assert latency == [None, None, 0.5]
    _finite(result.path)


def test_azure_llm_num_images_above_int16_and_tokens_above_int32(tmp_path, data_dir):
    path = tmp_path / "AzureLMMInferenceTrace_multimodal.csv"
    path.write_text(
        "TIMESTAMP,NumImages,ContextTokens,GeneratedTokens\n"
        "2025-05-01T10:00:00.000Z,1,1500,80\n"
        "2025-05-01T10:00:01.000Z,40000,1500,80\n"
        "2025-05-01T10:00:02.000Z,2,99999999999,80\n"
        "2025-05-01T10:00:03.000Z,3,5,6\n"
    )
    result = ingest("azure-llm-2025-multimodal", [path])
    assert result.dropped == {"num_images out of range": 1, "token count out of range": 1}
    assert pl.read_parquet(result.path)["num_images"].to_list() == [1, 3]


def test_azure_llm_timestamps_outside_the_nanosecond_range_are_dropped(tmp_path, data_dir):
    """polars wraps an out-of-range year silently (2300 → 1715); burstlab drops the row."""
    path = tmp_path / "AzureLLMInferenceTrace_code.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:17:03.9799600,4808,10\n"
        "2300-01-01 00:00:00.0000000,1,1\n"
        "0001-01-01 00:00:00.0000000,1,1\n"
        "2200-01-01 00:00:00.0000000,1,1\n"  # representable, but beyond the ±2^62 ns limit
        "2023-11-16 18:17:04.0319600,3180,8\n"
    )
    result = ingest("azure-llm-2023-code", [path])
    assert result.dropped == {"unparsable TIMESTAMP": 2, "time out of range": 1}
    assert result.rows_kept == 2 and result.span_s == 0.052


def test_mooncake_huge_lengths_and_timestamps(tmp_path, data_dir):
    path = tmp_path / "conversation_trace.jsonl"
    rows = [
        {"timestamp": 0, "input_length": 5, "output_length": 1, "hash_ids": [0]},
        {"timestamp": 10, "input_length": 99999999999, "output_length": 1, "hash_ids": [0]},
        {"timestamp": 9 * 10**18, "input_length": 5, "output_length": 1, "hash_ids": [0]},
        {"timestamp": 20, "input_length": 5, "output_length": -1, "hash_ids": [0]},
        {"timestamp": 30, "input_length": 7, "output_length": 2, "hash_ids": [1, 2]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = ingest("mooncake-conversation", [path])
    assert result.dropped == {
        "missing timestamp": 1,
        "negative token count": 1,
        "token count out of range": 1,
    }
    assert pl.read_parquet(result.path)["arrival_s"].to_list() == [0.0, 0.03]


def test_azure_functions_2019_count_above_int32(tmp_path, data_dir):
    path = tmp_path / "invocations_per_function_md.anon.d01.csv"
    path.write_text(
        "HashOwner,HashApp,HashFunction,Trigger,1,2,3\n"
        f"o1,a1,fa,http,3,{INT32_MAX + 1},0\n"
        "o1,a1,fb,http,1,nan,2\n"
    )
    result = ingest("azure-functions-2019", [path])
    assert result.dropped == {
        "count out of range": 1,
        "missing or non-integer count": 1,
        "zero invocations (absent row = 0)": 1,
    }
    assert open("azure-functions-2019").collect()["count"].sort().to_list() == [1, 2, 3]


def test_azure_functions_2019_day_above_int16_and_nan_durations(tmp_path, data_dir):
    path = tmp_path / "function_durations_percentiles.anon.d40000.csv"
    header = "HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum"
    pcts = ",".join(f"percentile_Average_{p}" for p in (0, 1, 25, 50, 75, 99, 100))
    path.write_text(f"{header},{pcts}\no1,a1,fa,250,5,100,900,1,2,3,4,5,6,7\n")
    with pytest.raises(InputError, match="every row was dropped") as err:
        ingest("azure-functions-2019-durations", [path])
    assert "'day out of range': 1" in str(err.value)
    day1 = tmp_path / "function_durations_percentiles.anon.d01.csv"
    day1.write_text(
        f"{header},{pcts}\n"
        "o1,a1,fa,nan,5,100,900,1,2,3,4,5,6,7\n"
        "o1,a1,fb,250,5,inf,900,1,2,3,nan,5,6,7\n"
    )
    result = ingest("azure-functions-2019-durations", [day1])
    assert result.dropped == {"missing or non-numeric average": 1}
    row = open("azure-functions-2019-durations").collect().row(0, named=True)
    assert (row["function"], row["minimum_s"], row["p50_s"], row["p99_s"]) == (
        "fb",
        None,
        None,
        0.006,
    )
    _finite(result.path)


def test_azure_functions_2021_non_finite_and_overflowing_times(tmp_path, data_dir):
    path = tmp_path / "AzureFunctionsInvocationTraceForTwoWeeksJan2021.txt"
    path.write_text(
        "app,func,end_timestamp,duration\n"
        "a,f,10.5,0.5\n"
        "a,f,nan,1\n"
        "a,f,12,inf\n"
        "a,f,-4e9,4e9\n"  # -8e18 ns: an int64, but beyond the ±2^62 ns limit
        "a,f,-9e9,9e9\n"  # each fits in int64 ns; their difference does not
        "a,f,13,1\n"
    )
    result = ingest("azure-functions-2021", [path])
    assert result.dropped == {
        "missing or non-numeric end_timestamp/duration": 2,
        "time out of range": 2,
    }
    assert open("azure-functions-2021").collect()["arrival_s"].to_list() == [0.0, 2.0]


def test_huawei_tables_with_nan_inf_and_huge_values(tmp_path, data_dir):
    cold = tmp_path / "R1" / "day_00_cold_start.csv"
    cold.parent.mkdir()
    head = (
        "day,time,clusterName,funcName,userID,requestID,totalCost_cold_start,"
        "podAllocationCost,deployCodeCost,deployDependencyCost,schedulingCost,podID\n"
    )
    cold.write_text(
        head + "0,1.0,1,f,u,r1,0.5,nan,0.1,0,0.4,pool22-300-128-1\n"
        "0,2.0,1,f,u,r2,inf,0.1,0.1,0,0.4,pool22-300-128-2\n"
        "0,nan,1,f,u,r3,0.5,0.1,0.1,0,0.4,pool22-300-128-3\n"
        "0,3.0,1,f,u,r4,0.5,0.1,0.1,0,0.4,pool22-99999999999-128-4\n"
    )
    result = ingest("huawei-2025-cold-starts", [cold])
    assert result.dropped == {
        "missing or non-numeric time": 1,
        "missing or non-numeric totalCost_cold_start": 1,
    }
    df = open("huawei-2025-cold-starts").collect()
    assert df["pod_allocation_s"].to_list() == [None, 0.1]
    assert df["pod_cpu_millicores"].to_list() == [300, None]  # not a pod size: unknown
    _finite(result.path)
    minute = tmp_path / "day_00.csv"
    minute.write_text("day,time,f1,f2\n0,0,3,1e12\n0,60,nan,inf\n99999999999,120,1,2\n")
    result = ingest("huawei-2025-requests-minute", [minute])
    assert result.dropped == {
        "count out of range": 1,
        "empty cell (no data)": 2,
        "minute out of range": 2,
    }
    assert open("huawei-2025-requests-minute").collect()["count"].to_list() == [3]


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        ("1,99999999999,3", "token count out of range"),
        ("nan,2,3", "missing or unparsable ts"),
        ("inf,2,3", "missing or unparsable ts"),
        ("1,2,-3", "negative token count"),
    ],
)
def test_generic_out_of_range_and_non_finite(tmp_path, data_dir, cells, reason):
    path = tmp_path / "my.csv"
    path.write_text(f"ts,p,c\n0,1,1\n{cells}\n")
    result = ingest_generic([path], "arrival_s=ts,input_tokens=p,output_tokens=c")
    assert (result.rows_kept, result.dropped) == (1, {reason: 1})


def test_generic_num_images_above_int16(tmp_path, data_dir):
    path = tmp_path / "my.jsonl"
    path.write_text(
        '{"ts": 0, "p": 1, "c": 2, "img": 1}\n{"ts": 1, "p": 1, "c": 2, "img": 70000}\n'
    )
    result = ingest_generic([path], "arrival_s=ts,input_tokens=p,output_tokens=c,num_images=img")
    assert result.dropped == {"num_images out of range": 1}


def test_samples_still_ingest_whole(data_dir):
    results = {r.source: r for r in ingest_many(sample=True)}
    assert {k: (r.rows_read, r.rows_kept) for k, r in results.items()} == {
        "azure-llm-2023-code": (8_819, 8_819),
        "azure-llm-2023-conv": (19_366, 19_366),
        "mooncake-conversation": (3_000, 3_000),
    }
    for name, result in results.items():
        written = pl.read_parquet(result.path)
        assert written.equals(sample_frame(name)), name


def test_azure_functions_2019_minute_columns_outside_the_day(tmp_path, data_dir):
    """Only columns 1 … 1440 are minutes of a day: a column "2000" was read as minute 1,999."""
    path = tmp_path / "invocations_per_function_md.anon.d01.csv"
    path.write_text("HashOwner,HashApp,HashFunction,Trigger,1,1440,2000,0\no1,a1,fa,http,3,4,5,6\n")
    result = ingest("azure-functions-2019", [path])
    assert result.dropped == {"minute column outside 1..1440": 2}
    assert open("azure-functions-2019").collect()["minute"].to_list() == [0, 1439]
