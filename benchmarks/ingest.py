"""Ingest speed: burstlab CSV → Parquet vs pandas ``read_csv`` + ``to_parquet``, same file, same run.

Generates a BurstGPT-format CSV (default 5 M rows; synthetic numbers, only the FORMAT is
BurstGPT's) in a temporary folder, then runs each converter in its own subprocess so that
peak RSS is measured per converter (``VmHWM`` of that process alone; Linux). burstlab does more
work than the baseline — sha256 of the input, drop counting by reason, canonical schema,
provenance metadata, atomic rename — and is still timed end to end.

    .venv/bin/python benchmarks/ingest.py [--rows 5000000] [--repeat 1]

Prints one line per converter and the ratio; DESIGN.md §5 targets ≥ 5×.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

HEADER = ["Timestamp", "Model", "Request tokens", "Response tokens", "Total tokens", "Log Type"]

BURSTLAB = """
import json, sys, time
from burstlab.traces import ingest
t = time.perf_counter()
r = ingest("burstgpt-1", [sys.argv[1]], data_dir=sys.argv[2])
s = time.perf_counter() - t
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
print(json.dumps({"seconds": s, "rows": r.rows_kept, "rss_kib": rss}))
"""

PANDAS = """
import json, sys, time
import pandas as pd
t = time.perf_counter()
df = pd.read_csv(sys.argv[1])
df.to_parquet(sys.argv[2] + "/pandas.parquet")
s = time.perf_counter() - t
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
print(json.dumps({"seconds": s, "rows": len(df), "rss_kib": rss}))
"""


def make_csv(path: Path, rows: int, seed: int = 0) -> None:
    """A BurstGPT-format CSV: whole-second timestamps, two models, lognormal lengths."""
    rng = np.random.default_rng(seed)
    ts = np.cumsum(rng.exponential(0.5, rows)).astype(np.int64)
    req = rng.lognormal(6.5, 1.0, rows).astype(np.int64) + 1
    resp = rng.lognormal(5.0, 1.0, rows).astype(np.int64)
    resp[rng.random(rows) < 0.02] = 0  # failed requests
    frame = pl.DataFrame(
        {
            "Timestamp": ts,
            "Model": np.where(rng.random(rows) < 0.7, "ChatGPT", "GPT-4"),
            "Request tokens": req,
            "Response tokens": resp,
            "Total tokens": req + resp,
            "Log Type": np.where(rng.random(rows) < 0.6, "Conversation log", "API log"),
        }
    )
    frame.write_csv(path)


def run(script: str, csv: Path, out: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, str(csv), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs per converter; best is kept")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="burstlab-bench-") as tmp:
        csv = Path(tmp) / "BurstGPT_1.csv"
        t = time.perf_counter()
        make_csv(csv, args.rows)  # in this process; the converters run in fresh ones
        size_mb = csv.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows, {size_mb:,.0f} MB in {time.perf_counter() - t:.1f} s")
        best: dict[str, dict] = {}
        for i in range(args.repeat):
            for name, script in (("pandas", PANDAS), ("burstlab", BURSTLAB)):
                out = Path(tmp) / f"{name}-{i}"
                out.mkdir()
                got = run(script, csv, out)
                assert got["rows"] == args.rows, got
                if name not in best or got["seconds"] < best[name]["seconds"]:
                    best[name] = got
        for name, got in best.items():
            print(
                f"{name:9s} {got['seconds']:7.2f} s  {args.rows / got['seconds'] / 1e6:6.2f} M rows/s"
                f"  peak RSS {got['rss_kib'] / 1024:7.0f} MiB"
            )
        ratio = best["pandas"]["seconds"] / best["burstlab"]["seconds"]
        mem = best["pandas"]["rss_kib"] / best["burstlab"]["rss_kib"]
        print(f"speed ratio burstlab vs pandas: {ratio:.1f}x (target >= 5x)")
        print(f"peak memory ratio pandas / burstlab: {mem:.1f}x")


if __name__ == "__main__":
    main()
