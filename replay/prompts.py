"""Prompts with an exact input token count, built before the run.

A prompt is a sequence of words that each count as one token for the target's tokenizer, so a
request that needs N input tokens gets N words, and the count is then checked with a real
tokenizer and corrected (words added or removed at the end) until it matches. The token counter
is, in order of preference: a Hugging Face `tokenizers` file (`--tokenizer tokenizer.json`, exact
and local), the server's own `/tokenize` endpoint (llama.cpp, vLLM and SGLang have one), or —
when neither is available — one word = one token, recorded as an estimate.

Prefix caches must see exactly the sharing the trace has, no more: requests without `hash_ids`
get text from their own seed (no two share a prefix), and requests with `hash_ids` (Mooncake,
512-token blocks) get each block's text from the block id, so equal blocks are equal text.
The template and BOS tokens a server adds are measured once (`measure_overhead`) and subtracted,
so the server's `usage.prompt_tokens` equals the trace's input length.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from burstlab.errors import ReplayError

#: Candidate words; the ones the target tokenizer keeps as a single token (with a leading space)
#: form the prompt vocabulary.
_WORD_TEXT = (
    "the of and to in is that it for was on are as with be at by this had not but from or "
    "have an they which one you were all we her she there would their will when who him been "
    "has more if no out so said what up its about into than them can only other new some "
    "could time these two may then do first any my now such like our over man me even most "
    "made after also did many before must through back years where much your way well down "
    "should because each just those people how too little state good very make world still "
    "own see men work long get here between both life being under never day same another "
    "know while last might us great old year off come since against go came right used take "
    "three small large next early young important few public bad same able place case point "
    "group number part fact hand high eye week company system program question government "
    "night water room mother area money story month lot book word business issue side kind "
    "head house service friend father power hour game line end member law car city community "
    "name president team minute idea kid body information back parent face others level "
    "office door health person art war history party result change morning reason research "
    "girl guy moment air teacher force education"
)
WORDS: tuple[str, ...] = tuple(_WORD_TEXT.split())


#: Request id used for the overhead probe's prompt (never a real request id).
PROBE_REQ_ID = 2**62


class TokenCounter(Protocol):
    """Counts tokens of texts as the target would (no BOS / special tokens)."""

    exact: bool
    name: str

    def count(self, texts: Sequence[str]) -> list[int]: ...


class WordCounter:
    """Fallback: one word = one token. Client counts are then estimates (`exact = False`)."""

    exact = False
    name = "words"

    def count(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]


class HFTokenizerCounter:
    """A Hugging Face `tokenizers` JSON file (the exact tokenizer of the served model)."""

    exact = True

    def __init__(self, path: str | Path) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise ReplayError(
                "--tokenizer needs the `tokenizers` package: pip install tokenizers"
            ) from None
        path = Path(path)
        if not path.is_file():
            raise ReplayError(f"{path}: tokenizer file not found; expected a tokenizer.json")
        self._tok = Tokenizer.from_file(str(path))
        self.name = f"tokenizers:{path.name}"

    def count(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]


class ServerTokenizeCounter:
    """The server's `/tokenize` endpoint (llama.cpp `content`, vLLM/SGLang `prompt` field)."""

    exact = True

    def __init__(self, base_url: str, model: str | None, headers: dict[str, str] | None = None):
        from burstlab.replay.http import ControlClient

        self._client = ControlClient(base_url, headers, timeout_s=30.0)
        self._model = model
        self.name = f"server:{base_url}/tokenize"

    def count(self, texts: Sequence[str]) -> list[int]:
        out = []
        for text in texts:
            body = {"content": text, "prompt": text, "add_special": False}
            body["add_special_tokens"] = False
            if self._model:
                body["model"] = self._model
            status, data = self._client.json("POST", "/tokenize", body)
            if status != 200 or not isinstance(data, dict):
                raise ReplayError(f"{self.name}: HTTP {status}: {str(data)[:200]}")
            n = data.get("count")
            out.append(int(n) if n is not None else len(data["tokens"]))
        return out

    def close(self) -> None:
        self._client.close()


def server_counter(base_url: str, model: str | None, headers: dict[str, str] | None = None):
    """A ServerTokenizeCounter when the server answers `/tokenize`, else None."""
    counter = ServerTokenizeCounter(base_url, model, headers)
    try:
        counter.count(["hello world"])
    except Exception:
        counter.close()
        return None
    return counter


@dataclass
class PromptSet:
    """Prompt texts for a schedule plus how exact they are.

    `client_tokens[i]` is the counter's count of `texts[i]` (plus `overhead`), i.e. what the
    client expects the server to report as prompt tokens.
    """

    texts: list[str]
    client_tokens: list[int]
    counter: str
    exact: bool
    overhead: int
    vocabulary: int


def single_token_words(counter: TokenCounter) -> list[str]:
    """The WORDS that `counter` keeps as one token when preceded by a space."""
    candidates = list(dict.fromkeys(WORDS))
    counts = counter.count([" " + w for w in candidates])
    vocab = [w for w, c in zip(candidates, counts, strict=True) if c == 1]
    if len(vocab) < 16:
        # Tokenizers that never merge a space with a word: fall back to words that are 2 tokens
        # with the space (the space-token plus the word), still additive.
        vocab = [w for w, c in zip(candidates, counts, strict=True) if c == min(counts)]
    if not vocab:
        raise ReplayError(f"{counter.name}: no usable prompt words")
    return vocab


class PromptBuilder:
    """Deterministic prompt text: per-request seeds, or per-block seeds for `hash_ids`."""

    def __init__(
        self,
        counter: TokenCounter | None = None,
        *,
        seed: int = 0,
        block_tokens: int = 512,
        overhead: int = 0,
    ):
        self.counter = counter or WordCounter()
        self.vocab = np.array(single_token_words(self.counter))
        self.seed = seed
        self.block_tokens = block_tokens
        self.overhead = overhead
        self._blocks: dict[int, list[str]] = {}

    def _words(self, key: tuple[int, ...], n: int) -> list[str]:
        rng = np.random.default_rng((self.seed, *key))
        return list(self.vocab[rng.integers(0, len(self.vocab), size=n)])

    def _draft(self, req_id: int, n: int, hash_ids: Sequence[int] | None) -> list[str]:
        if not hash_ids:
            return self._words((1, req_id), n)
        words: list[str] = []
        for h in hash_ids:
            if h not in self._blocks:
                self._blocks[h] = self._words((2, int(h) & 0x7FFFFFFFFFFFFFFF), self.block_tokens)
            words.extend(self._blocks[h])
            if len(words) >= n:
                break
        if len(words) < n:
            words.extend(self._words((1, req_id), n - len(words)))
        return words[:n]

    def build(
        self,
        req_ids: Sequence[int],
        input_tokens: Sequence[int],
        hash_ids: Sequence[Sequence[int] | None] | None = None,
        *,
        rounds: int = 4,
    ) -> PromptSet:
        """Texts whose token count (plus overhead) equals `input_tokens`, corrected `rounds` times."""
        hash_ids = hash_ids if hash_ids is not None else [None] * len(req_ids)
        targets = [max(1, int(n) - self.overhead) for n in input_tokens]
        words = [
            self._draft(int(r), t, h) for r, t, h in zip(req_ids, targets, hash_ids, strict=True)
        ]
        texts = [" " + " ".join(w) for w in words]
        counts = self.counter.count(texts)
        for _ in range(rounds):
            wrong = [i for i, (c, t) in enumerate(zip(counts, targets, strict=True)) if c != t]
            if not wrong:
                break
            for i in wrong:
                diff = targets[i] - counts[i]
                if diff < 0:
                    words[i] = words[i][: max(1, len(words[i]) + diff)]
                else:
                    extra = self._words((3, int(req_ids[i]), len(words[i])), diff)
                    words[i] = words[i] + extra
                texts[i] = " " + " ".join(words[i])
            fixed = self.counter.count([texts[i] for i in wrong])
            for i, c in zip(wrong, fixed, strict=True):
                counts[i] = c
        return PromptSet(
            texts=texts,
            client_tokens=[c + self.overhead for c in counts],
            counter=self.counter.name,
            exact=self.counter.exact,
            overhead=self.overhead,
            vocabulary=len(self.vocab),
        )


def request_body(
    endpoint: str,
    model: str | None,
    text: str,
    max_tokens: int,
    *,
    engine_extras: bool = True,
    extra: dict | None = None,
) -> bytes:
    """The JSON body (bytes) of one streaming request; built before the run, sent as is.

    `engine_extras` adds `ignore_eos` and `min_tokens` (vLLM, SGLang, llama.cpp accept them) so
    the output length is exactly `max_tokens`; strict OpenAI-only servers need it off.
    """
    body: dict = {"stream": True, "stream_options": {"include_usage": True}}
    if model:
        body["model"] = model
    if endpoint == "chat":
        body["messages"] = [{"role": "user", "content": text}]
    else:
        body["prompt"] = text
    body["max_tokens"] = int(max_tokens)
    if engine_extras:
        body["ignore_eos"] = True
        body["min_tokens"] = int(max_tokens)
    if extra:
        body.update(extra)
    return json.dumps(body, separators=(",", ":")).encode()
