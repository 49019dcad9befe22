"""Recompute a vLLM `bench serve` result's statistics with vLLM's own `calculate_metrics`, from
the per-request arrays of a result JSON (``python vllm_metrics.py RESULT.json``); prints
vLLM's `BenchmarkMetrics` as JSON. Run in the interpreter that has vLLM (tests/interop)."""

from __future__ import annotations

import dataclasses
import json
import sys

import vllm_bench  # noqa: F401 - answers vLLM's version lookup in the CPU build


def main(path: str) -> None:
    from vllm.benchmarks.lib.endpoint_request_func import RequestFuncOutput
    from vllm.benchmarks.serve import calculate_metrics

    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    outputs = []
    for i, error in enumerate(doc["errors"]):
        out = RequestFuncOutput()
        out.success = error == ""
        out.error = error
        out.ttft = doc["ttfts"][i]
        out.itl = list(doc["itls"][i])
        out.latency = doc["latencies"][i]
        out.start_time = doc["start_times"][i]
        out.prompt_len = doc["input_lens"][i]
        out.output_tokens = doc["output_lens"][i]
        outputs.append(out)
    metrics, output_lens = calculate_metrics(
        input_requests=[], outputs=outputs, dur_s=doc["duration"], tokenizer=None,
        selected_percentiles=[50.0, 90.0, 95.0, 99.0], goodput_config_dict={},
    )  # fmt: skip
    print(json.dumps({"metrics": dataclasses.asdict(metrics), "output_lens": output_lens}))


if __name__ == "__main__":
    main(sys.argv[1])
