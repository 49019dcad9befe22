"""Run pyright (basic mode, settings in pyproject's [tool.pyright]) on the package.

The stages live in top-level folders that setuptools maps onto `burstlab.<stage>`; a static
checker cannot follow that mapping through the editable install, and pyright does not walk
symlinked folders. So this copies the sources into build/typecheck/burstlab/ in the installed
package's shape, runs pyright there, and prints its findings with the paths of the real files.
Exit status: pyright's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGES = ("traces", "fitting", "synth", "replay", "cards", "engines")
TREE = REPO / "build" / "typecheck" / "burstlab"


def build_tree() -> None:
    shutil.rmtree(TREE.parent, ignore_errors=True)
    skip = shutil.ignore_patterns("__pycache__", "samples", "*.pyc")
    shutil.copytree(REPO / "burstlab", TREE, ignore=skip)
    for stage in STAGES:
        shutil.copytree(REPO / stage, TREE / stage, ignore=skip)


def main() -> int:
    build_tree()
    pyright = Path(sys.executable).with_name("pyright")
    config = REPO / "pyproject.toml"  # pinned: a pyrightconfig.json in a parent folder would win
    done = subprocess.run(
        [str(pyright), "-p", str(config)], cwd=REPO, capture_output=True, text=True
    )
    stages = "|".join(STAGES)
    text = re.sub(rf"{re.escape(str(TREE))}/({stages})/", r"\1/", done.stdout)
    text = text.replace(f"{TREE}/", "burstlab/")
    sys.stdout.write(text)
    sys.stderr.write(done.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
