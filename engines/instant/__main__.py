"""Child entry of the instant server: `python -m burstlab.engines.instant --config JSON`.

Started by `instant_server(...)`; prints `{"port": …, "pid": …}` on stdout once every worker
listens, then serves until SIGTERM or until its stdin (the parent-liveness pipe) closes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from burstlab.engines.instant.config import InstantConfig
from burstlab.engines.instant.workers import run_server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m burstlab.engines.instant", description="burstlab instant server (internal)."
    )
    parser.add_argument("--config", required=True, help="InstantConfig as JSON")
    args = parser.parse_args(argv)
    cfg = InstantConfig(**json.loads(args.config))

    def announce(port: int) -> None:
        sys.stdout.write(json.dumps({"port": port, "pid": os.getpid()}) + "\n")
        sys.stdout.flush()

    run_server(cfg, announce)


if __name__ == "__main__":
    main()
