"""The llama.cpp server's own process: `python -m burstlab.engines.llamacpp_child --model …`.

Started by `engines.llamacpp.local`; it configures llama.cpp's C++ HTTP server (through the
`xllamacpp` wheel) and serves until SIGTERM or until its parent exits (the stdin pipe closes).
Kept apart from the parent side so the child imports nothing but what serving needs.
"""

from __future__ import annotations

import argparse
import os

from burstlab.engines.llamacpp import HOST, default_threads
from burstlab.engines.process import wait_for_exit_request


def serve(
    model: str, alias: str, port: int, n_parallel: int, ctx_per_slot: int, threads: int
) -> None:
    """Child-process body: configure and run llama.cpp's server until SIGTERM or parent exit."""
    import xllamacpp  # optional extra burstlab[engine]; the module must import without it

    # CommonParams and Server come from xllamacpp's compiled module (`from .xllamacpp import *`),
    # which ships no stubs: pyright cannot see them
    params = xllamacpp.CommonParams()  # pyright: ignore[reportAttributeAccessIssue]
    params.model.path = model
    params.model_alias = {alias}
    params.port = port
    params.n_parallel = n_parallel
    params.n_ctx = n_parallel * ctx_per_slot
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    # No busy-waiting between decode steps: it steals the core the replay client needs.
    params.cpuparams.poll = 0
    params.cpuparams_batch.poll = 0
    params.endpoint_metrics = True
    params.endpoint_slots = True
    # serves on its own threads from here on
    server = xllamacpp.Server(params)  # pyright: ignore[reportAttributeAccessIssue]
    print(f"burstlab engine: serving {model} as {alias!r} on http://{HOST}:{port}", flush=True)
    wait_for_exit_request()
    del server
    os._exit(0)  # llama.cpp's server threads are not joined; leave without finalisers


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a GGUF model with llama.cpp (internal).")
    parser.add_argument("--model", required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--ctx-per-slot", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args(argv)
    serve(args.model, args.alias, args.port, args.parallel, args.ctx_per_slot, args.threads)


if __name__ == "__main__":
    main()
