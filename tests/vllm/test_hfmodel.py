"""The random-weight Hugging Face Llama that the vLLM lane serves: built locally, deterministic,
reused, a tokenizer whose prompt words are one token each, and bfloat16 safetensors whose
blocked tokens can never win (runs in the default suite: needs `tokenizers`, not vLLM)."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from burstlab.engines.hfmodel import (
    HF_SIZES,
    build_hf_model,
    cached_hf_model,
    hf_size_preset,
)
from burstlab.errors import UsageError

tokenizers = pytest.importorskip("tokenizers")


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """bfloat16 safetensors → float32 arrays (the format by hand, as the writer does)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__")
    out = {}
    for name, meta in header.items():
        assert meta["dtype"] == "BF16"
        lo, hi = meta["data_offsets"]
        bits = np.frombuffer(raw[8 + n + lo : 8 + n + hi], dtype="<u2").astype(np.uint32) << 16
        out[name] = bits.view(np.float32).reshape(meta["shape"])
    return out


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def test_model_folder_is_complete_deterministic_and_reused(tmp_path: Path):
    a = build_hf_model(tmp_path / "a")
    b = build_hf_model(tmp_path / "b")
    assert sorted(p.name for p in a.iterdir()) == [
        "chat_template.jinja", "config.json", "generation_config.json", "model.safetensors",
        "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json",
    ]  # fmt: skip
    assert digest(a) == digest(b)
    assert digest(build_hf_model(tmp_path / "c", seed=1)) != digest(a)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left
    cached = cached_hf_model("tiny", tmp_path / "data")
    mtime = (cached / "model.safetensors").stat().st_mtime_ns
    assert cached_hf_model("tiny", tmp_path / "data") == cached
    assert (cached / "model.safetensors").stat().st_mtime_ns == mtime  # reused, not rebuilt
    with pytest.raises(UsageError, match="unknown model size"):
        hf_size_preset("huge")


def test_weights_match_the_config_and_block_special_and_byte_tokens(tmp_path: Path):
    path = build_hf_model(tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    shape = HF_SIZES["tiny"]
    weights = read_safetensors(path / "model.safetensors")
    assert len(weights) == 3 + 9 * shape.n_layer
    n_vocab, d = config["vocab_size"], config["hidden_size"]
    assert weights["model.embed_tokens.weight"].shape == (n_vocab, d)
    assert weights["lm_head.weight"].shape == (n_vocab, d)
    assert (weights["model.embed_tokens.weight"][:, 0] == 4.0).all()
    head = weights["lm_head.weight"]
    blocked = [*range(0, 0x21), *range(0x7F, 256), n_vocab - 3, n_vocab - 2, n_vocab - 1]
    assert (head[blocked, 0] == -50.0).all() and (head[blocked, 1:] == 0).all()
    allowed = np.setdiff1d(np.arange(n_vocab), blocked)
    assert (head[allowed, 0] != -50.0).all()
    for i in range(shape.n_layer):
        assert (weights[f"model.layers.{i}.self_attn.o_proj.weight"][0] == 0).all()
        assert (weights[f"model.layers.{i}.mlp.down_proj.weight"][0] == 0).all()


def test_tokenizer_keeps_prompt_words_whole_and_adds_one_bos(tmp_path: Path):
    from burstlab.replay.prompts import WORDS

    path = build_hf_model(tmp_path / "m")
    tok = tokenizers.Tokenizer.from_file(str(path / "tokenizer.json"))
    config = json.loads((path / "config.json").read_text())
    assert tok.get_vocab_size() == config["vocab_size"]
    single = [w for w in set(WORDS) if len(tok.encode(" " + w, add_special_tokens=False).ids) == 1]
    assert len(single) == len(set(WORDS))
    enc = tok.encode(" the world")
    assert enc.ids[0] == config["bos_token_id"] and len(enc.ids) == 3
    text = "héllo wörld ✓ 日本語\n\ttabs"
    assert tok.decode(tok.encode(text, add_special_tokens=False).ids) == text  # byte-level
