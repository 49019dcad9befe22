"""An OpenAI-compatible server that answers instantly — and misbehaves on request.

Two jobs:

* **Measure the replay client, not the server.** `burstlab calibrate` and
  `benchmarks/replay.py` need a target that is never the bottleneck. This server is a raw
  `asyncio.Protocol` HTTP/1.1 keep-alive server on uvloop that builds each streamed answer from
  pre-rendered byte templates and writes it in one call; `workers=N` runs N processes on one
  port with SO_REUSEPORT.
* **Exercise every wire behaviour a robust client must survive**, reproducibly: a per-request
  header `X-Burstlab-Fault: <mode>` or a server-level mix `faults={"cut": 0.1, ...}` (the
  probability of each mode per generation request) selects one of `FAULTS` (see `FAULT_HELP`).

Streaming follows vLLM's framing (one SSE event per HTTP chunk, `Transfer-Encoding: chunked`):
chat starts with a role-only chunk (`{"role": "assistant", "content": ""}`), every later chunk
carries `chunk_tokens` tokens, the last token chunk has `finish_reason: "length"`, then — when
`stream_options.include_usage` is set — a usage chunk with `choices: []` (or, with
`usage_style="final-chunk"`, llama.cpp's completions style: an empty-text chunk carrying both
`finish_reason` and `usage`), then `data: [DONE]`. Output is exactly `max_tokens` tokens of
" tok"; the toy tokenizer counts whitespace-separated words, so the answer's text re-tokenizes
to the same count. `/metrics` exposes Prometheus counters summed over workers.

Modules, one job each:

- `server`: `InstantHandle` and `instant_server(...)` (the parent side); `config`: `InstantConfig`.
- `__main__`: the child process, `python -m burstlab.engines.instant --config JSON`.
- `workers`: the listening socket, worker processes and their event loops.
- `app`: one worker's routing and endpoints; `counters`: shared counters, Prometheus text.
- `protocol`: HTTP/1.1 parsing per connection, response framing, paced writes.
- `render`: SSE chunks and JSON answers, usage styles, stream-shaping faults, the toy tokenizer.
- `faults`: fault modes, their help, the per-request draw, answer-replacing faults.
- `throughput`: `measure_throughput(base_url)`, a raw-socket load loop.
"""

from burstlab.engines.instant.config import InstantConfig
from burstlab.engines.instant.faults import FAULT_HELP, FAULTS
from burstlab.engines.instant.render import toy_tokenize
from burstlab.engines.instant.server import InstantHandle, instant_server
from burstlab.engines.instant.throughput import measure_throughput

__all__ = [
    "FAULTS",
    "FAULT_HELP",
    "InstantConfig",
    "InstantHandle",
    "instant_server",
    "measure_throughput",
    "toy_tokenize",
]
