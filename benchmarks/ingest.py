"""Ingest speed: burstlab CSV → Parquet vs pandas ``read_csv`` + ``to_parquet``, same file, same run.

Generates a BurstGPT-format CSV per size (default 5 M and 20 M rows; synthetic numbers, only
the FORMAT is BurstGPT's) in a temporary folder, then runs each converter on the same file in
its own subprocess, so that peak RSS is measured per converter (``VmHWM`` of that process
alone; Linux) and CPU seconds (user + system, all threads) beside wall seconds. The baseline
is plain ``pd.read_csv(path)`` + ``df.to_parquet(out)``, defaults. burstlab does more work —
sha256 of the input, drop counting by reason, canonical schema, provenance metadata, atomic
rename, catalog refresh — and is still timed end to end. Imports are outside the timing on
both sides.

    .venv/bin/python benchmarks/ingest.py [--rows 5000000 20000000] [--repeat 1]

Prints the load average (the wall ratio depends on free cores: pandas parses on one thread,
polars on all), one line per converter and size, and the ratios; docs/design.md §5 targets ≥ 5×
in wall time with peak memory that does not grow with the file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

HEADER = ["Timestamp", "Model", "Request tokens", "Response tokens", "Total tokens", "Log Type"]

BURSTLAB = """
import json, os, sys, time
from burstlab.traces import ingest
t, c = time.perf_counter(), sum(os.times()[:2])
r = ingest("burstgpt-1", [sys.argv[1]], data_dir=sys.argv[2])
s, c = time.perf_counter() - t, sum(os.times()[:2]) - c
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
print(json.dumps({"seconds": s, "cpu_s": c, "rows": r.rows_kept, "rss_kib": rss}))
"""

PANDAS = """
import json, os, sys, time
import pandas as pd
t, c = time.perf_counter(), sum(os.times()[:2])
df = pd.read_csv(sys.argv[1])
df.to_parquet(sys.argv[2] + "/pandas.parquet")
s, c = time.perf_counter() - t, sum(os.times()[:2]) - c
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
print(json.dumps({"seconds": s, "cpu_s": c, "rows": len(df), "rss_kib": rss}))
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


def compare(folder: Path, rows: int, repeat: int) -> dict[str, dict]:
    """Best-of-`repeat` wall time per converter on one generated file of `rows` rows."""
    csv = folder / "BurstGPT_1.csv"
    t = time.perf_counter()
    make_csv(csv, rows)  # in this process; the converters run in fresh ones
    size_mb = csv.stat().st_size / 1e6
    print(f"generated {rows:,} rows, {size_mb:,.0f} MB in {time.perf_counter() - t:.1f} s")
    best: dict[str, dict] = {}
    for i in range(repeat):
        for name, script in (("pandas", PANDAS), ("burstlab", BURSTLAB)):
            out = folder / f"{name}-{rows}-{i}"
            out.mkdir()
            got = run(script, csv, out)
            assert got["rows"] == rows, got
            if name not in best or got["seconds"] < best[name]["seconds"]:
                best[name] = got
    csv.unlink()
    for name, got in best.items():
        print(
            f"  {name:9s} {got['seconds']:6.2f} s wall {got['cpu_s']:6.2f} s CPU"
            f"  {rows / got['seconds'] / 1e6:5.2f} M rows/s  peak RSS {got['rss_kib'] / 1024:6.0f} MiB"
        )
    pandas, ours = best["pandas"], best["burstlab"]
    print(
        f"  speed ratio (pandas wall / burstlab wall): {pandas['seconds'] / ours['seconds']:.2f}x"
        f" (target >= 5x); CPU-seconds burstlab / pandas: {ours['cpu_s'] / pandas['cpu_s']:.2f};"
        f" peak memory pandas / burstlab: {pandas['rss_kib'] / ours['rss_kib']:.1f}x"
    )
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[5_000_000, 20_000_000])
    parser.add_argument("--repeat", type=int, default=1, help="runs per converter; best is kept")
    args = parser.parse_args()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load} (1, 5, 15 min)")
    with tempfile.TemporaryDirectory(prefix="burstlab-bench-") as tmp:
        peaks = {n: compare(Path(tmp), n, args.repeat)["burstlab"]["rss_kib"] for n in args.rows}
    if len(peaks) > 1:
        (small, lo), (large, hi) = min(peaks.items()), max(peaks.items())
        print(
            f"burstlab peak RSS {lo / 1024:.0f} MiB at {small:,} rows, {hi / 1024:.0f} MiB at"
            f" {large:,} rows: x{hi / lo:.2f} for x{large / small:.0f} the rows"
        )


if __name__ == "__main__":
    main()
