"""Optional packages, imported only where they are needed, with one clear error when missing.

The core install (``pip install burstlab``) has none of them; each belongs to an extra of
pyproject.toml. A missing one is a `MissingExtraError` — one line naming the package and the
``pip install 'burstlab[EXTRA]'`` that brings it — never a ModuleNotFoundError traceback.

    xllamacpp   engine      serving a real llama.cpp engine (`engines.local`, `burstlab engine`)
    gguf        engine      building the random-weight test model (`engines.tinymodel`)
    tokenizers  tokenizers  exact prompt lengths from a tokenizer.json (replay `tokenizer=`)
    huggingface_hub  card   writing and validating dataset cards (`cards.card`)
    uvloop      uvloop      a faster event loop; optional for real: asyncio's loop is used without it
    vllm        vllm        serving a real vLLM engine, its CPU build (`engines.vllm_local`, make test-vllm)
    ray         ray         replay from many hosts as Ray actors (`replay.ray_workers`, make test-ray)
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from burstlab.errors import MissingExtraError


def optional_import(module: str, extra: str, purpose: str) -> ModuleType:
    """`import module`, or MissingExtraError naming `extra` (``purpose`` says what needs it)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(extra, module, purpose) from None


def require(module: str, extra: str, purpose: str) -> None:
    """MissingExtraError unless `module` is importable — without importing it (for a package
    only a child process imports, such as xllamacpp)."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or half-removed install
        found = False
    if not found:
        raise MissingExtraError(extra, module, purpose)
