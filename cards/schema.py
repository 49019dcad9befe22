"""The "Schema" section of a card: every column of the shipped table, its type and its unit.

Types come from `burstlab.schema` (the contract every Parquet file is conformed to); the
meanings below restate docs/design.md §1 for a reader of the published card, who has no repository.
"""

from __future__ import annotations

from burstlab.cards.stats import md_table
from burstlab.schema import REQUIRED, schema

#: Column -> meaning with its unit (seconds and tokens everywhere).
MEANINGS: dict[str, str] = {
    "source": "dataset id (`synth:<spec sha>` for synthetic rows)",
    "arrival_s": "seconds since the first request of the trace (first row is 0.0)",
    "input_tokens": "prompt / context length, tokens",
    "output_tokens": "generated length, tokens (0 with `failed=true`: a failed request)",
    "model": "model name as the source logs it",
    "kind": "request kind (`conversation`, `code`, `api`, …)",
    "session_id": "conversation id, where the source has one",
    "failed": "the source marks the request as failed",
    "source_latency_s": "the source's own end-to-end latency, seconds (never burstlab's)",
    "hash_ids": "prefix-block ids, one per 512 tokens; equal leading ids share a KV-cache prefix",
    "num_images": "images attached to the request (multimodal traces)",
    "owner": "hashed owner id",
    "app": "hashed application id",
    "function": "hashed function id",
    "trigger": "what invokes the function (`http`, `timer`, `queue`, …)",
    "minute": "minutes since the trace start",
    "count": "invocations in that minute",
    "duration_s": "execution time, seconds",
    "region": "cloud region",
    "user": "hashed user id",
    "pod_cpu_millicores": "CPU of the pod, millicores",
    "pod_memory_mb": "memory of the pod, MB",
    "total_s": "cold-start time, seconds",
    "pod_allocation_s": "cold-start component: pod allocation, seconds",
    "deploy_code_s": "cold-start component: code deployment, seconds",
    "deploy_dependency_s": "cold-start component: dependency deployment, seconds",
    "scheduling_s": "cold-start component: scheduling, seconds",
}


def schema_markdown(kind: str) -> str:
    """A Markdown table of the canonical table `kind`: column, Arrow type, nullable, meaning."""
    required = set(REQUIRED.get(kind, ()))
    rows = [
        [f"`{name}`", str(dtype), "no" if name in required else "yes", MEANINGS.get(name, "")]
        for name, dtype in schema(kind).items()
    ]
    return md_table(["column", "type", "nullable", "meaning"], rows)
