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
so the server's `usage.prompt_tokens` equals the trace's input length. `intended_cached` is what
that sharing means for a prefix cache: per request, the prompt tokens a cache holding everything
sent before could serve.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from burstlab.engines import optional_import
from burstlab.errors import InputError, ReplayError
from burstlab.replay.http import ControlClient

#: One piece of a prompt: literal text, or [pool start, words] (a slice of the word pool).
Piece = str | list[int]

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
        tokenizers = optional_import(
            "tokenizers", "tokenizers", "exact prompt lengths from a tokenizer.json"
        )
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "tokenizer file not found", expected="a tokenizer.json")
        try:
            self._tok = tokenizers.Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception for a file it cannot load
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise InputError(
                path, f"not a Hugging Face tokenizer file ({first})", expected="a tokenizer.json"
            ) from None
        self.name = f"tokenizers:{path.name}"

    def count(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]


class ServerTokenizeCounter:
    """The server's `/tokenize` endpoint (llama.cpp `content`, vLLM/SGLang `prompt` field)."""

    exact = True

    def __init__(self, base_url: str, model: str | None, headers: dict[str, str] | None = None):
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
            try:
                status, data = self._client.json("POST", "/tokenize", body)
            except (OSError, http.client.HTTPException) as exc:
                raise ReplayError(f"{self.name}: {type(exc).__name__}: {exc}") from None
            if status != 200 or not isinstance(data, dict):
                text = " ".join(str(data).split())[:200]
                raise ReplayError(f"{self.name}: HTTP {status}: {text}")
            n, tokens = data.get("count"), data.get("tokens")
            if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
                out.append(n)
            elif isinstance(tokens, list):
                out.append(len(tokens))
            else:
                raise ReplayError(f"{self.name}: the answer has no token count or tokens")
        return out

    def close(self) -> None:
        self._client.close()


def server_counter(
    base_url: str, model: str | None, headers: dict[str, str] | None = None
) -> ServerTokenizeCounter | None:
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
    #: prompt tokens each request shares with the requests before it (see `intended_cached`);
    #: None without hash_ids
    intended_cached: list[int | None] | None = None


def intended_cached(
    hash_ids: Sequence[Sequence[int] | None],
    lengths: Sequence[int],
    block_tokens: int = 512,
) -> list[int | None]:
    """Prompt tokens of each request that earlier requests (in the order given) already sent.

    Request i's text is its blocks in order, `block_tokens` tokens each, the last one cut at
    `lengths[i]` (tokens of text, without the server's template/BOS overhead); equal block ids
    are equal text (PromptBuilder). Its intended cached prefix is the leading run of blocks seen
    before: a block counts with the tokens of it already sent (a block an earlier request cut
    short shares only that many), and the run stops at the first block not fully covered. So
    for full blocks it is (leading run of already-seen blocks) × block_tokens, capped by the
    prompt length. None for a request without hash_ids; 0 for the first sight of every block.
    """
    seen: dict[int, int] = {}  # block id -> most tokens of it sent so far
    out: list[int | None] = []
    for ids, n in zip(hash_ids, lengths, strict=True):
        if ids is None:
            out.append(None)
            continue
        n = max(0, int(n))
        shared, counting = 0, True
        for k, h in enumerate(ids):
            size = min(block_tokens, n - k * block_tokens)
            if size <= 0:
                break
            if counting:
                have = seen.get(h, 0)
                shared += min(have, size)
                counting = have >= size
            if seen.get(h, 0) < size:
                seen[h] = size
        out.append(shared)
    return out


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
    """Deterministic prompt text, cut from one pre-rendered word pool (fast for millions of tokens).

    A request's text is a few words spelling its id (so no two requests share more than a
    token of prefix) followed by a slice of the pool at an offset hashed from the id. A request
    with `hash_ids` is instead the concatenation of its blocks' slices (offset hashed from the
    block id, `block_tokens` words each), so equal blocks are equal text and nothing else is
    shared. Counts are then checked with the counter and corrected at the end of the text.
    """

    POOL_WORDS = 1 << 17

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
        rng = np.random.default_rng(seed)
        words = self.vocab[rng.integers(0, len(self.vocab), size=self.POOL_WORDS)]
        self._pool = "".join(np.char.add(" ", words).tolist())
        # char offset of word i (its leading space); one past the end for i = POOL_WORDS
        self._at = np.concatenate([[0], np.cumsum(np.char.str_len(words) + 1)]).tolist()
        self._digits = rng.permutation(self.vocab).tolist()
        # enough digits for 2**40 distinct ids (requests or blocks)
        self._id_words = max(2, int(np.ceil(40 * np.log(2) / np.log(len(self.vocab)))))

    def _offset(self, key: int, salt: int) -> int:
        h = (int(key) * 0x9E3779B97F4A7C15 + salt * 0xBF58476D1CE4E5B9 + self.seed) & (2**64 - 1)
        h ^= h >> 31
        return h % self.POOL_WORDS

    def _slice(self, start: int, n: int) -> str:
        """n pool words from word `start`, wrapping around the pool."""
        out = []
        at = self._at
        while n > 0:
            take = min(n, self.POOL_WORDS - start)
            out.append(self._pool[at[start] : at[start + take]])
            n -= take
            start = 0
        return "".join(out)

    def _id_text(self, key: int, n: int) -> str:
        """n words spelling `key` in base len(vocab): distinct keys never get equal text."""
        digits, base, rest = [], len(self._digits), int(key) & (2**63 - 1)
        for _ in range(n):
            digits.append(self._digits[rest % base])
            rest //= base
        return " " + " ".join(digits)

    def _segments(self, req_id: int, n: int, hash_ids: Sequence[int] | None) -> list[Piece]:
        """The prompt as [text | [pool start, words]] pieces summing to n words.

        Every block and every request starts with words spelling its id, so two different
        blocks (or requests) never have the same text however their pool offsets fall.
        """
        pieces: list[Piece] = []
        k = self._id_words
        if hash_ids:
            left = n
            for h in hash_ids:
                if left <= 0:
                    break
                take = min(left, self.block_tokens)
                pieces.append(self._id_text(h, min(k, take)))
                if take > k:
                    pieces.append([self._offset(h, 2), take - k])
                left -= take
            if left > 0:
                pieces.append([self._offset(req_id, 1), left])
            return pieces
        pieces.append(self._id_text(req_id, min(k, n)))
        if n > k:
            pieces.append([self._offset(req_id, 1), n - k])
        return pieces

    def _text(self, pieces: list[Piece]) -> str:
        return "".join(p if isinstance(p, str) else self._slice(p[0], p[1]) for p in pieces)

    @staticmethod
    def _resize(pieces: list[Piece], diff: int) -> None:
        """Add (diff > 0) or remove (diff < 0) words at the end, keeping at least one word."""
        if diff > 0:
            last = pieces[-1]
            if isinstance(last, str):
                last = [0, 0]
                pieces.append(last)
            last[1] += diff
            return
        while diff < 0 and len(pieces) > 1:
            last = pieces[-1]
            size = len(last.split()) if isinstance(last, str) else last[1]
            if size + diff > 0:
                if isinstance(last, str):
                    pieces[-1] = " " + " ".join(last.split()[: size + diff])
                else:
                    last[1] += diff
                return
            pieces.pop()
            diff += size
        if diff < 0:
            first = pieces[0]
            if isinstance(first, list):
                first[1] = max(1, first[1] + diff)
            else:
                words = first.split()
                pieces[0] = " " + " ".join(words[: max(1, len(words) + diff)])

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
        pieces = [
            self._segments(int(r), t, h) for r, t, h in zip(req_ids, targets, hash_ids, strict=True)
        ]
        texts = [self._text(p) for p in pieces]
        if isinstance(self.counter, WordCounter):
            counts = list(targets)  # by construction: one word per token
        else:
            counts = self.counter.count(texts)
        for _ in range(rounds):
            wrong = [i for i, (c, t) in enumerate(zip(counts, targets, strict=True)) if c != t]
            if not wrong:
                break
            for i in wrong:
                self._resize(pieces[i], targets[i] - counts[i])
                texts[i] = self._text(pieces[i])
            fixed = self.counter.count([texts[i] for i in wrong])
            for i, c in zip(wrong, fixed, strict=True):
                counts[i] = c
        intended = (
            intended_cached(hash_ids, targets, self.block_tokens)
            if any(h is not None for h in hash_ids)
            else None
        )
        return PromptSet(
            texts=texts,
            client_tokens=[c + self.overhead for c in counts],
            counter=self.counter.name,
            exact=self.counter.exact,
            overhead=self.overhead,
            vocabulary=len(self.vocab),
            intended_cached=intended,
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
    the output length is exactly `max_tokens`, and asks for `continuous_usage_stats` (vLLM,
    SGLang: cumulative `usage.completion_tokens` on every chunk, so the client counts the tokens
    a merged or an empty-text chunk carries; llama.cpp ignores it); strict OpenAI-only servers
    need it off.
    """
    stream_options: dict = {"include_usage": True}
    if engine_extras:
        stream_options["continuous_usage_stats"] = True
    body: dict = {"stream": True, "stream_options": stream_options}
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
