"""A random-weight Llama in Hugging Face format, written locally, so a real vLLM can serve it.

The GGUF model of `engines.tinymodel` is for llama.cpp; vLLM (and SGLang, transformers) load a
Hugging Face model folder: ``config.json``, ``generation_config.json``, weights in
``model.safetensors`` and a tokenizer (``tokenizer.json``, ``tokenizer_config.json``,
``special_tokens_map.json``, ``chat_template.jinja``). Nothing is downloaded: the tokenizer is
built with the `tokenizers` package and the weights are written by numpy, in bfloat16, with the
safetensors layout written out by hand (an 8-byte header length, a JSON header, the raw
tensors), so no torch is needed to build the model.

The tokenizer is a byte-level BPE (GPT-2 / Llama 3 style): the 256 byte symbols, then merges that
make every common English word, with and without its leading space, one token. Every text
tokenizes; every token decodes to at least one character.

The same trick as the GGUF model keeps the output clean and its length exact: residual
dimension 0 is held at a constant (embedding column 0 is `RESIDUAL_CONST`; row 0 of every
``o_proj`` and ``down_proj`` is zero), the final norm weight is 1, and the output rows of the
special tokens and of every byte that is not printable ASCII are ``[-50, 0, 0, …]``. Their
logits are then hugely negative whatever the prompt: the model never samples end-of-sequence
nor a lone UTF-8 continuation byte, so `max_tokens` alone fixes the output length (with or
without ``ignore_eos``) and each generated token is one or more printable ASCII characters.
"""

from __future__ import annotations

import json
import os
import shutil
import string
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from burstlab.engines.extras import optional_import
from burstlab.engines.tinymodel import BLOCKED_LOGIT_WEIGHT, COMMON_WORDS, RESIDUAL_CONST
from burstlab.errors import UsageError
from burstlab.paths import data_dir

__all__ = [
    "BUILDER_VERSION",
    "HF_SIZES",
    "HFModelSize",
    "build_hf_model",
    "cached_hf_model",
    "hf_size_preset",
]

# Bump when the file layout, the tokenizer or the weights recipe changes: cached folders are
# keyed by it.
BUILDER_VERSION = 1
#: What needs the optional package tokenizers, for its MissingExtraError.
BUILD_PURPOSE = "building the random-weight Hugging Face test model"
BOS, EOS, PAD = "<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"

# A minimal chat template (jinja) so /v1/chat/completions works; the server renders it.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

# Words beyond tinymodel's COMMON_WORDS that burstlab's replay prompts are made of (its
# PromptBuilder keeps the words a tokenizer holds as one token): the more single-token words,
# the fewer tokens a prompt needs to spell its request id.
_EXTRA_TEXT = (
    "if no said do my now even man me did before must through back years much way down because "
    "just those too little state good very still own see men get here both life being never day "
    "same another know last might us great old off come since against go came right take three "
    "next early young important few public bad able place case point group fact hand eye week "
    "company program question government night water room mother area money story month lot "
    "book word business issue side kind head house service friend father power hour game line "
    "end member law car city community name president team minute idea kid body information "
    "parent face others level office door health person art war history party result change "
    "morning reason research girl guy moment air teacher force education hello made"
)
EXTRA_WORDS: tuple[str, ...] = tuple(_EXTRA_TEXT.split())


@dataclass(frozen=True)
class HFModelSize:
    """Shape of one size preset. Per-token compute grows with `n_layer × hidden × ffn`."""

    name: str
    n_layer: int
    hidden: int
    ffn: int
    n_head: int
    n_kv_head: int
    context_length: int = 4096

    @property
    def n_params(self) -> int:
        """Weight count excluding embeddings (what costs time per generated token)."""
        head_dim = self.hidden // self.n_head
        attn = 2 * self.hidden * self.hidden + 2 * self.hidden * self.n_kv_head * head_dim
        return self.n_layer * (attn + 3 * self.hidden * self.ffn)


HF_SIZES: dict[str, HFModelSize] = {
    "tiny": HFModelSize("tiny", n_layer=2, hidden=256, ffn=512, n_head=4, n_kv_head=4),
    "small": HFModelSize("small", n_layer=4, hidden=512, ffn=1536, n_head=8, n_kv_head=4),
}


def hf_size_preset(size: str) -> HFModelSize:
    """The preset called `size`; UsageError listing the choices otherwise."""
    try:
        return HF_SIZES[size]
    except KeyError:
        raise UsageError(
            f"unknown model size {size!r}; expected one of {sorted(HF_SIZES)}", param="size"
        ) from None


def _byte_symbols() -> list[str]:
    """GPT-2's byte → printable-character map, as a list indexed by byte value."""
    keep = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def vocabulary() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(vocab piece → id, merges) of the byte-level BPE, specials not included.

    Ids: the 256 byte symbols in byte order (id = byte value), then merged pieces: every word of
    `COMMON_WORDS` and `EXTRA_WORDS` with and without its leading space, and lowercase letter
    pairs. The specials (BOS, EOS, PAD) follow them (`tokenizer_json`).
    """
    symbols = _byte_symbols()
    vocab = {s: i for i, s in enumerate(symbols)}
    merges: list[tuple[str, str]] = []
    space = symbols[ord(" ")]

    def add(first: str, rest: str) -> None:
        """Merges that build `first + rest` from `first`, one symbol of `rest` at a time."""
        piece = first
        for ch in rest:
            if piece + ch not in vocab:
                vocab[piece + ch] = len(vocab)
                merges.append((piece, ch))
            piece += ch

    words = list(dict.fromkeys([*COMMON_WORDS, *EXTRA_WORDS]))
    for word in words:
        add(word[0], word[1:])
    # BPE applies merges lowest rank first: every word's own merges come before any merge with
    # the leading space, so " word" becomes "Ġ" + "word", then one token (with ignore_merges, a
    # pre-token that is in the vocabulary is one token anyway).
    for word in words:
        if space + word not in vocab:
            vocab[space + word] = len(vocab)
            merges.append((space, word))
    for a in string.ascii_lowercase:  # letter pairs: random output reads as short words
        for b in string.ascii_lowercase[:13]:
            add(a, b)
    return vocab, merges


def tokenizer_json() -> str:
    """The tokenizer as a Hugging Face ``tokenizer.json`` string (built with `tokenizers`)."""
    tk = optional_import("tokenizers", "vllm", BUILD_PURPOSE)
    vocab, merges = vocabulary()
    tok = tk.Tokenizer(tk.models.BPE(vocab=vocab, merges=merges, ignore_merges=True))
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = tk.decoders.ByteLevel()
    tok.post_processor = tk.processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, len(vocab))]
    )
    tok.add_special_tokens([BOS, EOS, PAD])
    return tok.to_str()


def _blocked_ids(n_vocab: int) -> list[int]:
    """Token ids the model must never sample: non-printable / non-ASCII bytes and specials."""
    ids = [b for b in range(256) if not 0x21 <= b <= 0x7E]
    return [*ids, n_vocab - 3, n_vocab - 2, n_vocab - 1]


def _bf16_bytes(a: np.ndarray) -> bytes:
    """float32 → bfloat16 (round to nearest even), as raw little-endian bytes."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    return rounded.astype("<u2").tobytes()


def _weights(shape: HFModelSize, n_vocab: int, seed: int) -> Iterator[tuple[str, np.ndarray]]:
    """All tensors in Hugging Face Llama names, numpy (out, in), float32."""
    rng = np.random.default_rng(seed)
    d, f = shape.hidden, shape.ffn
    kv = shape.n_kv_head * (d // shape.n_head)

    def rand(*dims: int) -> np.ndarray:
        return (rng.standard_normal(dims, dtype=np.float32) / np.sqrt(dims[-1])).astype(np.float32)

    embed = rand(n_vocab, d)
    embed[:, 0] = RESIDUAL_CONST
    yield "model.embed_tokens.weight", embed
    yield "model.norm.weight", np.ones(d, dtype=np.float32)
    head = rand(n_vocab, d)
    blocked = _blocked_ids(n_vocab)
    head[blocked] = 0.0
    head[blocked, 0] = BLOCKED_LOGIT_WEIGHT
    yield "lm_head.weight", head
    for i in range(shape.n_layer):
        p = f"model.layers.{i}"
        o_proj = rand(d, d)
        o_proj[0] = 0.0  # no layer writes into residual dimension 0
        down = rand(d, f)
        down[0] = 0.0
        yield f"{p}.input_layernorm.weight", np.ones(d, dtype=np.float32)
        yield f"{p}.self_attn.q_proj.weight", rand(d, d)
        yield f"{p}.self_attn.k_proj.weight", rand(kv, d)
        yield f"{p}.self_attn.v_proj.weight", rand(kv, d)
        yield f"{p}.self_attn.o_proj.weight", o_proj
        yield f"{p}.post_attention_layernorm.weight", np.ones(d, dtype=np.float32)
        yield f"{p}.mlp.gate_proj.weight", rand(f, d)
        yield f"{p}.mlp.up_proj.weight", rand(f, d)
        yield f"{p}.mlp.down_proj.weight", down


def write_safetensors(path: Path, tensors: Iterator[tuple[str, np.ndarray]]) -> int:
    """Write float32 arrays as a bfloat16 safetensors file; returns its size in bytes."""
    header: dict[str, dict] = {"__metadata__": {"format": "pt"}}
    blobs: list[bytes] = []
    offset = 0
    for name, array in tensors:
        blob = _bf16_bytes(array)
        header[name] = {
            "dtype": "BF16",
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as out:
        out.write(len(head).to_bytes(8, "little"))
        out.write(head)
        for blob in blobs:
            out.write(blob)
    return 8 + len(head) + offset


def build_hf_model(path: str | Path, size: str = "tiny", *, seed: int = 0) -> Path:
    """Write the random-weight Llama folder for preset `size` at `path` and return it.

    Deterministic for (size, seed, BUILDER_VERSION). The folder is written beside `path` under a
    hidden name and renamed at the end, so a half-written model is never served. The tiny
    preset is about 2 MB of bfloat16 weights and takes well under a second.
    """
    shape = hf_size_preset(size)
    tok = tokenizer_json()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        n_base = len(vocabulary()[0])
        n_vocab = n_base + 3  # + BOS, EOS, PAD
        bos, eos, pad = n_base, n_base + 1, n_base + 2
        config = {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": shape.hidden,
            "intermediate_size": shape.ffn,
            "num_hidden_layers": shape.n_layer,
            "num_attention_heads": shape.n_head,
            "num_key_value_heads": shape.n_kv_head,
            "head_dim": shape.hidden // shape.n_head,
            "hidden_act": "silu",
            "max_position_embeddings": shape.context_length,
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "vocab_size": n_vocab,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "pad_token_id": pad,
            "tie_word_embeddings": False,
            "attention_bias": False,
            "mlp_bias": False,
            "torch_dtype": "bfloat16",
            "burstlab": {"builder_version": BUILDER_VERSION, "seed": seed, **asdict(shape)},
        }
        files = {
            "config.json": config,
            "generation_config.json": {"bos_token_id": bos, "eos_token_id": eos, "do_sample": True},
            "special_tokens_map.json": {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD},
            "tokenizer_config.json": {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": BOS,
                "eos_token": EOS,
                "pad_token": PAD,
                "add_bos_token": True,
                "model_max_length": shape.context_length,
                "clean_up_tokenization_spaces": False,
                "chat_template": CHAT_TEMPLATE,
            },
        }
        for name, obj in files.items():
            (tmp / name).write_text(json.dumps(obj, indent=1) + "\n")
        (tmp / "tokenizer.json").write_text(tok)
        (tmp / "chat_template.jinja").write_text(CHAT_TEMPLATE)
        write_safetensors(tmp / "model.safetensors", _weights(shape, n_vocab, seed))
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def cached_hf_model(size: str = "tiny", root: str | Path | None = None) -> Path:
    """The model folder for `size` in `<data>/models/`, built on first use and reused after."""
    hf_size_preset(size)
    path = data_dir(root) / "models" / f"burstlab-random-{size}-hf-v{BUILDER_VERSION}"
    if not (path / "model.safetensors").exists():
        build_hf_model(path, size)
    return path
