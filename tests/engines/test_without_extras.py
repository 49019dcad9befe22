"""A real install with only the core dependencies (no extras): every command that needs an
optional package says, in one line and with exit code 2, which `pip install 'burstlab[…]'`
brings it — and the core itself works (uvloop is optional for real).

The package is installed from a copy of this tree into a fresh virtual environment in tmp; pip's
cache makes that about a minute (measured: 71 s with an empty cache on 2 cores, downloads
included)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXTRAS = ("xllamacpp", "gguf", "tokenizers", "huggingface_hub", "uvloop")
#: What a source copy leaves out: environments, caches, build outputs, the user's data.
SKIP = shutil.ignore_patterns(
    ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", "site", "out",
    ".burstlab-data", ".pytest_cache", ".ruff_cache", "node_modules", ".ipynb_checkpoints",
)  # fmt: skip


@pytest.fixture(scope="module")
def bare(tmp_path_factory) -> Path:
    """The bin/ folder of a virtual environment holding burstlab without any extra."""
    root = tmp_path_factory.mktemp("bare")
    shutil.copytree(REPO, root / "src", ignore=SKIP)
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    bin_dir = root / "venv" / "bin"
    pip = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         str(root / "src")],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stderr[-3000:]
    probe = subprocess.run(
        [str(bin_dir / "python"), "-c",
         f"import importlib.util as u, json; print(json.dumps([m for m in {list(EXTRAS)!r} "
         "if u.find_spec(m)]))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(probe.stdout) == [], "an optional package came with the core install"
    return bin_dir


def burstlab(bare: Path, tmp_path: Path, *args: str, timeout: float = 120):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env |= {"BURSTLAB_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "300"}
    return subprocess.run(
        [str(bare / "burstlab"), *args], capture_output=True, text=True, timeout=timeout,
        cwd=tmp_path, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["engine", "--port", "0"],
            "error: serving a llama.cpp engine needs the optional package 'xllamacpp': "
            "pip install 'burstlab[engine]'",
        ),
        (
            ["card", "azure-llm-2023-conv", "--out", "card"],
            "error: validating a dataset card needs the optional package 'huggingface_hub': "
            "pip install 'burstlab[card]'",
        ),
        (
            ["replay", "azure-llm-2023-conv", "--tokenizer", "x.json", "--out", "run"],
            "error: exact prompt lengths from a tokenizer.json needs the optional package "
            "'tokenizers': pip install 'burstlab[tokenizers]'",
        ),
    ],
    ids=["engine", "card", "replay-tokenizer"],
)
def test_a_missing_extra_is_one_line_naming_it(bare, tmp_path, args, line):
    (tmp_path / "x.json").write_text("{}")
    done = burstlab(bare, tmp_path, *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == line
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "card").exists() and not (tmp_path / "run").exists()


def test_the_core_serves_and_replays_without_uvloop_from_a_source_checkout(bare, tmp_path):
    """`burstlab engine --instant` and `burstlab replay` run on asyncio's own loop. The server
    is started in the repository root on purpose: its `burstlab/` folder used to shadow the
    installed package in the server's child process (`python -m` puts the working directory
    first on sys.path), which then died with "No module named 'burstlab.engines'"."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    server = subprocess.Popen(
        [str(bare / "burstlab"), "engine", "--instant", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env=env | {"COLUMNS": "300"}, start_new_session=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        url = None
        for text in server.stdout:
            found = re.search(r"at (http://127\.0\.0\.1:\d+)", text)
            if found:
                url = found.group(1)
                break
        if url is None:
            server.kill()
            pytest.fail(f"the instant server printed no URL: {server.communicate()[1][-2000:]}")
        done = burstlab(
            bare, tmp_path, "replay", "azure-llm-2023-conv", "--url", url, "--limit", "5",
            "--max-gap", "0.01", "--max-output-tokens", "4", "--out", "run",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        summary = json.loads((tmp_path / "run" / "summary.json").read_text())
        assert summary["counts"]["completed"] == 5
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGINT)
            server.communicate(timeout=15)
