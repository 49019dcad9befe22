"""The notebooks in docs/notebooks run top to bottom on the shipped samples, and the copies
committed (with outputs, for GitHub and the site) show their charts and no errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "docs" / "notebooks").glob("*.ipynb"))
#: Notebooks the docs promise; each must exist (a missing one fails here, not silently).
EXPECTED = {"explore_trace", "fit_and_synthesize", "analyze_replay"}

pytestmark = pytest.mark.docs


def outputs(nb: dict) -> list[dict]:
    return [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]


def test_expected_notebooks_exist():
    assert {p.stem for p in NOTEBOOKS} >= EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_outputs_and_charts(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    outs = outputs(nb)
    assert not [o for o in outs if o["output_type"] == "error"], f"{path.name} has an error cell"
    pngs = [o["data"]["image/png"] for o in outs if "image/png" in o.get("data", {})]
    assert pngs, f"{path.name} shows no chart"
    for png in pngs:
        assert base64.b64decode(png if isinstance(png, str) else "".join(png))[:4] == b"\x89PNG"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code), f"{path.name} was not fully executed"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, data_dir):
    """Re-execute in a fresh kernel (data in this test's $BURSTLAB_DATA_DIR); 120 s budget."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
    )
    client.execute()  # raises CellExecutionError naming the failing cell
    images = [o for o in outputs(nb) if "image/png" in o.get("data", {})]
    assert images, f"{path.name} produced no chart when executed"
