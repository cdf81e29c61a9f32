"""What happens to new passages inside an ingest transaction: theme tags, then embeddings.

Kept apart from ingest.py so ingesting stays testable without models, and so the CLI, the web
upload and ``kb demo`` all wire the same analysis in the same order.
"""

from __future__ import annotations

from sqlmodel import Session

from kb.config import Settings
from kb.models import Passage
from kb.services.embedding import embed_passages, embedder_for
from kb.services.ingest import PassageHook
from kb.services.tagging import get_tagger, tag_passages


def passage_hook(settings: Settings, *, embed: bool | None = None) -> PassageHook:
    """Tag (and, when enabled, embed) the passages of each newly ingested document."""
    tagger = get_tagger(settings)
    embedder = (
        embedder_for(settings) if (settings.embed_on_ingest if embed is None else embed) else None
    )

    def analyse(session: Session, passages: list[Passage]) -> None:
        tag_passages(session, passages, tagger)
        if embedder is not None:
            embed_passages(session, passages, embedder)

    return analyse
