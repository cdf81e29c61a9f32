"""The read caches (search allow-sets, recurrence / matrix, signals) stay correct.

They are keyed by who may see what and by a fingerprint of the data, so: a principal who may
not see the embargoed review never gets a result computed for one who may (not a hit, not a
count), and an ingest, a tag decision or a tracker edit is visible on the very next call.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from kb.config import get_settings
from kb.db import alembic_config, init_db, make_engine
from kb.models import ActionStatus, ActionUpdate, ReviewStatus, Role, TagStatus
from kb.services.access import Principal
from kb.services.analysis import passage_hook
from kb.services.audit import record
from kb.services.cache import RESULTS, data_fingerprint
from kb.services.ingest import IngestOptions, ingest_paths
from kb.services.recurrence import theme_recurrence, theme_year_matrix
from kb.services.reviews import review_facets
from kb.services.search import SearchFilters, allowed_passages, search
from kb.services.signals import signals
from kb.services.tagging import decide_tag
from kb.services.tracker import get_action, update_action
from kb.services.users import create_user
from tests.web_support import MARKER, SEARCH_WORD, World

pytest_plugins = ["tests.web_fixtures"]

ADMIN = Principal(username="admin", role=Role.ADMIN)
VIEWER = Principal(username="viewer", role=Role.VIEWER)
PANEL_OTHER = Principal(username="panel-b", role=Role.PANEL, partnership_id=2)


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    RESULTS.clear()


def _hidden_theme_reviews(session: Session, principal: Principal, theme: str) -> set[int]:
    table = theme_recurrence(session, principal=principal)
    return {rid for row in table["themes"] if row["id"] == theme for rid in row["review_ids"]}


def test_search_cache_never_serves_one_role_to_another(engine: Engine, web_world: World) -> None:
    with Session(engine) as session:
        seen = search(session, principal=ADMIN, query=SEARCH_WORD, mode="bm25")
        assert {h.passage_id for h in seen} & set(web_world.hidden_passages)
        for principal in (VIEWER, PANEL_OTHER):
            hits = search(session, principal=principal, query=SEARCH_WORD, mode="bm25")
            assert hits == []
            allowed = set(
                allowed_passages(session, principal=principal, filters=SearchFilters()).tolist()
            )
            assert not allowed & set(web_world.hidden_passages)
        # and the other way round: a viewer's cached allow-set does not shrink the admin's
        assert search(session, principal=ADMIN, query=SEARCH_WORD, mode="bm25")


def test_dashboard_and_signal_caches_never_leak_counts(engine: Engine, web_world: World) -> None:
    theme = web_world.hidden_theme
    with Session(engine) as session:
        admin_table = theme_recurrence(session, principal=ADMIN)
        admin_matrix = theme_year_matrix(session, principal=ADMIN)
        admin_signals = signals(session, principal=ADMIN)
        assert web_world.hidden_review in _hidden_theme_reviews(session, ADMIN, theme)
        assert MARKER in str(admin_signals)
        for principal in (VIEWER, PANEL_OTHER):
            table = theme_recurrence(session, principal=principal)
            assert table["total_reviews"] == admin_table["total_reviews"] - 1
            assert all(web_world.hidden_review not in row["review_ids"] for row in table["themes"])
            matrix = theme_year_matrix(session, principal=principal)
            assert sum(matrix["totals"]) == sum(admin_matrix["totals"]) - 1
            assert MARKER not in str(signals(session, principal=principal))
            facets = review_facets(session, principal=principal)
            assert facets["partnerships"] == ["Fernhill"] and facets["years"] == [2023]


def test_cached_results_cannot_be_changed_by_a_caller(engine: Engine, web_world: World) -> None:
    with Session(engine) as session:
        theme_recurrence(session, principal=ADMIN)["themes"].clear()
        assert theme_recurrence(session, principal=ADMIN)["themes"]
        allowed = allowed_passages(session, principal=ADMIN, filters=SearchFilters())
        with pytest.raises(ValueError):
            allowed[0] = -1


def test_tag_decision_invalidates(engine: Engine, web_world: World) -> None:
    theme = web_world.hidden_theme
    filters = SearchFilters(themes=[theme])
    with Session(engine) as session:
        before = data_fingerprint(session)
        assert web_world.hidden_review in _hidden_theme_reviews(session, ADMIN, theme)
        tagged = set(allowed_passages(session, principal=ADMIN, filters=filters).tolist())
        assert tagged & set(web_world.hidden_passages)
    with Session(engine) as session:
        for tag_id in web_world.hidden_tags:
            tag = decide_tag(session, principal=ADMIN, tag_id=tag_id, status=TagStatus.REJECTED)
            assert tag.status == TagStatus.REJECTED
        session.commit()
    with Session(engine) as session:
        assert data_fingerprint(session) != before
        assert web_world.hidden_review not in _hidden_theme_reviews(session, ADMIN, theme)
        tagged = set(allowed_passages(session, principal=ADMIN, filters=filters).tolist())
        assert not tagged & set(web_world.hidden_passages)


def test_ingest_invalidates(engine: Engine, web_world: World, tmp_path: Path) -> None:
    word = "marrowvetch"
    with Session(engine) as session:
        assert search(session, principal=VIEWER, query=word, mode="bm25") == []
        total = theme_recurrence(session, principal=VIEWER)["total_reviews"]
    path = tmp_path / "child-v.md"
    path.write_text(
        # A review kind: only SCRs, LCSPRs and rapid reviews count in total_reviews.
        f"# Child V: Rapid Review\n\nFindings\n\nThe {word} plan was not shared with the "
        "health visitor.\n",
        encoding="utf-8",
    )
    report = ingest_paths(
        engine=engine,
        paths=[path],
        options=IngestOptions(partnership="Fernhill", status=ReviewStatus.PUBLISHED),
        on_passages=passage_hook(get_settings(), embed=False),
    )
    assert not report.failed, report.failed
    with Session(engine) as session:
        hits = search(session, principal=VIEWER, query=word, mode="bm25")
        assert hits and word in hits[0].text
        assert theme_recurrence(session, principal=VIEWER)["total_reviews"] == total + 1


def test_tracker_edit_invalidates(engine: Engine, web_world: World) -> None:
    def statuses(session: Session) -> set[str]:
        return {
            str(action["status"])
            for signal in signals(session, principal=ADMIN)
            for action in signal["actions"]
            if action["ref"] == "HID-1"
        }

    with Session(engine) as session:
        assert statuses(session) == {str(ActionStatus.COMPLETED)}
        version = get_action(session, principal=ADMIN, action_id=web_world.hidden_action).version_id
    with Session(engine) as session:
        update_action(
            session,
            principal=ADMIN,
            action_id=web_world.hidden_action,
            data=ActionUpdate(status=ActionStatus.IN_PROGRESS, completed_date=None),
            expected_version=version,
        )
        session.commit()
    with Session(engine) as session:
        assert str(ActionStatus.COMPLETED) not in statuses(session)


# --------------------------------------------------------------------------- the data version


def _rename_partnership(engine: Engine, name: str) -> None:
    with Session(engine) as session:
        session.connection().execute(
            text("UPDATE partnership SET name = :n WHERE name = 'Fernhill'"), {"n": name}
        )
        session.commit()


def test_a_commit_through_another_engine_is_seen(engine: Engine, web_world: World) -> None:
    """Another server worker or ``kb`` in a terminal has its own engine on the same database."""
    other = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        with Session(engine) as session:
            before = data_fingerprint(session)
            assert review_facets(session, principal=VIEWER)["partnerships"] == ["Fernhill"]
        _rename_partnership(other, "Ashgrove")
        with Session(engine) as session:
            assert data_fingerprint(session) != before
            assert review_facets(session, principal=VIEWER)["partnerships"] == ["Ashgrove"]
    finally:
        other.dispose()


def test_rollback_and_audit_and_users_keep_the_version(engine: Engine, web_world: World) -> None:
    with Session(engine) as session:
        before = data_fingerprint(session)
    with Session(engine) as session:
        session.connection().execute(
            text("UPDATE partnership SET name = 'Rolled back' WHERE name = 'Fernhill'")
        )
        session.rollback()
    with Session(engine) as session:
        record(session, principal=ADMIN, action="view", object_type="review", object_id=1)
        create_user(session, username="newcomer", password="a long enough password", role="viewer")
        session.commit()
    with Session(engine) as session:
        assert data_fingerprint(session) == before
        assert review_facets(session, principal=VIEWER)["partnerships"] == ["Fernhill"]


def test_uncommitted_writes_are_never_shared(engine: Engine, web_world: World) -> None:
    with Session(engine) as writer:
        writer.connection().execute(
            text("UPDATE partnership SET name = 'Uncommitted' WHERE name = 'Fernhill'")
        )
        first, second = data_fingerprint(writer), data_fingerprint(writer)
        assert first != second  # private: nothing computed here is stored under a shared key
        assert review_facets(writer, principal=VIEWER)["partnerships"] == ["Uncommitted"]
        writer.rollback()
    with Session(engine) as reader:
        assert review_facets(reader, principal=VIEWER)["partnerships"] == ["Fernhill"]


def test_upgrade_from_0001_keeps_data_and_starts_a_new_version(
    engine: Engine, web_world: World
) -> None:
    """A database from before the data version is migrated in place (``kb`` runs ``init_db``
    on start); its new random token means no entry cached for another database can match."""
    with Session(engine) as session:
        first = data_fingerprint(session)
        reviews = theme_recurrence(session, principal=ADMIN)["total_reviews"]
    with engine.begin() as conn:
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    with engine.connect() as conn:
        assert not conn.dialect.has_table(conn, "data_version")
    init_db(engine)
    with Session(engine) as session:
        second = data_fingerprint(session)
        assert isinstance(second, tuple) and first[0] != second[0]  # type: ignore[index]
        assert theme_recurrence(session, principal=ADMIN)["total_reviews"] == reviews
    _rename_partnership(engine, "Ashgrove")
    with Session(engine) as session:
        assert data_fingerprint(session) != second
