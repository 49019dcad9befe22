"""burstlab.cards: publish — Hugging Face dataset cards for sources, specs, synthetic loads and
replay runs (the last stage: it reads every earlier one).

- `card(target, out, …)` → `CardResult`: what `target` is decides the card (a dataset id or
  canonical Parquet → source card; a synthetic Parquet → synthetic card; a spec JSON → spec
  card; a replay run folder → run card).
- `card_kind(target)`: which card a target makes; `check_card(folder)`: validate one offline.
"""

from burstlab.cards.hf import CardResult, check_card
from burstlab.cards.target import CardKind, card, card_kind

__all__ = ["CardKind", "CardResult", "card", "card_kind", "check_card"]
