"""Validate the requests of a burstlab guidellm export with guidellm's own model (``python
guidellm_validate.py benchmarks.json``): every request as a `GenerativeRequestStats`, printing
guidellm's own computed fields per request as JSON (the last output line)."""

from __future__ import annotations

import json
import sys


def main(path: str) -> None:
    from guidellm.schemas.base.request_stats import GenerativeRequestStats

    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    out = []
    for bench in doc["benchmarks"]:
        for status in ("successful", "incomplete", "errored"):
            for raw in bench["requests"][status]:
                stats = GenerativeRequestStats.model_validate(raw)
                out.append({
                    "status": status,
                    "request_id": stats.request_id,
                    "request_latency": stats.request_latency,
                    "time_to_first_token_ms": stats.time_to_first_token_ms,
                    "time_per_output_token_ms": stats.time_per_output_token_ms,
                    "request_scheduled_latency": stats.request_scheduled_latency,
                    "output_tokens": stats.output_tokens,
                    "prompt_tokens": stats.prompt_tokens,
                })  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
