"""Azure LLM inference traces: 2023 (Splitwise), 2024 one-week (DynamoLLM), 2025 multimodal (ModServe).

Raw columns: ``TIMESTAMP,ContextTokens,GeneratedTokens`` (+ ``NumImages`` in 2025).
Quirks handled: CRLF line ends and no final newline (2023); 7 fractional digits, 100 ns ticks
(2023, parsed exactly); ``+00:00`` offsets with and without a fraction in one file (2024);
ISO ``…T…Z`` timestamps in a ``.csv.gz`` (2025). No failure flag exists: ``failed`` is false.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from burstlab.traces.adapter import TIME_NS, Adapter, SourceFile, datetime_ns, null_in

REPO = "https://github.com/Azure/AzurePublicDataset"
RAW = "https://raw.githubusercontent.com/Azure/AzurePublicDataset/master/data"
BLOB = "https://azurepublicdatasettraces.blob.core.windows.net/azurellminfererencetrace"

#: Per-file timestamp formats: each year writes its timestamps differently.
_FORMATS = {
    "2023": "%Y-%m-%d %H:%M:%S%.f",
    "2024": "%Y-%m-%d %H:%M:%S%.f%:z",
    "2025": "%Y-%m-%dT%H:%M:%S%.f%#z",
}

#: Per-year caveats (from the dataset pages and from reading the files), for dataset cards.
CAVEATS_2023 = (
    "The dataset page says the trace was collected on November 11th 2023, but every "
    "timestamp in the files is on 2023-11-16.",
    "Timestamps carry no time zone; burstlab reads them as UTC. They have 7 fractional "
    "digits (100 ns ticks), which are kept exactly.",
    "Token counts are as logged by the service; the tokenizer is not stated, and there is "
    "no failure flag (`failed` is always false).",
)
CAVEATS_2024 = (
    "Timestamps mix formats within one file (with and without a fractional part, all "
    "with a `+00:00` offset).",
    "No failure flag (`failed` is always false).",
)
CAVEATS_2025 = ("Requests carry `num_images`; image tokens are not separated out.",)


def _kind(source_id: str) -> str:
    return source_id.rsplit("-", 1)[-1]  # code / conv / multimodal


def _map(names: list[str], source_id: str, path: Path) -> list[pl.Expr]:
    year = source_id.split("-")[2]
    return [
        pl.lit(source_id).alias("source"),
        datetime_ns("TIMESTAMP", _FORMATS[year]).alias(TIME_NS),
        pl.col("ContextTokens").alias("input_tokens"),
        pl.col("GeneratedTokens").alias("output_tokens"),
        pl.lit(_kind(source_id)).alias("kind"),
        pl.lit(False).alias("failed"),
        (pl.col("NumImages") if "NumImages" in names else pl.lit(None, pl.Int64)).alias(
            "num_images"
        ),
    ]


ADAPTER = Adapter(
    family="azure-llm",
    table="requests",
    format="csv",
    columns={"TIMESTAMP": pl.String(), "ContextTokens": pl.Int64(), "GeneratedTokens": pl.Int64()},
    optional_columns={"NumImages": pl.Int64()},
    map_rows=_map,
    drop_when={
        "unparsable TIMESTAMP": null_in(TIME_NS),
        "missing or non-integer token count": null_in("input_tokens", "output_tokens"),
        "negative token count": (pl.col("input_tokens") < 0) | (pl.col("output_tokens") < 0),
        # counts above int32 are dropped by the engine as "token count out of range"
    },
    sources=(
        SourceFile(
            "azure-llm-2023-code",
            "AzureLLMInferenceTrace_code.csv",
            url=f"{RAW}/AzureLLMInferenceTrace_code.csv",
            sha256="54e9a6d2a4bd06ba1e060304b900abbc74cbea53de96506e60fe5bb4f2277fb6",
            size=320_117,
            sample="azure/AzureLLMInferenceTrace_code.csv",
            note="1 h of code-completion requests, 2023-11-16 (complete copy shipped)",
            caveats=CAVEATS_2023,
        ),
        SourceFile(
            "azure-llm-2023-conv",
            "AzureLLMInferenceTrace_conv.csv",
            url=f"{RAW}/AzureLLMInferenceTrace_conv.csv",
            sha256="2f1e5b666d4e3055fdbba98598ce2ec307767b9064e03e2fa46676dbcc7d0bf8",
            size=719_188,
            sample="azure/AzureLLMInferenceTrace_conv.csv",
            note="1 h of conversation requests, 2023-11-16 (complete copy shipped)",
            caveats=CAVEATS_2023,
        ),
        SourceFile(
            "azure-llm-2024-code",
            "AzureLLMInferenceTrace_code_1week.csv",
            url=f"{BLOB}/AzureLLMInferenceTrace_code_1week.csv",
            note="one week of code requests, May 2024 (~17 M rows)",
            caveats=CAVEATS_2024,
        ),
        SourceFile(
            "azure-llm-2024-conv",
            "AzureLLMInferenceTrace_conv_1week.csv",
            url=f"{BLOB}/AzureLLMInferenceTrace_conv_1week.csv",
            note="one week of conversation requests, May 2024 (~27 M rows)",
            caveats=CAVEATS_2024,
        ),
        SourceFile(
            "azure-llm-2025-multimodal",
            "AzureLMMInferenceTrace_multimodal.csv.gz",
            url=f"{REPO}/raw/master/data/AzureLMMInferenceTrace_multimodal.csv.gz",
            note="multimodal (image) requests, 2025, with NumImages",
            caveats=CAVEATS_2025,
        ),
    ),
    licence="CC-BY-4.0 (data); MIT (code in the repository)",
    citation=(
        "Patel et al., Splitwise: Efficient generative LLM inference using phase splitting, "
        "ISCA 2024 (2023 traces); Stojkovic et al., DynamoLLM, HPCA 2025 (2024 traces); "
        "ModServe, SoCC 2025 (2025 multimodal trace)"
    ),
    homepage=REPO,
)
