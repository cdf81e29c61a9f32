"""Search prior learning: hybrid BM25 + dense ranking under access control and filters.

The database is the source of truth; the ``HybridIndex`` is a cache that loads lazily (from
the machine's shared index files, kb/services/search_index.py), catches up incrementally with
passages added or removed since (a cheap fingerprint query tells), and can always be rebuilt.
Access control and filters become an allow-set of passage ids computed in SQL *before*
ranking, so a review the user may not see never contributes a hit, a snippet, a count or even
a score.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import case
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from kb.config import get_settings
from kb.models import (
    AgeBand,
    Case,
    Partnership,
    Passage,
    Review,
    ReviewStatus,
    ReviewType,
    TagStatus,
    ThemeTag,
)
from kb.services.access import Principal, can_see, visibility_key, visible_reviews
from kb.services.cache import RESULTS, data_fingerprint
from kb.services.embedding import embedder_for, from_bytes, reembed_stale
from kb.services.reviews import NotFound
from kb.services.search_hit import SearchHit
from kb.services.search_index import IndexFiles, Loaded, database_token, load_shared
from kb.services.search_learning import (
    LEARNING_POOL,
    ORDERS,
    ROLES,
    SIMILARITY_FLOOR,
    Order,
    above_floor,
    answering_actions,
    cosines,
    default_order,
    learning_first,
)
from nlp.embeddings import Embedder
from nlp.ranking import HybridIndex, Mode
from nlp.snippets import make_snippet

#: Input limits every caller shares (API, web form, ``kb search``).
MAX_TOP = 50
MAX_PAGE = 20  # deeper pages are better reached with a narrower query or a filter
MAX_QUERY_CHARS = 4000  # a long pasted paragraph, still comfortably inside a GET URL
MIN_YEAR, MAX_YEAR = 1900, 2100


class SearchError(ValueError):
    """Search input the caller can fix (HTTP 400, a message beside the form, exit code 1)."""


def check_search(
    *,
    query: str,
    like: int | None,
    themes: list[str],
    since: int | None,
    until: int | None,
    top: int,
    page: int = 1,
    known_themes: dict[str, str] | None = None,
    roles: list[str] | None = None,
    order: str | None = None,
) -> None:
    """Raise SearchError for input that is well-typed but cannot mean anything.

    One function so the API, the page and ``kb search`` accept and refuse the same things.
    """
    if like is None and not query.strip():
        raise SearchError("give a query (q), a few words or a whole paragraph")
    if len(query) > MAX_QUERY_CHARS:
        raise SearchError(f"the query is longer than {MAX_QUERY_CHARS} characters")
    for year in (since, until):
        if year is not None and not MIN_YEAR <= year <= MAX_YEAR:
            raise SearchError(f"{year} is not a plausible year")
    if since is not None and until is not None and since > until:
        raise SearchError(f"the year range {since}–{until} ends before it starts")
    unknown = [t for t in themes if known_themes and t not in known_themes]
    if unknown:
        raise SearchError(f"unknown theme {', '.join(sorted(unknown))}")
    if not 1 <= top <= MAX_TOP:
        raise SearchError(f"top must be between 1 and {MAX_TOP}")
    if not 1 <= page <= MAX_PAGE:
        raise SearchError(f"page must be between 1 and {MAX_PAGE}")
    bad_roles = sorted(set(roles or []) - set(ROLES))
    if bad_roles:
        raise SearchError(f"unknown role {', '.join(bad_roles)} (one of {', '.join(ROLES)})")
    if order is not None and order not in ORDERS:
        raise SearchError(f"order must be one of {', '.join(ORDERS)}")


@dataclass(slots=True)
class SearchFilters:
    """Restrictions applied before ranking. Several themes match passages tagged with any."""

    themes: list[str] = field(default_factory=list)
    review_type: ReviewType | None = None
    partnership: str | None = None
    since: int | None = None
    until: int | None = None
    section_kind: str | None = None
    age_band: AgeBand | None = None
    status: ReviewStatus | None = None
    roles: list[str] = field(default_factory=list)  # passage roles (any of)


class IndexCache:
    """One ``HybridIndex`` per database, kept in step with the passages table.

    With KB_INDEX_FILES (the default) the index's base is the machine's shared, memory-mapped
    generation (kb/services/search_index.py) and this worker holds only the passages changed
    since; otherwise the whole index lives in this worker's memory.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._indexes: dict[str, tuple[Loaded, tuple[int, int, int], str]] = {}
        self._checked: dict[str, Hashable] = {}  # data fingerprint at the last check

    def clear(self) -> None:
        with self._lock:
            self._indexes.clear()
            self._checked.clear()

    def get(
        self,
        engine: Engine,
        embedder: Embedder,
        session: Session | None = None,
        data: Hashable | None = None,
    ) -> HybridIndex:
        """The up-to-date index for ``engine``; embeds passages still lacking vectors first.

        Pass the caller's ``session`` so the freshness queries use the connection it already
        holds. Opening a second connection while holding the lock starves a busy server's pool:
        every pooled connection is held by a request waiting for the lock while the lock's
        holder waits for a connection, and requests fail with pool timeouts.
        """
        key = engine.url.render_as_string(hide_password=False)
        model_id = embedder.model_id
        with self._lock:
            cached = self._indexes.get(key)
            if (
                cached
                and cached[2] == model_id
                and data is not None
                and self._checked.get(key) == data
            ):
                # Nothing changed since the last full check (``data`` is the caller's
                # ``data_fingerprint``): skip the scan of every passage (~35 ms).
                return cached[0].index
            with _reader(engine, session) as reader:
                stale, fingerprint = _state(reader, model_id)
            if stale:
                reembed_stale(engine, embedder=embedder)
            with _reader(engine, session) as reader:
                if stale:
                    fingerprint = _state(reader, model_id)[1]
                if cached and cached[1] == fingerprint and cached[2] == model_id:
                    if data is not None and not stale:
                        self._checked[key] = data
                    return cached[0].index
                previous = cached[0] if cached and cached[2] == model_id else None
                loaded = _load(engine, reader, model_id, fingerprint, previous)
            self._indexes[key] = (loaded, fingerprint, model_id)
            if data is not None:
                self._checked[key] = data
            return loaded.index


INDEXES = IndexCache()


def _load(
    engine: Engine,
    session: Session,
    model_id: str,
    fingerprint: tuple[int, int, int],
    previous: Loaded | None,
) -> Loaded:
    """The index in step with the database: from the shared files when they are on."""

    def sync(reader: Session, index: HybridIndex) -> None:
        _sync(reader, index, model_id)

    files = IndexFiles.for_engine(get_settings(), engine)
    if files is None:
        index = previous.index if previous is not None else HybridIndex()
        sync(session, index)
        return Loaded(index, None)
    meta = {
        "model": model_id,
        "database": database_token(session),
        "passages": list(fingerprint),
    }
    return load_shared(files, session, meta=meta, cached=previous, sync=sync)


@contextmanager
def _reader(engine: Engine, session: Session | None) -> Iterator[Session]:
    """``session`` when given (the caller's connection), else a short-lived one of our own."""
    if session is not None:
        yield session
        return
    with Session(engine) as own:
        yield own


def _state(session: Session, model_id: str) -> tuple[int, tuple[int, int, int]]:
    """(passages without a current vector, fingerprint) in one scan of the passages table.

    The fingerprint (count, max id, sum of ids of passages with a current vector) changes
    whenever such a passage is added or removed. It runs before every search, so it is one
    query rather than two.
    """
    current = col(Passage.embedding_model) == model_id
    total, count, biggest, id_sum = session.exec(
        select(
            func.count(col(Passage.id)),
            func.sum(case((current, 1), else_=0)),
            func.max(case((current, Passage.id), else_=None)),
            func.sum(case((current, Passage.id), else_=0)),
        )
    ).one()
    count = int(count or 0)
    return int(total or 0) - count, (count, int(biggest or 0), int(id_sum or 0))


def _sync(session: Session, index: HybridIndex, model_id: str, chunk: int = 2000) -> None:
    """Bring ``index`` in line with the database: add new passages, drop deleted ones."""
    db_ids = set(session.exec(select(Passage.id).where(Passage.embedding_model == model_id)).all())
    have = set(index.ids().tolist())
    gone = have - db_ids
    if gone:
        index.remove(gone)
    missing = sorted(db_ids - have)
    for start in range(0, len(missing), chunk):
        part = missing[start : start + chunk]
        rows = session.exec(
            select(Passage.id, Passage.text, Passage.embedding).where(col(Passage.id).in_(part))
        ).all()
        vectors = np.vstack([from_bytes(blob) for _, _, blob in rows])
        index.add([pid for pid, _, _ in rows], [text for _, text, _ in rows], vectors)


def allowed_passages(
    session: Session,
    *,
    principal: Principal,
    filters: SearchFilters,
    fingerprint: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Ids of passages the principal may see that pass the filters (access control first).

    Cached per visibility key (role + partnership: what ``visible_reviews`` depends on),
    filters and data fingerprint, so a change to reviews, passages or tags is seen at once and
    one role's allow-set never serves another. The array is read-only: it is shared.
    """
    key = (
        "allowed_passages",
        visibility_key(principal),
        tuple(
            tuple(value) if isinstance(value, list) else value for value in asdict(filters).values()
        ),
        fingerprint or data_fingerprint(session),
    )
    return RESULTS.get_or_compute(
        session, key, lambda: _allowed_passages(session, principal, filters), copy_out=False
    )


def _allowed_passages(session: Session, principal: Principal, filters: SearchFilters) -> np.ndarray:
    """:func:`allowed_passages` computed in SQL."""
    query = (
        select(Passage.id)
        .join(Review, col(Review.id) == Passage.review_id)
        .where(visible_reviews(principal))
    )
    if filters.review_type:
        query = query.where(Review.type == filters.review_type)
    if filters.partnership:
        query = query.join(Partnership, col(Partnership.id) == Review.partnership_id).where(
            func.lower(Partnership.name) == filters.partnership.lower()
        )
    if filters.since is not None:
        query = query.where(col(Review.year) >= filters.since)
    if filters.until is not None:
        query = query.where(col(Review.year) <= filters.until)
    if filters.section_kind:
        query = query.where(Passage.section_kind == filters.section_kind)
    if filters.age_band:
        query = query.where(Review.age_band == filters.age_band)
    if filters.status:
        query = query.where(Review.status == filters.status)
    if filters.roles:
        query = query.where(col(Passage.role).in_(filters.roles))
    if filters.themes:
        tagged = select(ThemeTag.passage_id).where(
            col(ThemeTag.theme_id).in_(filters.themes), ThemeTag.status != TagStatus.REJECTED
        )
        query = query.where(col(Passage.id).in_(tagged))
    # Core, not ORM, rows: tens of thousands of ids per search, and ORM row handling was most
    # of the cost of a search at 20k passages.
    ids = np.fromiter(session.connection().execute(query).scalars(), dtype=np.int64)
    ids.flags.writeable = False
    return ids


def search(
    session: Session,
    *,
    principal: Principal,
    query: str,
    filters: SearchFilters | None = None,
    top_k: int = 10,
    mode: Mode = "hybrid",
    embedder: Embedder | None = None,
    order: Order | None = None,
    floor: float | None = SIMILARITY_FLOOR,
) -> list[SearchHit]:
    """Best passages for ``query`` (a few words or a pasted paragraph), best first.

    Hits that are not close (see :mod:`kb.services.search_learning`) are dropped, so a nonsense
    query returns ``[]``; ``floor=None`` turns the floor off. ``order`` is "relevance" or
    "learning" (findings, recommendations, actions first); None chooses learning first for a
    pasted paragraph. Each hit carries the tracker actions answering its recommendation.
    """
    query = query.strip()
    if not query:
        return []
    order = order or default_order(query)
    embedder = embedder or embedder_for()
    data = data_fingerprint(session)
    index = INDEXES.get(session.get_bind(), embedder, session, data)  # type: ignore[arg-type]
    allowed = allowed_passages(
        session, principal=principal, filters=filters or SearchFilters(), fingerprint=data
    )
    query_vec = query_vector(embedder, query) if mode != "bm25" else None
    pool = max(top_k, LEARNING_POOL) if order == "learning" else top_k
    ranked = index.search(query, query_vec, allowed=allowed, top_k=pool, mode=mode)
    sims: list[float | None] = [None] * len(ranked)
    if query_vec is not None:
        sims = list(cosines(query_vec, [index.vector(h.passage_id) for h in ranked]))
    hits = _hydrate(session, [(h.passage_id, h.score) for h in ranked], query)
    for hit, similarity in zip(hits, sims, strict=True):
        hit.similarity = None if similarity is None else round(similarity, 4)
    if floor is not None:
        hits = above_floor(hits, query, floor)
    if order == "learning":
        hits = learning_first(hits)
    hits = hits[:top_k]
    actions = answering_actions(
        session, principal=principal, passage_ids=[h.passage_id for h in hits]
    )
    for hit in hits:
        hit.actions = actions.get(hit.passage_id, [])
    return hits


_VECTORS: OrderedDict[tuple[int, str, str], np.ndarray] = OrderedDict()
_VECTORS_LOCK = threading.Lock()
VECTOR_CACHE_SIZE = 1024


def query_vector(embedder: Embedder, query: str) -> np.ndarray:
    """The query's embedding, from a small LRU: encoding is a third of a search's cost and
    practitioners repeat the same searches. Depends only on the text and the model."""
    key = (id(embedder), embedder.model_id, query)
    with _VECTORS_LOCK:
        vector = _VECTORS.get(key)
        if vector is not None:
            _VECTORS.move_to_end(key)
            return vector
    vector = embedder.encode([query])[0]
    vector.flags.writeable = False
    with _VECTORS_LOCK:
        _VECTORS[key] = vector
        while len(_VECTORS) > VECTOR_CACHE_SIZE:
            _VECTORS.popitem(last=False)
    return vector


def warm_up(engine: Engine) -> None:
    """Load the embedding model and build the search index now instead of on the first search.

    ``kb serve`` runs it in a background thread as each worker starts: a fresh worker's first
    search otherwise waits seconds for both, holding the index lock every other search needs.
    """
    embedder = embedder_for()
    query_vector(embedder, "warm up")
    with Session(engine) as session:
        INDEXES.get(engine, embedder, session, data_fingerprint(session))


def more_like_this(
    session: Session,
    *,
    principal: Principal,
    passage_id: int,
    filters: SearchFilters | None = None,
    top_k: int = 10,
    embedder: Embedder | None = None,
) -> list[SearchHit]:
    """Passages most like a given one, among those the principal may see."""
    passage = session.get(Passage, passage_id)
    review = session.get(Review, passage.review_id) if passage is not None else None
    if passage is None or review is None or not can_see(principal, review):
        raise NotFound(f"passage {passage_id} not found")  # hidden answers like missing
    embedder = embedder or embedder_for()
    index = INDEXES.get(session.get_bind(), embedder, session)  # type: ignore[arg-type]
    allowed = allowed_passages(session, principal=principal, filters=filters or SearchFilters())
    hits = index.more_like_this(passage_id, allowed=allowed, top_k=top_k)
    return _hydrate(session, [(h.passage_id, h.score) for h in hits], passage.text[:300])


def _hydrate(session: Session, scored: Sequence[tuple[int, float]], query: str) -> list[SearchHit]:
    """Turn ranked ids into hits with review, section, snippet and themes (3 queries)."""
    ids = [pid for pid, _ in scored]
    if not ids:
        return []
    # Only the columns a hit shows: whole rows would bring each passage's embedding along and
    # cost ORM identity-map work for objects nobody keeps.
    rows = session.exec(
        select(
            Passage.id,
            Passage.text,
            Passage.section_title,
            Passage.section_kind,
            Review.id,
            Review.title,
            Review.pseudonym,
            Passage.role,
            Review.case_id,
            Case.label,
        )
        .join(Review, col(Review.id) == Passage.review_id)
        .outerjoin(Case, col(Case.id) == Review.case_id)
        .where(col(Passage.id).in_(ids))
    ).all()
    by_id = {row[0]: row for row in rows}
    themes: dict[int, list[str]] = {}
    for pid, theme_id in session.exec(
        select(ThemeTag.passage_id, ThemeTag.theme_id)
        .where(col(ThemeTag.passage_id).in_(ids), ThemeTag.status != TagStatus.REJECTED)
        .order_by(col(ThemeTag.confidence).desc())
    ).all():
        themes.setdefault(pid, []).append(theme_id)
    hits = []
    for pid, score in scored:
        _, text, section, section_kind, review_id, title, pseudonym, role, case, case_label = by_id[
            pid
        ]
        snippet = make_snippet(text, query)
        hits.append(
            SearchHit(
                review_id=review_id,
                review_title=title or pseudonym,
                pseudonym=pseudonym,
                passage_id=pid,
                section=section,
                section_kind=section_kind,
                text=text,
                snippet=snippet.text,
                highlights=list(snippet.highlights),
                score=round(float(score), 6),
                themes=themes.get(pid, []),
                role=role or "other",
                case_id=case,
                case_label=case_label,
            )
        )
    return hits


def group_by_review(hits: Sequence[SearchHit]) -> list[dict[str, Any]]:
    """Hits grouped under their review, reviews in the order of their best hit."""
    groups: dict[int, dict[str, Any]] = {}
    for hit in hits:
        group = groups.setdefault(
            hit.review_id,
            {
                "review_id": hit.review_id,
                "review_title": hit.review_title,
                "pseudonym": hit.pseudonym,
                "hits": [],
            },
        )
        group["hits"].append(hit)
    return list(groups.values())
