"""Several ingests into one data directory at once: DuckDB allows one writer per catalog file,
so burstlab serialises its catalog writes with a file lock and waits (saying so on stderr) for
any other holder, instead of failing with DuckDB's lock error."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from burstlab.errors import InputError
from burstlab.traces import catalog, ingest

HEADER = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"

#: A child process: import, say "ready", wait for "go" on stdin, then ingest `rounds` times
#: (the first writes the Parquet file; each ingest refreshes the catalog).
CHILD = """
import sys
from burstlab.traces import ingest
source, path, data_dir, rounds = sys.argv[1:5]
print("ready", flush=True)
sys.stdin.readline()
for _ in range(int(rounds)):
    ingest(source, [path], data_dir=data_dir)
print("done", flush=True)
"""


def _csv(path: Path, n: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(f"{i},ChatGPT,5,6,11,API log\n" for i in range(n)))
    return path


def _child(source: str, path: Path, data_dir: Path, rounds: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, source, str(path), str(data_dir), str(rounds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _sources(data_dir: Path) -> dict[str, int]:
    with duckdb.connect(str(data_dir / "catalog.duckdb"), read_only=True) as con:
        return dict(con.sql("select source, rows from sources").fetchall())


def test_two_processes_ingesting_into_one_data_dir_at_once_both_succeed(tmp_path, data_dir):
    one = _csv(tmp_path / "a" / "BurstGPT_1.csv", 30)
    two = _csv(tmp_path / "b" / "BurstGPT_2.csv", 40)
    # 12 ingests each (1 write, 11 unchanged re-ingests): 24 catalog refreshes that overlap
    procs = [_child("burstgpt-1", one, data_dir, 12), _child("burstgpt-2", two, data_dir, 12)]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.strip() == "done"
        assert "Traceback" not in err
    assert _sources(data_dir) == {"burstgpt-1": 30, "burstgpt-2": 40}
    with duckdb.connect(str(data_dir / "catalog.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from requests").fetchall() == [(70,)]


def test_a_second_writer_waits_for_the_lock_and_says_so(tmp_path, data_dir):
    path = _csv(tmp_path / "BurstGPT_1.csv", 10)
    with catalog.write_lock(data_dir):
        proc = _child("burstgpt-1", path, data_dir, 1)
        assert proc.stdin is not None and proc.stderr is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        line = proc.stderr.readline()  # blocks until the child reaches the lock
        assert "waiting" in line and "catalog" in line and str(data_dir) in line
        time.sleep(0.3)
        assert proc.poll() is None  # still waiting while the lock is held
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip() == "done" and err.strip() == ""  # the one line, nothing more
    assert _sources(data_dir) == {"burstgpt-1": 10}


def test_a_reader_in_another_process_is_waited_for(tmp_path, data_dir, capfd):
    ingest("burstgpt-1", [_csv(tmp_path / "BurstGPT_1.csv", 10)])  # the catalog exists
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, duckdb\n"
            "con = duckdb.connect(sys.argv[1], read_only=True)\n"
            "print('open', flush=True)\n"
            "time.sleep(1.5)\n",
            str(data_dir / "catalog.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
    started = time.monotonic()
    result = ingest("burstgpt-2", [_csv(tmp_path / "b" / "BurstGPT_2.csv", 20)])
    waited = time.monotonic() - started
    reader.wait(timeout=30)
    assert result.rows_kept == 20 and waited > 0.5
    err = capfd.readouterr().err
    assert err.count("waiting") == 1 and "catalog.duckdb" in err
    assert _sources(data_dir) == {"burstgpt-1": 10, "burstgpt-2": 20}


def test_readers_wait_for_a_writer_instead_of_failing(tmp_path, data_dir):
    ingest("burstgpt-1", [_csv(tmp_path / "BurstGPT_1.csv", 10)])
    got: list[object] = []

    def read():
        with catalog.connect(data_dir, read_only=True) as con:
            got.append(con.sql("select count(*) from requests").fetchall())

    with catalog.write_lock(data_dir):
        thread = threading.Thread(target=read)
        thread.start()
        thread.join(0.3)
        assert thread.is_alive()  # waits for the writer …
    thread.join(30)
    assert got == [[(10,)]]  # … then reads


def test_a_read_only_connection_in_this_process_is_named_not_waited_for(tmp_path, data_dir):
    path = _csv(tmp_path / "BurstGPT_1.csv", 10)
    ingest("burstgpt-1", [path])
    con = catalog.connect(data_dir, read_only=True)
    try:
        with pytest.raises(InputError) as err:
            ingest("burstgpt-2", [_csv(tmp_path / "b" / "BurstGPT_2.csv", 5)])
        text = str(err.value)
        assert "\n" not in text and str(data_dir / "catalog.duckdb") in text
        assert "read-only" in text and "close" in text
    finally:
        con.close()
    assert ingest("burstgpt-2", [tmp_path / "b" / "BurstGPT_2.csv"]).skipped  # written before
    assert _sources(data_dir) == {"burstgpt-1": 10, "burstgpt-2": 5}


def test_two_processes_ingesting_one_dataset_at_once_leave_one_whole_file(tmp_path, data_dir):
    """Both wrote the same hidden temporary file: one could rename or delete the other's."""
    one = _csv(tmp_path / "a" / "BurstGPT_1.csv", 3000)
    two = _csv(tmp_path / "b" / "BurstGPT_1.csv", 2000)
    procs = [_child("burstgpt-1", one, data_dir, 1), _child("burstgpt-1", two, data_dir, 1)]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    rows = _sources(data_dir)["burstgpt-1"]
    assert rows in (3000, 2000)
    assert pl.read_parquet(data_dir / "parquet" / "requests" / "burstgpt-1.parquet").height == rows
    assert [p.name for p in (data_dir / "parquet").rglob(".*")] == []
