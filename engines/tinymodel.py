"""A random-weight llama model in GGUF, written locally, so a real llama.cpp engine can serve it.

Replay measures serving latency, not answer quality, so the weights may be random. Two things
must still hold for a useful test engine:

* the output length is fixed by `max_tokens` alone — the model must never sample the
  end-of-sequence token (or any other special token);
* the streamed text is clean ASCII — the model must never sample a lone byte-fallback token
  that would leave a broken UTF-8 sequence in a chunk.

Both follow from one trick: residual dimension 0 is held at a constant (embedding column 0 is
`RESIDUAL_CONST`; row 0 of every `attn_output` and `ffn_down` is zero, so no layer writes into
it), the output norm weight is 1, and the special and byte tokens get output rows
`[-50, 0, 0, …]`. After RMS normalisation dimension 0 is large and positive, so those tokens'
logits are hugely negative whatever the prompt.

Size presets only change how much compute a token costs (layers × hidden size), i.e. the
per-token latency the engine shows; measured numbers are in docs/engine.md.
"""

from __future__ import annotations

import os
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from burstlab.engines.extras import optional_import
from burstlab.errors import UsageError
from burstlab.paths import data_dir
from burstlab.progress import progress

# Bump when the file layout or weights recipe changes: cached files are keyed by it.
BUILDER_VERSION = 1
RESIDUAL_CONST = 4.0
BLOCKED_LOGIT_WEIGHT = -50.0
#: What needs the optional package gguf (extra `engine`), for its MissingExtraError.
BUILD_PURPOSE = "building the random-weight test model"
SPM_SPACE = "\u2581"  # SentencePiece's "▁" word-boundary marker

# A minimal chat template (jinja) so /v1/chat/completions works; llama.cpp renders it itself.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

COMMON_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "for",
    "on",
    "that",
    "with",
    "as",
    "by",
    "at",
    "from",
    "it",
    "be",
    "are",
    "this",
    "an",
    "or",
    "which",
    "have",
    "not",
    "has",
    "but",
    "were",
    "had",
    "one",
    "their",
    "they",
    "his",
    "been",
    "also",
    "its",
    "more",
    "new",
    "other",
    "can",
    "first",
    "would",
    "time",
    "two",
    "after",
    "all",
    "when",
    "there",
    "who",
    "some",
    "about",
    "into",
    "more",
    "than",
    "year",
    "up",
    "out",
    "only",
    "over",
    "may",
    "most",
    "such",
    "these",
    "world",
    "so",
    "use",
    "any",
    "used",
    "will",
    "each",
    "what",
    "people",
    "make",
    "like",
    "him",
    "then",
    "between",
    "well",
    "data",
    "model",
    "token",
    "request",
    "server",
    "load",
    "trace",
    "burst",
    "latency",
    "queue",
    "time",
    "serve",
    "batch",
    "user",
    "system",
    "you",
    "we",
    "she",
    "he",
    "our",
    "your",
    "her",
    "them",
    "how",
    "many",
    "where",
    "while",
    "number",
    "part",
    "high",
    "long",
    "small",
    "large",
    "between",
    "under",
    "work",
    "could",
    "should",
]


@dataclass(frozen=True)
class ModelSize:
    """Shape of one size preset. Per-token compute grows with `n_layer × n_embd × n_ff`."""

    name: str
    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    context_length: int = 8192

    @property
    def n_params(self) -> int:
        """Weight count excluding embeddings (what costs time per generated token)."""
        per_block = 4 * self.n_embd * self.n_embd + 3 * self.n_embd * self.n_ff
        return self.n_layer * per_block


SIZES: dict[str, ModelSize] = {
    "tiny": ModelSize("tiny", n_layer=2, n_embd=256, n_ff=512, n_head=4),
    "small": ModelSize("small", n_layer=4, n_embd=512, n_ff=1536, n_head=8),
    "medium": ModelSize("medium", n_layer=6, n_embd=768, n_ff=2048, n_head=12),
}


def size_preset(size: str) -> ModelSize:
    """The preset called `size`; a clear error listing the choices otherwise."""

    try:
        return SIZES[size]
    except KeyError:
        raise UsageError(
            f"unknown model size {size!r}; expected one of {sorted(SIZES)}", param="size"
        ) from None


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """A SentencePiece-style ("llama") vocabulary: pieces, scores and token types.

    Ids 0/1/2 are `<unk>`/`<s>`/`</s>`, then the 256 `<0xNN>` byte tokens (byte fallback, so any
    prompt tokenizes), then printable characters with and without the `▁` prefix, lowercase
    letter pairs and common words. Longer pieces score higher, so the tokenizer merges greedily
    towards words, as a real SPM vocabulary would.
    """
    TokenType = optional_import("gguf", "engine", BUILD_PURPOSE).TokenType

    pieces = ["<unk>", "<s>", "</s>"]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    pieces += [f"<0x{b:02X}>" for b in range(256)]
    types += [TokenType.BYTE] * 256
    normal: list[str] = [SPM_SPACE]
    printable = [c for c in string.printable if c.isprintable() and c != " "]
    normal += printable + [SPM_SPACE + c for c in printable]
    letters = string.ascii_lowercase
    normal += [a + b for a in letters for b in letters]
    normal += [SPM_SPACE + a + b for a in letters for b in letters[:12]]
    for word in dict.fromkeys(COMMON_WORDS):  # every prefix, so pairwise merges reach the word
        for k in range(2, len(word) + 1):
            normal += [word[:k], SPM_SPACE + word[:k]]
    normal = list(dict.fromkeys(p for p in normal if p not in pieces))
    pieces += normal
    types += [TokenType.NORMAL] * len(normal)
    scores = [0.0] * 259 + [float(len(p)) - 1e-4 * i for i, p in enumerate(normal)]
    return pieces, scores, [int(t) for t in types]


def _weights(
    shape: ModelSize, n_vocab: int, n_blocked: int, seed: int
) -> Iterator[tuple[str, np.ndarray]]:
    """All tensors, lazily, numpy (out, in) as in Hugging Face; gguf reverses dims for ggml."""
    rng = np.random.default_rng(seed)
    d, f = shape.n_embd, shape.n_ff

    def rand(*dims: int) -> np.ndarray:
        return (rng.standard_normal(dims, dtype=np.float32) / np.sqrt(dims[-1])).astype(np.float32)

    embd = rand(n_vocab, d)
    embd[:, 0] = RESIDUAL_CONST
    yield "token_embd.weight", embd
    yield "output_norm.weight", np.ones(d, dtype=np.float32)
    output = rand(n_vocab, d)
    output[:n_blocked] = 0.0
    output[:n_blocked, 0] = BLOCKED_LOGIT_WEIGHT
    yield "output.weight", output
    for i in range(shape.n_layer):
        attn_out = rand(d, d)
        attn_out[0] = 0.0  # no layer writes into residual dimension 0
        ffn_down = rand(d, f)
        ffn_down[0] = 0.0
        yield f"blk.{i}.attn_norm.weight", np.ones(d, dtype=np.float32)
        yield f"blk.{i}.attn_q.weight", rand(d, d)
        yield f"blk.{i}.attn_k.weight", rand(d, d)
        yield f"blk.{i}.attn_v.weight", rand(d, d)
        yield f"blk.{i}.attn_output.weight", attn_out
        yield f"blk.{i}.ffn_norm.weight", np.ones(d, dtype=np.float32)
        yield f"blk.{i}.ffn_gate.weight", rand(f, d)
        yield f"blk.{i}.ffn_up.weight", rand(f, d)
        yield f"blk.{i}.ffn_down.weight", ffn_down


def build_tiny_model(path: str | Path, size: str = "tiny", *, seed: int = 0) -> Path:
    """Write a random-weight llama GGUF for preset `size` to `path` (atomically) and return it.

    Deterministic for a given (size, seed, BUILDER_VERSION). The tiny preset is ~9 MB and takes
    about a second; `medium` is about 170 MB.
    """
    shape = size_preset(size)
    gguf = optional_import("gguf", "engine", BUILD_PURPOSE)  # only building a model needs it
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pieces, scores, types = vocabulary()
    n_blocked = 259  # <unk> <s> </s> and the 256 byte tokens never get sampled
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(str(tmp), "llama")
    writer.add_name(f"burstlab-random-{shape.name}")
    writer.add_description(
        "Random weights for serving-latency tests; output text is meaningless. "
        f"burstlab tinymodel v{BUILDER_VERSION}, seed {seed}."
    )
    writer.add_context_length(shape.context_length)
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(shape.n_layer)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head)
    writer.add_rope_dimension_count(shape.n_embd // shape.n_head)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(pieces))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(pieces)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)
    with progress(transient=True) as bar:
        task = bar.add_task(f"building {shape.name} model", total=3 + 9 * shape.n_layer + 1)
        for name, tensor in _weights(shape, len(pieces), n_blocked, seed):
            writer.add_tensor(name, tensor)
            bar.advance(task)
        try:
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()
        bar.advance(task)
    os.replace(tmp, path)
    return path


def cached_model(size: str = "tiny", root: str | Path | None = None) -> Path:
    """The model file for `size` in `<data>/models/`, built on first use and reused after."""
    size_preset(size)
    path = data_dir(root) / "models" / f"burstlab-random-{size}-v{BUILDER_VERSION}.gguf"
    if not path.exists():
        build_tiny_model(path, size)
    return path
