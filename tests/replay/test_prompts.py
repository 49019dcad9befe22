"""Prompts with exact token counts; equal hash_ids blocks give equal text, nothing else shared."""

from __future__ import annotations

import json

import pytest

from burstlab.replay.prompts import (
    PromptBuilder,
    ServerTokenizeCounter,
    WordCounter,
    request_body,
    single_token_words,
)


class PrefixSpaceCounter:
    """Fixture tokenizer: words longer than 6 letters are 2 tokens, and a text's leading space is
    a token of its own (like SentencePiece's dummy prefix) — the builder must correct for both."""

    exact = True
    name = "fixture"

    def count(self, texts):
        return [
            sum(2 if len(w) > 6 else 1 for w in t.split()) + (1 if t.startswith(" ") else 0)
            for t in texts
        ]


def test_exact_counts_with_the_word_counter():
    b = PromptBuilder(WordCounter(), seed=1)
    p = b.build([0, 1, 2], [1, 10, 700])
    assert WordCounter().count(p.texts) == [1, 10, 700]
    assert p.client_tokens == [1, 10, 700] and p.exact is False


def test_builder_filters_multi_token_words_and_corrects_counts():
    counter = PrefixSpaceCounter()
    vocab = single_token_words(counter)
    assert all(len(w) <= 6 for w in vocab) and "government" not in vocab
    b = PromptBuilder(counter, seed=3)
    targets = [5, 50, 333]
    p = b.build([0, 1, 2], targets)
    assert counter.count(p.texts) == targets
    assert p.client_tokens == targets


def test_overhead_is_subtracted_from_the_text_and_added_back_in_the_count():
    b = PromptBuilder(WordCounter(), overhead=4)
    p = b.build([0], [20])
    assert WordCounter().count(p.texts) == [16]
    assert p.client_tokens == [20]


def test_distinct_requests_share_no_prefix_and_equal_blocks_share_text():
    b = PromptBuilder(WordCounter(), seed=0, block_tokens=8)
    plain = b.build([0, 1], [8, 8]).texts
    assert plain[0].split()[:3] != plain[1].split()[:3]
    shared = b.build([5, 6, 7], [20, 12, 20], [[11, 12, 13], [11, 12], [99, 12, 13]]).texts
    w = [t.split() for t in shared]
    assert w[1] == w[0][:12]  # request 1 = block 11 + the start of block 12, as request 0
    assert w[2][:8] != w[0][:8] and w[2][8:16] == w[0][8:16]  # block 12 equal though 99 differs
    # deterministic: the same seed gives the same text in a new builder
    again = PromptBuilder(WordCounter(), seed=0, block_tokens=8).build([0], [8]).texts
    assert again[0] == plain[0]


def test_server_tokenize_counter_against_the_instant_server(instant_server):
    server = instant_server()
    counter = ServerTokenizeCounter(server.base_url, server.model)
    try:
        p = PromptBuilder(counter, seed=2).build([0, 1], [7, 123])
        assert counter.count(p.texts) == [7, 123]
        assert p.exact
    finally:
        counter.close()
    assert server.metrics()['burstlab_instant_requests_total{endpoint="tokenize"}'] > 2


def test_request_bodies():
    body = json.loads(request_body("chat", "m", "hi there", 7))
    assert body["messages"] == [{"role": "user", "content": "hi there"}]
    assert (body["max_tokens"], body["min_tokens"], body["ignore_eos"]) == (7, 7, True)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    plain = json.loads(request_body("completions", None, "x", 3, engine_extras=False))
    assert plain["prompt"] == "x" and "model" not in plain and "ignore_eos" not in plain
    assert plain["stream_options"] == {"include_usage": True}  # strict OpenAI: no extras


def test_hugging_face_tokenizer_file_gives_exact_counts(tmp_path):
    """A real `tokenizers` BPE, trained here on a tiny corpus so many words split in pieces."""
    tokenizers = pytest.importorskip("tokenizers")
    from burstlab.replay.prompts import WORDS, HFTokenizerCounter

    tok = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Metaspace()
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=300, special_tokens=["[UNK]"])
    tok.train_from_iterator([" ".join(WORDS[:60])] * 5, trainer)
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))

    counter = HFTokenizerCounter(path)
    vocab = single_token_words(counter)
    assert 16 <= len(vocab) < len(set(WORDS))  # some words are several BPE pieces
    p = PromptBuilder(counter, seed=5).build([0, 1, 2], [3, 64, 500])
    assert counter.count(p.texts) == [3, 64, 500]
    assert p.exact


def test_missing_tokenizer_file_is_a_clear_error(tmp_path):
    pytest.importorskip("tokenizers")
    from burstlab.errors import InputError
    from burstlab.replay.prompts import HFTokenizerCounter

    with pytest.raises(InputError, match=r"nope\.json: tokenizer file not found"):
        HFTokenizerCounter(tmp_path / "nope.json")


def test_different_blocks_differ_even_when_pool_offsets_collide(monkeypatch):
    b = PromptBuilder(WordCounter(), block_tokens=16)
    monkeypatch.setattr(b, "_offset", lambda key, salt: 0)  # every slice starts at the same word
    t = b.build([0, 1, 2], [16, 16, 16], [[7], [8], None]).texts
    assert len({x.split()[0] + x.split()[1] for x in t}) == 3  # the id words tell them apart
    assert t[0].split()[b._id_words :] == t[1].split()[b._id_words :]  # same pool words after


def test_twenty_thousand_prompts_are_all_distinct_and_exact():
    p = PromptBuilder(WordCounter()).build(list(range(20000)), [1000] * 20000)
    assert len(set(p.texts)) == 20000
    assert {len(t.split()) for t in p.texts[::97]} == {1000}
