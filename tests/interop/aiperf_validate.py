"""Validate an AIPerf export folder with AIPerf's own pydantic models (``python
aiperf_validate.py FOLDER``): every line of profile_export.jsonl as a `MetricRecordInfo`, and
profile_export_aiperf.json as a `JsonExportData`. Prints what each accepted as JSON; a model
that rejects the file raises (pydantic's ValidationError), exit status 1."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(folder: str) -> None:
    from aiperf.common.models.export_models import JsonExportData
    from aiperf.common.models.record_models import MetricRecordInfo

    root = Path(folder)
    lines = (root / "profile_export.jsonl").read_text(encoding="utf-8").splitlines()
    records = [MetricRecordInfo.model_validate_json(line) for line in lines if line.strip()]
    agg = JsonExportData.model_validate_json((root / "profile_export_aiperf.json").read_text())
    print(json.dumps({
        "records": len(records),
        "errors": sum(r.error is not None for r in records),
        "ttft_ms": [r.metrics["time_to_first_token"].value for r in records
                    if "time_to_first_token" in r.metrics],
        "aggregate_ttft_avg": agg.time_to_first_token.avg if agg.time_to_first_token else None,
        "aggregate_request_count": agg.request_count.avg if agg.request_count else None,
    }))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1])
